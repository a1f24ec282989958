//! What can go wrong with the ledger's store, each with a sentence saying what to do.

use std::path::PathBuf;

use premia_core::fold::ReplayError;

use crate::lock::LockError;
use crate::log::ChunkError;

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
    #[error("the ledger store holds the key {key}, which is not a three-letter prefix and an 8-byte number; the store is damaged. Run `premia verify`, and restore the data dir from a backup")]
    BadKey { key: String },
    #[error("the stored position of input {name:?} is {len} bytes long where 8 are written; the store is damaged. Run `premia verify`, and restore the data dir from a backup")]
    BadCursor { name: String, len: usize },
    #[error("cannot write the snapshot in {dir}: {source}. Check free disk space; the log itself is intact")]
    Snapshot { dir: PathBuf, source: std::io::Error },
    #[error(
        "cannot start the ledger's writer thread: {0}. The system is out of threads or memory; retry when it is not"
    )]
    WriterThread(std::io::Error),
}
