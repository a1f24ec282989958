//! premia-ledger: the append-only, hash-chained event log on sled, snapshots of the fold state,
//! crash recovery, and the line-by-line ingest shared by every input path.
//!
//! Modules, each importing only those listed before it: `log` (the record format and hash
//! chain), `lock`, `error`, `store` (the sled key layout and reads), `snapshot`, `writer`,
//! `projection` (the period projection's file), `counts`, `statement_update`, `ledger` (the
//! Ledger), `period_read` (reads of one period from the projection), `read_model`, `ingest`,
//! `verify`, `export`, `audit_log` (the log read back for replays).

pub mod audit_log;
pub mod backup;
pub mod checked_file;
pub mod counts;
pub mod error;
pub mod export;
pub mod head;
mod index_files;
pub mod ingest;
pub mod integrity;
pub mod ledger;
pub mod lock;
pub mod log;
pub mod period_read;
mod projection;
pub mod read_model;
mod replay_read;
pub mod serving;
mod sled_guard;
pub mod snapshot;
pub mod statement_update;
mod store;
pub mod verify;
mod verify_head;
mod verify_index;
mod verify_projection;
mod writer;

pub use counts::Counts;
pub use error::LedgerError;
pub use ingest::{ingest_reader, IngestOptions};
pub use ledger::{Ledger, RebuildReport};
pub use log::{LogRecord, Origin, StreamPlace};
pub use read_model::ReadModel;
pub use serving::{
    Histogram, Query, ReasonCounts, ServeReport, ServeTimings, BATCH_SIZE_BOUNDS, COMMIT_SECONDS_BOUNDS,
};
pub use statement_update::StatementUpdate;
pub use store::{EntryIndex, LedgerOptions, StoredRejection};
