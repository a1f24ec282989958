//! The log read back for replays ([`AuditLog`]): the records are folded by a fresh
//! [`LedgerState`]; the stored fold state (snapshot) and the stored entries are never read.
//!
//! A replay of one period folds only the records the period depends on, as listed by the
//! replay index (`premia_core::replay_index`). The index is derived from the log and kept in
//! `DIR/replay-index/` as a cache, like the snapshot (its files: `index_files`). Reading one
//! period costs its own file, not the whole index. Deleting the directory only costs a
//! rebuild; an index that does not match the log, or a damaged file of it, is rebuilt (with a
//! warning that names the damage).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use premia_core::fold::{Entry, LedgerState, Outcome};
use premia_core::replay_index::{PeriodRecords, ReplayIndex};
use premia_core::{Period, Scheme};

use crate::checked_file::{Checked, FileDamage};
use crate::error::LedgerError;
use crate::index_files::{read_arrivals, read_head, read_period, read_state, write_index, INDEX_DIR};
use crate::integrity::{open_checked, Access};
use crate::lock::DirLock;
use crate::log::{verify_link, Hash, LogRecord, GENESIS_HASH};
use crate::replay_read::{fold_read_ahead, ReadPlan};
use crate::store::{find_record, for_each_record, log_end, LedgerOptions};

pub use crate::index_files::IndexHead;
pub use crate::replay_read::Selection;

/// Why a replay could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("there is no ledger in {0}; pass the --data-dir (or PREMIA_DATA_DIR) of a ledger, or ingest events first")]
    NoLedger(PathBuf),
    #[error("cannot write the replay index in {dir}: {source}. Check free disk space and permissions; the directory is a cache of the log and may be deleted")]
    IndexWrite { dir: PathBuf, source: std::io::Error },
    #[error("the replay index in {0} cannot be read; delete that directory (it is rebuilt from the log) and retry")]
    IndexRead(PathBuf),
    #[error("the log skips a record: {0}. Run `premia rebuild` to check the log")]
    Gap(#[from] premia_core::replay_index::IndexGap),
}

/// One entry as a replay booked it, with when and under which scheme.
#[derive(Debug, Clone)]
pub struct AppliedEntry {
    pub entry: Entry,
    /// The seq of the record whose fold booked it (later than the entry's own for an event
    /// that waited for its deal or payment).
    pub applied_at: u64,
    pub scheme: Arc<Scheme>,
    pub scheme_seq: Option<u64>,
}

/// The result of folding a selection of log records.
pub struct Replayed {
    pub state: LedgerState,
    /// The entries `keep` accepted, in booking order.
    pub entries: Vec<AppliedEntry>,
    pub records_folded: u64,
}

impl Replayed {
    /// The entries of one period, in booking order, as the statement function takes them.
    pub fn entries_of(&self, period: Period) -> Vec<Entry> {
        self.entries.iter().filter(|a| a.entry.period == period).map(|a| a.entry.clone()).collect()
    }

    /// Frees the replay on a thread of its own. A full replay's state holds every deal and
    /// payment of the log, and freeing them one by one costs about a tenth of the fold; the
    /// caller goes on meanwhile, and a process that ends first does not wait for it.
    pub fn drop_aside(self) {
        std::thread::spawn(move || drop(self));
    }
}

/// The log of a data dir, opened for reading only (the data dir lock is held, so nothing
/// writes meanwhile).
pub struct AuditLog {
    dir: PathBuf,
    db: sled::Db,
    _lock: DirLock,
}

impl AuditLog {
    /// Opens the log in `dir`. Refuses a directory without a ledger rather than creating one.
    pub fn open(dir: &Path, command: &str) -> Result<AuditLog, AuditError> {
        if !dir.join("sled").exists() {
            return Err(AuditError::NoLedger(dir.to_path_buf()));
        }
        let lock = DirLock::acquire(dir, command).map_err(LedgerError::from)?;
        // The log is read in long runs: a larger cache than the ledger's own.
        let options = LedgerOptions { cache_bytes: 64 << 20 };
        let db = open_checked(dir, dir, &options, Access::Read)?.db;
        Ok(AuditLog { dir: dir.to_path_buf(), db, _lock: lock })
    }

    /// The seq of the last log record (0 for an empty log).
    pub fn last_seq(&self) -> Result<u64, LedgerError> {
        Ok(log_end(&self.db, &self.dir)?.0)
    }

