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
    #[error("cannot read or write the committed head {path}: {source}. Check the data dir's permissions and free disk space")]
    HeadIo { path: PathBuf, source: std::io::Error },
    #[error("the committed head {path} is damaged ({damage}), so premia cannot tell whether the log is whole; nothing was read or changed. Restore the data dir from a backup, or build a new one with `premia recover` (docs/OPERATIONS.md)")]
    HeadUnreadable { path: PathBuf, damage: String },
    #[error("the committed head {path} is missing, but the store says the ledger committed up to log record {committed_seq}; nothing was read or changed. Restore the data dir (with that file) from a backup, or build a new one with `premia recover` (docs/OPERATIONS.md)")]
    HeadMissing { path: PathBuf, committed_seq: u64 },
    #[error("the ledger in {dir} is damaged: its log ends at record {found_seq}, but the ledger committed up to record {committed_seq} (chain hash {committed_hash}), so records {} to {committed_seq} are missing (sled cuts its log where a file is damaged). Nothing was read or changed. Restore the data dir from a backup, or build a new one with `premia recover` from the stream or an export (docs/OPERATIONS.md)", found_seq + 1)]
    LogShort { dir: PathBuf, committed_seq: u64, committed_hash: String, found_seq: u64 },
    #[error("the ledger in {dir} is damaged: log record {seq} has chain hash {found_hash}, but the ledger committed {committed_hash} there, so the log was changed. Nothing was read or changed. Restore the data dir from a backup, or build a new one with `premia recover` (docs/OPERATIONS.md)")]
    LogDiffers { dir: PathBuf, seq: u64, committed_hash: String, found_hash: String },
    #[error("the ledger in {dir} is damaged: it kept {committed} rejected lines, but only {found} are in the store. Nothing was read or changed. Restore the data dir from a backup, or build a new one with `premia recover` (docs/OPERATIONS.md)")]
    RejectionsShort { dir: PathBuf, committed: u64, found: u64 },
    #[error("the ledger store in {dir} is damaged: it says its last batch ended at log record {head_seq} with {head_rejections} rejected lines, but it holds records up to {last_seq} and {rejections} rejected lines. Restore the data dir from a backup, or build a new one with `premia recover` (docs/OPERATIONS.md)")]
    StoreInconsistent { dir: PathBuf, head_seq: u64, head_rejections: u64, last_seq: u64, rejections: u64 },
    #[error("the ledger store in {dir} is damaged: the head it keeps cannot be read ({damage}). Restore the data dir from a backup, or build a new one with `premia recover` (docs/OPERATIONS.md)")]
    StoreHeadDamaged { dir: PathBuf, damage: String },
    #[error("the ledger store in {dir} is damaged: sled found a file whose checksum does not match (see its message above). Nothing was read or changed. Restore the data dir from a backup, or build a new one with `premia recover` (docs/OPERATIONS.md)")]
    StoreDamaged { dir: PathBuf },
    #[error("the ledger store {dir} is damaged: sled failed while reading it back. Restore the data dir from a backup, or build a new one with `premia recover` (docs/OPERATIONS.md)")]
    StorePanicked { dir: PathBuf },
}
