//! Property: folding only the records the replay index selects for a period gives that
//! period's statement exactly as folding the whole log does, for every manager and every
//! prefix of the log. Random logs over a handful of ids, so ids collide, payments overtake
//! their deals, exceed balances, land on cancelled deals, and months close in between.

mod common;

use common::{entries_of, logged, Op};
use premia_core::fold::{Entry, LedgerState};
use premia_core::replay_index::ReplayIndex;
use premia_core::Period;
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    let month = 1u8..=5;
    let day = 1u8..=28;
    prop_oneof![
        3 => (0u8..6, 0u8..3, 1u8..5, month.clone(), day.clone(), any::<bool>()).prop_map(|(deal, manager, amount, month, day, prepay)| Op::Deal { deal, manager, amount, margin: u16::from(amount) * 100, month, day, prepay }),
        4 => (0u8..8, 0u8..6, 1u8..4, month.clone(), day.clone()).prop_map(|(payment, deal, amount, month, day)| Op::Pay { payment, deal, amount, month, day }),
        2 => (0u8..4, 0u8..8, 1u8..3, month.clone(), day.clone()).prop_map(|(refund, payment, amount, month, day)| Op::Refund { refund, payment, amount, month, day }),
        1 => (0u8..6, any::<bool>(), month.clone(), day.clone()).prop_map(|(deal, manager_fault, month, day)| Op::Cancel { deal, manager_fault, month, day }),
        1 => (0u8..6).prop_map(|deal| Op::Late { deal }),
        1 => (0u8..3, month.clone()).prop_map(|(manager, month)| Op::Plan { manager, month }),
        2 => month.prop_map(|month| Op::Close { month }),
    ]
}

/// Folds the given log records (seq, raw) into a fresh state; returns it and its entries.
fn fold(records: &[(u64, Vec<u8>)], selected: impl Fn(u64) -> bool) -> (LedgerState, Vec<Entry>) {
    let mut state = LedgerState::new();
    let mut entries = Vec::new();
    for (seq, raw) in records.iter().filter(|(s, _)| selected(*s)) {
        entries_of(state.replay_selected(*seq, raw).expect("a logged record folds"), &mut entries);
    }
    (state, entries)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn a_period_replay_equals_the_full_fold(ops in proptest::collection::vec(op(), 1..60), cut in 0.0f64..1.0) {
        // The log, as an ingest writes it.
        let log = logged(&ops);
        let mut index = ReplayIndex::new();
        for (seq, raw) in &log {
            index.add(*seq, 0, raw).unwrap();
        }
        let last = log.len() as u64;
        let until = ((last as f64) * cut).ceil() as u64;
        let (full, full_entries) = fold(&log, |s| s <= until);
        let mut period = Period::parse("2025-12").unwrap();
        for _ in 0..7 {
            let records = index.period_file(period);
            for manager in [None, Some("M1")] {
                let mut seqs: Vec<u64> = index.globals().iter().copied().filter(|&s| s <= until).collect();
                seqs.extend(records.seqs(manager, until));
                let (state, entries) = fold(&log, |s| seqs.contains(&s));
                let of_period = |e: &[Entry]| e.iter().filter(|e| e.period == period).cloned().collect::<Vec<_>>();
                prop_assert_eq!(
                    state.statement(period, manager, &of_period(&entries)),
                    full.statement(period, manager, &of_period(&full_entries)),
                    "period {} manager {:?} until {}", period, manager, until
                );
            }
            period = period.next();
        }
    }
}
