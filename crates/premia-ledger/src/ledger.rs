//! The ledger: the core's fold state kept in memory, the log and everything else in one sled tree.
//!
//! Keys of the one tree (one tree, so that one `apply_batch` is atomic for all of them):
//!
//! | key                    | value |
//! |------------------------|-------|
//! | `log` + first seq (BE) | a chunk of log records (see `log`), LZ4-compressed |
//! | `ent` + first seq (BE) | the entries the records of that chunk booked, LZ4-compressed |
//! | `rej` + id (BE)        | a line rejected by validation or as a conflict, raw bytes kept |
//! | `cur` + name           | an input's position (a JetStream stream sequence), written in the same batch as what it covers |
//!
//! Entries are derived data, but they are kept in the store rather than in memory: a statement
//! reads the entry chunks of its period (an in-memory index says which), and the fold state
//! holds only totals.
//!
//! The snapshot of the fold state lives beside the store, in `DIR/snapshot.bin`: it is derived
//! data (a cache of folding the log), hundreds of megabytes for millions of events, and sled is
//! built for many small values rather than one huge one. It is written to a temporary file,
//! synced and renamed, so it is always a whole snapshot of some committed prefix of the log.
//!
//! Recovery: load the snapshot (if any, and if it matches the log), then fold every log record
//! after the position it covers. The log is only ever appended to, and a batch (its log chunk,
//! its entries and its rejections) is one atomic sled batch, so after any crash the state is
//! exactly that of a prefix of the log.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Condvar, Mutex};

use premia_core::fold::{Admitted, Entry, Folded, LedgerState, Outcome, ReplayError};
use premia_core::{Admission, Event, Period, Reason, Rejection, Scheme, Statement};
use serde::{Deserialize, Serialize};

use crate::lock::{DirLock, LockError};
use crate::log::{decode_chunk, encode_record, verify_link, ChunkError, Hash, LogRecord, Origin, GENESIS_HASH};
use crate::read_model::StatementUpdate;

pub(crate) const LOG_PREFIX: &[u8] = b"log";
pub(crate) const ENTRY_PREFIX: &[u8] = b"ent";
const REJECTION_PREFIX: &[u8] = b"rej";
const CURSOR_PREFIX: &[u8] = b"cur";
pub(crate) const SNAPSHOT_FILE: &str = "snapshot.bin";
/// Bumped whenever the snapshot's layout changes; an old snapshot is then ignored and the state
/// rebuilt from the log, which never changes format silently.
const SNAPSHOT_FORMAT: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error(
        "the ledger store in {dir} cannot be used: {source}. Check the directory's permissions and free disk space"
    )]
    Store { dir: PathBuf, source: sled::Error },
    #[error("the ledger log is damaged: {0}. Run `premia rebuild` to see where; restore the data dir from a backup if it persists")]
    Chunk(#[from] ChunkError),
    #[error("the ledger log does not fold cleanly: {0}")]
    Replay(#[from] ReplayError),
    #[error("the hash chain breaks at log record {seq}: the record was changed after it was written")]
    ChainBroken { seq: u64 },
    #[error("a stored record cannot be read: {0}")]
    Decode(String),
    #[error("cannot write the snapshot in {dir}: {source}. Check free disk space; the log itself is intact")]
    Snapshot { dir: PathBuf, source: std::io::Error },
}

fn write_snapshot(dir: &Path, header: &SnapshotHeader, state: &LedgerState, index: &EntryIndex) -> std::io::Result<()> {
    use std::io::Write;
    let temporary = dir.join("snapshot.tmp");
    let file = std::fs::File::create(&temporary)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let encode = |e: bincode::Error| std::io::Error::other(e.to_string());
    bincode::serialize_into(&mut out, header).map_err(encode)?;
    bincode::serialize_into(&mut out, state).map_err(encode)?;
    bincode::serialize_into(&mut out, index).map_err(encode)?;
    out.flush()?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&temporary, dir.join(SNAPSHOT_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

/// The stored snapshot, when there is one that this version can read and that matches the log.
pub(crate) fn load_snapshot(dir: &Path, db: &sled::Db) -> Option<(LedgerState, Hash, EntryIndex)> {
    let file = std::fs::File::open(dir.join(SNAPSHOT_FILE)).ok()?;
    let mut input = std::io::BufReader::with_capacity(1 << 20, file);
    let header: SnapshotHeader = bincode::deserialize_from(&mut input).ok()?;
    if header.format != SNAPSHOT_FORMAT {
        tracing::warn!("the snapshot is from another version of premia; folding the whole log");
        return None;
    }
    let decoded = bincode::deserialize_from::<_, LedgerState>(&mut input)
        .and_then(|state| bincode::deserialize_from::<_, EntryIndex>(&mut input).map(|index| (state, index)));
    let (mut state, index) = match decoded {
        Ok(decoded) => decoded,
        Err(e) => {
            tracing::warn!(error = %e, "the snapshot cannot be read; folding the whole log");
            return None;
        }
    };
    // A snapshot is only ever written after the log it covers: its last record must be there,
    // with the same hash. Anything else (a restored backup of one but not the other) is ignored.
    let last_seq = state.next_seq() - 1;
    if last_seq > 0 {
        let found = find_record(db, dir, last_seq).ok().flatten().map(|r| r.hash);
        if found != Some(header.last_hash) {
            tracing::warn!(last_seq, "the snapshot does not match the log; folding the whole log");
            return None;
        }
    }
    state.after_load();
    Some((state, header.last_hash, index))
}

pub(crate) fn store_error(dir: &Path) -> impl Fn(sled::Error) -> LedgerError + '_ {
    move |source| LedgerError::Store { dir: dir.to_path_buf(), source }
}

/// A line rejected before it reached the log (validation or conflict), kept byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRejection {
    pub id: u64,
    pub arrived_ms: i64,
    pub origin: Origin,
    /// The log's length when it arrived: it came after log record `after_seq`.
    pub after_seq: u64,
    pub reason: Reason,
    pub message: String,
    pub raw: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotHeader {
    format: u32,
    /// The hash of the last log record the state covers.
    last_hash: Hash,
}

/// Tuning of the store.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    /// sled's page cache, in bytes. The log is read sequentially, so a small cache is enough.
    pub cache_bytes: u64,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions { cache_bytes: 8 << 20 }
    }
}

