//! The auditor's side of the store (docs/AUDIT.md): seals of closed periods, `verify` (the
//! whole hash chain, and a fold from nothing compared with every stored entry, the snapshot
//! and the seals, writing nothing), and export/import of log records with their sequence
//! numbers, arrival times and origins, so that a copy of the log has the same hash chain.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use premia_core::fold::{Admitted, Entry, LedgerState, Outcome};
use premia_core::seal::{hex, seal, Seal, SealHasher};
use premia_core::{EventType, Period};
use serde::{Deserialize, Serialize};

use crate::ingest::{tally, Counts};
use crate::ledger::{
    applied_entries, decode_stored_chunk, index_entries, load_snapshot, log_key, open_sled, read_entries, seq_of_key,
    sled_config, store_error, EntryIndex, Ledger, LedgerError, LedgerOptions, ENTRY_PREFIX, LOG_PREFIX, SNAPSHOT_FILE,
};
use crate::lock::DirLock;
use crate::log::{chain_hash, decode_readable_prefix, verify_link, Hash, LogRecord, Origin, GENESIS_HASH};

/// The seal of `period` when it is closed. `entries` are the period's entries in booking order
/// (as [`Ledger::entries_of`] gives them).
pub fn seal_of(ledger: &Ledger, period: Period, entries: &[Entry]) -> Result<Option<Seal>, LedgerError> {
    let Some(&closed_seq) = ledger.state().closed_periods().get(&period) else { return Ok(None) };
    let record = ledger.record(closed_seq)?.ok_or_else(|| {
        LedgerError::Decode(format!("log record {closed_seq}, which closed {period}, is missing; run `premia verify`"))
    })?;
    Ok(Some(seal(period, entries, closed_seq, &record.hash)))
}

// ---------------------------------------------------------------------------------------------
// verify

/// What kind of damage `verify` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A log chunk cannot be decompressed or decoded.
    Unreadable,
    /// Records are missing, repeated or out of order.
    Order,
    /// A record's hash does not follow from the previous one: the record was changed.
    Chain,
    /// A record no longer folds (it would have been refused).
    Fold,
    /// Stored entries differ from those the fold books, or are stored for no log batch.
    Entries,
    /// The snapshot differs from the fold at the position it covers.
    Snapshot,
    /// A closed period's seal from the stored entries differs from the one from the fold.
    Seal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The first log sequence number the problem concerns.
    pub seq: u64,
    pub kind: ProblemKind,
    pub message: String,
}

