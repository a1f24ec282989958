//! Property: what `GET /v1/explain/{payments,deals}/{id}` derives from the fold state and the
//! stored entries (explain.rs: `subject_records`, `applied_at`, `scheme_seq_at`,
//! `in_booking_order`) is what a fold of the log says as it books them: the same entries of each
//! payment and deal, in the same order, each booked when the same record was folded, under the
//! same scheme. Random logs over a handful of ids, so payments overtake their deals, refunds
//! overtake their payments (chains of releases in one fold step), ids are reused, months close
//! in between and schemes change.

mod common;

use std::collections::BTreeMap;

use common::{line, Op};

use premia_core::explain::{
    applied_at, in_booking_order, record_applied_at, scheme_seq_at, subject_parked, subject_records, Subject,
};
use premia_core::fold::{Admitted, Entry, LedgerState, Outcome};
use premia_core::{Admission, EventData};
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    let month = 1u8..=4;
    let day = 1u8..=28;
    prop_oneof![
        3 => (0u8..5, 0u8..3, 1u8..5, month.clone(), day.clone(), any::<bool>()).prop_map(|(deal, manager, amount, month, day, prepay)| Op::Deal { deal, manager, amount, margin: u16::from(amount) * 100 + 37, month, day, prepay }),
        4 => (0u8..7, 0u8..5, 1u8..4, month.clone(), day.clone()).prop_map(|(payment, deal, amount, month, day)| Op::Pay { payment, deal, amount, month, day }),
        3 => (0u8..6, 0u8..7, 1u8..3, month.clone(), day.clone()).prop_map(|(refund, payment, amount, month, day)| Op::Refund { refund, payment, amount, month, day }),
        1 => (0u8..5, any::<bool>(), month.clone(), day.clone()).prop_map(|(deal, manager_fault, month, day)| Op::Cancel { deal, manager_fault, month, day }),
        1 => month.prop_map(|month| Op::Close { month }),
        1 => (0u8..20).prop_map(|grace| Op::Scheme { grace }),
    ]
}

