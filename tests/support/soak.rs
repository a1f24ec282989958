//! The parts of the chaos soak (tests/soak.rs): a serve replica that can be killed and started
//! again, publishing a chunk until the cluster takes all of it, and the figures compared at the
//! end (statements of every period, the feed's doubled accruals).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{premia, premia_status, PREMIA};

/// One `premia serve` replica: its data dir, its own consumer, and its process when running.
pub struct Replica {
    pub name: String,
    pub dir: PathBuf,
    urls: String,
    child: Option<Child>,
}

impl Replica {
    pub fn new(work: &Path, name: &str, urls: &str) -> Replica {
        Replica {
            name: name.to_string(),
            dir: work.join(format!("replica-{name}")),
            urls: urls.to_string(),
            child: None,
        }
    }

    fn consumer(&self) -> String {
        format!("replica-{}", self.name)
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "replica {} is already running", self.name);
        let stderr =
            std::fs::OpenOptions::new().create(true).append(true).open(self.dir.with_extension("stderr")).unwrap();
        let child = Command::new(PREMIA)
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["serve", "--http", "off", "--nats-url", &self.urls, "--consumer", &self.consumer()])
            .args(["--batch", "500", "--stream-replicas", "3"])
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// SIGKILL, at whatever moment this is.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the replica, deletes its data dir, rebuilds it from the stream and starts it again.
    /// A rebuild that a NATS node's death cuts short is started over in a fresh directory.
    pub fn destroy_and_recover(&mut self, urls: &str) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let _ = std::fs::remove_dir_all(&self.dir);
            let into = self.dir.to_str().unwrap().to_string();
            let consumer = format!("recover-{}", self.name);
            let args = ["recover", "--into", &into, "--from-stream", "--nats-url", urls, "--consumer", &consumer];
            let out = premia_status(&self.dir.with_extension("work"), &args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("panicked"), "premia recover panicked:\n{stderr}");
            if out.status.success() {
                break;
            }
            assert!(Instant::now() < deadline, "premia recover never finished:\n{stderr}");
            std::thread::sleep(Duration::from_millis(500));
        }
        self.start();
    }

    /// SIGTERM (serve ends after the batch in hand), then `serve --drain` until it exits 0.
    pub fn stop_and_drain(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let drain = ["serve", "--drain", "--http", "off", "--nats-url", &self.urls, "--consumer", &self.consumer()];
            let out = premia_status(&self.dir, &drain);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("panicked"), "premia serve --drain panicked:\n{stderr}");
            if out.status.success() {
                return;
            }
            assert!(Instant::now() < deadline, "replica {} never drained:\n{stderr}", self.name);
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Publishes `chunk` until every line is confirmed (exit 0), sending the whole chunk again after
/// a failure: the same message ids make JetStream keep one copy of what it had already taken.
/// Returns how many attempts it took.
pub fn publish_until_taken(urls: &str, chunk: &Path, patience: Duration) -> u64 {
    let deadline = Instant::now() + patience;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let file = chunk.to_str().unwrap();
        let out = Command::new(PREMIA)
            .args(["publish", file, "--nats-url", urls, "--stream-replicas", "3", "--format", "json"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "premia publish panicked:\n{stderr}");
        if out.status.success() {
            return attempts;
        }
        assert!(Instant::now() < deadline, "the cluster never took {file}:\n{stderr}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every month from the first event's to two after the last one's (closes come later).
pub fn periods_of(lines: &[String]) -> Vec<String> {
    let months: Vec<(i32, u32)> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|e| e["time"].as_str().map(String::from))
        .filter_map(|t| Some((t.get(0..4)?.parse().ok()?, t.get(5..7)?.parse().ok()?)))
        .collect();
    let (first, last) = (*months.iter().min().unwrap(), *months.iter().max().unwrap());
    let mut periods = Vec::new();
    let (mut year, mut month) = first;
    let end = if last.1 >= 11 { (last.0 + 1, last.1 - 10) } else { (last.0, last.1 + 2) };
    while (year, month) <= end {
        periods.push(format!("{year:04}-{month:02}"));
        (year, month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    }
    periods
}

/// Each period's statement as JSON, without its seal (a file ingest's chain has other arrival
/// times, so its seals differ by design).
pub fn statements(dir: &Path, periods: &[String]) -> Vec<Value> {
    periods
        .iter()
        .map(|p| {
            let out = premia(dir, &["statement", "--period", p, "--format", "json"]);
            let mut statement: Value = serde_json::from_slice(&out.stdout).unwrap();
            statement.as_object_mut().unwrap().remove("seal");
            statement
        })
        .collect()
}

/// An accrual as the feed and a statement both name it: manager, period, record seq, kind, amount.
pub type Accrual = (String, String, u64, String, String);

/// The entries of statements (as [`statements`] returns them).
pub fn booked_accruals(statements: &[Value]) -> BTreeMap<Accrual, usize> {
    let mut accruals = BTreeMap::new();
    for statement in statements {
        for manager in statement["managers"].as_array().unwrap() {
            for entry in manager["entries"].as_array().unwrap() {
                *accruals.entry(accrual(&manager["manager_id"], &statement["period"], entry)).or_insert(0) += 1;
            }
        }
    }
    accruals
}

fn accrual(manager_id: &Value, period: &Value, entry: &Value) -> Accrual {
    (
        manager_id.as_str().unwrap().to_string(),
        period.as_str().unwrap().to_string(),
        entry["event"]["seq"].as_u64().unwrap(),
        entry["kind"].as_str().unwrap().to_string(),
        entry["amount"].as_str().unwrap().to_string(),
    )
}

/// The feed stream's message count and the accruals it carries, each with how often.
pub fn fed_accruals(urls: &str) -> (usize, BTreeMap<Accrual, usize>) {
    let messages = stream_messages(urls, "PREMIA_FEED");
    let mut accruals: BTreeMap<Accrual, usize> = BTreeMap::new();
    for payload in &messages {
        let message: Value = serde_json::from_slice(payload).unwrap();
        for update in message["updates"].as_array().unwrap() {
            for entry in update["entries"].as_array().unwrap() {
                *accruals.entry(accrual(&message["manager_id"], &update["period"], entry)).or_insert(0) += 1;
            }
        }
    }
    (messages.len(), accruals)
}

/// Every message of the events stream, in stream order: what the replicas folded.
pub fn stream_payloads(urls: &str) -> Vec<Vec<u8>> {
    stream_messages(urls, "PREMIA_EVENTS")
}

/// Every message stored in `stream` when it is read, in stream order, from any of `urls`.
fn stream_messages(urls: &str, stream: &str) -> Vec<Vec<u8>> {
    use futures::StreamExt;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let servers: Vec<async_nats::ServerAddr> = urls.split(',').map(|u| u.parse().unwrap()).collect();
        let client = async_nats::connect(servers).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream(stream).await.unwrap();
        let stored = stream.info().await.unwrap().state.messages as usize;
        let consumer = stream.create_consumer(async_nats::jetstream::consumer::pull::Config::default()).await.unwrap();
        let mut messages = consumer.messages().await.unwrap();
        let mut payloads = Vec::with_capacity(stored);
        while payloads.len() < stored {
            let message = messages.next().await.expect("the stream's messages").unwrap();
            message.ack().await.unwrap();
            payloads.push(message.payload.to_vec());
        }
        payloads
    })
}

/// How the stream holds the published lines: lines never stored, lines stored more often than
/// the file has them, and lines stored after a line that follows them in the file.
#[derive(Debug, Default, serde::Serialize)]
pub struct StreamTally {
    pub messages: usize,
    pub lines_missing: usize,
    pub lines_doubled: usize,
    pub lines_out_of_file_order: usize,
}

pub fn tally(lines: &[String], payloads: &[Vec<u8>]) -> StreamTally {
    let mut in_file: BTreeMap<&[u8], (usize, usize)> = BTreeMap::new(); // first position, count
    for (i, line) in lines.iter().enumerate() {
        in_file.entry(line.as_bytes()).or_insert((i, 0)).1 += 1;
    }
    let mut in_stream: BTreeMap<&[u8], usize> = BTreeMap::new();
    let (mut out_of_order, mut furthest) = (0, 0);
    for payload in payloads {
        *in_stream.entry(payload.as_slice()).or_insert(0) += 1;
        if let Some((position, _)) = in_file.get(payload.as_slice()) {
            if *position < furthest {
                out_of_order += 1;
            }
            furthest = furthest.max(*position);
        }
    }
    StreamTally {
        messages: payloads.len(),
        lines_missing: in_file.keys().filter(|l| !in_stream.contains_key(*l)).count(),
        lines_doubled: in_stream.iter().filter(|(l, n)| **n > in_file.get(*l).map_or(0, |(_, c)| *c)).count(),
        lines_out_of_file_order: out_of_order,
    }
}

/// How the logs of two ledgers differ, record by record (from their exports): records that differ
/// in anything but their arrival time (and so their hash), and records that differ in their
/// arrival time only. Counted also when one log is longer.
pub fn logs_apart(a: &Path, b: &Path) -> (usize, usize) {
    let export = |dir: &Path| -> Vec<Value> {
        let out = premia(dir, &["export", "--from-seq", "1"]);
        out.stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    };
    let (a, b) = (export(a), export(b));
    let (mut other, mut arrival_only) = (a.len().abs_diff(b.len()), 0);
    for (x, y) in a.iter().zip(&b) {
        if x == y {
            continue;
        }
        let strip = |v: &Value| {
            let mut v = v.clone();
            let record = v.as_object_mut().unwrap();
            record.remove("arrived_ms");
            record.remove("hash");
            v
        };
        if strip(x) == strip(y) {
            arrival_only += 1;
        } else {
            other += 1;
        }
    }
    (other, arrival_only)
}
