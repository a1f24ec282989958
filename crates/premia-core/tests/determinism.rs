//! Property: the fold's state is written the same, byte for byte, however it was reached. Two
//! folds of one log, and a fold of a prefix that is written, read back (as a snapshot is) and
//! folded on to the end, give identical bincode bytes: nothing in them depends on a hasher's
//! seed or on the order and history of a map's insertions.

mod common;

use common::{any_op, logged, replay_into};
use premia_core::LedgerState;
use proptest::prelude::*;

fn bytes(state: &LedgerState) -> Vec<u8> {
    bincode::serialize(state).expect("the state serializes")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn the_state_bytes_depend_on_the_log_only(ops in proptest::collection::vec(any_op(), 1..80), cut in 0.0f64..1.0) {
        let log = logged(&ops);
        let mut once = LedgerState::new();
        replay_into(&mut once, &log);
        let mut again = LedgerState::new();
        replay_into(&mut again, &log);
        let at = ((log.len() as f64) * cut) as usize;
        let mut prefix = LedgerState::new();
        replay_into(&mut prefix, &log[..at]);
        let mut loaded: LedgerState = bincode::deserialize(&bytes(&prefix)).expect("a written state reads back");
        loaded.after_load();
        replay_into(&mut loaded, &log[at..]);
        prop_assert_eq!(bytes(&once), bytes(&again));
        prop_assert_eq!(bytes(&once), bytes(&loaded));
    }
}