/// Writes not yet committed: one chunk of log records, the entries they booked and the
/// rejections that came with them.
#[derive(Default)]
struct PendingBatch {
    chunk: Vec<u8>,
    first_seq: Option<u64>,
    records: usize,
    entries: Vec<Entry>,
    rejections: Vec<StoredRejection>,
    cursors: Vec<(String, u64)>,
}

/// Which chunks hold entries of which period, in order.
pub type EntryIndex = BTreeMap<Period, Vec<u64>>;

pub(crate) fn index_entries(index: &mut EntryIndex, chunk_seq: u64, entries: &[Entry]) {
    for entry in entries {
        let chunks = index.entry(entry.period).or_default();
        if chunks.last() != Some(&chunk_seq) {
            chunks.push(chunk_seq);
        }
    }
}

pub(crate) fn applied_entries(folded: &[Folded]) -> impl Iterator<Item = &Entry> {
    folded.iter().flat_map(|f| match &f.outcome {
        Outcome::Applied { entries } => entries.as_slice(),
        _ => &[],
    })
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

pub(crate) fn log_key(seq: u64) -> [u8; 11] {
    let mut key = [0u8; 11];
    key[..3].copy_from_slice(LOG_PREFIX);
    key[3..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn entry_key(seq: u64) -> [u8; 11] {
    let mut key = [0u8; 11];
    key[..3].copy_from_slice(ENTRY_PREFIX);
    key[3..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn rejection_key(id: u64) -> [u8; 11] {
    let mut key = [0u8; 11];
    key[..3].copy_from_slice(REJECTION_PREFIX);
    key[3..].copy_from_slice(&id.to_be_bytes());
    key
}

pub(crate) fn seq_of_key(key: &[u8]) -> u64 {
    key.get(3..11).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes).unwrap_or(0)
}

impl Ledger {
    /// Opens (or creates) the ledger in `dir`, holding it exclusively until dropped, and brings
    /// the state up to the end of the log.
    pub fn open(dir: &Path, options: &LedgerOptions, command: &str) -> Result<Ledger, LedgerError> {
        let lock = DirLock::acquire(dir, command)?;
        let db = open_sled(&sled_config(dir, options)).map_err(store_error(dir))?;
        let (mut state, mut last_hash, mut entry_index) = match load_snapshot(dir, &db) {
            Some(loaded) => loaded,
            None => (LedgerState::new(), GENESIS_HASH, EntryIndex::new()),
        };
        let snapshot_next_seq = state.next_seq();
        let from = state.next_seq();
        let mut replayed = 0u64;
        // The entries of these records are already stored beside their chunks: only the index
        // needs them.
        for_each_record(&db, dir, from, |chunk_seq, record| {
            if !verify_link(&last_hash, &record) {
                return Err(LedgerError::ChainBroken { seq: record.seq });
            }
            let folded = state.replay(record.seq, &record.raw)?;
            let entries: Vec<Entry> = applied_entries(&folded).cloned().collect();
            index_entries(&mut entry_index, chunk_seq, &entries);
            last_hash = record.hash;
            replayed += 1;
            Ok(())
        })?;
        if replayed > 0 {
            tracing::info!(replayed, "folded the log records written after the last snapshot");
        }
        let next_rejection_id = db
            .scan_prefix(REJECTION_PREFIX)
            .next_back()
            .transpose()
            .map_err(store_error(dir))?
            .map_or(1, |(k, _)| seq_of_key(&k) + 1);
        let mut cursors = BTreeMap::new();
        for item in db.scan_prefix(CURSOR_PREFIX) {
            let (key, value) = item.map_err(store_error(dir))?;
            let name = String::from_utf8_lossy(&key[CURSOR_PREFIX.len()..]).into_owned();
            let position = value.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
            cursors.insert(name, position);
        }
        let writer_db = db.clone();
        Ok(Ledger {
            dir: dir.to_path_buf(),
            _lock: lock,
            db,
            state,
            last_hash,
            next_rejection_id,
            pending: PendingBatch::default(),
            snapshot_next_seq,
            entry_index,
            writer: Writer::start(writer_db),
            cursors,
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
                self.pending.rejections.push(StoredRejection {
                    id,
                    arrived_ms,
                    origin,
                    after_seq: self.state.next_seq() - 1,
                    reason: rejection.reason,
                    message: rejection.message.clone(),
                    raw: raw.to_vec(),
                });
            }
        }
        admitted
    }

    fn append(&mut self, seq: u64, arrived_ms: i64, origin: Origin, raw: &[u8]) {
        self.pending.first_seq.get_or_insert(seq);
        self.pending.records += 1;
        self.last_hash = encode_record(&mut self.pending.chunk, &self.last_hash, seq, arrived_ms, origin, raw);
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
            return Ok(self.writer.submitted);
        }
        let pending = std::mem::take(&mut self.pending);
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
        let mut state = self.writer.progress.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.on_durable = Some(Box::new(hook));
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
        self.wait_durable(self.writer.submitted)
    }

    /// Stores the fold state so the next open need not fold the whole log. Commits first.
    pub fn snapshot(&mut self) -> Result<(), LedgerError> {
        self.commit()?;
        if self.snapshot_next_seq == self.state.next_seq() {
            return Ok(());
        }
        let header = SnapshotHeader { format: SNAPSHOT_FORMAT, last_hash: self.last_hash };
        write_snapshot(&self.dir, &header, &self.state, &self.entry_index)
            .map_err(|source| LedgerError::Snapshot { dir: self.dir.clone(), source })?;
        self.snapshot_next_seq = self.state.next_seq();
        Ok(())
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
        let mut records = 0u64;
        let mut index = EntryIndex::new();
        let mut entries_identical = true;
        // The entries of the chunk being folded; compared with (and if need be written over)
        // the stored ones when the next chunk starts.
        let mut chunk: Option<(u64, Vec<Entry>)> = None;
        let db = self.db.clone();
        let dir = self.dir.clone();
        let mut settle = |chunk_seq: u64, entries: Vec<Entry>, index: &mut EntryIndex| -> Result<(), LedgerError> {
            let stored = read_entries(&db, &dir, chunk_seq)?;
            if stored != entries {
                entries_identical = false;
                let bytes = bincode::serialize(&entries).map_err(|e| LedgerError::Decode(e.to_string()))?;
                db.insert(entry_key(chunk_seq), lz4_flex::compress_prepend_size(&bytes)).map_err(store_error(&dir))?;
            }
            index_entries(index, chunk_seq, &entries);
            Ok(())
        };
        for_each_record(&self.db, &self.dir, 1, |chunk_seq, record| {
            if !verify_link(&last_hash, &record) {
                return Err(LedgerError::ChainBroken { seq: record.seq });
            }
            if chunk.as_ref().is_some_and(|(seq, _)| *seq != chunk_seq) {
                if let Some((seq, entries)) = chunk.take() {
                    settle(seq, entries, &mut index)?;
                }
            }
            let folded = state.replay(record.seq, &record.raw)?;
            chunk.get_or_insert_with(|| (chunk_seq, Vec::new())).1.extend(applied_entries(&folded).cloned());
            last_hash = record.hash;
            records += 1;
            if records.is_multiple_of(65_536) {
                progress(records);
            }
            Ok(())
        })?;
        if let Some((seq, entries)) = chunk.take() {
            settle(seq, entries, &mut index)?;
        }
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
        let seal = crate::audit::seal_of(self, period, &entries)?;
        let mut statement = self.state.statement(period, manager, &entries);
        statement.seal = seal.map(|s| s.view());
        Ok(statement)
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
        self.db
            .scan_prefix(REJECTION_PREFIX)
            .values()
            .map(|v| {
                let bytes = v.map_err(store_error(&self.dir))?;
                bincode::deserialize(&bytes).map_err(|e| LedgerError::Decode(e.to_string()))
            })
            .collect()
    }

    pub fn rejection(&self, id: u64) -> Result<Option<StoredRejection>, LedgerError> {
        self.wait_all_durable()?;
        match self.db.get(rejection_key(id)).map_err(store_error(&self.dir))? {
            Some(bytes) => bincode::deserialize(&bytes).map(Some).map_err(|e| LedgerError::Decode(e.to_string())),
            None => Ok(None),
        }
    }
}

pub(crate) fn sled_config(dir: &Path, options: &LedgerOptions) -> sled::Config {
    sled::Config::new().path(dir.join("sled")).cache_capacity(options.cache_bytes).flush_every_ms(None)
}

/// Opens sled. Our own lock already keeps other processes out, so sled's file lock can only be
/// held by a handle of this process that was just dropped: sled releases it a moment later on a
/// background thread. Such a conflict is waited out (up to two seconds); anything else is not.
pub(crate) fn open_sled(config: &sled::Config) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match config.open() {
            // sled wraps the lock failure in an `Other` error that names it.
            Err(sled::Error::Io(e))
                if (e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("could not acquire lock"))
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

pub(crate) fn read_entries(db: &sled::Db, dir: &Path, chunk_seq: u64) -> Result<Vec<Entry>, LedgerError> {
    let Some(value) = db.get(entry_key(chunk_seq)).map_err(store_error(dir))? else { return Ok(Vec::new()) };
    let bytes = lz4_flex::decompress_size_prepended(&value)
        .map_err(|e| LedgerError::Decode(format!("entries of chunk {chunk_seq}: {e}")))?;
    bincode::deserialize(&bytes).map_err(|e| LedgerError::Decode(format!("entries of chunk {chunk_seq}: {e}")))
}

pub(crate) fn decode_stored_chunk(chunk_seq: u64, value: &[u8]) -> Result<Vec<LogRecord>, LedgerError> {
    let bytes = lz4_flex::decompress_size_prepended(value).map_err(|_| ChunkError {
        chunk_seq,
        offset: 0,
        what: "the compressed chunk does not decompress",
    })?;
    Ok(decode_chunk(chunk_seq, &bytes)?)
}

pub(crate) fn find_record(db: &sled::Db, dir: &Path, seq: u64) -> Result<Option<LogRecord>, LedgerError> {
    let Some(entry) = db.range(log_key(0)..=log_key(seq)).next_back() else { return Ok(None) };
    let (key, chunk) = entry.map_err(store_error(dir))?;
    let records = decode_stored_chunk(seq_of_key(&key), &chunk)?;
    Ok(records.into_iter().find(|r| r.seq == seq))
}

/// Calls `f(chunk_seq, record)` for every log record with `seq >= from_seq`, in order.
pub(crate) fn for_each_record(
    db: &sled::Db,
    dir: &Path,
    from_seq: u64,
    mut f: impl FnMut(u64, LogRecord) -> Result<(), LedgerError>,
) -> Result<(), LedgerError> {
    // The chunk holding `from_seq` starts at or before it.
    let start = match db.range(..=log_key(from_seq)).next_back() {
        Some(entry) => {
            let (key, _) = entry.map_err(store_error(dir))?;
            if key.starts_with(LOG_PREFIX) {
                key.to_vec()
            } else {
                log_key(0).to_vec()
            }
        }
        None => log_key(0).to_vec(),
    };
    for entry in db.range(start..) {
        let (key, chunk) = entry.map_err(store_error(dir))?;
        if !key.starts_with(LOG_PREFIX) {
            break;
        }
        let chunk_seq = seq_of_key(&key);
        for record in decode_stored_chunk(chunk_seq, &chunk)? {
            if record.seq >= from_seq {
                f(chunk_seq, record)?;
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildReport {
    pub records: u64,
    /// Whether folding the log from nothing gave exactly the state the ledger held.
    pub identical: bool,
}

/// The thread that writes and flushes committed batches, so that folding the next batch overlaps
/// the disk. Batches are written in the order submitted; a failure stops all later writes.
struct Writer {
    sender: Option<mpsc::SyncSender<(u64, PendingBatch)>>,
    thread: Option<std::thread::JoinHandle<()>>,
    progress: Arc<(Mutex<WriterProgress>, Condvar)>,
    submitted: u64,
}

#[derive(Default)]
struct WriterProgress {
    durable: u64,
    failure: Option<sled::Error>,
    /// Told the ticket of every batch made durable (and of a failure, as 0): async callers
    /// wake on it instead of blocking a thread in `wait`.
    on_durable: Option<Box<dyn Fn(u64) + Send>>,
}

impl Writer {
    fn start(db: sled::Db) -> Writer {
        let (sender, receiver) = mpsc::sync_channel::<(u64, PendingBatch)>(2);
        let progress = Arc::new((Mutex::new(WriterProgress::default()), Condvar::new()));
        let shared = progress.clone();
        let thread = std::thread::Builder::new()
            .name("premia-writer".into())
            .spawn(move || {
                for (ticket, pending) in receiver {
                    let result = write_batch(&db, pending);
                    let (lock, condvar) = &*shared;
                    let mut state = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    match result {
                        Ok(()) if state.failure.is_none() => state.durable = ticket,
                        Ok(()) => {}
                        Err(e) => state.failure = Some(e),
                    }
                    if let Some(hook) = &state.on_durable {
                        hook(if state.failure.is_some() { 0 } else { ticket });
                    }
                    condvar.notify_all();
                }
            })
            .ok();
        Writer { sender: Some(sender), thread, progress, submitted: 0 }
    }

    fn submit(&mut self, pending: PendingBatch) -> Result<u64, sled::Error> {
        self.check()?;
        let ticket = self.submitted + 1;
        match &self.sender {
            Some(sender) if self.thread.is_some() && sender.send((ticket, pending)).is_ok() => {}
            _ => return Err(sled::Error::ReportableBug("the ledger's writer thread is gone".into())),
        }
        self.submitted = ticket;
        Ok(ticket)
    }

    fn check(&self) -> Result<(), sled::Error> {
        let state = self.progress.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match &state.failure {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn is_durable(&self, ticket: u64) -> Result<bool, sled::Error> {
        let state = self.progress.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match &state.failure {
            Some(e) => Err(e.clone()),
            None => Ok(state.durable >= ticket),
        }
    }

    fn wait(&self, ticket: u64) -> Result<(), sled::Error> {
        let (lock, condvar) = &*self.progress;
        let mut state = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while state.durable < ticket && state.failure.is_none() {
            state = condvar.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        match &state.failure {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel lets the thread finish what it was given, then end.
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_batch(db: &sled::Db, pending: PendingBatch) -> Result<(), sled::Error> {
    let encode = |e: bincode::Error| sled::Error::Unsupported(format!("cannot encode a batch: {e}"));
    let mut batch = sled::Batch::default();
    if let Some(first_seq) = pending.first_seq {
        batch.insert(&log_key(first_seq), lz4_flex::compress_prepend_size(&pending.chunk));
        if !pending.entries.is_empty() {
            let bytes = bincode::serialize(&pending.entries).map_err(encode)?;
            batch.insert(&entry_key(first_seq), lz4_flex::compress_prepend_size(&bytes));
        }
    }
    for rejection in &pending.rejections {
        batch.insert(&rejection_key(rejection.id), bincode::serialize(rejection).map_err(encode)?);
    }
    for (name, position) in &pending.cursors {
        let mut key = CURSOR_PREFIX.to_vec();
        key.extend_from_slice(name.as_bytes());
        batch.insert(key, &position.to_be_bytes());
    }
    db.apply_batch(batch)?;
    db.flush()?;
    Ok(())
}
