//! JSON Lines in, the four counts of RULES.md section 11 out.

use std::io::BufRead;
use std::time::{SystemTime, UNIX_EPOCH};

use premia_core::fold::{Admitted, Outcome};
use premia_core::{Admission, EventType};
use serde::Serialize;

use crate::ledger::{Ledger, LedgerError};
use crate::log::Origin;

/// What an ingest did with the lines it read. Each counted line is in exactly one count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub applied: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub parked: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.applied + self.duplicates + self.rejected + self.parked
    }
}

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
        IngestOptions { batch_lines: 8192, snapshot_every: 2_000_000, origin: Origin::File, admission: Admission::Operator }
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Tallies the outcome of one offered line into `counts`. Events parked by an earlier ingest
/// (seq below `first_seq`) that this line released were counted then, not now.
pub fn tally(counts: &mut Counts, admitted: &Admitted, first_seq: u64) {
    match admitted {
        Admitted::Logged { folded, .. } => {
            for f in folded {
                if f.seq < first_seq || f.event_type == EventType::SchemeActivated {
                    continue;
                }
                match f.outcome {
                    Outcome::Applied { .. } => counts.applied += 1,
                    Outcome::Rejected(_) => counts.rejected += 1,
                    Outcome::Parked { .. } => {}
                }
            }
        }
        Admitted::Duplicate => counts.duplicates += 1,
        Admitted::Rejected(_) => counts.rejected += 1,
    }
}

/// Reads JSON Lines from `input` into the ledger: a line ends with `\n` (a `\r` before it is
/// dropped); a line that is empty or only white space is skipped. Every batch is committed
/// (flushed) before the next is read; the counts are returned after the last commit.
/// `progress` is called with the number of bytes read after each batch.
pub fn ingest_reader(
    ledger: &mut Ledger,
    mut input: impl BufRead,
    options: &IngestOptions,
    mut progress: impl FnMut(u64),
) -> Result<Counts, IngestError> {
    let first_seq = ledger.state().next_seq();
    let mut counts = Counts::default();
    let mut line = Vec::with_capacity(1024);
    let mut bytes_read = 0u64;
    let mut lines_in_batch = 0usize;
    let mut last_snapshot_seq = first_seq;
    loop {
        line.clear();
        let n = input.read_until(b'\n', &mut line).map_err(IngestError::Read)?;
        if n == 0 {
            break;
        }
        bytes_read += n as u64;
        let mut raw: &[u8] = &line;
        if let Some(rest) = raw.strip_suffix(b"\n") {
            raw = rest;
        }
        if let Some(rest) = raw.strip_suffix(b"\r") {
            raw = rest;
        }
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let admitted = ledger.offer(raw, options.origin, options.admission, now_ms());
        tally(&mut counts, &admitted, first_seq);
        lines_in_batch += 1;
        if lines_in_batch >= options.batch_lines {
            ledger.commit()?;
            lines_in_batch = 0;
            progress(bytes_read);
            if ledger.state().next_seq() - last_snapshot_seq >= options.snapshot_every {
                ledger.snapshot()?;
                last_snapshot_seq = ledger.state().next_seq();
            }
        }
    }
    ledger.commit()?;
    progress(bytes_read);
    counts.parked = ledger.state().parked().range(first_seq..).count() as u64;
    Ok(counts)
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot read the input: {0}")]
    Read(std::io::Error),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}
