//! verify, seals, export and import against a real sled store. Tampering is done the way an
//! intruder with the files would do it: with the ledger closed, open the sled tree directly,
//! decompress a stored value, change one byte (or one amount), compress it and write it back.

use std::path::Path;

use premia_core::fold::Entry;
use premia_core::Period;
use premia_ledger::checked_file::{decode_part, read_checked, write_checked, Checked};
use premia_ledger::export::{export, import_export, ImportError};
use premia_ledger::ingest::{ingest_reader, IngestOptions};
use premia_ledger::log::{decode_chunk, HASH_LEN, RAW_LEN_AT, RECORD_HEADER_LEN};
use premia_ledger::snapshot::{ENTRY_INDEX_KIND, SNAPSHOT_FORMAT};
use premia_ledger::verify::{verify, ProblemKind, SnapshotCheck};
use premia_ledger::{Ledger, LedgerOptions};

const SEED: &str = include_str!("../../../tests/data/seed-month.jsonl");

fn period(text: &str) -> Period {
    Period::parse(text).expect("a period")
}

fn open(dir: &Path) -> Ledger {
    Ledger::open(dir, &LedgerOptions::default(), "test").expect("open the ledger")
}

/// The seed month (November closed in it), in batches of 4 lines so that the log has many
/// chunks, with a snapshot at the end.
fn seeded(dir: &Path) {
    let mut ledger = open(dir);
    let options = IngestOptions { batch_lines: 4, ..IngestOptions::default() };
    ingest_reader(&mut ledger, SEED.as_bytes(), &options, |_| {}).expect("ingest the seed month");
    ledger.snapshot().expect("snapshot");
}

