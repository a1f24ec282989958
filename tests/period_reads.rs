//! Statements and figures read from the period projection (`DIR/periods.bin`) are byte for byte
//! those read from the fold state, for every period of a generated ledger (closed months with
//! their seals, adjustments, parked facts left at the end, periods before and after anything
//! happened), in every format; and a projection the ledger has moved past is never served.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

mod support;
use support::{last_json_line, premia, PREMIA};

/// Facts that never find what they wait for: the ledger ends with them parked.
const ORPHANS: &str = r#"{"specversion":"1.0","id":"orphan-1","source":"crm/reads","type":"payment.received","data":{"payment_id":"P-ORPHAN-1","deal_id":"D-NEVER-1","amount":"1000.00","currency":"RUB","paid_on":"2026-02-20"}}
{"specversion":"1.0","id":"orphan-2","source":"crm/reads","type":"payment.late","data":{"deal_id":"D-NEVER-3","as_of":"2026-02-22","days_overdue":4}}
"#;

/// Every month from October 2025 (before the first event) to December 2027 (long after).
fn periods() -> Vec<String> {
    (2025..=2027)
        .flat_map(|year| (1..=12).map(move |month| format!("{year}-{month:02}")))
        .filter(|p| p.as_str() >= "2025-10")
        .collect()
}

/// Runs premia with the ledger's debug log on stderr, which says where a read came from.
fn read(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(PREMIA)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "premia_ledger=debug")
        .output()
        .expect("run premia");
    assert!(out.status.success(), "premia {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

const FROM_PROJECTION: &str = "read from the period projection";

/// Every read of every period: statements (whole, one manager; json, text, csv) and figures.
fn reads(period: &str) -> Vec<Vec<String>> {
    let mut reads = Vec::new();
    for command in ["statement", "figures"] {
        for format in ["json", "text", "csv"] {
            reads.push(vec![command, "--period", period, "--format", format]);
            reads.push(vec![command, "--period", period, "--format", format, "--manager", "M-3"]);
        }
    }
    reads.into_iter().map(|r| r.into_iter().map(String::from).collect()).collect()
}

/// Asserts that every read of `light` (which must come from its projection) gives the bytes the
/// same read of `full` (which has none) gives; returns how many statements were not empty.
fn same_reads(light: &Path, full: &Path) -> usize {
    let mut nonempty = 0;
    for period in periods() {
        for args in reads(&period) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (a, b) = (read(light, &args), read(full, &args));
            assert!(
                String::from_utf8_lossy(&a.stderr).contains(FROM_PROJECTION),
                "premia {args:?} did not read the projection:\n{}",
                String::from_utf8_lossy(&a.stderr)
            );
            assert!(!String::from_utf8_lossy(&b.stderr).contains(FROM_PROJECTION), "premia {args:?}");
            assert!(a.stdout == b.stdout, "premia {args:?} differs:\n{}\n---\n{}", show(&a), show(&b));
            if args[0] == "statement" && args[4] == "json" && args.len() == 5 {
                let statement: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
                nonempty += usize::from(!statement["managers"].as_array().unwrap().is_empty());
            }
        }
    }
    nonempty
}

fn show(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn copy_without_projection(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let copy = Command::new("cp").arg("-r").arg(from.join(".")).arg(to).status().unwrap();
    assert!(copy.success());
    std::fs::remove_file(to.join("periods.bin")).unwrap();
}

fn events(work: &Path) -> (String, String) {
    let generated = premia(
        work,
        &["generate", "--events", "6000", "--seed", "31", "--managers", "6", "--events-per-day", "60"],
    );
    let text = String::from_utf8(generated.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (first, rest) = lines.split_at(4000);
    let first_file = work.join("first.jsonl");
    std::fs::write(&first_file, format!("{}\n{ORPHANS}", first.join("\n"))).unwrap();
    let rest_file = work.join("rest.jsonl");
    std::fs::write(&rest_file, format!("{}\n", rest.join("\n"))).unwrap();
    (first_file.to_str().unwrap().into(), rest_file.to_str().unwrap().into())
}

#[test]
fn every_read_of_the_projection_equals_the_read_of_the_state() {
    let work = tempfile::tempdir().unwrap();
    let (first, _) = events(work.path());
    let light = work.path().join("light");
    let counts = last_json_line(&premia(&light, &["ingest", &first, "--format", "json"]));
    assert_eq!(counts["parked"], 2, "the ledger ends with its orphans parked: {counts}");
    let full = work.path().join("full");
    copy_without_projection(&light, &full);
    let nonempty = same_reads(&light, &full);
    assert!(nonempty >= 2, "the generated months have statements: {nonempty}");
    let closed: serde_json::Value =
        serde_json::from_slice(&premia(&light, &["statement", "--period", "2026-01", "--format", "json"]).stdout)
            .unwrap();
    assert_eq!(closed["status"], "closed", "the generator closes January: the seal is compared too");
    let verified = last_json_line(&premia(&light, &["verify", "--format", "json"]));
    assert_eq!(verified["intact"], true, "{verified}");
    assert_eq!(verified["projection"]["identical"]["covers"], verified["last_seq"], "{verified}");
}

#[test]
fn a_projection_the_ledger_moved_past_is_not_read() {
    let work = tempfile::tempdir().unwrap();
    let (first, rest) = events(work.path());
    let dir = work.path().join("moved");
    premia(&dir, &["ingest", &first]);
    let before = read(&dir, &["statement", "--period", "2026-03", "--format", "json"]).stdout;
    // Three batches of the rest are committed (head synced), then the process dies before it
    // writes a snapshot or a projection.
    let out = Command::new(PREMIA)
        .arg("--data-dir")
        .arg(&dir)
        .args(["ingest", &rest, "--batch-lines", "300"])
        .env("PREMIA_TEST_CRASH_AT", "after-head:3")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(6), "{}", String::from_utf8_lossy(&out.stderr));
    let full = work.path().join("full");
    copy_without_projection(&dir, &full);
    let mut changed = false;
    for period in periods() {
        for args in reads(&period) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (a, b) = (read(&dir, &args), read(&full, &args));
            assert!(!String::from_utf8_lossy(&a.stderr).contains(FROM_PROJECTION), "premia {args:?} read a stale projection");
            assert!(a.stdout == b.stdout, "premia {args:?} differs:\n{}\n---\n{}", show(&a), show(&b));
        }
        if period == "2026-03" {
            let after = read(&dir, &["statement", "--period", "2026-03", "--format", "json"]).stdout;
            changed = after != before;
        }
    }
    assert!(changed, "the committed batches changed March's statement, so a stale projection would show");
    let verified = last_json_line(&premia(&dir, &["verify", "--format", "json"]));
    assert_eq!(verified["intact"], true, "{verified}");
    assert!(verified["projection"]["unused"].is_object(), "{verified}");
    // The next writer writes it again, and reads use it.
    premia(&dir, &["ingest", &rest]);
    let again = read(&dir, &["statement", "--period", "2026-03", "--format", "json"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains(FROM_PROJECTION));
}
