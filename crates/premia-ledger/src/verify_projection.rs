//! `verify`'s check of the period projection (`DIR/periods.bin`, a cache that statements and
//! figures read): when it covers the end of the log, where reads would use it, it must be byte
//! for byte the projection written from the fold from nothing and the stored entries (which
//! verify has compared with that fold). One covering another point is never read, and is only
//! reported as unused.

use std::io::Cursor;
use std::path::Path;

use premia_core::fold::{Entry, LedgerState};
use premia_core::Period;
use serde::Serialize;

use crate::error::LedgerError;
use crate::log::Hash;
use crate::projection::{encode_projection, open_projection, projection_path, Covers, ProjectionRead, Source};
use crate::store::{find_record, read_entries, EntryIndex};
use crate::verify::{Problem, ProblemKind};

/// How the period projection compared with the fold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectionCheck {
    /// There is none, or one of another format (it is only a cache).
    Absent,
    /// It covers another point of the log than its end, so no read uses it.
    Unused { covers: u64 },
    /// It is damaged (reported as a problem too).
    Damaged { reason: String },
    /// The log broke before its end: nothing to compare with.
    NotReached,
    /// It is exactly what the fold of the log writes.
    Identical { covers: u64 },
    /// It differs (reported as a problem too).
    Differs { covers: u64 },
}

/// The fold of the whole log as verify ends it, and the stored entries it checked.
pub(crate) struct Folded<'a> {
    pub state: &'a LedgerState,
    pub last_hash: Hash,
    pub index: &'a EntryIndex,
    pub db: &'a sled::Db,
    /// Whether the walk reached the end of the log.
    pub whole: bool,
}

fn problem(seq: u64, message: String) -> Problem {
    Problem { seq, kind: ProblemKind::Projection, message }
}

/// Compares the stored projection with the one the fold writes, reporting damage or a
/// difference in `problems`.
pub(crate) fn check_projection(dir: &Path, folded: &Folded<'_>, problems: &mut Vec<Problem>) -> ProjectionCheck {
    let path = projection_path(dir);
    let stored = match open_projection(dir) {
        ProjectionRead::Read(stored) => stored,
        ProjectionRead::Unused(_) => return ProjectionCheck::Absent,
        ProjectionRead::Damaged(reason) => {
            problems.push(problem(0, format!(
                "the period projection {} is damaged ({reason}); statements read the state instead. Delete it (it is a cache of the log): the next writer writes it again",
                path.display()
            )));
            return ProjectionCheck::Damaged { reason };
        }
    };
    let covers = stored.toc.covers;
    if !folded.whole {
        return ProjectionCheck::NotReached;
    }
    let end = Covers { last_seq: folded.state.next_seq() - 1, last_hash: folded.last_hash };
    if covers != end {
        return ProjectionCheck::Unused { covers: covers.last_seq };
    }
    let expected = match expected_bytes(dir, folded) {
        Ok(bytes) => bytes,
        Err(e) => {
            problems.push(problem(covers.last_seq, format!("the period projection cannot be rebuilt to compare: {e}")));
            return ProjectionCheck::Differs { covers: covers.last_seq };
        }
    };
    match std::fs::read(&path) {
        Ok(bytes) if bytes == expected => ProjectionCheck::Identical { covers: covers.last_seq },
        Ok(_) => {
            problems.push(problem(covers.last_seq, format!(
                "the period projection {} (which covers the log up to seq {}) differs from what the fold of the log writes; statements and figures would read it. Delete it, or run `premia rebuild`",
                path.display(),
                covers.last_seq
            )));
            ProjectionCheck::Differs { covers: covers.last_seq }
        }
        Err(e) => {
            let reason = format!("it cannot be read: {e}");
            problems.push(problem(0, format!("the period projection {} is damaged ({reason})", path.display())));
            ProjectionCheck::Damaged { reason }
        }
    }
}

/// The projection written from the fold, with each period's entries read from the stored
/// chunks the rebuilt index names.
fn expected_bytes(dir: &Path, folded: &Folded<'_>) -> Result<Vec<u8>, LedgerError> {
    let entries_of = |period: Period| -> Result<Vec<Entry>, LedgerError> {
        let mut entries = Vec::new();
        for &chunk_seq in folded.index.get(&period).map(Vec::as_slice).unwrap_or_default() {
            entries.extend(read_entries(folded.db, dir, chunk_seq)?.into_iter().filter(|e| e.period == period));
        }
        Ok(entries)
    };
    let hash_of = |seq: u64| -> Result<Hash, LedgerError> {
        find_record(folded.db, dir, seq)?
            .map(|r| r.hash)
            .ok_or_else(|| LedgerError::Decode(format!("log record {seq}, which closed a period, is missing")))
    };
    let source = Source { state: folded.state, last_hash: folded.last_hash, entries_of: &entries_of, hash_of: &hash_of };
    let mut out = Cursor::new(Vec::new());
    encode_projection(&mut out, &source)?;
    Ok(out.into_inner())
}
