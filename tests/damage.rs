//! Damage to a stored ledger is found and refused, never served or verified as sound, and never
//! a panic or an abort (docs/OPERATIONS.md).
//!
//! Three data dirs are made with the real binary: (a) right after `premia ingest` of a stream
//! that ends with facts still parked and lines rejected, never opened since; (b) after `premia
//! serve` was SIGKILLed mid-stream; (c) after a clean `serve --drain` and a replay (so the
//! replay index exists). For every file of each, copies are damaged one way at a time: one byte
//! flipped at several positions, the file cut to half its length, the file deleted. On each
//! damaged copy `verify`, `statement` (a closed and an open period), `pending`, `export`,
//! `replay` and `serve --drain` are run in turn, as an operator would, and each must either refuse (a
//! non-zero exit and a sentence on stderr) or give byte for byte what the same command gives on
//! the undamaged copy. None may panic or die of a signal, and `verify` must leave every file of
//! the copy as it found it.
//!
//! The suite runs a sample (`PREMIA_DAMAGE_POSITIONS`, 2 flips per file by default);
//! `scripts/damage-sweep.sh` runs the whole sweep (24 positions) and prints its figures.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

mod support;
use support::nats_server::NatsServer;
use support::{premia, PREMIA};

/// Facts that never find what they wait for: the stream ends with them parked.
const ORPHANS: &str = r#"{"specversion":"1.0","id":"orphan-1","source":"crm/damage","type":"payment.received","data":{"payment_id":"P-ORPHAN-1","deal_id":"D-NEVER-1","amount":"1000.00","currency":"RUB","paid_on":"2026-01-20"}}
{"specversion":"1.0","id":"orphan-2","source":"crm/damage","type":"payment.refunded","data":{"refund_id":"R-ORPHAN-2","payment_id":"P-NEVER-2","amount":"10.00","currency":"RUB","refunded_on":"2026-01-21"}}
{"specversion":"1.0","id":"orphan-3","source":"crm/damage","type":"payment.late","data":{"deal_id":"D-NEVER-3","as_of":"2026-01-22","days_overdue":4}}
"#;

#[derive(Debug, Clone, Copy)]
enum Damage {
    Flip(u64),
    Truncate,
    Delete,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Flip(at) => write!(f, "byte {at} flipped"),
            Damage::Truncate => write!(f, "cut to half"),
            Damage::Delete => write!(f, "deleted"),
        }
    }
}

/// What one command did.
struct Run {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    cases: u64,
    /// Every command either refused or gave the undamaged answer, and at least one refused.
    refused: u64,
    /// Every command gave exactly the undamaged answer (the damage touched nothing read).
    identical: u64,
    /// Some command exited 0 with another answer than the undamaged dir's.
    silent: u64,
    /// Some command panicked, aborted or died of a signal.
    crashed: u64,
    /// `verify` changed a byte of the data dir.
    verify_wrote: u64,
}

/// How a data dir is asked for its contents.
struct Probe<'a> {
    closed_period: String,
    open_period: String,
    nats_url: String,
    stream: &'a str,
}

impl Probe<'_> {
    fn commands(&self) -> Vec<Vec<String>> {
        let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        vec![
            s(&["verify", "--format", "json"]),
            s(&["statement", "--period", &self.closed_period, "--format", "json"]),
            s(&["statement", "--period", &self.open_period, "--format", "json"]),
            s(&["pending", "--format", "json"]),
            s(&["export", "--from-seq", "1"]),
            s(&["replay", "--period", &self.open_period, "--format", "json"]),
            s(&[
                "serve",
                "--drain",
                "--http",
                "off",
                "--no-feed",
                "--nats-url",
                &self.nats_url,
                "--stream",
                self.stream,
                "--consumer",
                "damage",
            ]),
            // What serve left (its seals and chain depend on arrival times: figures only).
            s(&["statement", "--period", &self.open_period, "--format", "json"]),
        ]
    }
}

fn run(dir: &Path, args: &[String]) -> Run {
    let out =
        Command::new(PREMIA).arg("--data-dir").arg(dir).args(args).stdin(Stdio::null()).output().expect("run premia");
    Run {
        code: out.status.code(),
        signal: out.status.signal(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every file under `dir` with its bytes, by path relative to `dir`.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.insert(path.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&path).unwrap());
            }
        }
    }
    found
}

