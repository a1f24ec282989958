//! `Ledger::entries_of_seq` finds exactly the entries each log record booked, with the log cut
//! into many small chunks that span both periods of the seed month.

use premia_ledger::ingest::{ingest_reader, IngestOptions};
use premia_ledger::{Ledger, LedgerOptions};

const SEED: &str = include_str!("../../../tests/data/seed-month.jsonl");

#[test]
fn every_entry_is_found_under_its_seq_and_only_there() {
    let dir = tempfile::tempdir().expect("a temporary dir");
    let mut ledger = Ledger::open(dir.path(), &LedgerOptions::default(), "test").expect("open the ledger");
    let options = IngestOptions { batch_lines: 4, ..IngestOptions::default() };
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
            assert_eq!(sorted, expected, "seq {seq}");
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
