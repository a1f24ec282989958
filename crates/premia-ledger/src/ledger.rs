//! The ledger: the core's fold state kept in memory, the log and everything else in one sled
//! tree (its layout: `store`), the fold state's snapshot beside it (`snapshot`), and the writer
//! thread that makes batches durable (`writer`).
//!
//! Recovery: check that the store reaches the committed head (`integrity`), load the snapshot
//! (if any, and if it matches the log), then fold every log record after the position it
//! covers. The log is only ever appended to, and a batch (its log chunk, its entries, its
//! rejections and the head after it) is one atomic sled batch, so after any crash the state is
//! exactly that of a prefix of the log, and never of less than what was committed.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use premia_core::fold::{Admitted, Entry, Folded, LedgerState};
use premia_core::seal::{seal, Seal};
use premia_core::{Admission, Event, Period, Rejection, Scheme, Statement};

use crate::error::LedgerError;
use crate::head::{chain_rejection, CommittedHead};
use crate::integrity::{open_checked, Access};
use crate::lock::DirLock;
use crate::log::{decode_chunk, encode_record, verify_link, Hash, LogRecord, Origin, GENESIS_HASH};
use crate::projection::{open_projection, write_projection, Covers, ProjectionRead, Source};
use crate::snapshot::{load_snapshot, write_snapshot};
use crate::statement_update::StatementUpdate;
use crate::store::{
    applied_entries, find_record, for_each_record, index_entries, read_cursors, read_entries, read_rejection,
    read_rejections, store_error, write_entries, EntryIndex, LedgerOptions, StoredRejection,
};
use crate::writer::{PendingBatch, Writer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildReport {
    pub records: u64,
    /// Whether folding the log from nothing gave exactly the state the ledger held.
    pub identical: bool,
}

pub struct Ledger {
    dir: PathBuf,
    // Fields drop in this order: the writer finishes (and lets go of its handle) before the
    // store closes, and the data dir lock is released last of all.
    writer: Writer,
    db: sled::Db,
    state: LedgerState,
    last_hash: Hash,
    next_rejection_id: u64,
    /// The digest chained over every kept rejection, pending ones included.
    rejection_hash: Hash,
    /// The committed head the store reached when it was opened.
    opened_head: CommittedHead,
    pending: PendingBatch,
    /// The log position the stored snapshot covers (its `next_seq`).
    snapshot_next_seq: u64,
    entry_index: EntryIndex,
    cursors: BTreeMap<String, u64>,
    /// While a read model is kept ([`track_statements`](Ledger::track_statements)): what each
    /// submitted batch changed for statements, with its ticket, until it is durable.
    statement_updates: Option<VecDeque<(u64, StatementUpdate)>>,
    _lock: DirLock,
}

/// Folds every log record from `state.next_seq()` on into `state`, checking each link of the
/// hash chain from `last_hash` (left at the last record's hash), and calls
/// `folded(chunk_seq, what_the_record_folded)` for each. Returns how many records it folded.
fn fold_log(
    db: &sled::Db,
    dir: &Path,
    state: &mut LedgerState,
    last_hash: &mut Hash,
    mut folded: impl FnMut(u64, &[Folded]) -> Result<(), LedgerError>,
) -> Result<u64, LedgerError> {
    let mut records = 0u64;
    for_each_record(db, dir, state.next_seq(), |chunk_seq, record| {
        if !verify_link(last_hash, &record) {
            return Err(LedgerError::ChainBroken { seq: record.seq });
        }
        folded(chunk_seq, &state.replay(record.seq, &record.raw)?)?;
        *last_hash = record.hash;
        records += 1;
        Ok(())
    })?;
    Ok(records)
}

/// The entries of a log folded again from nothing, compared chunk by chunk with the stored
/// ones (and written over them where they differ), and indexed.
struct RefoldedEntries<'a> {
    db: &'a sled::Db,
    dir: &'a Path,
    index: EntryIndex,
    identical: bool,
    /// The chunk being folded and what its records booked so far.
    chunk: Option<(u64, Vec<Entry>)>,
}

