//! Property: the fold's state is written the same, byte for byte, however it was reached. Two
//! folds of one log, and a fold of a prefix that is written, read back (as a snapshot is) and
//! folded on to the end, give identical bincode bytes: nothing in them depends on a hasher's
//! seed or on the order and history of a map's insertions.

mod common;

use common::{logged, Op};
use premia_core::LedgerState;
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    let month = 1u8..=5;
    let day = 1u8..=28;
    prop_oneof![
        3 => (0u8..6, 0u8..3, 1u8..5, month.clone(), day.clone(), any::<bool>()).prop_map(|(deal, manager, amount, month, day, prepay)| Op::Deal { deal, manager, amount, margin: u16::from(amount) * 100 + 37, month, day, prepay }),
        4 => (0u8..8, 0u8..6, 1u8..4, month.clone(), day.clone()).prop_map(|(payment, deal, amount, month, day)| Op::Pay { payment, deal, amount, month, day }),
        2 => (0u8..5, 0u8..8, 1u8..3, month.clone(), day.clone()).prop_map(|(refund, payment, amount, month, day)| Op::Refund { refund, payment, amount, month, day }),
        1 => (0u8..6, any::<bool>(), month.clone(), day.clone()).prop_map(|(deal, manager_fault, month, day)| Op::Cancel { deal, manager_fault, month, day }),
        1 => (0u8..6).prop_map(|deal| Op::Late { deal }),
        1 => (0u8..3, month.clone()).prop_map(|(manager, month)| Op::Plan { manager, month }),
        1 => month.prop_map(|month| Op::Close { month }),
        1 => (0u8..20).prop_map(|grace| Op::Scheme { grace }),
    ]
}

fn fold(state: &mut LedgerState, records: &[(u64, Vec<u8>)]) {
    for (seq, raw) in records {
        state.replay(*seq, raw).expect("a logged record folds");
    }
}

fn bytes(state: &LedgerState) -> Vec<u8> {
    bincode::serialize(state).expect("the state serializes")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn the_state_bytes_depend_on_the_log_only(ops in proptest::collection::vec(op(), 1..80), cut in 0.0f64..1.0) {
        let log = logged(&ops);
        let mut once = LedgerState::new();
        fold(&mut once, &log);
        let mut again = LedgerState::new();
        fold(&mut again, &log);
        let at = ((log.len() as f64) * cut) as usize;
        let mut prefix = LedgerState::new();
        fold(&mut prefix, &log[..at]);
        let mut loaded: LedgerState = bincode::deserialize(&bytes(&prefix)).expect("a written state reads back");
        loaded.after_load();
        fold(&mut loaded, &log[at..]);
        prop_assert_eq!(bytes(&once), bytes(&again));
        prop_assert_eq!(bytes(&once), bytes(&loaded));
    }
}
