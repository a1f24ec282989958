//! The four counts of RULES.md section 11 (applied, duplicates, rejected, parked) and how one
//! offered line's outcome is tallied into them, whatever the input path.

use premia_core::fold::{Admitted, Outcome};
use premia_core::EventType;
use serde::Serialize;

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