impl RefoldedEntries<'_> {
    fn add(&mut self, chunk_seq: u64, folded: &[Folded]) -> Result<(), LedgerError> {
        if self.chunk.as_ref().is_some_and(|(seq, _)| *seq != chunk_seq) {
            self.settle()?;
        }
        self.chunk.get_or_insert_with(|| (chunk_seq, Vec::new())).1.extend(applied_entries(folded).cloned());
        Ok(())
    }

    /// Compares the chunk just folded with the stored one.
    fn settle(&mut self) -> Result<(), LedgerError> {
        let Some((chunk_seq, entries)) = self.chunk.take() else { return Ok(()) };
        if read_entries(self.db, self.dir, chunk_seq)? != entries {
            self.identical = false;
            write_entries(self.db, self.dir, chunk_seq, &entries)?;
        }
        index_entries(&mut self.index, chunk_seq, &entries);
        Ok(())
    }
}

/// Writes the snapshot of the log just folded in place of one of another version, and returns
/// the position it covers. It is only a cache: when it cannot be written, the old one stays
/// ignored and the next open folds the log again.
fn replace_snapshot(dir: &Path, last_hash: Hash, state: &LedgerState, index: &EntryIndex) -> u64 {
    match write_snapshot(dir, last_hash, state, index) {
        Ok(()) => {
            tracing::info!(next_seq = state.next_seq(), "replaced the snapshot of another version");
            state.next_seq()
        }
        Err(e) => {
            tracing::warn!(
                "the snapshot of another version could not be replaced ({e}); the next open folds the log again"
            );
            1
        }
    }
}

impl Ledger {
    /// Opens (or creates) the ledger in `dir`, holding it exclusively until dropped, and brings
    /// the state up to the end of the log.
    pub fn open(dir: &Path, options: &LedgerOptions, command: &str) -> Result<Ledger, LedgerError> {
        let lock = DirLock::acquire(dir, command)?;
        let checked = open_checked(dir, dir, options, Access::Write)?;
        let db = checked.db;
        let loaded = load_snapshot(dir, &db);
        let (mut state, mut last_hash, mut entry_index) = match loaded.snapshot {
            Some(loaded) => (loaded.state, loaded.last_hash, loaded.index),
            None => (LedgerState::new(), GENESIS_HASH, EntryIndex::new()),
        };
        let snapshot_next_seq = state.next_seq();
        // The entries of these records are already stored beside their chunks: only the index
        // needs them.
        let replayed = fold_log(&db, dir, &mut state, &mut last_hash, |chunk_seq, folded| {
            let entries: Vec<Entry> = applied_entries(folded).cloned().collect();
            index_entries(&mut entry_index, chunk_seq, &entries);
            Ok(())
        })?;
        if replayed > 0 {
            tracing::info!(replayed, "folded the log records written after the last snapshot");
        }
        // The fold checked every link after the snapshot, and integrity the end of the log.
        assert_eq!(state.next_seq() - 1, checked.end.last_seq, "the fold reaches the end of the log");
        assert_eq!(last_hash, checked.end.chain_hash, "the fold ends on the log's last hash");
        let head_file = checked.head_file.expect("a writer's store has its head file open");
        let snapshot_next_seq =
            if loaded.replace { replace_snapshot(dir, last_hash, &state, &entry_index) } else { snapshot_next_seq };
        Ok(Ledger {
            dir: dir.to_path_buf(),
            next_rejection_id: checked.end.rejections + 1,
            rejection_hash: checked.end.rejection_hash,
            opened_head: checked.end,
            cursors: read_cursors(&db, dir)?,
            writer: Writer::start(db.clone(), head_file).map_err(LedgerError::WriterThread)?,
            _lock: lock,
            db,
            state,
            last_hash,
            pending: PendingBatch::default(),
            snapshot_next_seq,
            entry_index,
            statement_updates: None,
        })
    }

