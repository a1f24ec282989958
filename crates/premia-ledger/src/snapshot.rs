//! The snapshot of the fold state, `DIR/snapshot.bin`: written whole, read back only when it is
//! undamaged and matches the log.
//!
//! It lives beside the store rather than in it: it is derived data (a cache of folding the
//! log), hundreds of megabytes for millions of events, and sled is built for many small values
//! rather than one huge one. It is a checked file (`checked_file`: kind, format, length and
//! checksum in a header; temporary file, sync, rename), so it is always a whole snapshot of
//! some committed prefix of the log, and damage to it is named rather than decoded. Its body
//! starts with the seq and chain hash of the last record it covers.
//!
//! The snapshot holds only what the log determines, so every ledger that took in the same log
//! (replicas of one stream, a ledger recovered from it) writes the same bytes at the same
//! record. Which stored batches hold entries of which period depends on how this ledger cut
//! its batches, so that index is a file of its own, `DIR/entry-index.bin`, written beside it and
//! used only when it covers the same record.

use std::path::{Path, PathBuf};

use premia_core::fold::LedgerState;
use serde::{Deserialize, Serialize};

use crate::checked_file::{decode_part, read_checked, write_checked, Checked};
use crate::integrity::hex;
use crate::log::Hash;
use crate::store::{find_record, EntryIndex};

pub(crate) const SNAPSHOT_FILE: &str = "snapshot.bin";
pub(crate) const ENTRY_INDEX_FILE: &str = "entry-index.bin";
pub const SNAPSHOT_KIND: &[u8; 4] = b"SNAP";
pub const ENTRY_INDEX_KIND: &[u8; 4] = b"EIDX";
/// Bumped whenever the snapshot's layout changes; an old snapshot is then ignored and the state
/// rebuilt from the log, which never changes format silently.
pub const SNAPSHOT_FORMAT: u32 = 6;

/// Which prefix of the log a snapshot covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Covers {
    last_seq: u64,
    last_hash: Hash,
}

/// A snapshot read back and checked against the log.
pub(crate) struct Snapshot {
    pub state: LedgerState,
    pub last_hash: Hash,
    pub index: EntryIndex,
}

/// What is in `DIR/snapshot.bin`.
pub(crate) enum SnapshotRead {
    Absent,
    /// Written by another version of premia: not damage, the log is folded instead.
    OtherFormat(u32),
    /// Damaged, or not a snapshot of this log: the sentence says which.
    Damaged(String),
    /// Whole, but its entry index is missing, damaged or of another point (a snapshot write
    /// cut short between the two files): the log is folded instead.
    WithoutIndex(String),
    Usable(Snapshot),
}

pub(crate) fn snapshot_path(dir: &Path) -> PathBuf {
    dir.join(SNAPSHOT_FILE)
}

pub(crate) fn entry_index_path(dir: &Path) -> PathBuf {
    dir.join(ENTRY_INDEX_FILE)
}

/// Writes the snapshot of `state` (which covers the log up to the record whose hash is
/// `last_hash`) and its entry index, replacing the stored one atomically.
pub(crate) fn write_snapshot(
    dir: &Path,
    last_hash: Hash,
    state: &LedgerState,
    index: &EntryIndex,
) -> std::io::Result<()> {
    let covers = Covers { last_seq: state.next_seq() - 1, last_hash };
    write_checked(&snapshot_path(dir), SNAPSHOT_KIND, SNAPSHOT_FORMAT, &[&covers, state])?;
    write_checked(&entry_index_path(dir), ENTRY_INDEX_KIND, SNAPSHOT_FORMAT, &[&covers, index])
}

