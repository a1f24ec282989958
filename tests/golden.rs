//! The worked month through the real binary and a real sled directory: counts and every
//! manager's figures in both periods must equal `tests/data/seed-month.expected.json`.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const PREMIA: &str = env!("CARGO_BIN_EXE_premia");
const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/seed-month.jsonl");
const EXPECTED: &str = include_str!("data/seed-month.expected.json");

fn premia(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(PREMIA).arg("--data-dir").arg(dir).args(args).output().expect("run premia");
    assert!(out.status.success(), "premia {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn last_json_line(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().expect("some output");
    serde_json::from_str(line).expect("the last line is one JSON object")
}

#[test]
fn the_seed_month_gives_the_expected_statements() {
    let dir = tempfile::tempdir().unwrap();
    let expected: Value = serde_json::from_str(EXPECTED).unwrap();

    let counts = last_json_line(&premia(dir.path(), &["ingest", SEED, "--format", "json"]));
    assert_eq!(counts, expected["counts"]);

    for (period, managers) in expected["statements"].as_object().unwrap() {
        let out = premia(dir.path(), &["statement", "--period", period, "--format", "json"]);
        let statement: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(statement["period"], period.as_str());
        assert_eq!(statement["currency"], "RUB");
        let got = statement["managers"].as_array().unwrap();
        let ids: Vec<&str> = got.iter().map(|m| m["manager_id"].as_str().unwrap()).collect();
        let want_ids: Vec<&str> = managers.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(ids, want_ids, "{period}: managers");
        for m in got {
            let want = &managers[m["manager_id"].as_str().unwrap()];
            for key in ["commission", "clawback", "fines", "plan_bonus", "total"] {
                assert_eq!(m[key], want[key], "{period} {} {key}", m["manager_id"]);
            }
            for key in ["actual", "target", "status", "bonus"] {
                assert_eq!(m["plan"][key], want["plan"][key], "{period} {} plan.{key}", m["manager_id"]);
            }
            // The total is the sum of the entries listed.
            let sum: rust_decimal::Decimal = m["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["amount"].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap())
                .sum();
            assert_eq!(format!("{sum:.2}"), m["total"].as_str().unwrap());
        }
    }
    // November is closed, December open.
    let nov: Value =
        serde_json::from_slice(&premia(dir.path(), &["statement", "--period", "2026-11", "--format", "json"]).stdout)
            .unwrap();
    let dec: Value =
        serde_json::from_slice(&premia(dir.path(), &["statement", "--period", "2026-12", "--format", "json"]).stdout)
            .unwrap();
    assert_eq!(nov["status"], "closed");
    assert_eq!(dec["status"], "open");
}

#[test]
fn entries_name_their_cause() {
    let dir = tempfile::tempdir().unwrap();
    premia(dir.path(), &["ingest", SEED]);
    let out = premia(dir.path(), &["statement", "--period", "2026-12", "--manager", "M-4", "--format", "json"]);
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = &s["managers"][0]["entries"][0];
    // P-402 was paid on Saturday 28 November, the day after its due date, in closed November.
    assert_eq!(entry["kind"], "commission");
    assert_eq!(entry["amount"], "160.00");
    assert_eq!(entry["deal_id"], "D-402");
    assert_eq!(entry["payment_id"], "P-402");
    assert_eq!(entry["timing"], "on_time");
    assert_eq!(entry["working_days_late"], 0);
    assert_eq!(entry["rate"], "0.008");
    assert_eq!(entry["adjustment_of"], "2026-11");
    assert_eq!(entry["event"]["id"], "evt-0028");
    assert_eq!(entry["event"]["source"], "crm/acme");
    // The late payment of M-2: 11 working days after 2 November, across the 4 November holiday.
    let out = premia(dir.path(), &["statement", "--period", "2026-11", "--manager", "M-2", "--format", "json"]);
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = s["managers"][0]["entries"].as_array().unwrap();
    let late = entries.iter().find(|e| e["payment_id"] == "P-202").unwrap();
    assert_eq!(
        (late["timing"].as_str(), late["working_days_late"].as_u64(), late["amount"].as_str()),
        (Some("late"), Some(11), Some("150.00"))
    );
    let on_time = entries.iter().find(|e| e["payment_id"] == "P-201").unwrap();
    assert_eq!(
        (on_time["timing"].as_str(), on_time["working_days_late"].as_u64(), on_time["amount"].as_str()),
        (Some("on_time"), Some(10), Some("240.00"))
    );
    assert_eq!(s["managers"][0]["plan"]["achievement"], "0.6000");
    assert_eq!(s["managers"][0]["plan"]["coefficient"], "0.8500");
}

#[test]
fn ingesting_the_same_file_again_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    premia(dir.path(), &["ingest", SEED]);
    let before = premia(dir.path(), &["statement", "--period", "2026-11", "--format", "json"]).stdout;
    let counts = last_json_line(&premia(dir.path(), &["ingest", SEED, "--format", "json"]));
    // 28 distinct valid events plus the redelivered copy are duplicates; the USD line is rejected again.
    assert_eq!(counts, serde_json::json!({"applied": 0, "duplicates": 28, "rejected": 1, "parked": 0}));
    let after = premia(dir.path(), &["statement", "--period", "2026-11", "--format", "json"]).stdout;
    assert_eq!(before, after);
    let rebuilt = last_json_line(&premia(dir.path(), &["rebuild", "--format", "json"]));
    assert_eq!(rebuilt["identical"], true);
}