    pub fn record(&self, seq: u64) -> Result<Option<LogRecord>, LedgerError> {
        find_record(&self.db, &self.dir, seq)
    }

    fn index_dir(&self) -> PathBuf {
        self.dir.join(INDEX_DIR)
    }

    /// Brings the replay index up to the end of the log (extending or rebuilding it) and returns
    /// its head. `progress(records_indexed)` is called now and then while it works.
    pub fn index(&self, progress: impl FnMut(u64, u64)) -> Result<IndexHead, AuditError> {
        let last = self.last_seq()?;
        let index_dir = self.index_dir();
        let head = self.stored_head(last);
        if let Some(h) = &head {
            if h.last_seq() == last {
                return Ok(h.clone());
            }
        }
        let resumed = head.and_then(|h| {
            self.usable(read_state(&index_dir), "its builder's state")
                .filter(|s| s.next_seq == h.next_seq && s.last_hash == h.last_hash)
        });
        let (mut index, last_hash, fresh) = match resumed {
            Some(s) => (s.index, s.last_hash, false),
            None => (ReplayIndex::new(), GENESIS_HASH, true),
        };
        if fresh && index_dir.exists() {
            std::fs::remove_dir_all(&index_dir).map_err(|e| self.io_error(e))?;
        }
        std::fs::create_dir_all(&index_dir).map_err(|e| self.io_error(e))?;
        let last_hash = self.extend(&mut index, last_hash, last, progress)?;
        write_index(&index_dir, index, last_hash).map_err(|e| self.io_error(e))
    }

    /// A file of the index when it can be read: a damaged one is named in a warning (and the
    /// index rebuilt by the caller), one of another version is silently left for a rebuild.
    fn usable<T>(&self, read: std::io::Result<Checked<T>>, what: &str) -> Option<T> {
        match read {
            Ok(Checked::Read(value)) => Some(value),
            Ok(Checked::Absent | Checked::OtherFormat(_)) => None,
            Ok(Checked::Damaged(damage)) => {
                tracing::warn!(
                    "{what} in the replay index {} is damaged ({damage}); the index is rebuilt from the log",
                    self.index_dir().display()
                );
                None
            }
            Err(e) => {
                tracing::warn!(
                    "{what} in the replay index {} cannot be read ({e}); the index is rebuilt from the log",
                    self.index_dir().display()
                );
                None
            }
        }
    }

    /// Reads a file of an index brought up to date by [`index`](Self::index); when it is
    /// damaged, rebuilds the whole index from the log and reads it again.
    fn read_indexed<T>(
        &self,
        what: &str,
        read: impl Fn(&Path) -> std::io::Result<Checked<T>>,
    ) -> Result<Option<T>, AuditError> {
        let index_dir = self.index_dir();
        match read(&index_dir) {
            Ok(Checked::Read(value)) => return Ok(Some(value)),
            Ok(Checked::Absent) => return Ok(None),
            other => {
                self.usable(other, what);
            }
        }
        std::fs::remove_dir_all(&index_dir).map_err(|e| self.io_error(e))?;
        self.index(|_, _| {})?;
        match read(&index_dir) {
            Ok(Checked::Read(value)) => Ok(Some(value)),
            Ok(Checked::Absent) => Ok(None),
            _ => Err(AuditError::IndexRead(index_dir)),
        }
    }

    /// The stored index head, when this version wrote it and it describes a prefix of this log
    /// (whose last record is `last`): its last record has the same hash.
    fn stored_head(&self, last: u64) -> Option<IndexHead> {
        let head = self.usable(read_head(&self.index_dir()), "the head");
        head.filter(|h| {
            h.next_seq == 1 && h.last_hash == GENESIS_HASH
                || (h.last_seq() <= last && matches!(self.record(h.last_seq()), Ok(Some(r)) if r.hash == h.last_hash))
        })
    }

