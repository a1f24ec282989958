//! premia on a three-node JetStream cluster: an events stream with three replicas, published to
//! and served while the node leading the stream is SIGKILLed and started again. Publishing
//! sends again what was not acknowledged (same message id) and loses nothing; serving rides out
//! the leader change; the statements equal a file ingest of the same lines (in the order the stream kept them), and a second replica
//! served afterwards ends with the same chain head.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;
use support::nats_cluster::NatsCluster;
use support::soak::{statements, stream_payloads, tally};
use support::{last_json_line, premia, premia_status, Reaped, PREMIA};

/// The statements of the months the stream spans, without seals.
fn figures(dir: &Path) -> Vec<Value> {
    statements(dir, &["2026-01".into(), "2026-02".into(), "2026-03".into()])
}

#[test]
fn a_stream_leader_killed_while_publishing_and_serving_loses_nothing() {
    let mut cluster = NatsCluster::start();
    let urls = cluster.urls();
    let work = tempfile::tempdir().unwrap();
    let generated = premia(work.path(), &["generate", "--events", "16000", "--seed", "47", "--events-per-day", "200"]);
    let text = String::from_utf8(generated.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let write = |name: &str, part: &[&str]| {
        let path = work.path().join(name);
        std::fs::write(&path, part.join("\n") + "\n").unwrap();
        path.to_str().unwrap().to_string()
    };
    let (all, first, second) =
        (write("all.jsonl", &lines), write("first.jsonl", &lines[..8000]), write("second.jsonl", &lines[8000..]));

    // The cluster elects its JetStream leader a moment after it starts: publish until it answers.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = premia_status(work.path(), &["publish", &first, "--nats-url", &urls, "--stream-replicas", "3"]);
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster never took a publish: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let a = work.path().join("replica-a");
    let serve = |dir: &Path, consumer: &str| {
        Command::new(PREMIA)
            .arg("--data-dir")
            .arg(dir)
            .args(["serve", "--http", "off", "--nats-url", &urls, "--consumer", consumer, "--batch", "200"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let serving = Reaped { child: serve(&a, "replica-a") };
    let publishing = Command::new(PREMIA)
        .args(["publish", &second, "--nats-url", &urls, "--format", "json", "--in-flight", "256"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let leader = cluster.stream_leader("PREMIA_EVENTS").expect("the stream has a leader");
    cluster.kill(leader); // SIGKILL the stream leader mid-publish and mid-serve
    std::thread::sleep(Duration::from_secs(2));
    cluster.restart(leader);
    let published = publishing.wait_with_output().unwrap();
    let report: Value =
        serde_json::from_slice(published.stdout.split(|b| *b == b'\n').find(|l| !l.is_empty()).unwrap())
            .unwrap_or(Value::Null);
    assert!(
        published.status.success(),
        "publish must ride out the leader's death: {report} {}",
        String::from_utf8_lossy(&published.stderr)
    );
    assert_eq!(report["unconfirmed"], serde_json::json!([]), "{report}");
    eprintln!("publish while the leader died: {report}");

    // Serving goes on; SIGTERM ends it after the batch in hand, and a drain takes the rest.
    std::thread::sleep(Duration::from_secs(1));
    let killed = Command::new("kill").args(["-TERM", &serving.child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    drop(serving);
    let drain = ["serve", "--drain", "--http", "off", "--nats-url", &urls];
    premia(&a, &[&drain[..], &["--consumer", "replica-a"]].concat());
    let b = work.path().join("replica-b");
    premia(&b, &[&drain[..], &["--consumer", "replica-b"]].concat());

    // Every line is in the stream once. A line whose first send the dying leader lost can be
    // stored after a later one (docs/RELIABILITY.md), so the served ledger is compared with a
    // file ingest of the stream's messages in the stream's order; when the stream kept the
    // file's order, also with a file ingest of the file itself.
    let payloads = stream_payloads(&urls);
    let owned: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let tally = tally(&owned, &payloads);
    assert_eq!((tally.lines_missing, tally.lines_doubled), (0, 0), "{tally:?}");
    let in_stream_order = work.path().join("in-stream-order.jsonl");
    std::fs::write(&in_stream_order, payloads.join(&b'\n')).unwrap();
    let clean = work.path().join("clean");
    premia(&clean, &["ingest", in_stream_order.to_str().unwrap()]);
    assert!(figures(&a) == figures(&clean), "the served ledger differs from a file ingest of the stream's messages");
    if tally.lines_out_of_file_order == 0 {
        let clean_file = work.path().join("clean-file");
        premia(&clean_file, &["ingest", &all]);
        assert!(figures(&a) == figures(&clean_file), "the served ledger differs from a file ingest of the same lines");
    }
    eprintln!("the stream after the leader's death: {tally:?}");
    let head = |dir: &Path| {
        let verified = last_json_line(&premia(dir, &["verify", "--format", "json"]));
        assert_eq!(verified["intact"], true, "{verified}");
        (verified["last_seq"].clone(), verified["last_hash"].clone())
    };
    assert_eq!(head(&a), head(&b), "the two replicas end with different chain heads");
}
