//! `Ledger::entries_of_seq` finds exactly the entries each log record booked, with the log cut
//! into many small chunks that span both periods of the seed month, including the entry of M-3's
//! payment, which waited for its deal and is stored with the deal's batch when they fall in two.

use premia_ledger::ingest::{ingest_reader, IngestOptions};
use premia_ledger::{Ledger, LedgerOptions, Origin};

const SEED: &str = include_str!("../../../tests/data/seed-month.jsonl");

#[test]
fn every_entry_is_found_under_its_seq_and_only_there() {
    // 3 puts P-301 (line 15) and D-301 (line 16) in two batches; 4 in one.
    for batch_lines in [1, 3, 4, 64] {
        every_entry_is_found_with_batches_of(batch_lines);
    }
}

fn every_entry_is_found_with_batches_of(batch_lines: usize) {
    let dir = tempfile::tempdir().expect("a temporary dir");
    let mut ledger = Ledger::open(dir.path(), &LedgerOptions::default(), "test").expect("open the ledger");
    let options = IngestOptions { batch_lines, ..IngestOptions::default() };
    ingest_reader(&mut ledger, SEED.as_bytes(), &options, |_| {}).expect("ingest the seed month");
    let check = |ledger: &Ledger| {
        let periods = ledger.state().periods();
        assert!(periods.len() >= 2, "{periods:?}");
        let all: Vec<_> = periods.iter().flat_map(|&p| ledger.entries_of(p).expect("entries of a period")).collect();
        assert!(!all.is_empty());
        let last = ledger.state().next_seq() - 1;
        let mut found = 0;
        for seq in 0..=last + 1 {
            let by_seq = ledger.entries_of_seq(seq).expect("entries of a seq");
            let expected: Vec<_> = all.iter().filter(|e| e.seq == seq).cloned().collect();
            // The same entries, in period order as `all` lists them.
            let mut sorted = by_seq.clone();
            sorted.sort_by_key(|e| e.period);
            assert_eq!(sorted, expected, "seq {seq}, batches of {batch_lines} lines");
            found += by_seq.len();
        }
        assert_eq!(found, all.len());
    };
    check(&ledger);
    // The same after a snapshot and a reopen, which rebuild the entry index.
    ledger.snapshot().expect("snapshot");
    drop(ledger);
    let mut reopened = None;
    for _ in 0..400 {
        match Ledger::open(dir.path(), &LedgerOptions::default(), "test") {
            Ok(l) => {
                reopened = Some(l);
                break;
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
        }
    }
    check(&reopened.expect("reopen the ledger"));
}

/// A record folded but not yet handed to the writer (what the serving loop gathers while a
/// flush is in progress) is read back from the batch in hand, with its entries, before any
/// commit; and the same record once committed.
#[test]
fn a_record_in_the_batch_in_hand_is_read_before_it_is_committed() {
    let dir = tempfile::tempdir().expect("a temporary dir");
    let mut ledger = Ledger::open(dir.path(), &LedgerOptions::default(), "test").expect("open the ledger");
    let lines: Vec<&str> = SEED.lines().collect();
    // Two committed batches, then the deal and payment of D-101 left in the batch in hand.
    for (i, line) in lines.iter().take(5).enumerate() {
        ledger.offer(line.as_bytes(), Origin::File, premia_core::Admission::Operator, 1_000 + i as i64);
        if i == 2 {
            ledger.commit().expect("commit");
        }
    }
    ledger.commit().expect("commit");
    let committed = ledger.state().next_seq();
    for (i, line) in lines.iter().skip(5).take(2).enumerate() {
        ledger.offer(line.as_bytes(), Origin::File, premia_core::Admission::Operator, 2_000 + i as i64);
    }
    assert_eq!(ledger.pending_writes(), 2, "the deal and the payment wait for a commit");
    let (deal, payment) = (committed, committed + 1);
    let read = |ledger: &Ledger, seq: u64| ledger.record(seq).expect("read").expect("the record is there");
    let check = |ledger: &Ledger| {
        assert_eq!(read(ledger, deal).raw, lines[5].as_bytes());
        assert_eq!(
            (read(ledger, payment).raw.as_slice(), read(ledger, payment).arrived_ms),
            (lines[6].as_bytes(), 2_001)
        );
        assert_eq!(read(ledger, committed - 1).raw, lines[4].as_bytes(), "a committed one still reads");
        assert!(ledger.record(payment + 1).expect("read").is_none(), "nothing past the last record");
        let entries = ledger.entries_of_seq(payment).expect("entries");
        assert_eq!(entries.len(), 1, "P-101 books its commission");
    };
    check(&ledger);
    ledger.commit().expect("commit");
    assert_eq!(ledger.pending_writes(), 0);
    check(&ledger);
}
