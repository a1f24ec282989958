//! Random logs for the property tests: the operations a generated log is made of, and the
//! input line each one becomes. Each test draws its own mix of operations (which kinds, how
//! many ids, which months), so ids collide, payments overtake their deals, exceed balances,
//! land on cancelled deals, and months close in between.

#![allow(dead_code)] // Each test binary uses part of it.

use premia_core::fold::{Admitted, Entry};
use premia_core::{Admission, Folded, LedgerState, Outcome, Scheme};
use proptest::prelude::*;

#[derive(Debug, Clone)]
pub enum Op {
    /// `amount` in thousands, `margin` in whole units.
    Deal {
        deal: u8,
        manager: u8,
        amount: u8,
        margin: u16,
        month: u8,
        day: u8,
        prepay: bool,
    },
    /// `amount` in thousands.
    Pay {
        payment: u8,
        deal: u8,
        amount: u8,
        month: u8,
        day: u8,
    },
    /// `amount` in hundreds.
    Refund {
        refund: u8,
        payment: u8,
        amount: u8,
        month: u8,
        day: u8,
    },
    Cancel {
        deal: u8,
        manager_fault: bool,
        month: u8,
        day: u8,
    },
    Late {
        deal: u8,
    },
    Plan {
        manager: u8,
        month: u8,
    },
    Close {
        month: u8,
    },
    /// A scheme with other rates and grace days from here on.
    Scheme {
        grace: u8,
    },
}

/// Every kind of operation, over a handful of ids and five months.
pub fn any_op() -> impl Strategy<Value = Op> {
    let month = 1u8..=5;
    let day = 1u8..=28;
    prop_oneof![
        3 => (0u8..6, 0u8..3, 1u8..5, month.clone(), day.clone(), any::<bool>()).prop_map(|(deal, manager, amount, month, day, prepay)| Op::Deal { deal, manager, amount, margin: u16::from(amount) * 100 + 37, month, day, prepay }),
        4 => (0u8..8, 0u8..6, 1u8..4, month.clone(), day.clone()).prop_map(|(payment, deal, amount, month, day)| Op::Pay { payment, deal, amount, month, day }),
        2 => (0u8..5, 0u8..8, 1u8..3, month.clone(), day.clone()).prop_map(|(refund, payment, amount, month, day)| Op::Refund { refund, payment, amount, month, day }),
        1 => (0u8..6, any::<bool>(), month.clone(), day.clone()).prop_map(|(deal, manager_fault, month, day)| Op::Cancel { deal, manager_fault, month, day }),
        1 => (0u8..6).prop_map(|deal| Op::Late { deal }),
        2 => (0u8..3, month.clone()).prop_map(|(manager, month)| Op::Plan { manager, month }),
        1 => month.prop_map(|month| Op::Close { month }),
        1 => (0u8..20).prop_map(|grace| Op::Scheme { grace }),
    ]
}

/// The input line of operation `op`, the `i`-th of its log (its event id is `e{i}`).
pub fn line(i: usize, op: &Op) -> String {
    let date = |m: u8, d: u8| format!("2026-{m:02}-{d:02}");
    let (t, data) = match op {
        Op::Deal { deal, manager, amount, margin, month, day, prepay } => (
            "deal.created",
            format!(
                r#"{{"deal_id":"D{deal}","manager_id":"M{manager}","client_id":"C","amount":"{amount}000.00","margin":"{margin}.00","currency":"RUB","payment_terms":"{}","due_date":"{}","created_on":"{}"}}"#,
                if *prepay { "prepayment" } else { "postpayment" },
                date(*month, *day),
                date(*month, 1)
            ),
        ),
        Op::Pay { payment, deal, amount, month, day } => (
            "payment.received",
            format!(
                r#"{{"payment_id":"P{payment}","deal_id":"D{deal}","amount":"{amount}000.00","currency":"RUB","paid_on":"{}"}}"#,
                date(*month, *day)
            ),
        ),
        Op::Refund { refund, payment, amount, month, day } => (
            "payment.refunded",
            format!(
                r#"{{"refund_id":"R{refund}","payment_id":"P{payment}","amount":"{amount}00.00","currency":"RUB","refunded_on":"{}"}}"#,
                date(*month, *day)
            ),
        ),
        Op::Cancel { deal, manager_fault, month, day } => (
            "deal.cancelled",
            format!(
                r#"{{"deal_id":"D{deal}","cancelled_on":"{}","fault":"{}"}}"#,
                date(*month, *day),
                if *manager_fault { "manager" } else { "client" }
            ),
        ),
        Op::Late { deal } => ("payment.late", format!(r#"{{"deal_id":"D{deal}","as_of":"2026-03-01"}}"#)),
        Op::Plan { manager, month } => {
            ("plan.assigned", format!(r#"{{"manager_id":"M{manager}","period":"2026-{month:02}","target":"5000.00"}}"#))
        }
        Op::Close { month } => ("period.closed", format!(r#"{{"period":"2026-{month:02}"}}"#)),
        Op::Scheme { grace } => {
            let mut scheme = Scheme::default_scheme();
            scheme.name = format!("grace {grace}");
            scheme.commission.grace_working_days = u32::from(*grace);
            ("scheme.activated", scheme.to_json().to_string())
        }
    };
    format!(r#"{{"specversion":"1.0","id":"e{i}","source":"s","type":"{t}","data":{data}}}"#)
}

/// The log an ingest of `ops` writes, as (seq, raw record): the lines admitted, each after the
/// scheme record the ledger writes before its first event.
pub fn logged(ops: &[Op]) -> Vec<(u64, Vec<u8>)> {
    let mut admitting = LedgerState::new();
    let mut log = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let raw = line(i, op).into_bytes();
        if let Admitted::Logged { seq, preamble, .. } = admitting.admit(&raw, Admission::Operator) {
            if let Some(own) = preamble {
                log.push((own.seq, own.raw));
            }
            log.push((seq, raw));
        }
    }
    log
}

/// Folds log records into `state` as a recovery does; the entries they book.
pub fn replay_into(state: &mut LedgerState, records: &[(u64, Vec<u8>)]) -> Vec<Entry> {
    let mut entries = Vec::new();
    for (seq, raw) in records {
        entries_of(state.replay(*seq, raw).expect("a logged record folds"), &mut entries);
    }
    entries
}

/// Appends the entries booked in one fold step.
pub fn entries_of(folded: Vec<Folded>, into: &mut Vec<Entry>) {
    for f in folded {
        if let Outcome::Applied { entries } = f.outcome {
            into.extend(entries);
        }
    }
}
