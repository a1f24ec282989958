//! The worked month through the real binary and a real sled directory: counts and every
//! manager's figures in both periods must equal `tests/data/seed-month.expected.json`.

use std::process::Command;

use serde_json::Value;

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/seed-month.jsonl");
const EXPECTED: &str = include_str!("data/seed-month.expected.json");

mod support;
use support::{last_json_line, premia, premia_status, PREMIA};

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

#[test]
fn an_activated_scheme_applies_to_every_event_folded_after_it() {
    let dir = tempfile::tempdir().unwrap();
    // The default scheme is logged before the first event, and `scheme show` prints it.
    let shown = String::from_utf8(premia(dir.path(), &["scheme", "show"]).stdout).unwrap();
    assert!(shown.contains("on_time_rate = \"0.008\""), "{shown}");

    // 0.9 % on time instead of 0.8 %, and a fine of 1500.00.
    let default = String::from_utf8(premia(dir.path(), &["scheme", "show", "--default"]).stdout).unwrap();
    let changed = default
        .replace("name = \"default\"", "name = \"richer on time\"")
        .replace("on_time_rate = \"0.008\"", "on_time_rate = \"0.009\"")
        .replace("manager_fault = \"2000.00\"", "manager_fault = \"1500.00\"");
    let scheme_file = dir.path().join("richer.toml");
    std::fs::write(&scheme_file, changed).unwrap();
    let checked = premia(dir.path(), &["scheme", "check", scheme_file.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&checked.stdout).contains("is a valid scheme"));
    premia(dir.path(), &["scheme", "activate", scheme_file.to_str().unwrap()]);
    let shown = String::from_utf8(premia(dir.path(), &["scheme", "show"]).stdout).unwrap();
    assert!(shown.contains("in force since ledger seq 1") && shown.contains("0.009"), "{shown}");

    premia(dir.path(), &["ingest", SEED]);
    let nov: Value =
        serde_json::from_slice(&premia(dir.path(), &["statement", "--period", "2026-11", "--format", "json"]).stdout)
            .unwrap();
    let m = |id: &str| nov["managers"].as_array().unwrap().iter().find(|m| m["manager_id"] == id).unwrap().clone();
    // M-3: one on-time payment, margin 80 000.00 x 0.009 = 720.00 (640.00 under the default).
    assert_eq!(m("M-3")["commission"], "720.00");
    // M-1: prepaid 400.00 unchanged, the fine is now 1500.00.
    assert_eq!(m("M-1")["commission"], "400.00");
    assert_eq!(m("M-1")["fines"], "-1500.00");
    // The log alone says which rules made the entries: a rebuild from it agrees.
    assert_eq!(last_json_line(&premia(dir.path(), &["rebuild", "--format", "json"]))["identical"], true);
}

#[test]
fn a_bad_scheme_is_refused_with_every_problem_named() {
    let dir = tempfile::tempdir().unwrap();
    let default = String::from_utf8(premia(dir.path(), &["scheme", "show", "--default"]).stdout).unwrap();
    let bad = default
        .replace("late_rate = \"0.005\"", "late_rate = \"5\"")
        .replace("currency = \"RUB\"", "currency = \"rub\"");
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, bad).unwrap();
    let out = premia_status(dir.path(), &["scheme", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("currency:") && err.contains("commission.late_rate:"), "{err}");
    let out = premia_status(dir.path(), &["scheme", "activate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    // Nothing was logged.
    let shown = String::from_utf8(premia(dir.path(), &["scheme", "show"]).stdout).unwrap();
    assert!(shown.contains("built-in default scheme"), "{shown}");
}

#[test]
fn a_second_process_is_told_who_holds_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    premia(dir.path(), &["ingest", SEED]);
    // Hold the ledger with a long-running ingest from a pipe that stays open.
    let mut holder = Command::new(PREMIA)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["ingest", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the holder has taken the lock (it names itself in the lock file).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let holder_line = format!("pid {} running `premia ingest`", holder.id());
    while !std::fs::read_to_string(dir.path().join("premia.lock")).unwrap_or_default().contains(&holder_line) {
        assert!(std::time::Instant::now() < deadline, "the holder never took the lock");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = premia_status(dir.path(), &["statement", "--period", "2026-11"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    drop(holder.stdin.take());
    holder.wait().unwrap();
    assert!(err.contains("in use by another premia process") && err.contains(&holder_line), "{err}");
}

#[test]
fn the_offline_demo_prints_the_expected_month() {
    let out = Command::new(PREMIA).args(["demo", "--offline", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let demo: Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected: Value = serde_json::from_str(EXPECTED).unwrap();
    assert_eq!(demo["counts"], expected["counts"]);
    let periods: Vec<&str> =
        demo["statements"].as_array().unwrap().iter().map(|s| s["period"].as_str().unwrap()).collect();
    assert_eq!(periods, ["2026-11", "2026-12"]);
}
