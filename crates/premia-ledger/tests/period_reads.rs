//! Every state the fold can reach gives, from the period projection, the statements (whole and
//! per manager) and figures the fold state gives, for every period from before the first date
//! to after the last; and damage to any byte of the projection is never read as a statement.

use premia_core::{Admission, Period};
use premia_ledger::ingest::{ingest_reader, IngestOptions};
use premia_ledger::period_read::read_period;
use premia_ledger::{Ledger, LedgerOptions};
use proptest::prelude::*;

#[path = "../../premia-core/tests/common/mod.rs"]
mod common;
use common::{any_op, line};

fn open(dir: &std::path::Path) -> Ledger {
    Ledger::open(dir, &LedgerOptions::default(), "test").expect("open the ledger")
}

/// The ops' dates fall in January to May 2026; plans and closes name those months too.
fn periods() -> Vec<Period> {
    let mut periods = vec![Period::parse("2025-11").unwrap()];
    for _ in 0..10 {
        let next = periods.last().unwrap().next();
        periods.push(next);
    }
    periods
}

fn ingested(dir: &std::path::Path, ops: &[common::Op], batch_lines: usize) -> Ledger {
    let text: String = ops.iter().enumerate().map(|(i, op)| line(i, op) + "\n").collect();
    let mut ledger = open(dir);
    let options = IngestOptions { batch_lines, admission: Admission::Operator, ..IngestOptions::default() };
    ingest_reader(&mut ledger, text.as_bytes(), &options, |_| {}).expect("ingest");
    ledger
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn every_period_reads_from_the_projection_as_from_the_state(
        ops in prop::collection::vec(any_op(), 1..90),
        batch_lines in 1usize..40,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = ingested(dir.path(), &ops, batch_lines);
        ledger.snapshot_and_project().expect("snapshot and projection");
        let managers: Vec<String> =
            ledger.state().books().values().flat_map(|m| m.keys().map(|k| k.to_string())).collect();
        let mut expected = Vec::new();
        for period in periods() {
            let mut statements = vec![ledger.statement(period, None).unwrap()];
            for manager in &managers {
                statements.push(ledger.statement(period, Some(manager)).unwrap());
            }
            expected.push((period, statements, ledger.state().figures(period)));
        }
        drop(ledger);
        for (period, statements, figures) in expected {
            let read = read_period(dir.path(), &LedgerOptions::default(), "test", period)
                .unwrap()
                .expect("the projection covers the ledger");
            prop_assert_eq!(&read.statement(None), &statements[0], "{}", period);
            for (manager, statement) in managers.iter().zip(&statements[1..]) {
                prop_assert_eq!(&read.statement(Some(manager)), statement, "{} {}", period, manager);
            }
            prop_assert_eq!(read.figures(), Some(figures), "{}", period);
        }
    }
}

/// What the projection gives for every period, or `None` once a read of it is refused.
fn all_reads(dir: &std::path::Path) -> Option<Vec<String>> {
    let mut reads = Vec::new();
    for period in periods() {
        let read = read_period(dir, &LedgerOptions::default(), "test", period).unwrap()?;
        reads.push(format!("{:?} {:?}", read.statement(None), read.figures()));
    }
    Some(reads)
}

#[test]
fn a_damaged_projection_is_refused_never_read() {
    use common::Op;
    let ops = [
        Op::Deal { deal: 1, manager: 1, amount: 3, margin: 337, month: 1, day: 10, prepay: false },
        Op::Pay { payment: 1, deal: 1, amount: 2, month: 2, day: 3 },
        Op::Close { month: 1 },
        Op::Pay { payment: 2, deal: 1, amount: 1, month: 1, day: 28 },
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = ingested(dir.path(), &ops, 2);
    ledger.snapshot_and_project().unwrap();
    drop(ledger);
    let good = all_reads(dir.path()).expect("the projection is read");
    let path = dir.path().join("periods.bin");
    let bytes = std::fs::read(&path).unwrap();
    let mut refused = 0;
    for at in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 0x5a;
        std::fs::write(&path, &bad).unwrap();
        match all_reads(dir.path()) {
            None => refused += 1,
            Some(reads) => assert_eq!(reads, good, "a flip at byte {at} was read"),
        }
    }
    for len in [0, 10, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..len]).unwrap();
        assert_eq!(all_reads(dir.path()), None, "cut to {len} bytes");
    }
    assert_eq!(refused, bytes.len(), "every flip is refused: every byte is checksummed");
}
