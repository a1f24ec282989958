//! The snapshot of the fold state, `DIR/snapshot.bin`: written whole, read back only when it
//! matches the log.
//!
//! It lives beside the store rather than in it: it is derived data (a cache of folding the
//! log), hundreds of megabytes for millions of events, and sled is built for many small values
//! rather than one huge one. It is written to a temporary file, synced and renamed, so it is
//! always a whole snapshot of some committed prefix of the log.

use std::path::Path;

use premia_core::fold::LedgerState;
use serde::{Deserialize, Serialize};

use crate::log::Hash;
use crate::store::{find_record, EntryIndex};

pub(crate) const SNAPSHOT_FILE: &str = "snapshot.bin";
/// Bumped whenever the snapshot's layout changes; an old snapshot is then ignored and the state
/// rebuilt from the log, which never changes format silently.
const SNAPSHOT_FORMAT: u32 = 3;

#[derive(Serialize, Deserialize)]
struct SnapshotHeader {
    format: u32,
    /// The hash of the last log record the state covers.
    last_hash: Hash,
}

/// Writes the snapshot of `state` (which covers the log up to the record whose hash is
/// `last_hash`) and its entry index, replacing the stored one atomically.
pub(crate) fn write_snapshot(
    dir: &Path,
    last_hash: Hash,
    state: &LedgerState,
    index: &EntryIndex,
) -> std::io::Result<()> {
    use std::io::Write;
    let header = SnapshotHeader { format: SNAPSHOT_FORMAT, last_hash };
    let temporary = dir.join("snapshot.tmp");
    let file = std::fs::File::create(&temporary)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let encode = |e: bincode::Error| std::io::Error::other(e.to_string());
    bincode::serialize_into(&mut out, &header).map_err(encode)?;
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
