//! A snapshot written by an older version of premia (another layout of the state, named by the
//! format in its header) is not read: the first open after the upgrade folds the whole log and
//! writes a snapshot of this version in its place, and the open after that starts from it.

use std::path::Path;

use premia_core::Admission;
use premia_ledger::ingest::{ingest_reader, IngestOptions};
use premia_ledger::snapshot::SNAPSHOT_FORMAT;
use premia_ledger::{Ledger, LedgerOptions};

const SEED: &str = include_str!("../../../tests/data/seed-month.jsonl");
/// Where the format is in a checked file's header (after the magic and the kind), and the
/// header checksum that covers it.
const FORMAT_AT: usize = 12;
const HEADER_SUM_AT: usize = 28;

fn open(dir: &Path) -> Ledger {
    Ledger::open(dir, &LedgerOptions::default(), "test").expect("open the ledger")
}

fn format_of(snapshot: &Path) -> u32 {
    let bytes = std::fs::read(snapshot).expect("read the snapshot");
    u32::from_be_bytes(bytes[FORMAT_AT..FORMAT_AT + 4].try_into().expect("4 bytes"))
}

/// Rewrites the snapshot's header to say it is of the format before this one, as the previous
/// version wrote it.
fn make_old(snapshot: &Path) {
    let mut bytes = std::fs::read(snapshot).expect("read the snapshot");
    bytes[FORMAT_AT..FORMAT_AT + 4].copy_from_slice(&(SNAPSHOT_FORMAT - 1).to_be_bytes());
    let sum = crc32fast::hash(&bytes[..HEADER_SUM_AT]);
    bytes[HEADER_SUM_AT..HEADER_SUM_AT + 4].copy_from_slice(&sum.to_be_bytes());
    std::fs::write(snapshot, bytes).expect("write the snapshot back");
}

#[test]
fn an_old_snapshot_is_refolded_once_then_replaced() {
    let dir = tempfile::tempdir().expect("a temporary dir");
    let snapshot = dir.path().join("snapshot.bin");
    let state = {
        let mut ledger = open(dir.path());
        let options = IngestOptions { admission: Admission::Operator, ..IngestOptions::default() };
        ingest_reader(&mut ledger, SEED.as_bytes(), &options, |_| {}).expect("ingest the seed month");
        ledger.snapshot().expect("snapshot");
        ledger.state().clone()
    };
    let records = state.next_seq() - 1;
    assert!(records > 20, "the seed month is a log worth a snapshot ({records} records)");
    assert_eq!(format_of(&snapshot), SNAPSHOT_FORMAT);
    make_old(&snapshot);
    assert_eq!(format_of(&snapshot), SNAPSHOT_FORMAT - 1);

    let first = open(dir.path());
    assert!(first.state() == &state, "the fold of the log is the state the old snapshot held");
    assert_eq!(first.events_since_snapshot(), 0, "the new snapshot covers the whole log folded");
    drop(first);
    assert_eq!(format_of(&snapshot), SNAPSHOT_FORMAT, "the first open after the upgrade wrote this version's snapshot");

    let second = open(dir.path());
    assert!(second.state() == &state, "the state read from the new snapshot is the same");
    assert_eq!(second.events_since_snapshot(), 0);
}