/// The sled tree of a closed ledger. sled lets go of its file lock a moment after the last
/// handle is dropped, on a thread of its own, so the first attempts may find it still held.
fn raw_store(dir: &Path) -> sled::Db {
    for _ in 0..400 {
        if let Ok(db) = sled::Config::new().path(dir.join("sled")).open() {
            return db;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("cannot open the sled store of {}", dir.display());
}

/// Changes record `seq` in its stored log chunk: `change` gets the decompressed chunk and the
/// offset where the record starts. Returns the chunk's first seq.
fn tamper_record(dir: &Path, seq: u64, change: impl FnOnce(&mut Vec<u8>, usize)) -> u64 {
    let db = raw_store(dir);
    let (chunk_key, value) = db
        .scan_prefix(b"log")
        .map(|item| item.expect("read the store"))
        .filter(|(key, _)| u64::from_be_bytes(key[3..11].try_into().expect("a log key")) <= seq)
        .last()
        .expect("the chunk holding the record");
    let chunk_seq = u64::from_be_bytes(chunk_key[3..11].try_into().expect("a log key"));
    let mut bytes = lz4_flex::decompress_size_prepended(&value).expect("a stored chunk decompresses");
    // Walk the records (seq 8 | time 8 | origin 1 | len 4 | raw | hash 32) to the one wanted.
    let mut at = 0usize;
    loop {
        let record_seq = u64::from_be_bytes(bytes[at..at + 8].try_into().expect("a seq"));
        let len =
            u32::from_be_bytes(bytes[at + RAW_LEN_AT..at + RECORD_HEADER_LEN].try_into().expect("a length")) as usize;
        if record_seq == seq {
            change(&mut bytes, at);
            break;
        }
        at += RECORD_HEADER_LEN + len + HASH_LEN;
    }
    db.insert(chunk_key, lz4_flex::compress_prepend_size(&bytes)).expect("write back");
    db.flush().expect("flush");
    chunk_seq
}

/// Flips the lowest bit of the byte of record `seq`'s raw event that comes `after` bytes past
/// the first occurrence of `marker` in it, in the stored log chunk. Returns the chunk's seq.
fn flip_raw_byte(dir: &Path, seq: u64, marker: &str, after: usize) -> u64 {
    tamper_record(dir, seq, |bytes, at| {
        let len =
            u32::from_be_bytes(bytes[at + RAW_LEN_AT..at + RECORD_HEADER_LEN].try_into().expect("a length")) as usize;
        let before = decode_chunk(0, &bytes[at..at + RECORD_HEADER_LEN + len + HASH_LEN]).expect("the record decodes");
        let raw = &bytes[at + RECORD_HEADER_LEN..at + RECORD_HEADER_LEN + len];
        let found = raw.windows(marker.len()).position(|w| w == marker.as_bytes()).expect("the marker");
        bytes[at + RECORD_HEADER_LEN + found + after] ^= 1;
        // Still a well-formed record: only the content of its event changed.
        let after =
            decode_chunk(0, &bytes[at..at + RECORD_HEADER_LEN + len + HASH_LEN]).expect("the record still decodes");
        assert_eq!((after[0].seq, after[0].raw.len()), (before[0].seq, before[0].raw.len()));
        assert_ne!(after[0].raw, before[0].raw);
    })
}

#[test]
fn an_untouched_ledger_verifies_and_its_seals_are_those_on_the_statements() {
    let dir = tempfile::tempdir().expect("a temp dir");
    seeded(dir.path());
    let report = verify(dir.path(), |_| {}).expect("verify runs");
    assert!(report.intact(), "{:?}", report.problems);
    assert_eq!(report.first_bad_seq(), None);
    let ledger = open(dir.path());
    // Every record was checked: the seed month logs 27 applied + 1 parked + 1 rejected-by-rule
    // events (the USD line is refused before the log, the repeat is a duplicate)...
    assert_eq!(report.records, ledger.state().next_seq() - 1);
    assert_eq!(report.snapshot, SnapshotCheck::Identical { next_seq: ledger.state().next_seq() });
    // ... and November (closed in the month) has a seal, December (open) has none.
    assert_eq!(report.seals.len(), 1);
    let november = ledger.statement(period("2026-11"), None).expect("statement");
    let seal = november.seal.expect("a closed period has a seal");
    assert_eq!(report.seals[0].period, "2026-11");
    assert_eq!(report.seals[0].digest, seal.digest);
    assert_eq!(seal.closed_seq, ledger.state().closed_periods()[&period("2026-11")]);
    let entries: usize = november.managers.iter().map(|m| m.entries.len()).sum();
    assert_eq!(seal.entries, entries as u64);
    // A manager's statement carries the seal of the whole period.
    let one = ledger.statement(period("2026-11"), Some("M-1")).expect("statement");
    assert_eq!(one.seal.map(|s| s.digest), Some(seal.digest.clone()));
    assert!(ledger.statement(period("2026-12"), None).expect("statement").seal.is_none());
}

#[test]
fn a_seal_does_not_change_when_later_facts_arrive() {
    let dir = tempfile::tempdir().expect("a temp dir");
    seeded(dir.path());
    let mut ledger = open(dir.path());
    let before = ledger.statement(period("2026-11"), None).expect("statement");
    // A payment dated in closed November: booked in December as an adjustment.
    let late = br#"{"specversion":"1.0","id":"late-1","source":"crm/acme","type":"deal.created","data":{"deal_id":"D-LATE","manager_id":"M-1","client_id":"C-1","amount":"1000.00","margin":"100.00","currency":"RUB","payment_terms":"postpayment","due_date":"2026-11-20","created_on":"2026-11-10"}}
{"specversion":"1.0","id":"late-2","source":"crm/acme","type":"payment.received","data":{"payment_id":"P-LATE","deal_id":"D-LATE","amount":"1000.00","currency":"RUB","paid_on":"2026-11-25"}}
"#;
    ingest_reader(&mut ledger, &late[..], &IngestOptions::default(), |_| {}).expect("ingest");
    let december = ledger.statement(period("2026-12"), Some("M-1")).expect("statement");
    assert!(
        december.managers[0].entries.iter().any(|e| e.adjustment_of.as_deref() == Some("2026-11")),
        "the late payment is an adjustment in December"
    );
    assert_eq!(ledger.statement(period("2026-11"), None).expect("statement"), before);
}

#[test]
fn a_flipped_byte_in_a_logged_event_is_found_at_its_seq() {
    let dir = tempfile::tempdir().expect("a temp dir");
    seeded(dir.path());
    // Record 12 is an event from the file (record 1 is the scheme premia logged itself).
    let raw = open(dir.path()).record(12).expect("read").expect("record 12").raw;
    assert!(String::from_utf8_lossy(&raw).contains("\"data\""));
    // One bit of one byte inside its data.
    let chunk_seq = flip_raw_byte(dir.path(), 12, "\"data\"", 20);
    assert!(chunk_seq < 12, "the record is inside its chunk, not the first of it");

    let report = verify(dir.path(), |_| {}).expect("verify runs");
    assert!(!report.intact());
    assert_eq!(report.first_bad_seq(), Some(12), "{:?}", report.problems);
    assert_eq!(report.problems[0].kind, ProblemKind::Chain);
    assert_eq!(report.records, 11, "the records before it were checked, and the walk stops at the break");
    // The ledger itself opens from its snapshot and does not notice: that is what verify is for.
    drop(open(dir.path()));
}

#[test]
fn a_changed_stored_entry_is_found_at_its_seq_and_breaks_the_seal() {
    let dir = tempfile::tempdir().expect("a temp dir");
    seeded(dir.path());
    let november = open(dir.path()).statement(period("2026-11"), None).expect("statement");
    let printed_seal = november.seal.expect("sealed").digest;
    let db = raw_store(dir.path());
    // The first stored entry chunk with a non-zero November entry: negate that amount.
    let mut target = None;
    for item in db.scan_prefix(b"ent") {
        let (key, value) = item.expect("read the store");
        let bytes = lz4_flex::decompress_size_prepended(&value).expect("decompresses");
        let mut entries: Vec<Entry> = bincode::deserialize(&bytes).expect("entries");
        if let Some(e) = entries.iter_mut().find(|e| e.period == period("2026-11") && !e.amount.is_zero()) {
            e.amount = -e.amount;
            target = Some(e.seq);
            let bytes = bincode::serialize(&entries).expect("encode");
            db.insert(key, lz4_flex::compress_prepend_size(&bytes)).expect("write back");
            break;
        }
    }
    db.flush().expect("flush");
    drop(db);
    let seq = target.expect("a November entry");

    let report = verify(dir.path(), |_| {}).expect("verify runs");
    assert_eq!(report.first_bad_seq(), Some(seq), "{:?}", report.problems);
    let kinds: Vec<ProblemKind> = report.problems.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, vec![ProblemKind::Entries, ProblemKind::Seal], "{:?}", report.problems);
    // The seal verify recomputes from the log is still the one printed before the change; the
    // statement now prints another one, which is how paper and ledger are told apart.
    assert_eq!(report.seals[0].digest, printed_seal);
    let now = open(dir.path()).statement(period("2026-11"), None).expect("statement");
    assert_ne!(now.seal.expect("sealed").digest, printed_seal);
}

#[test]
fn an_export_ingested_into_an_empty_ledger_gives_the_same_log_statements_and_seals() {
    let a = tempfile::tempdir().expect("a temp dir");
    seeded(a.path());
    let ledger_a = open(a.path());
    let last = ledger_a.state().next_seq() - 1;
    let mut exported = Vec::new();
    assert_eq!(export(&ledger_a, 1, last, &mut exported).expect("export"), last);

    let b = tempfile::tempdir().expect("a temp dir");
    let mut ledger_b = open(b.path());
    let report = import_export(&mut ledger_b, &exported[..], 5, |_| {}).expect("import");
    assert_eq!(report.records, last);
    assert_eq!(ledger_b.last_hash(), ledger_a.last_hash());
    for p in ledger_a.state().periods() {
        assert_eq!(ledger_b.statement(p, None).expect("b"), ledger_a.statement(p, None).expect("a"), "{p}");
        assert_eq!(ledger_b.entries_of(p).expect("b"), ledger_a.entries_of(p).expect("a"), "{p}");
    }
    for seq in 1..=last {
        assert_eq!(ledger_b.record(seq).expect("b"), ledger_a.record(seq).expect("a"), "record {seq}");
    }
    ledger_b.snapshot().expect("snapshot");
    drop(ledger_b);
    assert!(verify(b.path(), |_| {}).expect("verify").intact());

    // Into the ledger that already holds it: nothing changes, as with any file ingested twice.
    let mut again = open(b.path());
    let twice = import_export(&mut again, &exported[..], 5, |_| {}).expect("a second import");
    assert_eq!((twice.records, twice.already_held), (0, last));
    assert_eq!(again.last_hash(), ledger_a.last_hash());
    drop(again);
    // Into a ledger that holds a longer log with the same beginning: the prefix is recognised.
    let mut head = Vec::new();
    export(&ledger_a, 1, 10, &mut head).expect("export");
    let mut again = open(b.path());
    assert_eq!(import_export(&mut again, &head[..], 5, |_| {}).expect("import").already_held, 10);
    drop(again);

    // In two parts, the second continuing the first: the same log.
    let (mut first, mut second) = (Vec::new(), Vec::new());
    export(&ledger_a, 1, 10, &mut first).expect("export");
    export(&ledger_a, 11, last, &mut second).expect("export");
    let parts = tempfile::tempdir().expect("a temp dir");
    let mut ledger_p = open(parts.path());
    import_export(&mut ledger_p, &first[..], 5, |_| {}).expect("the first part");
    assert_eq!(import_export(&mut ledger_p, &second[..], 5, |_| {}).expect("the second part").records, last - 10);
    assert_eq!(ledger_p.last_hash(), ledger_a.last_hash());
    drop(ledger_p);

    // A part from seq 5 into an empty ledger: refused.
    let mut part = Vec::new();
    export(&ledger_a, 5, last, &mut part).expect("export");
    let c = tempfile::tempdir().expect("a temp dir");
    let refused = import_export(&mut open(c.path()), &part[..], 5, |_| {}).expect_err("refused");
    assert!(refused.to_string().contains("empty data dir"), "{refused}");

    // An edited export (one digit of one event): refused at that record.
    let text = String::from_utf8(exported.clone()).expect("UTF-8");
    let edited = text.replacen("1000000.00", "1000001.00", 1);
    assert_ne!(edited, text);
    let d = tempfile::tempdir().expect("a temp dir");
    let refused = import_export(&mut open(d.path()), edited.as_bytes(), 5, |_| {}).expect_err("refused");
    assert!(refused.to_string().contains("does not have the hash it was exported with"), "{refused}");

    // A ledger with other records before the export's range: refused on the first record.
    let e = tempfile::tempdir().expect("a temp dir");
    let mut other = open(e.path());
    let four: String = SEED.lines().skip(10).take(4).map(|l| format!("{l}\n")).collect();
    ingest_reader(&mut other, four.as_bytes(), &IngestOptions::default(), |_| {}).expect("ingest");
    let next = other.state().next_seq();
    let mut tail = Vec::new();
    export(&ledger_a, next, last, &mut tail).expect("export");
    let refused = import_export(&mut other, &tail[..], 5, |_| {}).expect_err("refused");
    assert!(refused.to_string().contains("holds other records"), "{refused}");
    let refused = import_export(&mut other, &exported[..], 5, |_| {}).expect_err("refused");
    assert!(matches!(&refused, ImportError::OutOfLine(m) if m.contains("holds another log")), "{refused}");
}

#[test]
fn a_snapshot_that_differs_from_the_fold_is_reported() {
    let dir = tempfile::tempdir().expect("a temp dir");
    seeded(dir.path());
    // The entry index beside the snapshot is a checked file whose body is (last seq, last
    // hash) and the index. Point November's entries at a batch that does not hold them, and
    // write it back with a correct checksum: a stored projection now differs from the log,
    // though every hash and checksum still matches.
    let path = dir.path().join("entry-index.bin");
    let read = read_checked(&path, ENTRY_INDEX_KIND, SNAPSHOT_FORMAT, |input, limit| {
        let covers: (u64, [u8; 32]) = decode_part(input, limit)?;
        let index: std::collections::BTreeMap<Period, Vec<u64>> = decode_part(input, limit)?;
        Ok((covers, index))
    });
    let Ok(Checked::Read((covers, mut index))) = read else { panic!("a readable entry index") };
    index.get_mut(&period("2026-11")).expect("November is indexed").push(9999);
    write_checked(&path, ENTRY_INDEX_KIND, SNAPSHOT_FORMAT, &[&covers, &index]).expect("write the index");
    let state = open(dir.path()).state().clone();

    let report = verify(dir.path(), |_| {}).expect("verify runs");
    let last = state.next_seq() - 1;
    assert_eq!(report.snapshot, SnapshotCheck::Differs { next_seq: last + 1 });
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].kind, ProblemKind::Snapshot);
    assert_eq!(report.first_bad_seq(), Some(last));
}

