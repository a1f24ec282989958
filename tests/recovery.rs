//! Backups and recovery as docs/OPERATIONS.md tells them: a backup taken over HTTP while serve
//! runs, restored and served on; `premia backup` of a stopped ledger; and `premia recover` of a
//! damaged data dir from an export and from the stream, each giving the statements the ledger
//! had before it was damaged.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

mod support;
use support::nats_server::NatsServer;
use support::{last_json_line, premia, premia_status, serve_http_with};

const ADMIN: &str = "admin-token-for-the-recovery-test";
const MANAGER: &str = "manager-token-for-the-recovery-test";

/// Every statement of the generated stream's months, without seals (they chain to arrival
/// times, which differ between a served and an ingested ledger), and the parked events.
fn figures(dir: &Path) -> Vec<Value> {
    let mut found: Vec<Value> = ["2025-12", "2026-01", "2026-02"]
        .iter()
        .map(|period| {
            let out = premia(dir, &["statement", "--period", period, "--format", "json"]);
            let mut statement: Value = serde_json::from_slice(&out.stdout).unwrap();
            statement.as_object_mut().unwrap().remove("seal");
            statement
        })
        .collect();
    found.push(serde_json::from_slice(&premia(dir, &["pending", "--format", "json"]).stdout).unwrap());
    found
}