/// Reads the stored snapshot and checks that the log `db` holds the record it ends on, with the
/// same hash.
pub(crate) fn read_snapshot(dir: &Path, db: &sled::Db) -> SnapshotRead {
    let read = read_checked(&snapshot_path(dir), SNAPSHOT_KIND, SNAPSHOT_FORMAT, |input, limit| {
        let covers: Covers = decode_part(input, limit)?;
        let state: LedgerState = decode_part(input, limit)?;
        Ok((covers, state))
    });
    let (covers, mut state) = match read {
        Err(e) => return SnapshotRead::Damaged(format!("it cannot be read: {e}")),
        Ok(Checked::Absent) => return SnapshotRead::Absent,
        Ok(Checked::OtherFormat(format)) => return SnapshotRead::OtherFormat(format),
        Ok(Checked::Damaged(damage)) => return SnapshotRead::Damaged(damage.to_string()),
        Ok(Checked::Read(read)) => read,
    };
    if covers.last_seq + 1 != state.next_seq() {
        return SnapshotRead::Damaged(format!(
            "it says it covers the log up to seq {}, but its state continues at seq {}",
            covers.last_seq,
            state.next_seq()
        ));
    }
    // A snapshot is only ever written after the log it covers: its last record must be there,
    // with the same hash.
    if covers.last_seq > 0 {
        let found = find_record(db, dir, covers.last_seq).ok().flatten().map(|r| r.hash);
        if found != Some(covers.last_hash) {
            return SnapshotRead::Damaged(format!(
                "it covers the log up to seq {} with chain hash {}, but the log has {} there",
                covers.last_seq,
                hex(&covers.last_hash),
                found.map_or_else(|| "no such record".to_string(), |h| hex(&h))
            ));
        }
    }
    let index = match read_entry_index(dir) {
        Ok(Checked::Read((of, index))) if of == covers => index,
        Ok(Checked::Read((of, _))) => {
            return SnapshotRead::WithoutIndex(format!(
                "its entry index covers record {}, the snapshot record {}",
                of.last_seq, covers.last_seq
            ))
        }
        Ok(Checked::Absent) => return SnapshotRead::WithoutIndex("its entry index is missing".into()),
        Ok(Checked::OtherFormat(_)) => return SnapshotRead::OtherFormat(SNAPSHOT_FORMAT),
        Ok(Checked::Damaged(damage)) => return SnapshotRead::Damaged(format!("its entry index: {damage}")),
        Err(e) => return SnapshotRead::Damaged(format!("its entry index cannot be read: {e}")),
    };
    state.after_load();
    SnapshotRead::Usable(Snapshot { state, last_hash: covers.last_hash, index })
}

fn read_entry_index(dir: &Path) -> std::io::Result<Checked<(Covers, EntryIndex)>> {
    read_checked(&entry_index_path(dir), ENTRY_INDEX_KIND, SNAPSHOT_FORMAT, |input, limit| {
        Ok((decode_part(input, limit)?, decode_part(input, limit)?))
    })
}

/// What the ledger starts from: the stored snapshot when it can be used, otherwise nothing (the
/// log is folded from the start, with a warning when the snapshot is damaged).
pub(crate) struct Loaded {
    pub snapshot: Option<Snapshot>,
    /// The stored snapshot was written by another version of premia (an older layout of the
    /// state): once the log is folded, a snapshot of this version replaces it, so only the first
    /// open after an upgrade folds the whole log.
    pub replace: bool,
}

pub(crate) fn load_snapshot(dir: &Path, db: &sled::Db) -> Loaded {
    let none = |replace| Loaded { snapshot: None, replace };
    match read_snapshot(dir, db) {
        SnapshotRead::Usable(snapshot) => Loaded { snapshot: Some(snapshot), replace: false },
        SnapshotRead::Absent => none(false),
        SnapshotRead::OtherFormat(format) => {
            tracing::warn!(
                format,
                "the snapshot was written by another version of premia; folding the whole log and writing a new one"
            );
            none(true)
        }
        SnapshotRead::WithoutIndex(why) => {
            tracing::info!("the snapshot is not used ({why}); folding the whole log");
            none(false)
        }
        SnapshotRead::Damaged(why) => {
            tracing::warn!(
                "the snapshot {} is damaged ({why}); folding the whole log instead. `premia verify` says whether anything else is",
                snapshot_path(dir).display()
            );
            none(false)
        }
    }
}