#[test]
fn a_record_that_no_longer_decodes_is_named_not_its_whole_chunk() {
    let dir = tempfile::tempdir().expect("a temp dir");
    seeded(dir.path());
    // The origin byte of record 11 becomes one no origin has.
    let chunk_seq = tamper_record(dir.path(), 11, |bytes, at| bytes[at + 16] = 9);
    assert!(chunk_seq < 11);
    let report = verify(dir.path(), |_| {}).expect("verify runs");
    assert_eq!(report.first_bad_seq(), Some(11), "{:?}", report.problems);
    assert_eq!(report.problems[0].kind, ProblemKind::Unreadable);
    assert_eq!(report.records, 10);
}

#[test]
fn verify_writes_nothing() {
    let dir = tempfile::tempdir().expect("a temp dir");
    seeded(dir.path());
    let contents = |dir: &Path| {
        let db = raw_store(dir);
        let pairs: Vec<(Vec<u8>, Vec<u8>)> =
            db.iter().map(|item| item.expect("read")).map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        (pairs, std::fs::read(dir.join("snapshot.bin")).expect("a snapshot"))
    };
    let before = contents(dir.path());
    assert!(verify(dir.path(), |_| {}).expect("verify").intact());
    // Damaged, too: verify reports and repairs nothing (rebuild is the command that rewrites).
    flip_raw_byte(dir.path(), 12, "\"data\"", 20);
    let damaged = contents(dir.path());
    assert_ne!(damaged, before);
    assert!(!verify(dir.path(), |_| {}).expect("verify").intact());
    assert_eq!(contents(dir.path()), damaged);
}