/// How the snapshot compared with the fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotCheck {
    /// There is no snapshot file (it is only a cache).
    Absent,
    /// There is one, but this version cannot use it or it does not match the log's end; the
    /// ledger ignores it and folds the log instead.
    Unused,
    /// The fold never reached the position it covers (the chain broke before).
    NotReached,
    /// It equals the fold at the position it covers.
    Identical { next_seq: u64 },
    /// It differs (reported as a problem too).
    Differs { next_seq: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SealCheck {
    pub period: String,
    pub closed_seq: u64,
    pub digest: String,
    pub entries: u64,
    pub identical: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Log records whose link was checked and that were folded.
    pub records: u64,
    pub chunks: u64,
    /// Entries compared with the stored ones.
    pub entries: u64,
    pub last_seq: u64,
    pub last_hash: String,
    pub snapshot: SnapshotCheck,
    pub seals: Vec<SealCheck>,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }

    /// The lowest sequence number any problem concerns.
    pub fn first_bad_seq(&self) -> Option<u64> {
        self.problems.iter().map(|p| p.seq).min()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("there is no ledger in {0}; check --data-dir (or PREMIA_DATA_DIR)")]
    NoLedger(PathBuf),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Checks the ledger in `dir` without writing to it: every link of the hash chain, and a fold
/// of the whole log from nothing compared with every stored entry chunk, with the snapshot at
/// the position it covers, and with the seal of every closed period. Damage is reported, not
/// returned as an error; `progress` is called with the number of records checked.
pub fn verify(dir: &Path, mut progress: impl FnMut(u64)) -> Result<VerifyReport, VerifyError> {
    // Checked before anything is opened, so a mistyped path does not become an empty ledger.
    if !dir.join("sled").is_dir() {
        return Err(VerifyError::NoLedger(dir.to_path_buf()));
    }
    let _lock = DirLock::acquire(dir, "verify").map_err(LedgerError::from)?;
    let db = open_sled(&sled_config(dir, &LedgerOptions::default())).map_err(store_error(dir))?;
    let snapshot_present = dir.join(SNAPSHOT_FILE).is_file();
    let snapshot = load_snapshot(dir, &db);

    let mut problems = Vec::new();
    let mut state = LedgerState::new();
    let mut last_hash = GENESIS_HASH;
    let mut index = EntryIndex::new();
    let mut snapshot_check = match (&snapshot, snapshot_present) {
        (Some(_), _) => SnapshotCheck::NotReached,
        (None, true) => SnapshotCheck::Unused,
        (None, false) => SnapshotCheck::Absent,
    };
    let (mut records, mut chunks, mut entries_checked) = (0u64, 0u64, 0u64);
    // Seals are computed as the walk goes: one from the entries the fold books, one from the
    // stored entries that statements print.
    let mut folded_seals: BTreeMap<Period, SealHasher> = BTreeMap::new();
    let mut stored_seals: BTreeMap<Period, SealHasher> = BTreeMap::new();
    let mut closes: BTreeMap<Period, (u64, Hash)> = BTreeMap::new();
    let mut log_chunks: BTreeSet<u64> = BTreeSet::new();
    let mut broken = false;

    for item in db.scan_prefix(LOG_PREFIX) {
        let (key, value) = item.map_err(store_error(dir))?;
        let chunk_seq = seq_of_key(&key);
        log_chunks.insert(chunk_seq);
        chunks += 1;
        if broken {
            continue;
        }
        let expected = state.next_seq();
        // A damaged chunk is read up to the first record that cannot be decoded, so that the
        // report names that record rather than the start of its chunk.
        let (chunk, unreadable) = match decode_stored_chunk(chunk_seq, &value) {
            Ok(chunk) => (chunk, None),
            Err(e) => (readable_prefix(chunk_seq, &value), Some(e.to_string())),
        };
        let misplaced = chunk_seq != expected
            || (unreadable.is_none() || !chunk.is_empty()) && chunk.first().map(|r| r.seq) != Some(chunk_seq);
        if misplaced {
            problems.push(Problem {
                seq: expected,
                kind: ProblemKind::Order,
                message: format!(
                    "log record {expected} was expected next, but the next chunk is stored at seq {chunk_seq} and starts with seq {}",
                    chunk.first().map_or("nothing".to_string(), |r| r.seq.to_string())
                ),
            });
            broken = true;
            continue;
        }
        let mut folded_entries = Vec::new();
        for record in chunk {
            if let Err(problem) = check_and_fold(&mut state, &last_hash, &record, &mut folded_entries, &mut closes) {
                problems.push(problem);
                broken = true;
                break;
            }
            last_hash = record.hash;
            records += 1;
        }
        if let Some(message) = unreadable.filter(|_| !broken) {
            problems.push(Problem { seq: state.next_seq(), kind: ProblemKind::Unreadable, message });
            broken = true;
        }
        if broken {
            // The chunk's entries cannot be compared with a fold that stopped inside it.
            continue;
        }
        for entry in &folded_entries {
            folded_seals.entry(entry.period).or_insert_with(|| SealHasher::new(entry.period)).add(entry);
        }
        match read_entries(&db, dir, chunk_seq) {
            Ok(stored) => {
                for entry in &stored {
                    stored_seals.entry(entry.period).or_insert_with(|| SealHasher::new(entry.period)).add(entry);
                }
                entries_checked += stored.len() as u64;
                if let Some(problem) = compare_entries(chunk_seq, &stored, &folded_entries) {
                    problems.push(problem);
                }
            }
            Err(e) => problems.push(Problem {
                seq: chunk_seq,
                kind: ProblemKind::Entries,
                message: format!("the stored entries of the batch starting at seq {chunk_seq} cannot be read: {e}"),
            }),
        }
        index_entries(&mut index, chunk_seq, &folded_entries);
        // A snapshot is written only after a committed batch, so it covers a chunk boundary.
        if let Some((snapshot_state, snapshot_hash, snapshot_index)) = &snapshot {
            if snapshot_state.next_seq() == state.next_seq() {
                let next_seq = state.next_seq();
                if *snapshot_state == state && *snapshot_hash == last_hash && *snapshot_index == index {
                    snapshot_check = SnapshotCheck::Identical { next_seq };
                } else {
                    snapshot_check = SnapshotCheck::Differs { next_seq };
                    problems.push(Problem {
                        seq: next_seq - 1,
                        kind: ProblemKind::Snapshot,
                        message: format!(
                            "the snapshot (which covers the log up to seq {}) differs from the fold of the log up to there; delete {} and reopen, or run `premia rebuild`",
                            next_seq - 1,
                            dir.join(SNAPSHOT_FILE).display()
                        ),
                    });
                }
            }
        }
        progress(records);
    }

    // An intact log that never reached the snapshot's position at the end of a batch: the
    // snapshot claims a position the store never committed on its own.
    if let (false, SnapshotCheck::NotReached, Some((snapshot_state, _, _))) = (broken, snapshot_check, &snapshot) {
        let covered = snapshot_state.next_seq() - 1;
        problems.push(Problem {
            seq: covered,
            kind: ProblemKind::Snapshot,
            message: format!(
                "the snapshot covers the log up to seq {covered}, which is not the end of a stored batch; delete {} and reopen, or run `premia rebuild`",
                dir.join(SNAPSHOT_FILE).display()
            ),
        });
    }

    // Entry chunks beside no log chunk: nothing books them, yet statements could read them.
    for item in db.scan_prefix(ENTRY_PREFIX).keys() {
        let key = item.map_err(store_error(dir))?;
        let seq = seq_of_key(&key);
        if !log_chunks.contains(&seq) {
            problems.push(Problem {
                seq,
                kind: ProblemKind::Entries,
                message: format!("entries are stored for a batch at seq {seq}, but the log has no batch there"),
            });
        }
    }

    let mut seals = Vec::new();
    if !broken {
        for (period, (closed_seq, hash)) in &closes {
            let of = |hashers: &BTreeMap<Period, SealHasher>| {
                hashers.get(period).cloned().unwrap_or_else(|| SealHasher::new(*period)).finish(*closed_seq, hash)
            };
            let (folded, stored) = (of(&folded_seals), of(&stored_seals));
            let identical = folded == stored;
            if !identical {
                problems.push(Problem {
                    seq: *closed_seq,
                    kind: ProblemKind::Seal,
                    message: format!(
                        "the seal of {period} from the stored entries is {}, but the fold of the log gives {}",
                        stored.digest_hex(),
                        folded.digest_hex()
                    ),
                });
            }
            seals.push(SealCheck {
                period: period.to_string(),
                closed_seq: *closed_seq,
                digest: folded.digest_hex(),
                entries: folded.entries,
                identical,
            });
        }
    }
    problems.sort_by_key(|p| p.seq);
    progress(records);
    Ok(VerifyReport {
        records,
        chunks,
        entries: entries_checked,
        last_seq: state.next_seq() - 1,
        last_hash: hex(&last_hash),
        snapshot: snapshot_check,
        seals,
        problems,
    })
}

/// The records of a damaged chunk before the first one that cannot be decoded (none when the
/// chunk does not even decompress).
fn readable_prefix(chunk_seq: u64, value: &[u8]) -> Vec<LogRecord> {
    match lz4_flex::decompress_size_prepended(value) {
        Ok(bytes) => decode_readable_prefix(chunk_seq, &bytes),
        Err(_) => Vec::new(),
    }
}

/// Checks one record's place and link, folds it, and collects what it booked.
fn check_and_fold(
    state: &mut LedgerState,
    previous: &Hash,
    record: &LogRecord,
    entries: &mut Vec<Entry>,
    closes: &mut BTreeMap<Period, (u64, Hash)>,
) -> Result<(), Problem> {
    let expected = state.next_seq();
    if record.seq != expected {
        return Err(Problem {
            seq: expected,
            kind: ProblemKind::Order,
            message: format!("log record {expected} was expected next, but record {} is there", record.seq),
        });
    }
    if !verify_link(previous, record) {
        return Err(Problem {
            seq: record.seq,
            kind: ProblemKind::Chain,
            message: format!(
                "the hash chain breaks at log record {}: its bytes (or its stored hash) were changed after it was written",
                record.seq
            ),
        });
    }
    let folded = state.replay(record.seq, &record.raw).map_err(|e| Problem {
        seq: record.seq,
        kind: ProblemKind::Fold,
        message: e.to_string(),
    })?;
    let closed = folded.iter().any(|f| {
        f.seq == record.seq && f.event_type == EventType::PeriodClosed && matches!(f.outcome, Outcome::Applied { .. })
    });
    if closed {
        if let Some((period, _)) = state.closed_periods().iter().find(|(_, seq)| **seq == record.seq) {
            closes.insert(*period, (record.seq, record.hash));
        }
    }
    entries.extend(applied_entries(&folded).cloned());
    Ok(())
}

fn compare_entries(chunk_seq: u64, stored: &[Entry], folded: &[Entry]) -> Option<Problem> {
    if stored == folded {
        return None;
    }
    let at = stored.iter().zip(folded).position(|(s, f)| s != f).unwrap_or(stored.len().min(folded.len()));
    let seq = match (stored.get(at), folded.get(at)) {
        (Some(s), Some(f)) => s.seq.min(f.seq),
        (Some(e), None) | (None, Some(e)) => e.seq,
        (None, None) => chunk_seq,
    };
    Some(Problem {
        seq,
        kind: ProblemKind::Entries,
        message: format!(
            "the stored entries of the batch starting at seq {chunk_seq} differ from what the log books, from entry {} on (seq {seq}): {} stored, {} booked by the fold{}",
            at + 1,
            stored.len(),
            folded.len(),
            match (stored.get(at), folded.get(at)) {
                (Some(s), Some(f)) if s.amount != f.amount => format!("; stored amount {}, folded {}", s.amount, f.amount),
                _ => String::new(),
            }
        ),
    })
}

// ---------------------------------------------------------------------------------------------
// export and import

/// The version of the export line format this premia writes and reads.
pub const EXPORT_FORMAT: u32 = 1;

/// One log record in an export: a JSON object per line, `premia_export` first (docs/AUDIT.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportLine {
    /// The export format, 1. Written first: `premia ingest` recognises an export by a first
    /// line that begins with this member.
    #[schemars(range(min = 1, max = 1))]
    pub premia_export: u32,
    /// The record's ledger sequence number; an export lists consecutive records.
    #[schemars(range(min = 1))]
    pub seq: u64,
    /// When the original ledger received the record, in Unix milliseconds.
    pub arrived_ms: i64,
    /// How the event reached the ledger: `file`, `nats` or `ledger` (premia's own records).
    #[schemars(regex(pattern = "^(file|nats|ledger)$"))]
    pub origin: String,
    /// The record's chain hash in the original ledger, lowercase hex:
    /// SHA-256(previous hash | seq | arrived_ms | origin | raw), see docs/AUDIT.md.
    #[schemars(regex(pattern = "^[0-9a-f]{64}$"))]
    pub hash: String,
    /// The bytes received, as a JSON string (every logged event passed validation, so it is
    /// UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// The bytes received in hex, for a record that is not UTF-8 (none should be).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^([0-9a-f]{2})*$"))]
    pub raw_hex: Option<String>,
}