    pub fn state(&self) -> &LedgerState {
        &self.state
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Offers one input line. Its effects are in memory at once and durable after [`commit`].
    ///
    /// [`commit`]: Ledger::commit
    pub fn offer(&mut self, raw: &[u8], origin: Origin, admission: Admission, arrived_ms: i64) -> Admitted {
        let admitted = self.state.admit(raw, admission);
        self.record_admission(raw, origin, arrived_ms, admitted)
    }

    /// [`offer`](Self::offer) for a line parsed elsewhere under `parsed_with`.
    pub fn offer_parsed(
        &mut self,
        raw: &[u8],
        parsed: Result<Event, Rejection>,
        parsed_with: &Arc<Scheme>,
        origin: Origin,
        admission: Admission,
        arrived_ms: i64,
    ) -> Admitted {
        let admitted = self.state.admit_parsed(raw, parsed, parsed_with, admission);
        self.record_admission(raw, origin, arrived_ms, admitted)
    }

    fn record_admission(&mut self, raw: &[u8], origin: Origin, arrived_ms: i64, admitted: Admitted) -> Admitted {
        match &admitted {
            Admitted::Logged { seq, preamble, folded } => {
                if let Some(own) = preamble {
                    self.append(own.seq, arrived_ms, Origin::Ledger, &own.raw);
                }
                self.append(*seq, arrived_ms, origin, raw);
                self.pending.entries.extend(applied_entries(folded).cloned());
            }
            Admitted::Duplicate => {}
            Admitted::Rejected(rejection) => {
                let id = self.next_rejection_id;
                self.next_rejection_id += 1;
                let stored = StoredRejection {
                    id,
                    arrived_ms,
                    origin,
                    after_seq: self.state.next_seq() - 1,
                    reason: rejection.reason,
                    message: rejection.message.clone(),
                    raw: raw.to_vec(),
                };
                let bytes = bincode::serialize(&stored).expect("a rejection always encodes");
                self.rejection_hash = chain_rejection(&self.rejection_hash, id, &bytes);
                self.pending.rejections.push((id, bytes));
            }
        }
        admitted
    }

    fn append(&mut self, seq: u64, arrived_ms: i64, origin: Origin, raw: &[u8]) {
        self.pending.first_seq.get_or_insert(seq);
        self.pending.records += 1;
        self.last_hash = encode_record(&mut self.pending.chunk, &self.last_hash, seq, arrived_ms, &origin, raw);
    }

    /// Writes waiting for the next commit (logged records, stored rejections, cursors).
    pub fn pending_writes(&self) -> usize {
        self.pending.records + self.pending.rejections.len() + self.pending.cursors.len()
    }

    /// Records how far an input has been read (for JetStream: the last stream sequence offered).
    /// It is written in the same atomic batch as what was offered before it, so after a crash
    /// the cursor and the log always agree.
    pub fn set_cursor(&mut self, name: &str, position: u64) {
        self.cursors.insert(name.to_string(), position);
        // Only the last position of a batch is written, however often it moved meanwhile.
        match self.pending.cursors.iter_mut().find(|(pending, _)| pending == name) {
            Some((_, pending)) => *pending = position,
            None => self.pending.cursors.push((name.to_string(), position)),
        }
    }

    /// The position last set for an input, committed or not.
    pub fn cursor(&self, name: &str) -> Option<u64> {
        self.cursors.get(name).copied()
    }

    /// Hands everything offered since the last submit to the writer thread, which writes it as
    /// one atomic sled batch and flushes it, while the caller folds on. Returns the batch's
    /// ticket for [`wait_durable`](Self::wait_durable). At most two batches wait to be written.
    pub fn submit(&mut self) -> Result<u64, LedgerError> {
        if self.pending_writes() == 0 {
            return Ok(self.writer.submitted());
        }
        let mut pending = std::mem::take(&mut self.pending);
        pending.head = CommittedHead {
            generation: 0,
            last_seq: self.state.next_seq() - 1,
            chain_hash: self.last_hash,
            rejections: self.next_rejection_id - 1,
            rejection_hash: self.rejection_hash,
        };
        assert_eq!(pending.first_seq.is_some(), pending.records > 0, "a batch's chunk starts at its first record");
        assert!(pending.first_seq.is_some() || pending.entries.is_empty(), "only logged records book entries");
        if let Some(first_seq) = pending.first_seq {
            index_entries(&mut self.entry_index, first_seq, &pending.entries);
        }
        // Taken here, from the state this batch leaves, so that every batch has its update
        // whoever submits it.
        let update = self.statement_updates.is_some().then(|| StatementUpdate::take(&mut self.state, &pending.entries));
        let ticket =
            self.writer.submit(pending).map_err(|source| LedgerError::Store { dir: self.dir.clone(), source })?;
        if let (Some(updates), Some(update)) = (&mut self.statement_updates, update) {
            updates.push_back((ticket, update));
        }
        Ok(ticket)
    }

    /// Starts (or stops) recording, for each batch submitted, what it changes for statements
    /// (a [`StatementUpdate`], for a [`ReadModel`](crate::ReadModel) beside this ledger);
    /// [`durable_statement_updates`](Self::durable_statement_updates) hands them out once
    /// their batch is on disk. Start it with nothing offered since the last commit.
    pub fn track_statements(&mut self, on: bool) {
        self.state.track_changes(on);
        self.statement_updates = on.then(VecDeque::new);
    }

    /// The statement updates of the batches made durable since the last call, in order.
    pub fn durable_statement_updates(&mut self) -> Result<Vec<StatementUpdate>, LedgerError> {
        let mut durable = Vec::new();
        while let Some((ticket, _)) = self.statement_updates.as_ref().and_then(|u| u.front()) {
            if !self.is_durable(*ticket)? {
                break;
            }
            if let Some((_, update)) = self.statement_updates.as_mut().and_then(|u| u.pop_front()) {
                durable.push(update);
            }
        }
        Ok(durable)
    }

    /// Blocks until the batch `ticket` (and every batch before it) is flushed to disk.
    pub fn wait_durable(&self, ticket: u64) -> Result<(), LedgerError> {
        self.writer.wait(ticket).map_err(|source| LedgerError::Store { dir: self.dir.clone(), source })
    }

    /// Calls `hook` from the writer thread each time a batch is flushed, with its ticket (0
    /// after a failure; [`is_durable`](Self::is_durable) then reports it). It must be quick.
    pub fn on_durable(&mut self, hook: impl Fn(u64) + Send + 'static) {
        self.writer.on_durable(Box::new(hook));
    }

    /// Whether the batch `ticket` is flushed to disk, without waiting.
    pub fn is_durable(&self, ticket: u64) -> Result<bool, LedgerError> {
        self.writer.is_durable(ticket).map_err(|source| LedgerError::Store { dir: self.dir.clone(), source })
    }

    /// Writes everything offered so far as one atomic sled batch and flushes it. Only after this
    /// returns may anything offered be reported as done (or acknowledged).
    pub fn commit(&mut self) -> Result<(), LedgerError> {
        let ticket = self.submit()?;
        self.wait_durable(ticket)
    }

    fn wait_all_durable(&self) -> Result<(), LedgerError> {
        self.wait_durable(self.writer.submitted())
    }

    /// Stores the fold state so the next open need not fold the whole log. Commits first.
    pub fn snapshot(&mut self) -> Result<(), LedgerError> {
        self.commit()?;
        if self.snapshot_next_seq == self.state.next_seq() {
            return Ok(());
        }
        write_snapshot(&self.dir, self.last_hash, &self.state, &self.entry_index)
            .map_err(|source| LedgerError::Snapshot { dir: self.dir.clone(), source })?;
        self.snapshot_next_seq = self.state.next_seq();
        Ok(())
    }

    /// What a writer does when it is done: stores the snapshot, then the period projection
    /// (`projection`) that statements and figures read without loading the state. Only here,
    /// not at every snapshot: no read runs while a writer holds the data dir, so a projection
    /// written before its last batch would never be used.
    pub fn snapshot_and_project(&mut self) -> Result<(), LedgerError> {
        self.snapshot()?;
        let covers = Covers { last_seq: self.state.next_seq() - 1, last_hash: self.last_hash };
        if let ProjectionRead::Read(stored) = open_projection(&self.dir) {
            if stored.toc.covers == covers {
                return Ok(());
            }
        }
        let entries_of = |period| self.entries_of(period);
        let hash_of = |seq| self.stored_hash(seq);
        let source = Source { state: &self.state, last_hash: self.last_hash, entries_of: &entries_of, hash_of: &hash_of };
        let started = std::time::Instant::now();
        write_projection(&self.dir, &source)?;
        tracing::info!(projection_ms = started.elapsed().as_millis() as u64, "period projection stored");
        Ok(())
    }

    /// Copies what is durable into the new data dir `target` (docs/OPERATIONS.md): a consistent
    /// backup as of the last durable batch, taken while this ledger stays open. What was offered
    /// but not yet submitted is not in it (after a restore, JetStream delivers it again).
    pub fn back_up(&self, target: &Path) -> Result<crate::backup::BackupReport, crate::backup::BackupError> {
        self.wait_all_durable()?;
        crate::backup::back_up(&self.db, &self.dir, target)
    }

    /// What is durable: the committed head after the last durable batch (the one found on open
    /// before any). Two ledgers of one stream at the same record have the same head.
    pub fn committed_head(&self) -> CommittedHead {
        self.writer.durable_head().unwrap_or(self.opened_head)
    }

    /// Events folded since the stored snapshot.
    pub fn events_since_snapshot(&self) -> u64 {
        self.state.next_seq() - self.snapshot_next_seq
    }

    /// Folds the whole log again from nothing, checking every link of the hash chain, and
    /// reports whether the result equals the state the ledger holds. Replaces the snapshot.
    pub fn rebuild(&mut self, mut progress: impl FnMut(u64)) -> Result<RebuildReport, LedgerError> {
        self.commit()?;
        let mut state = LedgerState::new();
        let mut last_hash = GENESIS_HASH;
        let mut entries =
            RefoldedEntries { db: &self.db, dir: &self.dir, index: EntryIndex::new(), identical: true, chunk: None };
        let mut records = 0u64;
        fold_log(&self.db, &self.dir, &mut state, &mut last_hash, |chunk_seq, folded| {
            entries.add(chunk_seq, folded)?;
            records += 1;
            if records.is_multiple_of(65_536) {
                progress(records);
            }
            Ok(())
        })?;
        entries.settle()?;
        let (index, entries_identical) = (entries.index, entries.identical);
        self.db.flush().map_err(store_error(&self.dir))?;
        progress(records);
        let identical =
            state == self.state && last_hash == self.last_hash && entries_identical && index == self.entry_index;
        self.state = state;
        // A read model kept beside the old state would not follow the new one.
        self.statement_updates = None;
        self.last_hash = last_hash;
        self.entry_index = index;
        self.snapshot_next_seq = 0;
        self.snapshot()?;
        // It may have been written from the state just replaced: the caller writes it again.
        match std::fs::remove_file(crate::projection::projection_path(&self.dir)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(LedgerError::Snapshot { dir: self.dir.clone(), source: e })
            }
            _ => {}
        }
        Ok(RebuildReport { records, identical })
    }

