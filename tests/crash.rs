//! A crash test through the real binary and a real sled directory: an ingest killed with SIGKILL
//! at arbitrary moments, restarted each time and finally run to completion, must leave exactly
//! the ledger of one clean run: the same statements, the same parked events, and a log whose
//! rebuild is identical to the stored state.

use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;
use support::{premia, PREMIA};
/// Lines generated. At least 100 000; sized so that the test takes well under a minute in a
/// dev build.
const EVENTS: u64 = 100_000;
const SEED: &str = "42";
const KILLS: usize = 5;
const KILL_SEED: u64 = 0x5eed_c0de;

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// The four counts from the last line of an ingest's output.
fn counts_of(stdout: &[u8]) -> [u64; 4] {
    let text = String::from_utf8_lossy(stdout);
    let last = text.lines().last().expect("ingest printed its counts");
    let v: Value = serde_json::from_str(last).expect("the last line is one JSON object");
    ["applied", "duplicates", "rejected", "parked"].map(|k| v[k].as_u64().unwrap_or_else(|| panic!("no {k} in {last}")))
}

/// Every month from the earliest to the latest `"YYYY-MM` found in the input, the month after it
/// too (late facts are booked in the next open period).
fn periods_in(bytes: &[u8]) -> Vec<String> {
    let mut months: Vec<(u32, u32)> = Vec::new();
    for w in bytes.windows(8) {
        let d = |i: usize| w[i].is_ascii_digit();
        if w[0] == b'"' && w[1] == b'2' && d(2) && d(3) && d(4) && w[5] == b'-' && d(6) && d(7) {
            let year: u32 = std::str::from_utf8(&w[1..5]).unwrap().parse().unwrap();
            let month: u32 = std::str::from_utf8(&w[6..8]).unwrap().parse().unwrap();
            if (1..=12).contains(&month) {
                months.push((year, month));
            }
        }
    }
    let (mut at, last) = (*months.iter().min().expect("dates in the input"), *months.iter().max().unwrap());
    let last = if last.1 == 12 { (last.0 + 1, 1) } else { (last.0, last.1 + 1) };
    let mut periods = Vec::new();
    while at <= last {
        periods.push(format!("{:04}-{:02}", at.0, at.1));
        at = if at.1 == 12 { (at.0 + 1, 1) } else { (at.0, at.1 + 1) };
    }
    periods
}

/// What the ledger in `dir` reports: every period's JSON statement, then the parked events.
fn outcome(dir: &Path, periods: &[String]) -> (Vec<Value>, Value) {
    // A closed period's seal chains to the log's arrival times, which differ between the clean
    // and the crashed ingest: the figures are compared (tests/audit.rs checks seals).
    let statements = periods
        .iter()
        .map(|p| {
            let mut statement = json_of(&premia(dir, &["statement", "--period", p, "--format", "json"]));
            if let Some(object) = statement.as_object_mut() {
                object.remove("seal");
            }
            statement
        })
        .collect();
    (statements, json_of(&premia(dir, &["pending", "--format", "json"])))
}

/// A deterministic pseudo-random sequence (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn spawn_ingest(dir: &Path, file: &Path, stderr: &Path) -> std::process::Child {
    Command::new(PREMIA)
        .arg("--data-dir")
        .arg(dir)
        .args(["ingest", file.to_str().unwrap(), "--batch-lines", "2000", "--format", "json"])
        .stdout(Stdio::null())
        .stderr(File::create(stderr).unwrap())
        .spawn()
        .expect("spawn premia ingest")
}

