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
    ///
    /// A message past `cursor + 1` means the messages between were not delivered: lost in
    /// flight when a NATS node died, to be redelivered only after their ack wait, when the
    /// cursor would have passed them and they would be skipped as if taken in. The chunk is
    /// cut there, and the answer is that gap, `(cursor, seq)`: the caller sets the consumer up
    /// again from the cursor. Only the first message of a consumer just set up from the cursor
    /// (`fresh`) may be further on: the stream then holds nothing in between (messages removed
    /// by its limits).
    pub(crate) fn fold(
        &mut self,
        ledger: &mut Ledger,
        stream: &Arc<str>,
        cursor_key: &str,
        chunk: ParsedChunk,
        first_seq: u64,
        fresh: bool,
        feed: bool,
        report: &mut ServeReport,
    ) -> Option<(u64, u64)> {
        let ParsedChunk { messages: received, last, parsed_with, .. } = chunk;
        let mut cursor = stored_cursor(ledger, cursor_key);
        let mut first = fresh;
        let mut gap = None;
        for message in received {
            if message.stream_sequence > cursor + 1 && !first {
                gap = Some((cursor, message.stream_sequence));
                break;
            }
            first = false;
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
        // A cut chunk is not acked with its last message: that would ack what was not taken in.
        if last.is_some() && gap.is_none() {
            self.last = last;
        }
        ledger.set_cursor(cursor_key, cursor);
        gap
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A deal delivered at `seq` of the stream (its id is the seq, so every one is a new fact).
    fn deal(seq: u64, scheme: &premia_core::Scheme) -> Received {
        let line = format!(
            r#"{{"specversion": "1.0", "id": "e-{seq}", "source": "crm/x", "type": "deal.created", "data": {{"deal_id": "D-{seq}", "manager_id": "M-1", "client_id": "C-1", "amount": "1000.00", "margin": "100.00", "currency": "RUB", "payment_terms": "prepayment", "due_date": "2026-11-05", "created_on": "2026-11-02"}}}}"#
        );
        let event = premia_core::event::parse_event(line.as_bytes(), scheme, Admission::Publisher);
        assert!(event.is_ok(), "{event:?}");
        Received { payload: line.into(), stream_sequence: seq, published_ms: 1_764_000_000_000, pending: 0, event }
    }

    fn chunk(seqs: &[u64], scheme: &Arc<premia_core::Scheme>) -> ParsedChunk {
        let messages = seqs.iter().map(|s| deal(*s, scheme)).collect();
        ParsedChunk { messages, last: None, parsed_with: scheme.clone(), failure: None }
    }

    #[test]
    fn a_delivery_that_skips_sequences_is_cut_there_unless_it_opens_a_fresh_consumer() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(dir.path(), &premia_ledger::LedgerOptions::default(), "test").unwrap();
        let scheme = Arc::new(premia_core::Scheme::default_scheme());
        let stream: Arc<str> = "PREMIA_EVENTS".into();
        let mut report = ServeReport::default();
        let mut gathering = Gathering::default();
        let mut fold = |seqs: &[u64], fresh: bool, ledger: &mut Ledger| {
            gathering.fold(ledger, &stream, "nats:PREMIA_EVENTS", chunk(seqs, &scheme), 1, fresh, false, &mut report)
        };

        // 3 and 4 never came (lost in flight): 5 is not taken, and the cursor stays at 2.
        assert_eq!(fold(&[1, 2, 5, 6], true, &mut ledger), Some((2, 5)));
        assert_eq!(stored_cursor(&ledger, "nats:PREMIA_EVENTS"), 2);
        // A consumer set up again from the cursor delivers 3 next: taken in order.
        assert_eq!(fold(&[3, 4, 5], true, &mut ledger), None);
        assert_eq!(stored_cursor(&ledger, "nats:PREMIA_EVENTS"), 5);
        // Its first message may be further on (the stream holds nothing between): taken.
        assert_eq!(fold(&[9, 10], true, &mut ledger), None);
        assert_eq!(stored_cursor(&ledger, "nats:PREMIA_EVENTS"), 10);
        // Not the first message of a fresh consumer: a gap, even of one.
        assert_eq!(fold(&[12], false, &mut ledger), Some((10, 12)));
        assert_eq!(stored_cursor(&ledger, "nats:PREMIA_EVENTS"), 10);
        // Redelivered messages at or below the cursor are skipped, not a gap.
        assert_eq!(fold(&[9, 10, 11], false, &mut ledger), None);
        assert_eq!((report.skipped, stored_cursor(&ledger, "nats:PREMIA_EVENTS")), (2, 11));
        // Taken in: 1-5, 9, 10, 11 (6 came after the first gap and was not taken).
        assert_eq!(report.counts.applied, 8, "{:?}", report.counts);
    }
}