    /// Adds the records after those `index` covers (up to `last`), checking each link from
    /// `last_hash`; returns the last record's hash.
    fn extend(
        &self,
        index: &mut ReplayIndex,
        mut last_hash: Hash,
        last: u64,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Hash, AuditError> {
        let from = index.next_seq();
        let total = last + 1 - from;
        let mut done = 0u64;
        let mut gap = None;
        for_each_record(&self.db, &self.dir, from, |_, record| {
            if !verify_link(&last_hash, &record) {
                return Err(LedgerError::ChainBroken { seq: record.seq });
            }
            if let Err(e) = index.add(record.seq, record.arrived_ms, &record.raw) {
                gap = Some(e);
                return Err(LedgerError::ChainBroken { seq: record.seq });
            }
            last_hash = record.hash;
            done += 1;
            if done.is_multiple_of(16_384) {
                progress(done, total);
            }
            Ok(())
        })
        .map_err(|e| match gap.take() {
            Some(gap) => AuditError::Gap(gap),
            None => AuditError::Ledger(e),
        })?;
        progress(done, total);
        Ok(last_hash)
    }

    fn io_error(&self, source: std::io::Error) -> AuditError {
        AuditError::IndexWrite { dir: self.index_dir(), source }
    }

    /// The records one period depends on (besides the global ones), from its index file. A
    /// period the index `head` lists no file for has no records.
    pub fn period_records(&self, head: &IndexHead, period: Period) -> Result<PeriodRecords, AuditError> {
        if !head.periods.contains(&period) {
            return Ok(PeriodRecords::default());
        }
        let what = format!("the file of {period}");
        let read = |dir: &Path| match read_period(dir, period) {
            // The head lists the period: its file must be there.
            Ok(Checked::Absent) => Ok(Checked::Damaged(FileDamage::Missing)),
            other => other,
        };
        self.read_indexed(&what, read)?.ok_or_else(|| AuditError::IndexRead(self.index_dir()))
    }

    /// The whole index, for lookups by deal, payment or record (explain). Call after
    /// [`index`](Self::index).
    pub fn full_index(&self) -> Result<ReplayIndex, AuditError> {
        let state = self.read_indexed("its builder's state", read_state)?;
        state.map(|s| s.index).ok_or_else(|| AuditError::IndexRead(self.index_dir()))
    }

    /// The last record received at or before `ms` (Unix milliseconds).
    pub fn seq_received_by(&self, ms: i64) -> Result<u64, AuditError> {
        let arrivals = self.read_indexed("the arrival times", read_arrivals)?;
        let arrivals = arrivals.ok_or_else(|| AuditError::IndexRead(self.index_dir()))?;
        Ok(arrivals.iter().take_while(|&&a| a <= ms).count() as u64)
    }

    /// Folds the selected records into a fresh state, in log order. With `what_if`, every
    /// `scheme.activated` record (their seqs are `schemes`) is replaced by that scheme.
    /// `keep` chooses which booked entries to return (a full replay keeps one period's).
    pub fn fold(
        &self,
        selection: Selection<'_>,
        schemes: &[u64],
        what_if: Option<&Scheme>,
        keep: impl Fn(&Entry) -> bool,
        mut progress: impl FnMut(u64),
    ) -> Result<Replayed, LedgerError> {
        let schemes: BTreeSet<u64> = schemes.iter().copied().collect();
        let mut state = LedgerState::new();
        let mut entries = Vec::new();
        let mut folded_count = 0u64;
        let plan = ReadPlan { selection, schemes: &schemes, what_if, first_scheme: state.scheme_shared() };
        fold_read_ahead(&self.db, &self.dir, &plan, |record| {
            let folded = state.replay_selected_parsed(record.seq, &record.raw, record.event, &record.parsed_with)?;
            for f in folded {
                if let Outcome::Applied { entries: booked } = f.outcome {
                    for entry in booked.into_iter().filter(|e| keep(e)) {
                        entries.push(AppliedEntry {
                            entry,
                            applied_at: record.seq,
                            scheme: state.scheme_shared(),
                            scheme_seq: state.scheme_seq(),
                        });
                    }
                }
            }
            folded_count += 1;
            if folded_count.is_multiple_of(65_536) {
                progress(folded_count);
            }
            Ok(())
        })?;
        progress(folded_count);
        Ok(Replayed { state, entries, records_folded: folded_count })
    }
}

/// The seqs to fold for one period: the global records and the period's own, up to `until`,
/// for one manager or all.
pub fn period_selection(head: &IndexHead, records: &PeriodRecords, manager: Option<&str>, until: u64) -> Vec<u64> {
    let mut seqs: Vec<u64> = head.globals.iter().copied().filter(|&s| s <= until).collect();
    seqs.extend(records.seqs(manager, until));
    seqs.sort_unstable();
    seqs.dedup();
    seqs
}
