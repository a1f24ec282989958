//! Fuzz target `scheme`: the scheme parsers (`Scheme::from_toml`, and `Scheme::from_json`, which
//! reads the data of `scheme.activated`) on arbitrary text and on the default scheme with lines
//! edited, deleted, repeated and damaged byte-wise. Properties: never panics; a refusal says
//! what is wrong; an accepted scheme passes its own check, prints back to TOML and JSON that
//! read as the same scheme, gives a calendar and coefficients, and, activated in a ledger, folds
//! the seed month without a panic.
//!
//! `PREMIA_FUZZ_CASES` / `PREMIA_FUZZ_SECONDS`: see fuzz_support/mod.rs.

mod fuzz_support;

use fuzz_support::mutate::{apply_edits, apply_mutations, edit, mutation, Line};
use premia_core::fold::scheme_activation_record;
use premia_core::scheme::DEFAULT_SCHEME_TOML;
use premia_core::{Admission, Admitted, LedgerState, Scheme};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rust_decimal::Decimal;

const SEED_MONTH: &str = include_str!("../../../tests/data/seed-month.jsonl");

/// TOML values put on the right of a `key = value` line.
const ODD_TOML: &[&str] = &[
    "\"0\"",
    "\"1\"",
    "\"-0\"",
    "\"1.0000001\"",
    "\"0.000001\"",
    "\"1e3\"",
    "\"-0.001\"",
    "\"100\"",
    "\"100.000001\"",
    "\"79228162514264337593543950335\"",
    "\"0.0000000000000000000000000001\"",
    "\"99999999999999999.99\"",
    "\"1000000000000.00\"",
    "\"\"",
    "\" \"",
    "\"x\"",
    "\"proportional\"",
    "\"received\"",
    "\"margin_received\"",
    "\"booked\"",
    "\"RUB\"",
    "\"rub\"",
    "\"РУБ\"",
    "\"\\u0000\"",
    "0",
    "-1",
    "1",
    "366",
    "367",
    "4294967295",
    "4294967296",
    "9223372036854775808",
    "1.5",
    "nan",
    "inf",
    "true",
    "[]",
    "{}",
    "[\"02-29\"]",
    "[\"02-30\"]",
    "[\"13-01\"]",
    "[\"00-00\"]",
    "[\"2-3\"]",
    "[\"2026-02-29\"]",
    "[\"2028-02-29\"]",
    "[\"9999-12-31\"]",
    "[\"0000-01-01\"]",
    "[\"2026-13-01\"]",
    "[1]",
    "[\"01-01\", \"01-01\"]",
    "1979-05-27",
    "\"\"\"x\"\"\"",
];

#[derive(Debug, Clone)]
enum LineEdit {
    /// Puts an odd value on the right of the `at`-th `key = value` line.
    Value {
        at: usize,
        odd: usize,
    },
    Delete {
        at: usize,
    },
    Repeat {
        at: usize,
    },
    Swap {
        a: usize,
        b: usize,
    },
    /// Adds a tier at the end.
    Tier {
        from: usize,
        coefficient: usize,
    },
}

fn line_edit() -> impl Strategy<Value = LineEdit> {
    prop_oneof![
        5 => (any::<usize>(), 0..ODD_TOML.len()).prop_map(|(at, odd)| LineEdit::Value { at, odd }),
        2 => any::<usize>().prop_map(|at| LineEdit::Delete { at }),
        1 => any::<usize>().prop_map(|at| LineEdit::Repeat { at }),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| LineEdit::Swap { a, b }),
        1 => (0..ODD_TOML.len(), 0..ODD_TOML.len()).prop_map(|(from, coefficient)| LineEdit::Tier { from, coefficient }),
    ]
}

