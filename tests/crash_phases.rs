//! A crash at every phase of writing a batch, through the real binary: the writer thread aborts
//! the process (`PREMIA_TEST_CRASH_AT=PHASE:N`, as a SIGKILL would stop it: nothing flushed or
//! cleaned up) before the batch is written, after it is written but not flushed, after the
//! flush but before the committed head is recorded, and after the head but before anything is
//! reported or acknowledged. After each, the data dir must open and verify as sound, and a run
//! to completion must give exactly the statements of a clean run, for `ingest` and for `serve`
//! (where nothing acknowledged may be lost).

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

mod support;
use support::nats_server::NatsServer;
use support::{last_json_line, premia, PREMIA};

const PHASES: [&str; 4] = ["before-write", "after-write", "after-flush", "after-head"];
/// Facts that never find what they wait for: the stream ends with them parked.
const ORPHAN: &str = r#"{"specversion":"1.0","id":"orphan-1","source":"crm/crash","type":"payment.received","data":{"payment_id":"P-ORPHAN","deal_id":"D-NEVER","amount":"1000.00","currency":"RUB","paid_on":"2026-01-20"}}"#;

/// The figures of a data dir: two periods' statements (without seals, which chain to arrival
/// times) and the parked events.
fn outcome(dir: &Path) -> Vec<Value> {
    let mut found = Vec::new();
    for period in ["2025-12", "2026-01"] {
        let out = premia(dir, &["statement", "--period", period, "--format", "json"]);
        let mut statement: Value = serde_json::from_slice(&out.stdout).unwrap();
        statement.as_object_mut().unwrap().remove("seal");
        found.push(statement);
    }
    found.push(serde_json::from_slice(&premia(dir, &["pending", "--format", "json"]).stdout).unwrap());
    found
}

fn crashed_run(dir: &Path, phase: &str, args: &[&str]) {
    let out = Command::new(PREMIA)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("PREMIA_TEST_CRASH_AT", format!("{phase}:3"))
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(6),
        "premia {args:?} must stop at {phase} of its third batch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sound(dir: &Path, phase: &str) {
    let report = last_json_line(&premia(dir, &["verify", "--format", "json"]));
    assert_eq!(report["intact"], true, "after a crash {phase}: {report}");
}

fn events(work: &Path) -> String {
    let generated =
        premia(work, &["generate", "--events", "4000", "--seed", "23", "--managers", "8", "--events-per-day", "80"]);
    let mut text = String::from_utf8(generated.stdout).unwrap();
    text.push_str(ORPHAN);
    text.push('\n');
    let file = work.join("events.jsonl");
    std::fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_string()
}

#[test]
fn an_ingest_crashed_at_each_phase_of_a_batch_recovers_to_the_clean_ledger() {
    let work = tempfile::tempdir().unwrap();
    let file = events(work.path());
    let clean = work.path().join("clean");
    premia(&clean, &["ingest", &file]);
    let expected = outcome(&clean);
    for phase in PHASES {
        let dir = work.path().join(phase);
        crashed_run(&dir, phase, &["ingest", &file, "--batch-lines", "500"]);
        sound(&dir, phase);
        let counts = last_json_line(&premia(&dir, &["ingest", &file, "--batch-lines", "500", "--format", "json"]));
        assert_eq!(counts["parked"], 1, "{phase}: {counts}");
        assert!(outcome(&dir) == expected, "after a crash {phase}, the ledger differs from the clean run's");
        assert_eq!(last_json_line(&premia(&dir, &["rebuild", "--format", "json"]))["identical"], true);
    }
}

#[test]
fn serve_crashed_at_each_phase_of_a_batch_loses_nothing_it_acknowledged() {
    let server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    let file = events(work.path());
    premia(work.path(), &["publish", &file, "--nats-url", &server.url()]);
    let clean = work.path().join("clean");
    premia(&clean, &["ingest", &file]);
    let expected = outcome(&clean);
    for phase in PHASES {
        let dir = work.path().join(phase);
        let consumer = format!("crash-{phase}");
        let serve = ["serve", "--drain", "--batch", "300", "--http", "off", "--no-feed", "--nats-url", &server.url()];
        crashed_run(&dir, phase, &[&serve[..], &["--consumer", &consumer]].concat());
        sound(&dir, phase);
        let served =
            last_json_line(&premia(&dir, &[&serve[..], &["--consumer", &consumer, "--format", "json"]].concat()));
        assert!(served["applied"].as_u64() > Some(0), "{phase}: {served}");
        assert!(outcome(&dir) == expected, "after serve crashed {phase}, the ledger differs from a file ingest's");
        assert_eq!(last_json_line(&premia(&dir, &["rebuild", "--format", "json"]))["identical"], true);
    }
}