    /// The log record with sequence number `seq`, committed or still in the batch being
    /// gathered: a read through the serving loop sees every record the state has folded, as
    /// [`entries_of_seq`](Self::entries_of_seq) sees their entries.
    pub fn record(&self, seq: u64) -> Result<Option<LogRecord>, LedgerError> {
        if let Some(first_seq) = self.pending.first_seq.filter(|&first| seq >= first) {
            return Ok(decode_chunk(first_seq, &self.pending.chunk)?.into_iter().find(|r| r.seq == seq));
        }
        self.wait_all_durable()?;
        find_record(&self.db, &self.dir, seq)
    }

    /// Every log record from `from_seq` on, in order, with the first seq of its chunk.
    pub fn for_each_record(
        &self,
        from_seq: u64,
        f: impl FnMut(u64, LogRecord) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        for_each_record(&self.db, &self.dir, from_seq, f)
    }

    /// The entries booked in `period`, in booking order (committed ones and pending ones).
    pub fn entries_of(&self, period: Period) -> Result<Vec<Entry>, LedgerError> {
        self.wait_all_durable()?;
        let mut entries = Vec::new();
        for &chunk_seq in self.entry_index.get(&period).map(Vec::as_slice).unwrap_or_default() {
            entries.extend(read_entries(&self.db, &self.dir, chunk_seq)?.into_iter().filter(|e| e.period == period));
        }
        entries.extend(self.pending.entries.iter().filter(|e| e.period == period).cloned());
        Ok(entries)
    }