/// The JSON Schema of one export line (checked in as `schemas/export/record.json`).
pub fn export_schema() -> serde_json::Value {
    let mut schema = schemars::SchemaGenerator::default().root_schema_for::<ExportLine>().to_value();
    if let serde_json::Value::Object(map) = &mut schema {
        map.insert("$id".into(), "urn:premia:schema:export:record".into());
    }
    schema
}

impl ExportLine {
    pub fn of(record: &LogRecord) -> ExportLine {
        let (raw, raw_hex) = match std::str::from_utf8(&record.raw) {
            Ok(text) => (Some(text.to_string()), None),
            Err(_) => (None, Some(hex(&record.raw))),
        };
        ExportLine {
            premia_export: EXPORT_FORMAT,
            seq: record.seq,
            arrived_ms: record.arrived_ms,
            origin: record.origin.as_str().to_string(),
            hash: hex(&record.hash),
            raw,
            raw_hex,
        }
    }
}

/// Whether a line is an export line (rather than an event): it is an object whose first
/// member is `premia_export`.
pub fn is_export_line(line: &[u8]) -> bool {
    let trimmed = line.trim_ascii_start();
    trimmed.strip_prefix(b"{").is_some_and(|rest| rest.trim_ascii_start().starts_with(b"\"premia_export\""))
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write the export: {0}")]
    Write(std::io::Error),
    #[error(
        "the hash chain breaks at log record {seq}, so the export stops; run `premia verify` to see what is damaged"
    )]
    ChainBroken { seq: u64 },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Writes the log records `from..=to` as export lines, checking every link of the chain from