fn copy_dir(from: &Path, to: &Path) {
    for (relative, bytes) in files(from) {
        let target = to.join(&relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, bytes).unwrap();
    }
}

/// `n` positions spread over a file of `len` bytes, the first and last byte among them.
fn positions(len: u64, n: u64) -> Vec<u64> {
    if len == 0 {
        return Vec::new();
    }
    let mut at: Vec<u64> = (0..n).map(|k| if n == 1 { len / 2 } else { k * (len - 1) / (n - 1) }).collect();
    at.dedup();
    at
}

fn apply(dir: &Path, file: &Path, damage: Damage) {
    let path = dir.join(file);
    match damage {
        Damage::Flip(at) => {
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[at as usize] ^= 0x5a;
            std::fs::write(&path, bytes).unwrap();
        }
        Damage::Truncate => {
            let len = std::fs::metadata(&path).unwrap().len();
            std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len / 2).unwrap();
        }
        Damage::Delete => std::fs::remove_file(&path).unwrap(),
    }
}

/// The position of the statement read after `serve --drain` among the probe's commands.
const SERVED: usize = 7;

/// A JSON object without one of its members.
fn without(stdout: &[u8], member: &str) -> Value {
    let mut value: Value = serde_json::from_slice(stdout).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.remove(member);
    }
    value
}

/// A statement's JSON without its seal, which chains to arrival times.
fn figures_only(stdout: &[u8]) -> Value {
    without(stdout, "seal")
}

/// Runs every command on a damaged copy and compares with the undamaged answers.
fn judge(dir: &Path, probe: &Probe, baseline: &[Run], what: &str, deleted_cache: bool, tally: &mut Tally) {
    tally.cases += 1;
    let before = files(dir);
    let mut refused = false;
    let mut differs = false;
    for (i, (args, expected)) in probe.commands().iter().zip(baseline).enumerate() {
        let got = run(dir, args);
        if i == 0 && files(dir) != before {
            tally.verify_wrote += 1;
            eprintln!("VERIFY WROTE: {what}");
        }
        let command = args[0].as_str();
        if got.signal.is_some() || got.stderr.contains("panicked") || got.stderr.contains("memory allocation") {
            tally.crashed += 1;
            eprintln!("CRASH: {what}: premia {args:?}: {:?} {:?}\n{}", got.code, got.signal, got.stderr);
            return;
        }
        if got.code != Some(0) {
            refused = true;
            // A refusal says why, in a sentence on stderr (verify prints its report on stdout).
            let said = got.stderr.lines().any(|l| l.starts_with("error:")) || !got.stdout.is_empty();
            if !said {
                tally.crashed += 1;
                eprintln!(
                    "MUTE REFUSAL: {what}: premia {args:?} exited {:?} saying nothing:\n{}",
                    got.code, got.stderr
                );
                return;
            }
            if command == "serve" {
                // What serve left cannot be compared when it refused.
                break;
            }
            continue;
        }
        let same = match command {
            _ if i == SERVED => figures_only(&got.stdout) == figures_only(&expected.stdout),
            // The snapshot is a cache: deleting it (or its entry index, or the period
            // projection) is allowed, and verify says it is absent (or unused).
            "verify" if deleted_cache => {
                let caches = |stdout: &[u8]| {
                    let mut value = without(stdout, "snapshot");
                    if let Some(object) = value.as_object_mut() {
                        object.remove("projection");
                    }
                    value
                };
                caches(&got.stdout) == caches(&expected.stdout)
            }
            _ => got.stdout == expected.stdout,
        };
        if !same || expected.code != Some(0) {
            differs = true;
            eprintln!("SILENT: {what}: premia {args:?} exited 0 with another answer than the undamaged dir's");
        }
    }
    match (differs, refused) {
        (true, _) => tally.silent += 1,
        (false, true) => tally.refused += 1,
        (false, false) => tally.identical += 1,
    }
}

