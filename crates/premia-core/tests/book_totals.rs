//! Property: every manager's book holds exactly what was booked into it. Its totals by kind are
//! the sums of the entries booked in its period for its manager and its entry count is their
//! number; every entry has its kind's sign; a plan bonus is booked at most once per manager and
//! period, by the close of that period.

mod common;

use std::collections::BTreeMap;

use common::{entries_of, logged, Op};
use premia_core::fold::EntryKind;
use premia_core::{LedgerState, Period};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn op() -> impl Strategy<Value = Op> {
    let month = 1u8..=5;
    let day = 1u8..=28;
    prop_oneof![
        3 => (0u8..6, 0u8..3, 1u8..5, month.clone(), day.clone(), any::<bool>()).prop_map(|(deal, manager, amount, month, day, prepay)| Op::Deal { deal, manager, amount, margin: u16::from(amount) * 100 + 37, month, day, prepay }),
        4 => (0u8..8, 0u8..6, 1u8..4, month.clone(), day.clone()).prop_map(|(payment, deal, amount, month, day)| Op::Pay { payment, deal, amount, month, day }),
        2 => (0u8..5, 0u8..8, 1u8..3, month.clone(), day.clone()).prop_map(|(refund, payment, amount, month, day)| Op::Refund { refund, payment, amount, month, day }),
        1 => (0u8..6, any::<bool>(), month.clone(), day.clone()).prop_map(|(deal, manager_fault, month, day)| Op::Cancel { deal, manager_fault, month, day }),
        2 => (0u8..3, month.clone()).prop_map(|(manager, month)| Op::Plan { manager, month }),
        1 => month.prop_map(|month| Op::Close { month }),
    ]
}

/// What the entries of one manager in one period add up to.
#[derive(Debug, Default, PartialEq)]
struct Sums {
    commission: Decimal,
    clawback: Decimal,
    fines: Decimal,
    plan_bonus: Decimal,
    count: u64,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn books_hold_the_entries_booked_into_them(ops in proptest::collection::vec(op(), 1..80)) {
        let mut state = LedgerState::new();
        let mut entries = Vec::new();
        for (seq, raw) in logged(&ops) {
            entries_of(state.replay(seq, &raw).expect("a logged record folds"), &mut entries);
        }
        let mut sums: BTreeMap<(Period, String), Sums> = BTreeMap::new();
        for e in &entries {
            prop_assert!(e.kind.admits(e.amount), "{:?}", e);
            let s = sums.entry((e.period, e.manager_id.to_string())).or_default();
            s.count += 1;
            match e.kind {
                EntryKind::Commission => s.commission += e.amount,
                EntryKind::Clawback => s.clawback += e.amount,
                EntryKind::Fine => s.fines += e.amount,
                EntryKind::PlanBonus => {
                    prop_assert!(s.plan_bonus.is_zero(), "a second plan bonus: {:?}", e);
                    prop_assert_eq!(state.closed_periods().get(&e.period), Some(&e.seq), "{:?}", e);
                    s.plan_bonus += e.amount;
                }
            }
        }
        for (period, managers) in state.books() {
            for (manager, book) in managers {
                let booked = sums.remove(&(*period, manager.to_string())).unwrap_or_default();
                let held = Sums {
                    commission: book.commission,
                    clawback: book.clawback,
                    fines: book.fines,
                    plan_bonus: book.plan_bonus,
                    count: book.entry_count,
                };
                prop_assert_eq!(&held, &booked, "{} {}", period, manager);
                prop_assert_eq!(book.total(), booked.commission + booked.clawback + booked.fines + booked.plan_bonus);
            }
        }
        prop_assert!(sums.is_empty(), "entries booked outside every book: {:?}", sums);
    }
}
