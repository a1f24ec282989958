//! What became of an offered line (logged, duplicate, rejected), of each event a fold step
//! applied, parked or rejected, and why a replayed log record could not be folded.

use crate::event::EventType;
use crate::reject::Rejection;

use super::entry::Entry;
use super::records::WaitKey;

/// What became of one logged event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Applied { entries: Vec<Entry> },
    Parked { waits_for: WaitKey },
    Rejected(Rejection),
}

/// One event's outcome, either the event just admitted or a parked one it released.
#[derive(Debug, Clone, PartialEq)]
pub struct Folded {
    pub seq: u64,
    pub event_type: EventType,
    pub outcome: Outcome,
    /// True when the event had been parked and this is its release.
    pub released: bool,
}

/// A record the ledger writes to its log on its own account, before the admitted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnRecord {
    pub seq: u64,
    pub raw: Vec<u8>,
}

/// The result of offering one input line to the ledger.
#[derive(Debug, Clone, PartialEq)]
pub enum Admitted {
    /// The event is new: it gets `seq` and must be appended to the log (after `preamble`).
    Logged { seq: u64, preamble: Option<OwnRecord>, folded: Vec<Folded> },
    /// Same source, id and content as an earlier event: counted, not applied.
    Duplicate,
    /// Failed validation or conflicts with an earlier event: not logged.
    Rejected(Rejection),
}

/// Why replaying a log record did not give what the log says it gave when it was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("log record {seq} is out of order: the ledger expected sequence number {expected}")]
    OutOfOrder { seq: u64, expected: u64 },
    #[error("log record {seq} no longer passes validation: {rejection}")]
    Invalid { seq: u64, rejection: Rejection },
    #[error("log record {seq} repeats the source and id of an earlier record")]
    Repeated { seq: u64 },
}
