//! Property: every manager's book holds exactly what was booked into it. Its totals by kind are
//! the sums of the entries booked in its period for its manager and its entry count is their
//! number; every entry has its kind's sign; a plan bonus is booked at most once per manager and
//! period, by the close of that period.

mod common;

use std::collections::BTreeMap;

use common::{any_op, logged, replay_into};
use premia_core::fold::EntryKind;
use premia_core::{LedgerState, Period};
use proptest::prelude::*;
use rust_decimal::Decimal;

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
    fn books_hold_the_entries_booked_into_them(ops in proptest::collection::vec(any_op(), 1..80)) {
        let mut state = LedgerState::new();
        let entries = replay_into(&mut state, &logged(&ops));
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