    /// Calls `f` with each entry booked in `period` by the batches whose log chunk starts
    /// before `next_seq`, in booking order, without waiting for a flush: the caller knows those
    /// batches are on disk (a read model's published batches).
    pub(crate) fn for_each_stored_entry_before(
        &self,
        period: Period,
        next_seq: u64,
        mut f: impl FnMut(Entry),
    ) -> Result<(), LedgerError> {
        for &chunk_seq in self.entry_index.get(&period).map(Vec::as_slice).unwrap_or_default() {
            if chunk_seq >= next_seq {
                break;
            }
            read_entries(&self.db, &self.dir, chunk_seq)?.into_iter().filter(|e| e.period == period).for_each(&mut f);
        }
        Ok(())
    }

    /// The chain hash of log record `seq`, which is on disk.
    pub(crate) fn stored_hash(&self, seq: u64) -> Result<Hash, LedgerError> {
        let record = find_record(&self.db, &self.dir, seq)?;
        record.map(|r| r.hash).ok_or_else(|| {
            LedgerError::Decode(format!("log record {seq}, which closed a period, is missing; run `premia verify`"))
        })
    }

    /// The entries booked by log record `seq` (committed or pending), in booking order; empty
    /// when it booked nothing. They are stored with the batch of the record whose fold booked
    /// them: the record's own, or, when it waited for its deal or payment, the one that released
    /// it, which the state tells from the record's ids (`audit::record_applied_at`). Reads the
    /// record and one stored entry chunk per period at most: in each period's list of chunks, the
    /// last one starting at or before that record.
    pub fn entries_of_seq(&self, seq: u64) -> Result<Vec<Entry>, LedgerError> {
        let applied_at = match self.record(seq)? {
            Some(record) => premia_core::explain::record_applied_at(&self.state, seq, &record.raw),
            None => return Ok(Vec::new()),
        };
        self.wait_all_durable()?;
        let mut chunks: Vec<u64> = self
            .entry_index
            .values()
            .filter_map(|chunks| chunks.partition_point(|&c| c <= applied_at).checked_sub(1).map(|i| chunks[i]))
            .collect();
        chunks.sort_unstable();
        chunks.dedup();
        let mut entries = Vec::new();
        for chunk_seq in chunks {
            entries.extend(read_entries(&self.db, &self.dir, chunk_seq)?.into_iter().filter(|e| e.seq == seq));
        }
        entries.extend(self.pending.entries.iter().filter(|e| e.seq == seq).cloned());
        Ok(entries)
    }

