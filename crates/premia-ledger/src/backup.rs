//! A consistent copy of a data dir while it is in use: everything made durable, as of one
//! batch. The caller holds the ledger (`serve` runs it as a query on its loop, between fold
//! steps), so nothing is written meanwhile; the store is copied key by key into a new sled
//! store (sled's files cannot be copied while open), the committed head is recorded for it, and
//! the snapshot (with its entry index) is copied. Restoring is moving the copy into place (docs/OPERATIONS.md).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::LedgerError;
use crate::head::{CommittedHead, HeadFile};
use crate::integrity::hex;
use crate::snapshot::{entry_index_path, snapshot_path};
use crate::store::{open_sled, read_store_head, sled_config, store_error, LedgerOptions};

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupReport {
    pub path: PathBuf,
    pub last_seq: u64,
    pub chain_hash: String,
    pub rejections: u64,
    pub keys: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} is not empty: a backup goes into a new directory (or an empty one), never over another")]
    NotEmpty(PathBuf),
    #[error("cannot write the backup in {path}: {source}. Check the free space and permissions there")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Copies the durable state of the store `db` (of data dir `dir`) into the new data dir
/// `target`. The caller has made every submitted batch durable and writes nothing meanwhile.
pub(crate) fn back_up(db: &sled::Db, dir: &Path, target: &Path) -> Result<BackupReport, BackupError> {
    let io = |source| BackupError::Io { path: target.to_path_buf(), source };
    if std::fs::read_dir(target).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(BackupError::NotEmpty(target.to_path_buf()));
    }
    std::fs::create_dir_all(target).map_err(io)?;
    let end = read_store_head(db, dir)?.unwrap_or(CommittedHead::EMPTY);
    let copy = open_sled(&sled_config(target, &LedgerOptions::default())).map_err(store_error(target))?;
    let mut keys = 0u64;
    let mut batch = sled::Batch::default();
    for item in db.iter() {
        let (key, value) = item.map_err(store_error(dir))?;
        batch.insert(key, value);
        keys += 1;
        if keys.is_multiple_of(1024) {
            copy.apply_batch(std::mem::take(&mut batch)).map_err(store_error(target))?;
        }
    }
    copy.apply_batch(batch).map_err(store_error(target))?;
    copy.flush().map_err(store_error(target))?;
    drop(copy);
    let mut head = HeadFile::open(target, None).map_err(io)?;
    if end.last_seq > 0 || end.rejections > 0 {
        head.write(&end).map_err(io)?;
    }
    for path in [snapshot_path, entry_index_path] {
        if path(dir).is_file() {
            std::fs::copy(path(dir), path(target)).map_err(io)?;
            std::fs::File::open(path(target)).and_then(|f| f.sync_all()).map_err(io)?;
        }
    }
    std::fs::File::open(target).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(BackupReport {
        path: target.to_path_buf(),
        last_seq: end.last_seq,
        chain_hash: hex(&end.chain_hash),
        rejections: end.rejections,
        keys,
    })
}