/// the start of the log (a record's hash says nothing unless its predecessors are intact).
/// Returns the number of records written. It reads what is committed: call it on a ledger with
/// nothing pending (one just opened).
pub fn export(ledger: &Ledger, from: u64, to: u64, out: &mut impl Write) -> Result<u64, ExportError> {
    let db = ledger.db();
    let dir = ledger.dir();
    let mut last_hash = GENESIS_HASH;
    let mut written = 0u64;
    'chunks: for item in db.range(log_key(0)..) {
        let (key, value) = item.map_err(store_error(dir))?;
        if !key.starts_with(LOG_PREFIX) {
            break;
        }
        for record in decode_stored_chunk(seq_of_key(&key), &value)? {
            if record.seq > to {
                break 'chunks;
            }
            if !verify_link(&last_hash, &record) {
                return Err(ExportError::ChainBroken { seq: record.seq });
            }
            last_hash = record.hash;
            if record.seq >= from {
                let line = serde_json::to_string(&ExportLine::of(&record))
                    .map_err(|e| ExportError::Write(std::io::Error::other(e)))?;
                out.write_all(line.as_bytes()).and_then(|_| out.write_all(b"\n")).map_err(ExportError::Write)?;
                written += 1;
            }
        }
    }
    out.flush().map_err(ExportError::Write)?;
    Ok(written)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Log records appended.
    pub records: u64,
    /// Records of the export that this ledger already held (the same chain): skipped, so that
    /// ingesting an export twice changes nothing, as with any other file.
    pub already_held: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The chain hash after the last record, lowercase hex: the same as in the exporting ledger.
    pub last_hash: String,
    /// What became of the imported events (as an ingest counts them; no duplicates can occur).
    pub counts: Counts,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the input: {0}")]
    Read(std::io::Error),
    #[error("line {line} is not an export line ({reason}); an export holds only lines written by `premia export`, so nothing of this file is ingested after it")]
    NotExport { line: u64, reason: String },
    #[error("the export does not line up with this ledger: {0}")]
    OutOfLine(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Appends the records of an export to the ledger with their original sequence numbers,
/// arrival times and origins, so that the hash chain (and so every seal) is the one of the
/// ledger that wrote the export. Each record must continue this ledger's log: its seq must be
/// the next one and its hash must follow from this ledger's last hash; the first that does not
/// stops the import with a sentence saying why, before it is appended. Batches of
/// `batch_records` are committed as they go.
pub fn import_export(
    ledger: &mut Ledger,
    input: impl BufRead,
    batch_records: usize,
    mut progress: impl FnMut(u64),
) -> Result<ImportReport, ImportError> {
    let first_ledger_seq = ledger.state().next_seq();
    let mut report = ImportReport {
        records: 0,
        already_held: 0,
        first_seq: None,
        last_seq: None,
        last_hash: hex(&ledger.last_hash()),
        counts: Counts::default(),
    };
    let mut in_batch = 0usize;
    let mut bytes_read = 0u64;
    // The last record skipped as already held, to be checked against the ledger's own.
    let mut skipped: Option<(u64, Hash)> = None;
    for (number, line) in input.split(b'\n').enumerate() {
        let mut line = line.map_err(ImportError::Read)?;
        bytes_read += line.len() as u64 + 1;
        if line.ends_with(b"\r") {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let number = number as u64 + 1;
        let not_export = |reason: String| ImportError::NotExport { line: number, reason };
        let parsed: ExportLine = serde_json::from_slice(&line).map_err(|e| not_export(e.to_string()))?;
        if parsed.premia_export != EXPORT_FORMAT {
            return Err(not_export(format!(
                "it is of export format {}, and this premia reads format {EXPORT_FORMAT}",
                parsed.premia_export
            )));
        }
        let origin = Origin::parse(&parsed.origin)
            .ok_or_else(|| not_export(format!("origin {:?} is not file, nats or ledger", parsed.origin)))?;
        let raw = match (&parsed.raw, &parsed.raw_hex) {
            (Some(text), None) => text.clone().into_bytes(),
            (None, Some(h)) => unhex(h).ok_or_else(|| not_export("raw_hex is not hex".to_string()))?,
            _ => return Err(not_export("it needs exactly one of raw and raw_hex".to_string())),
        };
        let hash: Hash = unhex(&parsed.hash)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| not_export("hash is not 64 hex digits".to_string()))?;
        let next = ledger.state().next_seq();
        if parsed.seq < next && report.records == 0 && skipped.is_none_or(|(seq, _)| seq + 1 == parsed.seq) {
            // The ledger holds this seq already. The chain commits to everything before it, so
            // equal hashes at seq `next - 1` mean the whole prefix is the same.
            if parsed.seq == next - 1 && hash != ledger.last_hash() {
                return Err(ImportError::OutOfLine(format!(
                    "this ledger already holds a record {} that differs from the export's: it holds another log. Ingest the export into an empty data dir",
                    parsed.seq
                )));
            }
            skipped = Some((parsed.seq, hash));
            report.already_held += 1;
            continue;
        }
        if parsed.seq != next {
            return Err(ImportError::OutOfLine(if report.records == 0 && skipped.is_none() {
                format!(
                    "it starts at ledger seq {}, but this ledger's next seq is {next}. An export can only be ingested into a ledger that holds exactly the records before it: an empty data dir for an export that starts at seq 1 (`premia export --from-seq 1`)",
                    parsed.seq
                )
            } else {
                format!(
                    "line {number} holds seq {} where seq {next} should follow; the export is incomplete or was edited",
                    parsed.seq
                )
            }));
        }
        if chain_hash(&ledger.last_hash(), parsed.seq, parsed.arrived_ms, origin, &raw) != hash {
            return Err(ImportError::OutOfLine(if report.records == 0 && next > 1 {
                format!(
                    "record {next} of the export does not follow this ledger's record {}: the ledger holds other records than the one the export was taken from. Ingest the export into an empty data dir",
                    next - 1
                )
            } else {
                format!(
                    "record {} (line {number}) does not have the hash it was exported with: the export was edited or damaged",
                    parsed.seq
                )
            }));
        }
        let folded = ledger.append_replayed(parsed.seq, parsed.arrived_ms, origin, &raw)?;
        let seq = parsed.seq;
        tally(&mut report.counts, &Admitted::Logged { seq, preamble: None, folded }, first_ledger_seq);
        report.first_seq.get_or_insert(seq);
        report.last_seq = Some(seq);
        report.records += 1;
        in_batch += 1;
        if in_batch >= batch_records {
            ledger.submit()?;
            in_batch = 0;
            progress(bytes_read);
        }
    }
    // An export that ends inside what this ledger holds: its last record must be the ledger's.
    if let Some((seq, hash)) = skipped {
        if seq + 1 < ledger.state().next_seq() && ledger.record(seq)?.map(|r| r.hash) != Some(hash) {
            return Err(ImportError::OutOfLine(format!(
                "this ledger already holds a record {seq} that differs from the export's: it holds another log. Ingest the export into an empty data dir"
            )));
        }
    }
    ledger.commit()?;
    report.counts.parked = ledger.state().parked().range(first_ledger_seq..).count() as u64;
    report.last_hash = hex(&ledger.last_hash());
    Ok(report)
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_lines_are_recognised_by_their_first_member() {
        assert!(is_export_line(br#"{"premia_export":1,"seq":1}"#));
        assert!(is_export_line(br#"  { "premia_export" : 1}"#));
        assert!(!is_export_line(br#"{"specversion":"1.0","premia_export":1}"#));
        assert!(!is_export_line(b"premia_export"));
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(unhex(&hex(&[0, 1, 0xfe, 0xff])), Some(vec![0, 1, 0xfe, 0xff]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
