//! A record parsed ahead of the fold (a replay's reader thread) folds as if the fold had parsed
//! it: under the scheme in force, whatever scheme it was parsed under.

use premia_core::event::{parse_event, parses_alike};
use premia_core::fold::ReplayError;
use premia_core::{Admission, LedgerState, Reason, Scheme};

const DEAL: &str = r#"{"specversion":"1.0","id":"e1","source":"crm/t","type":"deal.created","data":{"deal_id":"D-1","manager_id":"M-7","client_id":"C-55","amount":"1000.00","margin":"100.00","currency":"RUB","payment_terms":"prepayment","due_date":"2026-11-10","created_on":"2026-11-02"}}"#;
const PAYMENT: &str = r#"{"specversion":"1.0","id":"e2","source":"crm/t","type":"payment.received","data":{"payment_id":"P-1","deal_id":"D-1","amount":"400.00","currency":"RUB","paid_on":"2026-11-05"}}"#;

fn eur() -> Scheme {
    let mut scheme = Scheme::default_scheme();
    scheme.currency = "EUR".into();
    scheme
}

#[test]
fn a_record_parsed_under_another_currency_is_parsed_again_under_the_one_in_force() {
    let mut folded_here = LedgerState::new();
    let mut parsed_ahead = LedgerState::new();
    for (seq, line) in [(1, DEAL), (3, PAYMENT)] {
        let expected = folded_here.replay_selected(seq, line.as_bytes()).unwrap();
        // Parsed under EUR, the line is refused; the state keeps RUB, so it parses it again.
        let ahead = parse_event(line.as_bytes(), &eur(), Admission::Operator);
        assert!(ahead.is_err(), "a RUB line under an EUR scheme");
        let got = parsed_ahead.replay_selected_parsed(seq, line.as_bytes(), ahead, &eur()).unwrap();
        assert_eq!(got, expected, "record {seq}");
    }
    assert_eq!(parsed_ahead.next_seq(), folded_here.next_seq());
}

#[test]
fn a_record_parsed_under_a_scheme_that_parses_alike_is_folded_as_parsed() {
    let mut other_rules = Scheme::default_scheme();
    other_rules.name = "other rules".into();
    let mut state = LedgerState::new();
    let parsed = parse_event(DEAL.as_bytes(), &other_rules, Admission::Operator);
    let folded = state.replay_selected_parsed(1, DEAL.as_bytes(), parsed, &other_rules).unwrap();
    assert_eq!(folded.len(), 1);
    // The checks of the fold stay: the same event again is a repeat, and seqs only go up.
    let again = parse_event(DEAL.as_bytes(), &other_rules, Admission::Operator);
    let repeated = state.replay_selected_parsed(2, DEAL.as_bytes(), again, &other_rules).unwrap_err();
    assert!(matches!(repeated, ReplayError::Repeated { seq: 2 }), "{repeated:?}");
    let late = parse_event(PAYMENT.as_bytes(), &other_rules, Admission::Operator);
    let out_of_order = state.replay_selected_parsed(1, PAYMENT.as_bytes(), late, &other_rules).unwrap_err();
    assert!(matches!(out_of_order, ReplayError::OutOfOrder { seq: 1, .. }), "{out_of_order:?}");
}

#[test]
fn schemes_that_parse_alike_judge_lines_alike() {
    let rub = Scheme::default_scheme();
    let mut other_rules = Scheme::default_scheme();
    other_rules.name = "other rules".into();
    other_rules.commission.grace_working_days = 30;
    other_rules.fines.manager_fault = rust_decimal::Decimal::new(1, 0);
    assert!(parses_alike(&rub, &other_rules));
    assert!(!parses_alike(&rub, &eur()));
    for line in [DEAL.to_string(), PAYMENT.to_string(), DEAL.replace("RUB", "EUR")] {
        let under = |s: &Scheme| parse_event(line.as_bytes(), s, Admission::Operator);
        assert_eq!(under(&rub), under(&other_rules), "{line}");
    }
    // The currency is what tells them apart: a RUB line is refused under EUR.
    let refused = parse_event(DEAL.as_bytes(), &eur(), Admission::Operator).unwrap_err();
    assert_eq!(refused.reason, Reason::CurrencyMismatch);
}
