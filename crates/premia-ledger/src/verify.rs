//! `premia verify` (docs/AUDIT.md): the whole hash chain against the committed head, and a fold
//! of the log from nothing compared with every stored entry, the kept rejections, the snapshot
//! and the seals of closed periods, writing nothing. Damage is reported with the first sequence
//! number it concerns.
//!
//! Writing nothing: sled writes as it opens (its recovery), so verify opens a private copy of
//! the store in a temporary directory; the data dir's lock file is locked read-only and its
//! other files are only read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use premia_core::fold::{Entry, LedgerState, Outcome};
use premia_core::seal::{hex, SealHasher};
use premia_core::{EventType, Period};
use serde::Serialize;

use crate::error::LedgerError;
use crate::lock::DirLock;
use crate::log::{decode_readable_prefix, verify_link, Hash, LogRecord, GENESIS_HASH};
use crate::snapshot::{read_snapshot, Snapshot, SnapshotRead, SNAPSHOT_FILE};
use crate::store::{
    applied_entries, decode_stored_chunk, decompress_chunk, index_entries, open_sled, read_entries, seq_of_key,
    sled_config, store_error, EntryIndex, LedgerOptions, ENTRY_PREFIX, LOG_PREFIX,
};
use crate::verify_head::{check_log_reaches, check_rejections, read_heads};
use crate::verify_index::IndexCheck;
pub use crate::verify_projection::ProjectionCheck;
use crate::verify_projection::{check_projection, Folded};

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
    /// The committed head is damaged or missing, or the log does not reach it.
    Head,
    /// A kept rejection is missing, unreadable or changed.
    Rejections,
    /// The store itself cannot be opened.
    Store,
    /// A file of the replay index is damaged or differs from the log.
    ReplayIndex,
    /// The period projection is damaged, or differs from the fold at the end of the log.
    Projection,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The first log sequence number the problem concerns.
    pub seq: u64,
    pub kind: ProblemKind,
    pub message: String,
}

/// How the snapshot compared with the fold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotCheck {
    /// There is no snapshot file (it is only a cache).
    Absent,
    /// There is one, written by another version of premia; the ledger folds the log instead.
    Unused,
    /// It is damaged, or is not a snapshot of this log (reported as a problem too).
    Damaged { reason: String },
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
    /// The last log record the ledger committed (its head), when it says.
    pub committed_seq: Option<u64>,
    /// Kept rejections read and chained.
    pub rejections: u64,
    pub chunks: u64,
    /// Entries compared with the stored ones.
    pub entries: u64,
    pub last_seq: u64,
    pub last_hash: String,
    pub snapshot: SnapshotCheck,
    pub projection: ProjectionCheck,
    pub seals: Vec<SealCheck>,
    pub problems: Vec<Problem>,
}

impl ProblemKind {
    /// The kind's name, as the JSON report spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Unreadable => "unreadable",
            ProblemKind::Order => "order",
            ProblemKind::Chain => "chain",
            ProblemKind::Fold => "fold",
            ProblemKind::Entries => "entries",
            ProblemKind::Snapshot => "snapshot",
            ProblemKind::Seal => "seal",
            ProblemKind::Projection => "projection",
            ProblemKind::Head => "head",
            ProblemKind::Rejections => "rejections",
            ProblemKind::Store => "store",
            ProblemKind::ReplayIndex => "replay_index",
        }
    }
}

impl VerifyReport {
    /// The report on a store that cannot even be opened.
    fn unopened(message: String) -> VerifyReport {
        VerifyReport {
            records: 0,
            committed_seq: None,
            rejections: 0,
            chunks: 0,
            entries: 0,
            last_seq: 0,
            last_hash: hex(&GENESIS_HASH),
            snapshot: SnapshotCheck::NotReached,
            projection: ProjectionCheck::NotReached,
            seals: Vec::new(),
            problems: vec![Problem { seq: 0, kind: ProblemKind::Store, message }],
        }
    }

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
    #[error("cannot make a private copy of the store to verify: {0}. verify copies DIR/sled to the temporary directory (TMPDIR) so that it writes nothing in the data dir: check the free space there, or point TMPDIR elsewhere")]
    Scratch(String),
}