fn sweep(state: &str, dir: &Path, probe: &Probe, flips: u64, scratch: &Path) -> Tally {
    let mut tally = Tally::default();
    let reference = scratch.join(format!("{state}-reference"));
    copy_dir(dir, &reference);
    let baseline: Vec<Run> = probe.commands().iter().map(|args| run(&reference, args)).collect();
    for (args, got) in probe.commands().iter().zip(&baseline) {
        assert_eq!(got.code, Some(0), "the undamaged dir {state} must answer premia {args:?}:\n{}", got.stderr);
    }
    for (file, bytes) in files(dir) {
        let len = bytes.len() as u64;
        let damages = positions(len, flips)
            .into_iter()
            .map(Damage::Flip)
            .chain([Damage::Truncate, Damage::Delete])
            .filter(|d| !matches!(d, Damage::Truncate) || len > 1);
        for damage in damages {
            let copy = scratch.join(format!("{state}-case-{}", tally.cases));
            copy_dir(dir, &copy);
            apply(&copy, &file, damage);
            let deleted_cache = matches!(damage, Damage::Delete)
                && [Path::new("snapshot.bin"), Path::new("entry-index.bin"), Path::new("periods.bin")]
                    .contains(&file.as_path());
            let what = format!("{state}: {} {damage}", file.display());
            judge(&copy, probe, &baseline, &what, deleted_cache, &mut tally);
            std::fs::remove_dir_all(&copy).unwrap();
        }
    }
    tally
}

fn generate(events: u64, seed: &str) -> Vec<u8> {
    let out = Command::new(PREMIA)
        .args(["generate", "--events", &events.to_string(), "--seed", seed, "--managers", "12"])
        .args(["--events-per-day", "60"])
        .output()
        .expect("run premia generate");
    assert!(out.status.success());
    let mut lines = out.stdout;
    lines.extend_from_slice(ORPHANS.as_bytes());
    lines
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn damage_to_any_file_is_refused_or_harmless_and_never_silent() {
    let flips = env_number("PREMIA_DAMAGE_POSITIONS", 2);
    let events = env_number("PREMIA_DAMAGE_EVENTS", 2500);
    let server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("events.jsonl");
    std::fs::write(&file, generate(events, "17")).unwrap();
    let file = file.to_str().unwrap();
    premia(work.path(), &["publish", file, "--nats-url", &server.url(), "--stream", "FULL"]);
    // The ingested dir is served from a stream with nothing in it.
    let empty_server = NatsServer::start();

    // (a) right after an ingest, never opened since.
    let ingested = work.path().join("ingested");
    let counts = support::last_json_line(&premia(&ingested, &["ingest", file, "--format", "json"]));
    assert_eq!(counts["parked"], 3, "the stream ends with its orphans parked: {counts}");
    assert!(counts["rejected"].as_u64() > Some(0), "the noise leaves rejected lines: {counts}");

    // (b) serve SIGKILLed mid-stream.
    let killed = work.path().join("killed");
    let mut child = Command::new(PREMIA)
        .arg("--data-dir")
        .arg(&killed)
        .args(["serve", "--batch", "50", "--no-http", "--no-feed", "--nats-url", &server.url()])
        .args(["--stream", "FULL", "--consumer", "damage"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // (c) a clean stop, and a replay so that the replay index is there too.
    let stopped = work.path().join("stopped");
    let url = server.url();
    premia(&stopped, &["serve", "--drain", "--http", "off", "--no-feed", "--nats-url", &url, "--stream", "FULL"]);
    premia(&stopped, &["replay", "--period", "2026-01"]);

    let scratch = work.path().join("scratch");
    let mut total = Tally::default();
    for (state, dir, nats) in
        [("ingested", &ingested, &empty_server), ("killed", &killed, &server), ("stopped", &stopped, &server)]
    {
        let probe = Probe {
            closed_period: "2025-12".into(),
            open_period: "2026-01".into(),
            nats_url: nats.url(),
            stream: "FULL",
        };
        let tally = sweep(state, dir, &probe, flips, &scratch);
        eprintln!("{state}: {tally:?}");
        for (sum, part) in [
            (&mut total.cases, tally.cases),
            (&mut total.refused, tally.refused),
            (&mut total.identical, tally.identical),
            (&mut total.silent, tally.silent),
            (&mut total.crashed, tally.crashed),
            (&mut total.verify_wrote, tally.verify_wrote),
        ] {
            *sum += part;
        }
    }
    eprintln!("damage sweep, {flips} flips per file: {total:?}");
    assert!(total.refused > 0, "no damage was refused: the sweep proves nothing");
    assert_eq!((total.silent, total.crashed, total.verify_wrote), (0, 0, 0), "{total:?}");
}