#[test]
fn an_ingest_killed_again_and_again_ends_with_the_ledger_of_one_clean_run() {
    let started = Instant::now();
    let scratch = tempfile::tempdir().unwrap();
    let file: PathBuf = scratch.path().join("events.jsonl");
    let generated = Command::new(PREMIA)
        .args(["generate", "--events", &EVENTS.to_string(), "--seed", SEED])
        .stdout(File::create(&file).unwrap())
        .status()
        .expect("run premia generate");
    assert!(generated.success());
    let bytes = std::fs::read(&file).unwrap();
    let non_blank = bytes.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count() as u64;
    assert_eq!(non_blank, EVENTS);
    let periods = periods_in(&bytes);
    drop(bytes);

    // The clean run.
    let dir_a = scratch.path().join("a");
    let clean_started = Instant::now();
    let clean = counts_of(&premia(&dir_a, &["ingest", file.to_str().unwrap(), "--format", "json"]).stdout);
    let clean_time = clean_started.elapsed();
    assert_eq!(clean.iter().sum::<u64>(), non_blank, "clean run: every non-blank line counted once: {clean:?}");
    eprintln!("generated {EVENTS} lines; clean ingest {clean:?} in {clean_time:?}; periods {periods:?}");

    std::thread::scope(|scope| {
        // Read A's outcome while B is crashed and recovered.
        let a = scope.spawn(|| outcome(&dir_a, &periods));

        // The crash runs. Delays between 50 ms and 2 s, scaled down when a whole clean ingest
        // takes less than that, so that the kills land while an ingest is running.
        let dir_b = scratch.path().join("b");
        let max_delay = Duration::from_millis(2000).min(clean_time.mul_f64(0.9)).max(Duration::from_millis(60));
        let mut rng = Rng(KILL_SEED);
        let mut interrupted = 0;
        for kill in 0..KILLS {
            let span = (max_delay.as_millis() as u64).saturating_sub(50).max(1);
            let delay = Duration::from_millis(50 + rng.next() % span);
            let stderr_path = scratch.path().join(format!("kill-{kill}.stderr"));
            let mut child = spawn_ingest(&dir_b, &file, &stderr_path);
            std::thread::sleep(delay);
            child.kill().expect("SIGKILL the ingest");
            let status = child.wait().expect("reap the ingest");
            let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            assert!(!stderr.contains("panicked"), "ingest {kill} panicked:\n{stderr}");
            match status.signal() {
                Some(9) => {
                    interrupted += 1;
                    eprintln!("kill {kill}: SIGKILL after {delay:?} interrupted the ingest");
                }
                _ => {
                    // It finished before the signal: then it must have succeeded.
                    assert!(status.success(), "ingest {kill} failed before it was killed ({status}):\n{stderr}");
                    eprintln!("kill {kill}: the ingest had finished before {delay:?}");
                }
            }
        }
        eprintln!(
            "{interrupted} of {KILLS} kills interrupted a running ingest ({:?} into the test)",
            started.elapsed()
        );
        assert!(interrupted >= 1, "no kill interrupted a running ingest: the test proves nothing");

        // Run it to completion once more.
        let last = counts_of(
            &premia(&dir_b, &["ingest", file.to_str().unwrap(), "--batch-lines", "2000", "--format", "json"]).stdout,
        );
        eprintln!("final ingest after the kills: {last:?} ({:?} into the test)", started.elapsed());
        assert_eq!(
            last.iter().sum::<u64>(),
            non_blank,
            "final run: applied+duplicates+rejected+parked must be every non-blank line: {last:?}"
        );

        let b = outcome(&dir_b, &periods);
        let a = a.join().expect("reading A's outcome");
        eprintln!("statements and pending list read ({:?} into the test)", started.elapsed());
        assert!(
            a.0.iter().any(|s| s["managers"].as_array().is_some_and(|m| !m.is_empty())),
            "the clean run booked something"
        );
        for ((period, sa), sb) in periods.iter().zip(&a.0).zip(&b.0) {
            assert!(sa == sb, "statement {period} after the crashes differs from the clean run's");
        }
        assert_eq!(a.1, b.1, "the parked events after the crashes differ from the clean run's");

        let rebuilt = Command::new(PREMIA)
            .arg("--data-dir")
            .arg(&dir_b)
            .args(["rebuild", "--format", "json"])
            .output()
            .expect("run premia rebuild");
        let report: Value = serde_json::from_slice(&rebuilt.stdout).unwrap_or(Value::Null);
        assert_eq!(
            report["identical"],
            true,
            "rebuild of the crashed ledger: {report} (exit {}): {}",
            rebuilt.status,
            String::from_utf8_lossy(&rebuilt.stderr)
        );
        assert!(rebuilt.status.success());
    });
    eprintln!("crash test took {:?}", started.elapsed());
}