/// Checks the ledger in `dir` without writing to it: every link of the hash chain, and a fold
/// of the whole log from nothing compared with every stored entry chunk, with the snapshot at
/// the position it covers, and with the seal of every closed period. Damage is reported, not
/// returned as an error; `progress` is called with the number of records checked.
pub fn verify(dir: &Path, progress: impl FnMut(u64)) -> Result<VerifyReport, VerifyError> {
    // Checked before anything is opened, so a mistyped path does not become an empty ledger.
    if !dir.join("sled").is_dir() {
        return Err(VerifyError::NoLedger(dir.to_path_buf()));
    }
    let _lock = DirLock::acquire_read_only(dir).map_err(LedgerError::from)?;
    let copy = private_copy(dir)?;
    let db = match open_copy(copy.path()) {
        Ok(db) => db,
        Err(message) => return Ok(VerifyReport::unopened(message)),
    };
    match crate::sled_guard::guarded(|| verify_store(dir, &db, progress)) {
        Ok(report) => report,
        Err(message) => Ok(VerifyReport::unopened(format!(
            "the ledger store is damaged: sled failed while reading it back ({message})"
        ))),
    }
}

/// [`verify`] on the opened copy of the store.
fn verify_store(dir: &Path, db: &sled::Db, mut progress: impl FnMut(u64)) -> Result<VerifyReport, VerifyError> {
    let heads = read_heads(dir, db);
    let mut verifier = Verifier::new(dir, &db);
    verifier.problems.extend(heads.problems);
    verifier.index_check = IndexCheck::start(dir, &mut verifier.problems);
    for item in db.scan_prefix(LOG_PREFIX) {
        let (key, value) = item.map_err(store_error(dir))?;
        if verifier.log_chunk(&key, &value) {
            progress(verifier.records);
        }
    }
    verifier.snapshot_never_reached();
    verifier.entries_without_log(db.scan_prefix(ENTRY_PREFIX).keys())?;
    if let Some(head) = &heads.committed {
        check_log_reaches(head, &db, dir, verifier.state.next_seq() - 1, &mut verifier.problems);
    }
    let rejections = check_rejections(heads.committed.as_ref(), &db, dir, &mut verifier.problems);
    if let Some(index_check) = verifier.index_check.take() {
        if !verifier.broken {
            index_check.finish(dir, &mut verifier.problems);
        }
    }
    let seals = verifier.seals();
    let folded = Folded {
        state: &verifier.state,
        last_hash: verifier.last_hash,
        index: &verifier.index,
        db,
        whole: !verifier.broken,
    };
    let projection = check_projection(dir, &folded, &mut verifier.problems);
    progress(verifier.records);
    let mut report = verifier.report(seals);
    report.projection = projection;
    report.committed_seq = heads.committed.map(|h| h.last_seq);
    report.rejections = rejections;
    Ok(report)
}

/// A copy of the data dir's store in a temporary directory, for sled to open (and recover, and
/// write) without touching the original.
fn private_copy(dir: &Path) -> Result<tempfile::TempDir, VerifyError> {
    let scratch =
        tempfile::Builder::new().prefix("premia-verify-").tempdir().map_err(|e| VerifyError::Scratch(e.to_string()))?;
    copy_tree(&dir.join("sled"), &scratch.path().join("sled")).map_err(|e| VerifyError::Scratch(e.to_string()))?;
    Ok(scratch)
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Opens the copied store; a store sled cannot open (or panics on) is damage, said in a sentence.
fn open_copy(root: &Path) -> Result<sled::Db, String> {
    let config = sled_config(root, &LedgerOptions::default());
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| open_sled(&config))) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(format!("the ledger store cannot be opened: {e}")),
        Err(_) => Err("the ledger store cannot be opened: sled failed while reading it back".to_string()),
    }
}

/// A walk over the log, in order, folding it from nothing and comparing as it goes.
struct Verifier<'a> {
    dir: &'a Path,
    db: &'a sled::Db,
    /// The stored snapshot, when the ledger would use it.
    snapshot: Option<Snapshot>,
    snapshot_check: SnapshotCheck,
    problems: Vec<Problem>,
    state: LedgerState,
    last_hash: Hash,
    index: EntryIndex,
    records: u64,
    chunks: u64,
    entries_checked: u64,
    /// Seals are computed as the walk goes: one from the entries the fold books, one from the
    /// stored entries that statements print.
    folded_seals: BTreeMap<Period, SealHasher>,
    stored_seals: BTreeMap<Period, SealHasher>,
    closes: BTreeMap<Period, (u64, Hash)>,
    log_chunks: BTreeSet<u64>,
    /// Whether the fold stopped: nothing after the first break is compared.
    broken: bool,
    /// The replay index rebuilt alongside, when the data dir has one.
    index_check: Option<IndexCheck>,
}

