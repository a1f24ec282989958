//! Folding a parsed chunk into the ledger's memory: each message is offered to the ledger (or
//! skipped when at or below the cursor), and what the batch booked is gathered for its feed.

use premia_core::fold::Admitted;
use premia_core::Admission;
use std::sync::Arc;

use premia_ledger::ingest::tally;
use premia_ledger::serving::{ReasonCounts, ServeReport};
use premia_ledger::{Ledger, Origin, StreamPlace};

use crate::feed::{record_feed, StampedFeed};
use crate::receive::{ParsedChunk, Received};
use crate::streams::stored_cursor;

/// Messages folded into the ledger's memory but not yet handed to the writer. Chunks keep
/// being gathered here while the batch before is being flushed (group commit): the slower the
/// disk, the bigger the batches, and no message waits for more than one flush.
#[derive(Default)]
pub(crate) struct Gathering {
    /// The last message gathered, kept whole: acking it acks the batch.
    pub(crate) last: Option<async_nats::jetstream::Message>,
    pub(crate) messages: usize,
    pub(crate) rejected: Vec<(premia_core::Rejection, bytes::Bytes)>,
    /// The feed messages of the records gathered (when the feed is on), each computed from the
    /// state right after its record.
    pub(crate) feed: Vec<StampedFeed>,
    /// The last message said nothing more was pending for the consumer.
    pub(crate) drained: bool,
}

impl Gathering {
    /// Offers every message of a chunk to the ledger (in memory) and moves the cursor to the
    /// last one offered. A message at or below the cursor is already in the ledger (redelivered
    /// after a crash between commit and ack): it is counted as skipped and acked with the batch.
    pub(crate) fn fold(
        &mut self,
        ledger: &mut Ledger,
        stream: &Arc<str>,
        cursor_key: &str,
        chunk: ParsedChunk,
        first_seq: u64,
        feed: bool,
        report: &mut ServeReport,
    ) {
        let ParsedChunk { messages: received, last, parsed_with, .. } = chunk;
        let mut cursor = stored_cursor(ledger, cursor_key);
        for message in received {
            self.drained = message.pending == 0;
            report.consumer_pending = Some(message.pending);
            self.messages += 1;
            if message.stream_sequence <= cursor {
                report.skipped += 1;
                continue;
            }
            cursor = message.stream_sequence;
            self.offer(ledger, stream, message, &parsed_with, first_seq, feed, report);
        }
        if last.is_some() {
            self.last = last;
        }
        ledger.set_cursor(cursor_key, cursor);
    }

    /// Offers one message to the ledger and keeps what its feed and rejection notice need.
    fn offer(
        &mut self,
        ledger: &mut Ledger,
        stream: &Arc<str>,
        message: Received,
        parsed_with: &std::sync::Arc<premia_core::Scheme>,
        first_seq: u64,
        feed: bool,
        report: &mut ServeReport,
    ) {
        let Received { payload, event: parsed, stream_sequence, published_ms, .. } = message;
        // Taken from the parse already made: the plan's manager and period do not depend on
        // the scheme, so they hold even if the fold parses the event again.
        let plan = match &parsed {
            Ok(premia_core::Event { data: premia_core::EventData::PlanAssigned(plan), .. }) => {
                Some((plan.manager_id.to_string(), plan.period))
            }
            _ => None,
        };
        // The record's place and arrival come from the stream, so every ledger that takes this
        // stream in writes the same record with the same hash.
        let origin = Origin::Stream(StreamPlace { stream: stream.clone(), seq: stream_sequence });
        let admitted = ledger.offer_parsed(&payload, parsed, parsed_with, origin, Admission::Publisher, published_ms);
        tally(&mut report.counts, &admitted, first_seq);
        tally_reasons(&mut report.rejected_by_reason, &admitted, first_seq);
        match &admitted {
            Admitted::Rejected(rejection) => self.rejected.push((rejection.clone(), payload)),
            Admitted::Logged { seq, folded, .. } if feed => {
                let mut booked = Vec::new();
                let mut plan_changed = false;
                for f in folded {
                    if let premia_core::Outcome::Applied { entries } = &f.outcome {
                        booked.extend(entries.iter().cloned());
                        plan_changed |= f.event_type == premia_core::EventType::PlanAssigned && !f.released;
                    }
                }
                let plan_change = plan.as_ref().filter(|_| plan_changed).map(|(m, p)| (m.as_str(), *p));
                let messages = record_feed(ledger.state(), *seq, &booked, plan_change);
                self.feed.extend(messages.into_iter().map(|message| StampedFeed { message, stored_ms: published_ms }));
            }
            Admitted::Logged { .. } | Admitted::Duplicate => {}
        }
    }
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
