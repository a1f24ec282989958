//! One fold step: the admitted event is applied or parked, and the parked events it made ready
//! are released, the earliest received first (RULES.md section 9).

use std::collections::BTreeSet;

use crate::event::{Event, EventData, EventType};

use super::outcome::{Folded, Outcome};
use super::records::Parked;
use super::rules::Ruling;
use super::state::LedgerState;

impl LedgerState {
    /// Folds record `seq`, just numbered: applies it (or parks it), then releases what it made
    /// ready.
    pub(super) fn fold(&mut self, seq: u64, mut event: Event) -> Vec<Folded> {
        debug_assert_eq!(seq + 1, self.next_seq, "record {seq} is folded right after it is numbered");
        event.source = self.intern(&event.source);
        match &mut event.data {
            EventData::DealCreated(d) => d.manager_id = self.intern(&d.manager_id),
            EventData::PlanAssigned(p) => p.manager_id = self.intern(&p.manager_id),
            _ => {}
        }
        let event_type = event.data.event_type();
        let mut folded = Vec::with_capacity(1);
        let mut ready: BTreeSet<u64> = BTreeSet::new();
        match self.apply(seq, &event) {
            Ruling::Parked(waits_for) => {
                self.waiting.entry(waits_for.clone()).or_default().push(seq);
                self.parked.insert(seq, Parked { event, waits_for: waits_for.clone() });
                folded.push(Folded { seq, event_type, outcome: Outcome::Parked { waits_for }, released: false });
            }
            ruling => {
                let outcome = self.settle(seq, event_type, ruling, &mut ready);
                folded.push(Folded { seq, event_type, outcome, released: false });
            }
        }
        // RULES.md section 9: the earliest-received ready parked event first, one at a time.
        while let Some(parked_seq) = ready.pop_first() {
            debug_assert!(parked_seq < seq, "record {seq} releases only records received before it");
            let Some(parked) = self.parked.remove(&parked_seq) else {
                unreachable!("record {parked_seq} waited in a list, so it is parked")
            };
            let event_type = parked.event.data.event_type();
            let ruling = self.apply(parked_seq, &parked.event);
            assert!(
                !matches!(ruling, Ruling::Parked(_)),
                "a released event waits for one thing only, which now exists"
            );
            let outcome = self.settle(parked_seq, event_type, ruling, &mut ready);
            folded.push(Folded { seq: parked_seq, event_type, outcome, released: true });
        }
        folded
    }

    /// Turns what the rules made of record `seq` into its outcome: the entries it booked (and
    /// the parked events that waited for what it created become ready), or its rejection.
    pub(super) fn settle(
        &mut self,
        seq: u64,
        event_type: EventType,
        ruling: Ruling,
        ready: &mut BTreeSet<u64>,
    ) -> Outcome {
        match ruling {
            Ruling::Applied { entries, now_known } => {
                debug_assert!(entries.iter().all(|e| e.seq == seq), "record {seq} books entries of its own seq only");
                if let Some(key) = now_known {
                    if let Some(waiters) = self.waiting.remove(&key) {
                        ready.extend(waiters);
                    }
                }
                Outcome::Applied { entries }
            }
            Ruling::Rejected(rejection) => {
                self.rejected_by_rule.insert(seq, (event_type, rejection.clone()));
                Outcome::Rejected(rejection)
            }
            Ruling::Parked(_) => unreachable!("parking is handled by the caller"),
        }
    }
}