/// One entry as the fold booked it: the record being folded, and the scheme in force then.
#[derive(Debug, Clone, PartialEq)]
struct Booked {
    entry: Entry,
    applied_at: u64,
    scheme_seq: Option<u64>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn explanations_from_the_state_are_those_of_the_fold(ops in proptest::collection::vec(op(), 1..70)) {
        let mut state = LedgerState::new();
        let mut booked: Vec<Booked> = Vec::new();
        // (record, its raw bytes, the record whose fold applied it) for every applied record.
        let mut raws: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut applied: Vec<(u64, u64)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let raw = line(i, op).into_bytes();
            if let Admitted::Logged { seq, folded, .. } = state.admit(&raw, Admission::Operator) {
                raws.insert(seq, raw);
                for f in folded {
                    if matches!(f.outcome, Outcome::Applied { .. }) {
                        applied.push((f.seq, seq));
                    }
                    if let Outcome::Applied { entries } = f.outcome {
                        booked.extend(entries.into_iter().map(|entry| Booked {
                            entry,
                            applied_at: seq,
                            scheme_seq: state.scheme_seq(),
                        }));
                    }
                }
            }
        }
        // What the ledger stores: each record's entries under its seq, in booking order.
        let mut stored: BTreeMap<u64, Vec<Entry>> = BTreeMap::new();
        for b in &booked {
            stored.entry(b.entry.seq).or_default().push(b.entry.clone());
        }
        for (seq, at) in applied {
            prop_assert_eq!(record_applied_at(&state, seq, &raws[&seq]), at, "record {}", seq);
        }
        for b in &booked {
            prop_assert_eq!(applied_at(&state, &b.entry), b.applied_at, "{:?}", b.entry);
            prop_assert_eq!(scheme_seq_at(&state, b.applied_at), b.scheme_seq);
        }
        let payments: Vec<String> = (0..7).map(|i| format!("P{i}")).collect();
        let deals: Vec<String> = (0..5).map(|i| format!("D{i}")).collect();
        let subjects = payments.iter().map(|p| Subject::Payment(p)).chain(deals.iter().map(|d| Subject::Deal(d)));
        for subject in subjects {
            let expected: Vec<Booked> = booked.iter().filter(|b| subject.covers(&b.entry)).cloned().collect();
            let mut read = Vec::new();
            for seq in subject_records(&state, subject) {
                read.extend(stored.get(&seq).into_iter().flatten().filter(|e| subject.covers(e)).cloned());
            }
            let derived: Vec<Booked> = in_booking_order(&state, read)
                .into_iter()
                .map(|(entry, at)| Booked { entry, applied_at: at, scheme_seq: scheme_seq_at(&state, at) })
                .collect();
            prop_assert_eq!(derived, expected, "{:?}", subject);
            // Whatever still waits for the subject is listed with it: what names its id, and
            // for a deal, refunds of its payments that wait too.
            let waiting_payments_of = |deal: &str| -> Vec<String> {
                state.parked().values().filter_map(|p| match &p.event.data {
                    EventData::PaymentReceived(r) if &*r.deal_id == deal => Some(r.payment_id.to_string()),
                    _ => None,
                }).collect()
            };
            let listed = subject_parked(&state, subject);
            for (seq, parked) in state.parked() {
                let waits = match (&parked.event.data, subject) {
                    (EventData::PaymentReceived(p), Subject::Payment(id)) => &*p.payment_id == id,
                    (EventData::PaymentRefunded(r), Subject::Payment(id)) => &*r.payment_id == id,
                    (EventData::PaymentReceived(p), Subject::Deal(id)) => &*p.deal_id == id,
                    (EventData::DealCancelled(c), Subject::Deal(id)) => &*c.deal_id == id,
                    (EventData::PaymentRefunded(r), Subject::Deal(id)) => {
                        waiting_payments_of(id).contains(&r.payment_id.to_string())
                    }
                    _ => false,
                };
                prop_assert_eq!(waits, listed.contains(seq), "{} {:?}", seq, subject);
            }
        }
    }
}

/// A refund that arrived before its payment, which arrived before its deal: all three are
/// applied when the deal arrives, the payment first (the deal released it), then the refund
/// (the payment released it), though the refund was received first.
#[test]
fn a_chain_of_releases_is_told_in_the_order_the_fold_applied_it() {
    let mut state = LedgerState::new();
    let mut booked = Vec::new();
    for (i, op) in [
        Op::Refund { refund: 1, payment: 1, amount: 1, month: 1, day: 20 },
        Op::Pay { payment: 1, deal: 1, amount: 2, month: 1, day: 10 },
        Op::Deal { deal: 1, manager: 1, amount: 3, margin: 337, month: 1, day: 5, prepay: false },
    ]
    .iter()
    .enumerate()
    {
        if let Admitted::Logged { folded, .. } = state.admit(line(i, op).as_bytes(), Admission::Operator) {
            for f in folded {
                if let Outcome::Applied { entries } = f.outcome {
                    booked.extend(entries);
                }
            }
        }
    }
    // seq 1 is the scheme the ledger logs first; the refund is 2, the payment 3, the deal 4.
    assert_eq!(
        booked.iter().map(|e| (e.seq, e.kind.as_str())).collect::<Vec<_>>(),
        [(3, "commission"), (2, "clawback")]
    );
    let mut by_seq = booked.clone();
    by_seq.sort_by_key(|e| e.seq);
    let ordered = in_booking_order(&state, by_seq);
    assert_eq!(ordered.iter().map(|(e, at)| (e.seq, *at)).collect::<Vec<_>>(), [(3, 4), (2, 4)]);
    assert_eq!(subject_records(&state, Subject::Deal("D1")), [2, 3]);
    assert_eq!(subject_records(&state, Subject::Payment("P1")), [2, 3]);
    assert!(subject_records(&state, Subject::Payment("P2")).is_empty());
}