fn apply_line_edits(text: &str, edits: &[LineEdit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for edit in edits {
        let n = lines.len().max(1);
        match *edit {
            LineEdit::Value { at, odd } => {
                let keyed: Vec<usize> = (0..lines.len()).filter(|i| lines[*i].contains(" = ")).collect();
                if let Some(&i) = keyed.get(at % keyed.len().max(1)) {
                    let key = lines[i].split(" = ").next().unwrap_or_default().to_string();
                    lines[i] = format!("{key} = {}", ODD_TOML[odd]);
                }
            }
            LineEdit::Delete { at } if !lines.is_empty() => {
                lines.remove(at % n);
            }
            LineEdit::Repeat { at } if !lines.is_empty() => {
                let line = lines[at % n].clone();
                lines.insert(at % n, line);
            }
            LineEdit::Swap { a, b } if !lines.is_empty() => lines.swap(a % n, b % n),
            LineEdit::Tier { from, coefficient } => {
                // Tiers are an array of tables: a new one goes before [calendar].
                let at = lines.iter().position(|l| l.starts_with("[calendar]")).unwrap_or(lines.len());
                let tier = [
                    "[[plan.tiers]]".to_string(),
                    format!("from = {}", ODD_TOML[from]),
                    format!("coefficient = {}", ODD_TOML[coefficient]),
                ];
                lines.splice(at..at, tier);
            }
            _ => {}
        }
    }
    lines.join("\n")
}

#[derive(Debug, Clone)]
enum Input {
    Toml(Line),
    Json(Line),
}

fn input() -> impl Strategy<Value = Input> {
    let default_json = Scheme::default_scheme().to_json().to_string();
    prop_oneof![
        1 => "\\PC{0,300}".prop_map(|s| Input::Toml(Line(s.into_bytes()))),
        1 => "[a-z_.\\[\\]=\"0-9\n -]{0,300}".prop_map(|s| Input::Toml(Line(s.into_bytes()))),
        6 => (proptest::collection::vec(line_edit(), 0..5), proptest::collection::vec(mutation(), 0..3)).prop_map(
            |(edits, mutations)| {
                Input::Toml(Line(apply_mutations(apply_line_edits(DEFAULT_SCHEME_TOML, &edits).into_bytes(), &mutations)))
            }
        ),
        3 => proptest::collection::vec(edit(), 0..4)
            .prop_map(move |edits| Input::Json(Line(apply_edits(&default_json, &edits).into_bytes()))),
    ]
}

/// What must hold of a scheme a parser accepted.
fn check_accepted(scheme: &Scheme) -> Result<(), TestCaseError> {
    prop_assert!(scheme.check().is_ok(), "an accepted scheme fails its own check: {:?}", scheme.check());
    prop_assert_eq!(&Scheme::from_toml(&scheme.to_toml()), &Ok(scheme.clone()), "TOML does not round-trip");
    prop_assert_eq!(&Scheme::from_json(&scheme.to_json()), &Ok(scheme.clone()), "JSON does not round-trip");
    let _ = scheme.calendar();
    for (actual, target) in [("0", "1"), ("0.5", "1"), ("1", "1"), ("1000000000000", "0.01"), ("1", "1000000000000")] {
        let (Ok(actual), Ok(target)) = (actual.parse::<Decimal>(), target.parse::<Decimal>()) else { continue };
        let _ = scheme.coefficient(actual, target);
    }
    let mut state = LedgerState::new();
    let activation = scheme_activation_record(scheme, 1);
    match state.admit(&activation, Admission::Operator) {
        Admitted::Logged { .. } => {}
        other => return Err(TestCaseError::fail(format!("the ledger refused an accepted scheme: {other:?}"))),
    }
    for line in SEED_MONTH.lines() {
        state.admit(line.as_bytes(), Admission::Publisher);
    }
    Ok(())
}

fn property(input: Input) -> Result<(), TestCaseError> {
    let parsed = match &input {
        Input::Toml(text) => match std::str::from_utf8(&text.0) {
            Ok(text) => Scheme::from_toml(text),
            Err(_) => return Ok(()), // A scheme file is read as text first; not UTF-8 never gets here.
        },
        Input::Json(text) => match serde_json::from_slice(&text.0) {
            Ok(value) => Scheme::from_json(&value),
            Err(_) => return Ok(()),
        },
    };
    match parsed {
        Ok(scheme) => {
            fuzz_support::accepted();
            check_accepted(&scheme)
        }
        Err(problems) => {
            prop_assert!(!problems.0.is_empty(), "a refusal names no problem");
            for problem in &problems.0 {
                prop_assert!(problem.trim().len() >= 8, "a problem is not a sentence: {:?}", problem);
            }
            Ok(())
        }
    }
}

#[test]
fn fuzz_scheme_parser() {
    fuzz_support::run("scheme", file!(), 500, input(), property);
}

/// The edits reach both sides: some edited schemes are accepted, and some refused.
#[test]
fn line_edits_make_valid_and_invalid_schemes() {
    let grace = apply_line_edits(DEFAULT_SCHEME_TOML, &[LineEdit::Value { at: 5, odd: 27 }]);
    assert!(grace.contains("grace_working_days = 366"), "{grace}");
    assert!(Scheme::from_toml(&grace).is_ok());
    let too_long = apply_line_edits(DEFAULT_SCHEME_TOML, &[LineEdit::Value { at: 5, odd: 28 }]);
    assert!(Scheme::from_toml(&too_long).is_err());
}