    /// The statement of a period, as `LedgerState::statement` with the stored entries, and the
    /// period's seal when it is closed.
    pub fn statement(&self, period: Period, manager: Option<&str>) -> Result<Statement, LedgerError> {
        let entries = self.entries_of(period)?;
        let seal = self.seal(period, &entries)?;
        let mut statement = self.state.statement(period, manager, &entries);
        statement.seal = seal.map(|s| s.view());
        Ok(statement)
    }

    /// The seal of `period` when it is closed. `entries` are the period's entries in booking
    /// order (as [`entries_of`](Self::entries_of) gives them).
    pub fn seal(&self, period: Period, entries: &[Entry]) -> Result<Option<Seal>, LedgerError> {
        let Some(&closed_seq) = self.state.closed_periods().get(&period) else { return Ok(None) };
        let record = self.record(closed_seq)?.ok_or_else(|| {
            LedgerError::Decode(format!(
                "log record {closed_seq}, which closed {period}, is missing; run `premia verify`"
            ))
        })?;
        Ok(Some(seal(period, entries, closed_seq, &record.hash)))
    }

    /// The chain hash of the last record appended (committed or not).
    pub fn last_hash(&self) -> Hash {
        self.last_hash
    }

    pub(crate) fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Appends a record copied from another ledger's log (an export), keeping its sequence
    /// number, arrival time and origin so that the hash chain comes out the same, and folds it
    /// as recovery does. The caller checks that it follows this log (`audit::import_export`).
    pub fn append_replayed(
        &mut self,
        seq: u64,
        arrived_ms: i64,
        origin: Origin,
        raw: &[u8],
    ) -> Result<Vec<Folded>, LedgerError> {
        let folded = self.state.replay(seq, raw)?;
        self.append(seq, arrived_ms, origin, raw);
        self.pending.entries.extend(applied_entries(&folded).cloned());
        Ok(folded)
    }

    /// The stored rejections, oldest first.
    pub fn rejections(&self) -> Result<Vec<StoredRejection>, LedgerError> {
        self.wait_all_durable()?;
        read_rejections(&self.db, &self.dir)
    }

    pub fn rejection(&self, id: u64) -> Result<Option<StoredRejection>, LedgerError> {
        self.wait_all_durable()?;
        read_rejection(&self.db, &self.dir, id)
    }
}
