//! Fuzz target `event`: the event decoder (`parse_event`, the CloudEvent JSON parser and
//! validator) on arbitrary bytes and on valid events of the seed month damaged structure-aware
//! and byte-wise. Properties: it never panics; it decides the same way twice; a rejection has a
//! known reason code and a sentence; an accepted line keeps its source and id; and the fold takes
//! an accepted line after the seed month without panicking.
//!
//! `PREMIA_FUZZ_CASES` / `PREMIA_FUZZ_SECONDS`: see fuzz_support/mod.rs.

mod fuzz_support;

use std::sync::OnceLock;

use fuzz_support::mutate::{arbitrary_line, mutated_line, Line};
use premia_core::event::parse_event;
use premia_core::fold::scheme_activation_record;
use premia_core::{Admission, Admitted, LedgerState, Reason, Rejection, Scheme};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const SEED_MONTH: &str = include_str!("../../../tests/data/seed-month.jsonl");

/// The seed month's lines and a `scheme.activated` of the default scheme (the seed month's
/// one line in dollars is left out: the corpus is lines the decoder accepts).
fn valid_lines() -> &'static [&'static str] {
    static LINES: OnceLock<Vec<&'static str>> = OnceLock::new();
    LINES.get_or_init(|| {
        let activation = scheme_activation_record(&Scheme::default_scheme(), 1);
        let activation: &'static str = match String::from_utf8(activation) {
            Ok(text) => Box::leak(text.into_boxed_str()),
            Err(e) => panic!("the scheme.activated record is UTF-8 JSON: {e}"),
        };
        let scheme = Scheme::default_scheme();
        SEED_MONTH
            .lines()
            .chain([activation])
            .filter(|line| parse_event(line.as_bytes(), &scheme, Admission::Operator).is_ok())
            .collect()
    })
}

/// The state after the seed month, to fold an accepted line on top of.
fn after_seed_month() -> &'static LedgerState {
    static STATE: OnceLock<LedgerState> = OnceLock::new();
    STATE.get_or_init(|| {
        let mut state = LedgerState::new();
        for line in SEED_MONTH.lines() {
            state.admit(line.as_bytes(), Admission::Publisher);
        }
        state
    })
}

fn input() -> impl Strategy<Value = Line> {
    prop_oneof![
        2 => arbitrary_line(),
        5 => mutated_line(valid_lines(), 3, 4),
    ]
}

/// A rejection names a known reason and says in a sentence what is wrong.
pub fn check_rejection(rejection: &Rejection) -> Result<(), TestCaseError> {
    prop_assert_eq!(Reason::from_code(rejection.reason.code()), Some(rejection.reason));
    let message = rejection.message.trim();
    prop_assert!(message.len() >= 12, "rejection {} has no sentence: {:?}", rejection.reason.code(), message);
    Ok(())
}

fn property(line: Line) -> Result<(), TestCaseError> {
    let scheme = Scheme::default_scheme();
    for admission in [Admission::Publisher, Admission::Operator] {
        let first = parse_event(&line.0, &scheme, admission);
        let again = parse_event(&line.0, &scheme, admission);
        prop_assert_eq!(&first, &again, "the decoder decided twice differently");
        match first {
            Err(rejection) => check_rejection(&rejection)?,
            Ok(event) => {
                if admission == Admission::Publisher {
                    fuzz_support::accepted();
                }
                prop_assert!(!event.source.is_empty() && !event.id.is_empty());
                let mut state = after_seed_month().clone();
                match state.admit(&line.0, admission) {
                    Admitted::Rejected(rejection) => check_rejection(&rejection)?,
                    Admitted::Logged { .. } | Admitted::Duplicate => {}
                }
            }
        }
    }
    Ok(())
}

#[test]
fn fuzz_event_decoder() {
    fuzz_support::run("event", file!(), 5_000, input(), property);
}

/// The mutations start from every kind of event: all but one line of the seed month (29) and
/// the scheme activation pass.
#[test]
fn the_corpus_holds_every_event_type() {
    let lines = valid_lines();
    assert_eq!(lines.len(), 29);
    for event_type in premia_core::EventType::ALL {
        let quoted = format!("\"{}\"", event_type.as_str());
        assert!(lines.iter().any(|l| l.contains(&quoted)), "no valid {} in the corpus", event_type.as_str());
    }
}