/// The generated lines, split into two files.
fn halves(work: &Path) -> (String, String, String) {
    let generated =
        premia(work, &["generate", "--events", "6000", "--seed", "31", "--managers", "9", "--events-per-day", "90"]);
    let text = String::from_utf8(generated.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let write = |name: &str, part: &[&str]| {
        let path = work.join(name);
        std::fs::write(&path, part.join("\n") + "\n").unwrap();
        path.to_str().unwrap().to_string()
    };
    (write("all.jsonl", &lines), write("first.jsonl", first), write("second.jsonl", second))
}

fn post(base: &str, path: &str, token: &str) -> (u16, Value) {
    let request = ureq::post(&format!("{base}{path}")).timeout(Duration::from_secs(60));
    match request.set("Authorization", &format!("Bearer {token}")).call() {
        Ok(response) => (response.status(), serde_json::from_str(&response.into_string().unwrap()).unwrap()),
        Err(ureq::Error::Status(status, response)) => {
            (status, serde_json::from_str(&response.into_string().unwrap_or_default()).unwrap_or(Value::Null))
        }
        Err(e) => panic!("POST {path}: {e}"),
    }
}

/// Waits until serve has taken in everything published so far: JetStream has delivered it all
/// (the consumer has nothing pending), serve has applied something, and its committed seq has
/// stayed the same for a second and a half (delivered is not yet committed: the last batch may
/// still be folding or flushing).
fn wait_delivered(base: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (mut last_seq, mut steady_since) = (None, std::time::Instant::now());
    loop {
        let text = ureq::get(&format!("{base}/metrics"))
            .set("Authorization", &format!("Bearer {ADMIN}"))
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
            .unwrap_or_default();
        let seq = text.lines().find_map(|l| l.strip_prefix("premia_ledger_committed_seq ")).map(String::from);
        if seq != last_seq {
            (last_seq, steady_since) = (seq, std::time::Instant::now());
        }
        let delivered =
            text.lines().any(|l| l == "premia_consumer_pending 0") && !text.contains("premia_events_applied_total 0\n");
        if delivered && last_seq.is_some() && steady_since.elapsed() >= Duration::from_millis(1500) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "serve did not take everything in within a minute:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_backup_taken_while_serve_runs_restores_and_serves_on_to_the_clean_ledger() {
    let server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    let (all, first, second) = halves(work.path());
    let clean = work.path().join("clean");
    premia(&clean, &["ingest", &all]);

    let backups = work.path().join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    premia(work.path(), &["publish", &first, "--nats-url", &server.url()]);
    let tokens = [(ADMIN, "admin"), (MANAGER, "manager:M-1")];
    let (serve, base) =
        serve_http_with(work.path(), &server.url(), &tokens, &["--backup-dir", backups.to_str().unwrap(), "--no-feed"]);
    wait_delivered(&base);

    let (status, refused) = post(&base, "/v1/admin/backup", MANAGER);
    assert_eq!(status, 403, "{refused}");
    let (status, backup) = post(&base, "/v1/admin/backup", ADMIN);
    assert_eq!(status, 200, "{backup}");
    assert_eq!(backup["created"], true);
    let (status, again) = post(&base, "/v1/admin/backup", ADMIN);
    assert_eq!((status, &again["path"], &again["created"]), (200, &backup["path"], &Value::Bool(false)));
    let backed_up = Path::new(backup["path"].as_str().unwrap()).to_path_buf();
    assert!(backup["last_seq"].as_u64() > Some(1000), "{backup}");

    // The rest arrives; then the machine is lost.
    premia(work.path(), &["publish", &second, "--nats-url", &server.url()]);
    drop(serve); // SIGKILL

    // Restore: the backup moved into a data dir's place, and serve resumes from its cursor.
    let restored = work.path().join("restored");
    std::fs::rename(&backed_up, &restored).unwrap();
    assert_eq!(last_json_line(&premia(&restored, &["verify", "--format", "json"]))["intact"], true);
    premia(&restored, &["serve", "--drain", "--http", "off", "--no-feed", "--nats-url", &server.url()]);
    assert!(figures(&restored) == figures(&clean), "the restored ledger, served on, differs from a clean ingest");
}

#[test]
fn backup_copies_a_stopped_ledger_and_never_writes_over_a_directory() {
    let work = tempfile::tempdir().unwrap();
    let (all, _, _) = halves(work.path());
    let dir = work.path().join("ledger");
    premia(&dir, &["ingest", &all]);
    let copy = work.path().join("copy");
    let report = last_json_line(&premia(&dir, &["backup", "--to", copy.to_str().unwrap(), "--format", "json"]));
    assert!(report["last_seq"].as_u64() > Some(5000), "{report}");
    assert_eq!(last_json_line(&premia(&copy, &["verify", "--format", "json"]))["intact"], true);
    assert!(figures(&copy) == figures(&dir));
    let out = premia_status(&dir, &["backup", "--to", copy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Damages a data dir as a torn disk would: sled's main file cut to nothing (with its page
/// table snapshots gone) and every blob (log and entry chunks) cut to half, so the store no
/// longer reaches the committed head and the data dir refuses to open. Cutting the blobs alone
/// is not always enough: an open reads only the last record, and when that one is small
/// enough to live in sled's main file, a statement from the snapshot is still right.
fn damage(dir: &Path) {
    for file in std::fs::read_dir(dir.join("sled")).unwrap() {
        let path = file.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "db" {
            std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
        } else if name.starts_with("snap.") {
            std::fs::remove_file(&path).unwrap();
        }
    }
    for blob in std::fs::read_dir(dir.join("sled/blobs")).unwrap() {
        let path = blob.unwrap().path();
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len / 2).unwrap();
    }
    let out = premia_status(dir, &["statement", "--period", "2026-01"]);
    assert_ne!(out.status.code(), Some(0), "the damaged dir must refuse to open");
}

#[test]
fn recover_from_an_export_rebuilds_the_lost_ledger_to_its_committed_head() {
    let work = tempfile::tempdir().unwrap();
    let (all, _, _) = halves(work.path());
    let dir = work.path().join("ledger");
    premia(&dir, &["ingest", &all]);
    let before = figures(&dir);
    let export = work.path().join("export.jsonl");
    premia(&dir, &["export", "--from-seq", "1", "--out", export.to_str().unwrap()]);
    damage(&dir);

    let rebuilt = work.path().join("rebuilt");
    let args = ["recover", "--into", rebuilt.to_str().unwrap(), "--from-export", export.to_str().unwrap()];
    let report = last_json_line(&premia(&dir, &[&args[..], &["--format", "json"]].concat()));
    assert_eq!(report["damaged_head"]["state"], "read", "{report}");
    assert_eq!(report["reaches_head"], true, "{report}");
    // An export carries the log, not the rejected lines: the rejections differ.
    assert_eq!(report["last_seq"], report["damaged_head"]["last_seq"], "{report}");
    assert_eq!(report["chain_hash"], report["damaged_head"]["chain_hash"], "{report}");
    assert!(figures(&rebuilt) == before, "the recovered ledger's statements differ from the lost one's");
}

#[test]
fn recover_from_the_stream_gives_the_statements_of_the_lost_ledger() {
    let server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    let (all, _, _) = halves(work.path());
    premia(work.path(), &["publish", &all, "--nats-url", &server.url()]);
    let dir = work.path().join("ledger");
    premia(&dir, &["serve", "--drain", "--http", "off", "--no-feed", "--nats-url", &server.url()]);
    let before = figures(&dir);
    damage(&dir);

    let rebuilt = work.path().join("rebuilt");
    let args = ["recover", "--into", rebuilt.to_str().unwrap(), "--from-stream", "--nats-url", &server.url()];
    let report = last_json_line(&premia(&dir, &[&args[..], &["--format", "json"]].concat()));
    assert_eq!(report["damaged_head"]["state"], "read", "{report}");
    // Records taken from a stream arrive at the messages' stream timestamps: the rebuilt log
    // is the lost one, to the last hash and kept rejection.
    assert_eq!(report["equals_head"], true, "{report}");
    assert!(figures(&rebuilt) == before, "the recovered ledger's statements differ from the lost one's");
    let again = work.path().join("again");
    let args = ["recover", "--into", again.to_str().unwrap(), "--from-stream", "--nats-url", &server.url()];
    let text = String::from_utf8(premia(&dir, &args).stdout).unwrap();
    assert!(text.contains("This equals the committed head of the damaged data dir"), "{text}");
}
