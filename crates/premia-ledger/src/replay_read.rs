//! Log records read back for a replay and parsed ahead of the fold, on a thread of their own.
//!
//! Reading sled, decompressing and decoding the chunks and parsing each event (JSON,
//! validation, digests) is about half of a replay's work; the fold is the other half and must
//! stay on one thread, in log order. So a reader thread does the first half and hands the
//! records over in batches, in order. It parses each one under the scheme it expects to be in
//! force (the last `scheme.activated` it parsed); the fold parses a record again when the
//! scheme in force judges otherwise (`premia_core::event::parses_alike`), so the outcome is
//! the one a fold on a single thread gives.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use premia_core::fold::scheme_activation_record;
use premia_core::{Admission, Event, EventData, Rejection, Scheme};

use crate::error::LedgerError;
use crate::log::LogRecord;
use crate::store::{chunk_holding, for_each_record};

/// One record as the fold takes it.
pub(crate) struct ParsedRecord {
    pub(crate) seq: u64,
    /// The bytes folded: the record's own, or the what-if scheme's in place of a
    /// `scheme.activated`.
    pub(crate) raw: Vec<u8>,
    pub(crate) event: Result<Event, Rejection>,
    pub(crate) parsed_with: Arc<Scheme>,
}

/// Which records to fold.
#[derive(Debug, Clone, Copy)]
pub enum Selection<'a> {
    /// Every record up to `until`.
    All { until: u64 },
    /// These seqs, ascending.
    Seqs(&'a [u64]),
}

/// Which records to read, and what replaces the scheme records.
pub(crate) struct ReadPlan<'a> {
    pub(crate) selection: Selection<'a>,
    /// The seqs of the `scheme.activated` records, replaced by `what_if` when given.
    pub(crate) schemes: &'a BTreeSet<u64>,
    pub(crate) what_if: Option<&'a Scheme>,
    /// The scheme of a fresh state, in force before the first `scheme.activated`.
    pub(crate) first_scheme: Arc<Scheme>,
}

/// How many records go over in one batch: enough to make the hand-over cheap, few enough for
/// the fold to start at once.
const BATCH: usize = 1024;
/// Batches read ahead of the fold at most (bounds the memory held in between).
const AHEAD: usize = 8;

/// Calls `fold` with each planned record, in log order, while a reader thread reads and parses
/// the next ones. The first error, the fold's or the reader's, ends both.
pub(crate) fn fold_read_ahead(
    db: &sled::Db,
    dir: &Path,
    plan: &ReadPlan<'_>,
    fold: impl FnMut(ParsedRecord) -> Result<(), LedgerError>,
) -> Result<(), LedgerError> {
    std::thread::scope(|scope| {
        let (sender, receiver) = sync_channel(AHEAD);
        let reader = scope.spawn(move || read_and_parse(db, dir, plan, sender));
        // Ends when the reader is done (or failed), or when the fold fails; the receiver is
        // dropped here either way, so a reader waiting to send stops.
        let folded = fold_all(receiver, fold);
        let read = match reader.join() {
            Ok(read) => read,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        // A fold error is at a record already read, so it comes first in the log.
        folded.and(read)
    })
}

fn fold_all(
    receiver: Receiver<Vec<ParsedRecord>>,
    mut fold: impl FnMut(ParsedRecord) -> Result<(), LedgerError>,
) -> Result<(), LedgerError> {
    for batch in receiver {
        for record in batch {
            fold(record)?;
        }
    }
    Ok(())
}

/// The reader thread's side: the records in order, parsed, in batches.
struct Parser<'a> {
    plan: &'a ReadPlan<'a>,
    scheme: Arc<Scheme>,
    batch: Vec<ParsedRecord>,
    sender: SyncSender<Vec<ParsedRecord>>,
    /// The fold has stopped (it failed): reading stops too, quietly.
    fold_gone: bool,
}

impl Parser<'_> {
    fn take(&mut self, seq: u64, raw: Vec<u8>) {
        let raw = match self.plan.what_if {
            Some(scheme) if self.plan.schemes.contains(&seq) => scheme_activation_record(scheme, seq),
            _ => raw,
        };
        let event = premia_core::event::parse_event(&raw, &self.scheme, Admission::Operator);
        let parsed_with = self.scheme.clone();
        if let Ok(Event { data: EventData::SchemeActivated(next), .. }) = &event {
            // The fold puts it in force for the records after this one.
            self.scheme = Arc::new((**next).clone());
        }
        self.batch.push(ParsedRecord { seq, raw, event, parsed_with });
        if self.batch.len() >= BATCH {
            self.send();
        }
    }

    fn send(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        if !batch.is_empty() && self.sender.send(batch).is_err() {
            self.fold_gone = true;
        }
    }
}

/// Stands for "the fold has stopped" inside the record loops, which stop on an error.
fn fold_gone() -> LedgerError {
    LedgerError::Decode("the fold stopped".to_string())
}

fn read_and_parse(
    db: &sled::Db,
    dir: &Path,
    plan: &ReadPlan<'_>,
    sender: SyncSender<Vec<ParsedRecord>>,
) -> Result<(), LedgerError> {
    let mut parser =
        Parser { plan, scheme: plan.first_scheme.clone(), batch: Vec::with_capacity(BATCH), sender, fold_gone: false };
    let read = match plan.selection {
        Selection::All { until } => for_each_record(db, dir, 1, |_, record| {
            if record.seq <= until {
                parser.take(record.seq, record.raw);
            }
            if parser.fold_gone {
                return Err(fold_gone());
            }
            Ok(())
        }),
        Selection::Seqs(seqs) => read_selected(db, dir, seqs, &mut parser),
    };
    if parser.fold_gone {
        return Ok(());
    }
    read?;
    parser.send();
    Ok(())
}

/// The selected records, reading each chunk once.
fn read_selected(db: &sled::Db, dir: &Path, seqs: &[u64], parser: &mut Parser<'_>) -> Result<(), LedgerError> {
    let mut chunk: Vec<LogRecord> = Vec::new();
    for &seq in seqs {
        let in_chunk = chunk.first().is_some_and(|r| r.seq <= seq) && chunk.last().is_some_and(|r| r.seq >= seq);
        if !in_chunk {
            chunk = chunk_holding(db, dir, seq)?;
        }
        match chunk.binary_search_by_key(&seq, |r| r.seq) {
            // Each seq is selected once (they ascend), so its raw bytes can be moved out.
            Ok(i) => parser.take(seq, std::mem::take(&mut chunk[i].raw)),
            Err(_) => return Err(LedgerError::Decode(format!("log record {seq} is missing"))),
        }
        if parser.fold_gone {
            return Ok(());
        }
    }
    Ok(())
}
