//! Every state the fold can reach round-trips through the snapshot and is used on the next open
//! (not folded again from the log): parked payments, refunds and late notices, cancellations,
//! closes, scheme changes, duplicates and conflicts, in batches of every size. (A snapshot
//! holding a parked payment could not be read back before: the ledger refolded the whole log
//! on every open.)

use premia_core::Admission;
use premia_ledger::ingest::{ingest_reader, IngestOptions};
use premia_ledger::{Ledger, LedgerOptions};
use proptest::prelude::*;

#[path = "../../premia-core/tests/common/mod.rs"]
mod common;
use common::{any_op, line};

/// The lines of `ops`, with every `dup_every`-th line sent again (a duplicate) and once more
/// with other content under the same id (a conflict).
fn lines(ops: &[common::Op], dup_every: usize) -> String {
    let mut text = String::new();
    for (i, op) in ops.iter().enumerate() {
        let one = line(i, op);
        text.push_str(&one);
        text.push('\n');
        if i % dup_every == 0 {
            text.push_str(&one);
            text.push('\n');
            text.push_str(&one.replace("\"type\"", "\"subject\":\"changed\",\"type\"").replace("C\"", "C2\""));
            text.push('\n');
        }
    }
    text
}

fn open(dir: &std::path::Path) -> Ledger {
    Ledger::open(dir, &LedgerOptions::default(), "test").expect("open the ledger")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_reachable_state_is_used_from_its_snapshot(
        ops in prop::collection::vec(any_op(), 1..90),
        dup_every in 2usize..7,
        batch_lines in 1usize..40,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let text = lines(&ops, dup_every);
        let state = {
            let mut ledger = open(dir.path());
            let options = IngestOptions { batch_lines, admission: Admission::Operator, ..IngestOptions::default() };
            ingest_reader(&mut ledger, text.as_bytes(), &options, |_| {}).expect("ingest");
            ledger.snapshot().expect("snapshot");
            ledger.state().clone()
        };
        let reopened = open(dir.path());
        prop_assert_eq!(reopened.events_since_snapshot(), 0, "the snapshot was used: nothing folded after it");
        prop_assert_eq!(reopened.state().next_seq(), state.next_seq());
        prop_assert!(reopened.state() == &state, "the state read back equals the one written");
    }
}

/// The regression the property covers, made plain: a stream that ends with a payment whose deal
/// never came.
#[test]
fn a_snapshot_with_a_parked_payment_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let orphan = r#"{"specversion":"1.0","id":"o1","source":"s","type":"payment.received","data":{"payment_id":"P-9","deal_id":"D-NEVER","amount":"10.00","currency":"RUB","paid_on":"2026-01-20"}}"#;
    let mut ledger = open(dir.path());
    ingest_reader(&mut ledger, orphan.as_bytes(), &IngestOptions::default(), |_| {}).expect("ingest");
    ledger.snapshot().expect("snapshot");
    assert_eq!(ledger.state().parked().len(), 1);
    drop(ledger);
    let reopened = open(dir.path());
    assert_eq!(reopened.events_since_snapshot(), 0, "the snapshot was used");
    assert_eq!(reopened.state().parked().len(), 1);
}
