//! `LedgerState::overdue_deals`, the list the dashboard shows, on the worked month: worked out
//! by hand from tests/data/seed-month.jsonl, and always the deals `figures` counts.

use premia_core::figures::OverdueDeal;
use premia_core::{Admission, LedgerState, Period};
use rust_decimal::Decimal;

const LINES: &str = include_str!("../../../tests/data/seed-month.jsonl");

fn fold(lines: impl IntoIterator<Item = String>) -> LedgerState {
    let mut state = LedgerState::new();
    for line in lines {
        let _ = state.admit(line.as_bytes(), Admission::Operator);
    }
    state
}

fn seed(n: usize) -> Vec<String> {
    LINES.lines().filter(|l| !l.trim().is_empty()).take(n).map(str::to_string).collect()
}

fn period(text: &str) -> Period {
    Period::parse(text).unwrap()
}

fn row(deal: &str, client: &str, outstanding: &str, days: Option<u32>) -> OverdueDeal {
    OverdueDeal {
        deal_id: deal.into(),
        client_id: client.into(),
        due_date: "2026-11-02".into(),
        amount: "300000.00".parse().unwrap(),
        outstanding: outstanding.parse().unwrap(),
        days_overdue: days,
    }
}

/// The overdue list of every manager sums to what `figures` counts for them.
fn agrees_with_figures(state: &LedgerState, p: Period) {
    for m in state.figures(p).managers {
        let list = state.overdue_deals(p, &m.manager_id);
        assert_eq!(list.len() as u64, m.overdue_deals, "{p} {}", m.manager_id);
        assert_eq!(list.iter().map(|d| d.outstanding).sum::<Decimal>(), m.overdue_receivables, "{p} {}", m.manager_id);
    }
}

#[test]
fn unpaid_deals_due_by_the_end_of_the_period_are_overdue_with_what_is_outstanding() {
    // Up to evt-0012: M-2's October deals D-201 and D-202 (300 000.00 each, due 2026-11-02),
    // and a late notice on D-202 as of 2026-11-10, 5 days overdue. Nothing paid yet.
    let state = fold(seed(12));
    assert_eq!(state.overdue_deals(period("2026-10"), "M-2"), vec![], "not due before November");
    assert_eq!(
        state.overdue_deals(period("2026-11"), "M-2"),
        vec![row("D-201", "C-21", "300000.00", None), row("D-202", "C-22", "300000.00", Some(5))]
    );
    assert_eq!(state.overdue_deals(period("2026-11"), "M-1"), vec![], "D-102 is cancelled, D-101 paid");
    agrees_with_figures(&state, period("2026-11"));

    // P-201 pays D-201 in full; a partial 120 000.00 on D-202 leaves 180 000.00.
    let mut lines = seed(13);
    lines.push(
        r#"{"specversion": "1.0", "id": "part-1", "source": "test", "type": "payment.received", "data": {"payment_id": "P-part", "deal_id": "D-202", "amount": "120000.00", "currency": "RUB", "paid_on": "2026-11-20"}}"#
            .into(),
    );
    let state = fold(lines);
    assert_eq!(state.overdue_deals(period("2026-11"), "M-2"), vec![row("D-202", "C-22", "180000.00", Some(5))]);
    agrees_with_figures(&state, period("2026-11"));

    // The whole month: every deal paid or cancelled.
    let state = fold(seed(usize::MAX));
    for manager in ["M-1", "M-2", "M-3", "M-4", "M-5"] {
        assert_eq!(state.overdue_deals(period("2026-11"), manager), vec![], "{manager}");
    }
    agrees_with_figures(&state, period("2026-11"));
    agrees_with_figures(&state, period("2026-12"));
}
