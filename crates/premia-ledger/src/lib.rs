//! premia-ledger: the append-only, hash-chained event log on sled, snapshots of the fold state,
//! crash recovery, and the line-by-line ingest shared by every input path.

pub mod audit;
pub mod ingest;
pub mod ledger;
pub mod lock;
pub mod log;
pub mod read_model;
pub mod replay;
pub mod serving;

pub use ingest::{ingest_reader, Counts, IngestOptions};
pub use ledger::{Ledger, LedgerError, LedgerOptions, RebuildReport, StoredRejection};
pub use log::{LogRecord, Origin};
pub use read_model::{ReadModel, StatementUpdate};
pub use serving::{
    Histogram, Query, ReasonCounts, ServeReport, ServeTimings, BATCH_SIZE_BOUNDS, COMMIT_SECONDS_BOUNDS,
};