impl<'a> Verifier<'a> {
    fn new(dir: &'a Path, db: &'a sled::Db) -> Verifier<'a> {
        let mut problems = Vec::new();
        let (snapshot, snapshot_check) = match read_snapshot(dir, db) {
            SnapshotRead::Usable(snapshot) => (Some(snapshot), SnapshotCheck::NotReached),
            SnapshotRead::Absent => (None, SnapshotCheck::Absent),
            SnapshotRead::OtherFormat(_) | SnapshotRead::WithoutIndex(_) => (None, SnapshotCheck::Unused),
            SnapshotRead::Damaged(reason) => {
                problems.push(Problem {
                    seq: 0,
                    kind: ProblemKind::Snapshot,
                    message: format!(
                        "the snapshot {} is damaged ({reason}); delete it (it is a cache of the log) or restore the data dir",
                        dir.join(SNAPSHOT_FILE).display()
                    ),
                });
                (None, SnapshotCheck::Damaged { reason })
            }
        };
        Verifier {
            dir,
            db,
            snapshot,
            snapshot_check,
            problems,
            state: LedgerState::new(),
            last_hash: GENESIS_HASH,
            index: EntryIndex::new(),
            records: 0,
            chunks: 0,
            entries_checked: 0,
            folded_seals: BTreeMap::new(),
            stored_seals: BTreeMap::new(),
            closes: BTreeMap::new(),
            log_chunks: BTreeSet::new(),
            broken: false,
            index_check: None,
        }
    }

    /// Checks the log chunk stored under `key`: its records, then what they booked against the
    /// stored entries and the snapshot. Whether it was checked whole.
    fn log_chunk(&mut self, key: &[u8], value: &[u8]) -> bool {
        self.chunks += 1;
        let chunk_seq = match seq_of_key(key) {
            Ok(chunk_seq) => chunk_seq,
            Err(e) => {
                self.break_at(self.state.next_seq(), ProblemKind::Order, e.to_string());
                return false;
            }
        };
        self.log_chunks.insert(chunk_seq);
        if self.broken {
            return false;
        }
        let Some(folded_entries) = self.fold_chunk(chunk_seq, value) else { return false };
        for entry in &folded_entries {
            self.folded_seals.entry(entry.period).or_insert_with(|| SealHasher::new(entry.period)).add(entry);
        }
        self.compare_stored_entries(chunk_seq, &folded_entries);
        index_entries(&mut self.index, chunk_seq, &folded_entries);
        self.compare_snapshot();
        true
    }

    /// Folds the records of one chunk; the entries they booked, or `None` once the log breaks
    /// (the chunk's entries cannot be compared with a fold that stopped inside it).
    fn fold_chunk(&mut self, chunk_seq: u64, value: &[u8]) -> Option<Vec<Entry>> {
        let expected = self.state.next_seq();
        // A damaged chunk is read up to the first record that cannot be decoded, so that the
        // report names that record rather than the start of its chunk.
        let (chunk, unreadable) = match decode_stored_chunk(chunk_seq, value) {
            Ok(chunk) => (chunk, None),
            Err(e) => (readable_prefix(chunk_seq, value), Some(e.to_string())),
        };
        let misplaced = chunk_seq != expected
            || (unreadable.is_none() || !chunk.is_empty()) && chunk.first().map(|r| r.seq) != Some(chunk_seq);
        if misplaced {
            let first = chunk.first().map_or("nothing".to_string(), |r| r.seq.to_string());
            self.break_at(expected, ProblemKind::Order, format!(
                "log record {expected} was expected next, but the next chunk is stored at seq {chunk_seq} and starts with seq {first}"
            ));
            return None;
        }
        let mut folded_entries = Vec::new();
        for record in chunk {
            if let Err(problem) =
                check_and_fold(&mut self.state, &self.last_hash, &record, &mut folded_entries, &mut self.closes)
            {
                self.break_at(problem.seq, problem.kind, problem.message);
                return None;
            }
            self.last_hash = record.hash;
            self.records += 1;
            if let Some(index_check) = &mut self.index_check {
                index_check.add(&record);
            }
        }
        if let Some(message) = unreadable {
            self.break_at(self.state.next_seq(), ProblemKind::Unreadable, message);
            return None;
        }
        Some(folded_entries)
    }

    /// Reports the problem that stops the fold (the first one only).
    fn break_at(&mut self, seq: u64, kind: ProblemKind, message: String) {
        if !self.broken {
            self.problems.push(Problem { seq, kind, message });
            self.broken = true;
        }
    }

    /// Compares the entries stored beside the chunk with those its fold booked.
    fn compare_stored_entries(&mut self, chunk_seq: u64, folded_entries: &[Entry]) {
        match read_entries(self.db, self.dir, chunk_seq) {
            Ok(stored) => {
                for entry in &stored {
                    self.stored_seals.entry(entry.period).or_insert_with(|| SealHasher::new(entry.period)).add(entry);
                }
                self.entries_checked += stored.len() as u64;
                if let Some(problem) = compare_entries(chunk_seq, &stored, folded_entries) {
                    self.problems.push(problem);
                }
            }
            Err(e) => self.problems.push(Problem {
                seq: chunk_seq,
                kind: ProblemKind::Entries,
                message: format!("the stored entries of the batch starting at seq {chunk_seq} cannot be read: {e}"),
            }),
        }
    }

    /// Compares the snapshot with the fold when the fold is where it covers. A snapshot is
    /// written only after a committed batch, so it covers a chunk boundary.
    fn compare_snapshot(&mut self) {
        let Some(snapshot) = &self.snapshot else { return };
        if snapshot.state.next_seq() != self.state.next_seq() {
            return;
        }
        let next_seq = self.state.next_seq();
        if snapshot.state == self.state && snapshot.last_hash == self.last_hash && snapshot.index == self.index {
            self.snapshot_check = SnapshotCheck::Identical { next_seq };
        } else {
            self.snapshot_check = SnapshotCheck::Differs { next_seq };
            self.problems.push(Problem {
                seq: next_seq - 1,
                kind: ProblemKind::Snapshot,
                message: format!(
                    "the snapshot (which covers the log up to seq {}) differs from the fold of the log up to there; delete {} and reopen, or run `premia rebuild`",
                    next_seq - 1,
                    self.dir.join(SNAPSHOT_FILE).display()
                ),
            });
        }
    }

    /// An intact log that never reached the snapshot's position at the end of a batch: the
    /// snapshot claims a position the store never committed on its own.
    fn snapshot_never_reached(&mut self) {
        let (false, SnapshotCheck::NotReached, Some(snapshot)) = (self.broken, &self.snapshot_check, &self.snapshot)
        else {
            return;
        };
        let covered = snapshot.state.next_seq() - 1;
        self.problems.push(Problem {
            seq: covered,
            kind: ProblemKind::Snapshot,
            message: format!(
                "the snapshot covers the log up to seq {covered}, which is not the end of a stored batch; delete {} and reopen, or run `premia rebuild`",
                self.dir.join(SNAPSHOT_FILE).display()
            ),
        });
    }

    /// Entry chunks beside no log chunk: nothing books them, yet statements could read them.
    fn entries_without_log(&mut self, keys: impl Iterator<Item = sled::Result<sled::IVec>>) -> Result<(), LedgerError> {
        for item in keys {
            let key = item.map_err(store_error(self.dir))?;
            let Ok(seq) = seq_of_key(&key) else {
                self.problems.push(Problem {
                    seq: 0,
                    kind: ProblemKind::Entries,
                    message: format!("entries are stored under the key {}, which names no batch", key.escape_ascii()),
                });
                continue;
            };
            if !self.log_chunks.contains(&seq) {
                self.problems.push(Problem {
                    seq,
                    kind: ProblemKind::Entries,
                    message: format!("entries are stored for a batch at seq {seq}, but the log has no batch there"),
                });
            }
        }
        Ok(())
    }

    /// The seal of every closed period from the fold, compared with the one from the stored
    /// entries (none when the log broke).
    fn seals(&mut self) -> Vec<SealCheck> {
        if self.broken {
            return Vec::new();
        }
        let mut seals = Vec::new();
        for (period, (closed_seq, hash)) in &self.closes {
            let of = |hashers: &BTreeMap<Period, SealHasher>| {
                hashers.get(period).cloned().unwrap_or_else(|| SealHasher::new(*period)).finish(*closed_seq, hash)
            };
            let (folded, stored) = (of(&self.folded_seals), of(&self.stored_seals));
            let identical = folded == stored;
            if !identical {
                self.problems.push(Problem {
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
        seals
    }

    fn report(mut self, seals: Vec<SealCheck>) -> VerifyReport {
        self.problems.sort_by_key(|p| p.seq);
        VerifyReport {
            records: self.records,
            committed_seq: None,
            rejections: 0,
            chunks: self.chunks,
            entries: self.entries_checked,
            last_seq: self.state.next_seq() - 1,
            last_hash: hex(&self.last_hash),
            snapshot: self.snapshot_check,
            projection: ProjectionCheck::NotReached,
            seals,
            problems: self.problems,
        }
    }
}

/// The records of a damaged chunk before the first one that cannot be decoded (none when the
/// chunk does not even decompress).
fn readable_prefix(chunk_seq: u64, value: &[u8]) -> Vec<LogRecord> {
    match decompress_chunk(chunk_seq, value) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_kinds_are_named_as_in_the_json_report() {
        use ProblemKind::*;
        for kind in [Unreadable, Order, Chain, Fold, Entries, Snapshot, Seal, Head, Rejections, Store, ReplayIndex, Projection] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }
}
