//! Replicas of one stream agree byte for byte: each record taken from JetStream arrives at the
//! message's stream timestamp and names its stream and stream sequence, so two `serve`s with
//! their own data dirs and consumers (one of them SIGKILLed mid-stream and started again) end
//! with the same chain head, seals, export and snapshot, and their statements are those of a
//! file ingest of the same lines.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

mod support;
use support::nats_server::NatsServer;
use support::soak::{booked_accruals, fed_accruals};
use support::{last_json_line, premia, PREMIA};

fn statements(dir: &Path, periods: &[&str]) -> Vec<Value> {
    periods
        .iter()
        .map(|p| {
            serde_json::from_slice(&premia(dir, &["statement", "--period", p, "--format", "json"]).stdout).unwrap()
        })
        .collect()
}

fn without_seals(mut statements: Vec<Value>) -> Vec<Value> {
    for statement in &mut statements {
        statement.as_object_mut().unwrap().remove("seal");
    }
    statements
}

#[test]
fn two_replicas_of_one_stream_build_the_same_ledger_byte_for_byte() {
    let server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    let generated = premia(work.path(), &["generate", "--events", "20000", "--seed", "41", "--events-per-day", "250"]);
    let file = work.path().join("events.jsonl");
    std::fs::write(&file, &generated.stdout).unwrap();
    let file = file.to_str().unwrap();
    premia(work.path(), &["publish", file, "--nats-url", &server.url()]);
    let url = server.url();
    let drain = |dir: &Path, consumer: &str| {
        premia(
            dir,
            &["serve", "--drain", "--http", "off", "--nats-url", &url, "--consumer", consumer, "--batch", "300"],
        );
    };

    let a = work.path().join("replica-a");
    drain(&a, "replica-a");

    // Replica B is killed mid-stream, then started again: other batches, the same ledger.
    let b = work.path().join("replica-b");
    let mut child = Command::new(PREMIA)
        .arg("--data-dir")
        .arg(&b)
        .args(["serve", "--http", "off", "--nats-url", &url, "--consumer", "replica-b", "--batch", "50"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drain(&b, "replica-b");

    let verified_a = last_json_line(&premia(&a, &["verify", "--format", "json"]));
    let verified_b = last_json_line(&premia(&b, &["verify", "--format", "json"]));
    assert_eq!(verified_a["intact"], true, "{verified_a}");
    assert!(verified_a["seals"].as_array().is_some_and(|s| s.len() >= 2), "closed months: {verified_a}");
    for key in ["last_seq", "last_hash", "seals", "rejections", "committed_seq"] {
        assert_eq!(verified_a[key], verified_b[key], "{key} differs between the replicas");
    }
    let export = |dir: &Path| premia(dir, &["export", "--from-seq", "1"]).stdout;
    assert!(export(&a) == export(&b), "the replicas' exports differ");
    let rejected = |dir: &Path| premia(dir, &["rejected", "--format", "json"]).stdout;
    assert!(rejected(&a) == rejected(&b), "the replicas' kept rejections differ");
    let snapshot = |dir: &Path| std::fs::read(dir.join("snapshot.bin")).unwrap();
    assert!(snapshot(&a) == snapshot(&b), "the replicas' snapshots differ");

    let periods = ["2026-01", "2026-02", "2026-03", "2026-04"];
    let (in_a, in_b) = (statements(&a, &periods), statements(&b, &periods));
    assert!(in_a == in_b, "the replicas' statements (seals included) differ");
    let clean = work.path().join("clean");
    premia(&clean, &["ingest", file]);
    assert!(without_seals(in_a) == without_seals(statements(&clean, &periods)), "a replica differs from a file ingest");
}

/// Every accrual in the feed stream, as (manager, period, entry seq, kind, amount), counted.
#[test]
fn two_replicas_serving_at_once_put_each_accrual_in_the_feed_once() {
    let server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    let generated = premia(work.path(), &["generate", "--events", "6000", "--seed", "43", "--events-per-day", "250"]);
    let file = work.path().join("events.jsonl");
    std::fs::write(&file, &generated.stdout).unwrap();
    premia(work.path(), &["publish", file.to_str().unwrap(), "--nats-url", &server.url()]);

    // Both replicas publish the feed, at the same time, in batches of their own.
    let url = server.url();
    let serve = |name: &str, batch: &str| {
        let dir = work.path().join(name);
        let child = Command::new(PREMIA)
            .arg("--data-dir")
            .arg(&dir)
            .args(["serve", "--drain", "--http", "off", "--nats-url", &url, "--consumer", name, "--batch", batch])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        (dir, child)
    };
    let (a, mut serving_a) = serve("replica-a", "100");
    let (b, mut serving_b) = serve("replica-b", "37");
    assert!(serving_a.wait().unwrap().success() && serving_b.wait().unwrap().success());

    let periods = ["2026-01", "2026-02"];
    let booked = booked_accruals(&statements(&a, &periods));
    assert_eq!(booked, booked_accruals(&statements(&b, &periods)));
    assert!(booked.len() > 500, "the stream books a good many entries: {}", booked.len());
    let (messages, fed) = fed_accruals(&url);
    let doubled: Vec<_> = fed.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "accruals in the feed more than once: {doubled:?}");
    let fed_in_periods: std::collections::BTreeMap<_, _> =
        fed.into_iter().filter(|((_, period, ..), _)| periods.contains(&period.as_str())).collect();
    let missing: Vec<_> = booked.keys().filter(|k| !fed_in_periods.contains_key(*k)).take(5).collect();
    let extra: Vec<_> = fed_in_periods.keys().filter(|k| !booked.contains_key(*k)).take(5).collect();
    assert!(
        fed_in_periods == booked,
        "the feed's accruals differ from the ledger's entries: {} in the ledger, {} fed; not fed {missing:?}; fed, not booked {extra:?}",
        booked.len(),
        fed_in_periods.len()
    );
    eprintln!("{messages} feed messages carried {} accruals once each", booked.len());
}
