//! Folding a parsed chunk into the ledger's memory: each message is offered to the ledger (or
//! skipped when at or below the cursor), and what the batch booked is gathered for its feed.

use premia_core::fold::Admitted;
use premia_core::Admission;
use premia_ledger::ingest::{now_ms, tally};
use premia_ledger::serving::{ReasonCounts, ServeReport};
use premia_ledger::{Ledger, Origin};

use crate::receive::{ParsedChunk, Received};
use crate::serve::Gathering;

/// Offers every message of a chunk to the ledger (in memory) and moves the cursor.
pub(crate) fn gather(
    ledger: &mut Ledger,
    cursor_key: &str,
    chunk: ParsedChunk,
    first_seq: u64,
    gathering: &mut Gathering,
    report: &mut ServeReport,
) {
    let ParsedChunk { messages: received, last, parsed_with, .. } = chunk;
    let mut cursor = ledger.cursor(cursor_key).unwrap_or(0);
    for Received { payload, stream_sequence, pending, event: parsed } in received {
        gathering.drained = pending == 0;
        report.consumer_pending = Some(pending);
        gathering.messages += 1;
        if stream_sequence <= cursor {
            report.skipped += 1;
        } else {
            // Taken from the parse already made: the plan's manager and period do not depend on
            // the scheme, so they hold even if the fold parses the event again.
            let plan = match &parsed {
                Ok(premia_core::Event { data: premia_core::EventData::PlanAssigned(plan), .. }) => {
                    Some((plan.manager_id.to_string(), plan.period))
                }
                _ => None,
            };
            let admitted =
                ledger.offer_parsed(&payload, parsed, &parsed_with, Origin::Nats, Admission::Publisher, now_ms());
            tally(&mut report.counts, &admitted, first_seq);
            tally_reasons(&mut report.rejected_by_reason, &admitted, first_seq);
            match &admitted {
                Admitted::Rejected(rejection) => gathering.rejected.push((rejection.clone(), payload.clone())),
                Admitted::Logged { folded, .. } => {
                    for f in folded {
                        if let premia_core::Outcome::Applied { entries } = &f.outcome {
                            gathering.booked.extend(entries.iter().cloned());
                            if f.event_type == premia_core::EventType::PlanAssigned && !f.released {
                                gathering.plans.extend(plan.clone());
                            }
                        }
                    }
                }
                Admitted::Duplicate => {}
            }
            cursor = stream_sequence;
        }
    }
    if last.is_some() {
        gathering.last = last;
    }
    ledger.set_cursor(cursor_key, cursor);
}

/// Counts the rejections of one offer by reason, as `tally` counts them.
fn tally_reasons(counts: &mut ReasonCounts, admitted: &Admitted, first_seq: u64) {
    match admitted {
        Admitted::Logged { folded, .. } => {
            for f in folded {
                if f.seq < first_seq || f.event_type == premia_core::EventType::SchemeActivated {
                    continue;
                }
                if let premia_core::Outcome::Rejected(rejection) = &f.outcome {
                    counts.add(rejection.reason);
                }
            }
        }
        Admitted::Rejected(rejection) => counts.add(rejection.reason),
        Admitted::Duplicate => {}
    }
}
