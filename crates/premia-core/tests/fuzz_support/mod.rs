//! The driver every fuzz target shares (premia-ledger's and premia-http's fuzz tests include
//! this file by path). A target is a proptest strategy and a property; the driver runs it
//!
//! - for `PREMIA_FUZZ_CASES` cases (default: the target's own small count, so `cargo test`
//!   stays quick), or
//! - when `PREMIA_FUZZ_SECONDS` is set, in batches with fresh seeds until that many seconds of
//!   wall clock have passed (crates/premia-bench/scripts/fuzz.sh sets it).
//!
//! A panic inside the property is caught by proptest and counts as a failure; the failing
//! input is shrunk, its seed is appended to the target's `.proptest-regressions` file beside
//! the test source, and the test fails naming the input. At the end the driver prints one line,
//! `fuzz TARGET: N cases in S s, 0 failures`, which the script reads.

#![allow(dead_code)] // Each test binary uses part of it.

pub mod mutate;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proptest::strategy::Strategy;
use proptest::test_runner::{
    Config, FileFailurePersistence, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};

/// Inputs the code under test accepted (a target calls `accepted()`), to show that the
/// mutations reach past the first checks.
static ACCEPTED: AtomicU64 = AtomicU64::new(0);

pub fn accepted() {
    ACCEPTED.fetch_add(1, Ordering::Relaxed);
}

/// Cases per batch when running for a wall-clock budget.
const BATCH: u32 = 512;

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    match text.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={text:?} is not a whole number; set it to a count such as 1000"),
    }
}

fn config(cases: u32, source_file: &'static str) -> Config {
    Config {
        cases,
        source_file: Some(source_file),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        // Shrinking a failure found late in a long run must not take the rest of the budget.
        max_shrink_time: 60_000,
        ..Config::default()
    }
}

/// A seed no earlier batch of this process used: the clock's nanoseconds, the process id and
/// the batch number.
fn fresh_seed(batch: u64) -> [u8; 32] {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(&nanos.to_le_bytes());
    seed[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    seed[20..28].copy_from_slice(&batch.to_le_bytes());
    seed
}

/// Fails the test naming the input; `when` says which cases ran ("in a run of 300 cases",
/// "after 20480 cases").
fn fail<T: std::fmt::Debug>(target: &str, when: String, error: TestError<T>) -> ! {
    match error {
        TestError::Fail(reason, input) => {
            panic!("fuzz {target}: 1 failure {when}: {reason}\nminimal input: {input:#?}")
        }
        TestError::Abort(reason) => panic!("fuzz {target}: aborted {when}: {reason}"),
    }
}

/// Runs `property` on values of `strategy`, for a case count or a wall-clock budget (above).
/// `source_file` is the caller's `file!()`, which places the regression file.
pub fn run<S: Strategy>(
    target: &str,
    source_file: &'static str,
    default_cases: u32,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let started = Instant::now();
    let mut cases = 0u64;
    match env_number("PREMIA_FUZZ_SECONDS") {
        Some(seconds) => {
            let budget = Duration::from_secs(seconds);
            let mut batch = 0u64;
            while started.elapsed() < budget {
                let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &fresh_seed(batch));
                let mut runner = TestRunner::new_with_rng(config(BATCH, source_file), rng);
                if let Err(error) = runner.run(&strategy, &property) {
                    fail(target, format!("after {cases} cases"), error);
                }
                cases += u64::from(BATCH);
                batch += 1;
            }
        }
        None => {
            let count = env_number("PREMIA_FUZZ_CASES").map_or(default_cases, |n| n.min(u64::from(u32::MAX)) as u32);
            let mut runner = TestRunner::new(config(count, source_file));
            if let Err(error) = runner.run(&strategy, &property) {
                fail(target, format!("in a run of {count} cases"), error);
            }
            cases = u64::from(count);
        }
    }
    let accepted = ACCEPTED.load(Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    println!("fuzz {target}: {cases} cases ({accepted} accepted) in {seconds:.1} s, 0 failures");
}
