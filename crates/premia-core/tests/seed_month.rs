//! The worked month of `tests/data/seed-month.jsonl`, folded in memory: counts and every
//! manager's figures must equal `tests/data/seed-month.expected.json`, which was derived by hand
//! from RULES.md (see shared/examples/README.md). The same month goes through the real binary
//! and store in `tests/golden.rs`.

use premia_core::fold::Admitted;
use premia_core::{Admission, LedgerState, Outcome, Period};
use serde_json::Value;

const LINES: &str = include_str!("../../../tests/data/seed-month.jsonl");
const EXPECTED: &str = include_str!("../../../tests/data/seed-month.expected.json");

#[test]
fn the_seed_month_folds_to_the_expected_figures() {
    let mut state = LedgerState::new();
    let mut entries = Vec::new();
    let (mut applied, mut duplicates, mut rejected) = (0, 0, 0);
    for line in LINES.lines().filter(|l| !l.trim().is_empty()) {
        match state.admit(line.as_bytes(), Admission::Operator) {
            Admitted::Logged { folded, .. } => {
                for f in folded {
                    match f.outcome {
                        Outcome::Applied { entries: booked } => {
                            applied += 1;
                            entries.extend(booked);
                        }
                        Outcome::Rejected(_) => rejected += 1,
                        Outcome::Parked { .. } => {}
                    }
                }
            }
            Admitted::Duplicate => duplicates += 1,
            Admitted::Rejected(_) => rejected += 1,
        }
    }
    let expected: Value = serde_json::from_str(EXPECTED).unwrap();
    let counts = &expected["counts"];
    assert_eq!(applied, counts["applied"].as_u64().unwrap());
    assert_eq!(duplicates, counts["duplicates"].as_u64().unwrap());
    assert_eq!(rejected, counts["rejected"].as_u64().unwrap());
    assert_eq!(state.parked().len() as u64, counts["parked"].as_u64().unwrap());

    let statements = expected["statements"].as_object().unwrap();
    assert_eq!(
        state.periods().iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        statements.keys().cloned().collect::<Vec<_>>()
    );
    for (period, managers) in statements {
        let got = serde_json::to_value(state.statement(Period::parse(period).unwrap(), None, &entries)).unwrap();
        let got_managers = got["managers"].as_array().unwrap();
        assert_eq!(got_managers.len(), managers.as_object().unwrap().len(), "{period}");
        for m in got_managers {
            let want = &managers[m["manager_id"].as_str().unwrap()];
            for key in ["commission", "clawback", "fines", "plan_bonus", "total"] {
                assert_eq!(m[key], want[key], "{period} {} {key}", m["manager_id"]);
            }
            for key in ["actual", "target", "status", "bonus"] {
                assert_eq!(m["plan"][key], want["plan"][key], "{period} {} plan.{key}", m["manager_id"]);
            }
        }
    }
}
