//! JSON Lines in, the four counts of RULES.md section 11 out.

use std::io::BufRead;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use premia_core::event::parse_event;
use premia_core::{Admission, Event, Rejection, Scheme};

// Re-exported: the serving loop (premia-nats) counts with them through this module.
pub use crate::counts::{tally, Counts};
use crate::error::LedgerError;
use crate::ledger::Ledger;
use crate::log::Origin;

#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Lines per committed (flushed) batch.
    pub batch_lines: usize,
    /// Store a snapshot after this many logged events, so that recovery after a crash folds at
    /// most this many again.
    pub snapshot_every: u64,
    pub origin: Origin,
    pub admission: Admission,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            batch_lines: 8192,
            snapshot_every: 2_000_000,
            origin: Origin::File,
            admission: Admission::Operator,
        }
    }
}

/// The time now, in Unix milliseconds: the arrival time logged with each record.
pub fn now_ms() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the system clock reads a time before 1970; set it right before logging events");
    since_epoch.as_millis() as i64
}

/// Lines read and parsed ahead of the fold, on another thread.
struct ParsedBatch {
    lines: Vec<(Vec<u8>, Result<Event, Rejection>)>,
    parsed_with: Arc<Scheme>,
    bytes_read: u64,
}

/// Reads JSON Lines from `input` into the ledger: a line ends with `\n` (a `\r` before it is
/// dropped); a line that is empty or only white space is skipped. Every batch is committed
/// (written and flushed, by the ledger's writer thread while the next batch is folded); the
/// counts are returned after the last batch is flushed.
/// `progress` is called with the number of bytes read after each batch.
///
/// Parsing and validation need only the line and the scheme, so a second thread reads and
/// parses the next batch while this one folds and commits the current one. Should a
/// `scheme.activated` in the input change the scheme, lines parsed under the old one are parsed
/// again by the fold (see `LedgerState::admit_parsed`), so the result is that of one thread.
pub fn ingest_reader(
    ledger: &mut Ledger,
    input: impl BufRead + Send,
    options: &IngestOptions,
    mut progress: impl FnMut(u64),
) -> Result<Counts, IngestError> {
    let first_seq = ledger.state().next_seq();
    let mut counts = Counts::default();
    let mut pace =
        Pace { lines_in_batch: 0, last_snapshot_seq: first_seq, commit: Duration::ZERO, snapshot: Duration::ZERO };
    let started = Instant::now();
    let scheme_for_parsing = Mutex::new(ledger.state().scheme_shared());
    let (sender, receiver) = mpsc::sync_channel::<Result<ParsedBatch, std::io::Error>>(4);
    let parse_lines = options.batch_lines.min(PARSE_CHUNK_LINES);
    std::thread::scope(|scope| -> Result<(), IngestError> {
        let parser = scope.spawn(|| read_and_parse(input, parse_lines, options.admission, &scheme_for_parsing, sender));
        for chunk in receiver {
            let chunk = chunk.map_err(IngestError::Read)?;
            for (raw, parsed) in chunk.lines {
                let admitted = ledger.offer_parsed(
                    &raw,
                    parsed,
                    &chunk.parsed_with,
                    options.origin.clone(),
                    options.admission,
                    now_ms(),
                );
                tally(&mut counts, &admitted, first_seq);
                pace.lines_in_batch += 1;
            }
            if let Ok(mut shared) = scheme_for_parsing.lock() {
                *shared = ledger.state().scheme_shared();
            }
            if pace.lines_in_batch < options.batch_lines {
                continue;
            }
            pace.submit(ledger)?;
            progress(chunk.bytes_read);
            pace.snapshot_when_due(ledger, options.snapshot_every)?;
        }
        // The channel closes when the parser is done; its panics are ours.
        if let Err(panic) = parser.join() {
            std::panic::resume_unwind(panic);
        }
        Ok(())
    })?;
    let commit_started = Instant::now();
    ledger.commit()?;
    pace.commit += commit_started.elapsed();
    tracing::info!(
        total_ms = started.elapsed().as_millis() as u64,
        commit_wait_ms = pace.commit.as_millis() as u64,
        snapshot_ms = pace.snapshot.as_millis() as u64,
        "ingest read its input"
    );
    counts.parked = ledger.state().parked().range(first_seq..).count() as u64;
    Ok(counts)
}

/// How far an ingest is from its next commit and snapshot, and where its time went.
struct Pace {
    lines_in_batch: usize,
    last_snapshot_seq: u64,
    commit: Duration,
    snapshot: Duration,
}

impl Pace {
    /// Hands the batch to the writer thread, which flushes it while the next one is folded.
    fn submit(&mut self, ledger: &mut Ledger) -> Result<(), LedgerError> {
        let commit_started = Instant::now();
        ledger.submit()?;
        self.commit += commit_started.elapsed();
        tracing::debug!(
            lines = self.lines_in_batch,
            wait_ms = commit_started.elapsed().as_millis() as u64,
            "batch submitted"
        );
        self.lines_in_batch = 0;
        Ok(())
    }

    /// Stores a snapshot once `every` events were logged since the last one.
    fn snapshot_when_due(&mut self, ledger: &mut Ledger, every: u64) -> Result<(), LedgerError> {
        if ledger.state().next_seq() - self.last_snapshot_seq >= every {
            let snapshot_started = Instant::now();
            ledger.snapshot()?;
            self.snapshot += snapshot_started.elapsed();
            self.last_snapshot_seq = ledger.state().next_seq();
        }
        Ok(())
    }
}

/// Lines per message from the parser thread: small, so that few parsed events wait in memory,
/// whatever the commit batch size.
const PARSE_CHUNK_LINES: usize = 1024;

fn read_and_parse(
    mut input: impl BufRead,
    chunk_lines: usize,
    admission: Admission,
    scheme: &Mutex<Arc<Scheme>>,
    sender: mpsc::SyncSender<Result<ParsedBatch, std::io::Error>>,
) {
    let mut bytes_read = 0u64;
    loop {
        let parsed_with = match scheme.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let mut lines = Vec::with_capacity(chunk_lines);
        while lines.len() < chunk_lines {
            let mut line = Vec::with_capacity(512);
            match input.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(n) => bytes_read += n as u64,
                Err(e) => {
                    let _ = sender.send(Err(e));
                    return;
                }
            }
            if line.ends_with(b"\n") {
                line.pop();
            }
            if line.ends_with(b"\r") {
                line.pop();
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let parsed = parse_event(&line, &parsed_with, admission);
            lines.push((line, parsed));
        }
        let done = lines.len() < chunk_lines;
        if !lines.is_empty() && sender.send(Ok(ParsedBatch { lines, parsed_with, bytes_read })).is_err() {
            return;
        }
        if done {
            return;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot read the input: {0}")]
    Read(std::io::Error),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}
