//! Plans and closing: a plan assigned to an open period, the close that books each plan's
//! bonus once, and the plan figures (booked at the close, projected before it).

use rust_decimal::Decimal;

use crate::calendar::Period;
use crate::event::{Event, PlanAssigned};
use crate::money::mul_div_round;
use crate::reject::{Reason, Rejection};
use crate::scheme::{Coefficient, Scheme};

use super::book::ManagerBook;
use super::entry::{Entry, EntryDetail, PlanFigures};
use super::records::Plan;
use super::rules::{exact, Ruling};
use super::state::LedgerState;

impl LedgerState {
    pub(super) fn apply_plan(&mut self, seq: u64, p: &PlanAssigned) -> Ruling {
        if let Some(closed_by) = self.closed.get(&p.period) {
            return Ruling::Rejected(Rejection::new(
                Reason::PeriodClosed,
                format!(
                    "period {} was closed (ledger seq {closed_by}); plans can be assigned only to open periods",
                    p.period
                ),
            ));
        }
        self.book_of(p.period, &p.manager_id).plan = Some(Plan { seq, target: p.target, bonus_base: p.bonus_base });
        Ruling::applied(vec![], None)
    }

    pub(super) fn apply_close(&mut self, seq: u64, event: &Event, period: Period) -> Ruling {
        if let Some(closed_by) = self.closed.get(&period) {
            return Ruling::Rejected(Rejection::new(
                Reason::PeriodAlreadyClosed,
                format!("period {period} was already closed (ledger seq {closed_by}); a period is closed once"),
            ));
        }
        let scheme = self.scheme.clone();
        let mut entries = Vec::new();
        for (manager_id, book) in self.books.get_mut(&period).into_iter().flatten() {
            debug_assert!(
                book.plan_result.is_none() && book.plan_bonus.is_zero(),
                "period {period} closes once, so {manager_id}'s plan bonus is booked once"
            );
            let Some(plan) = &book.plan else { continue };
            let figures = plan_figures(&scheme, book, plan);
            if figures.bonus > Decimal::ZERO {
                let detail = EntryDetail::PlanBonus(figures.clone());
                let entry = Entry::booked(seq, event, manager_id.clone(), (period, None), figures.bonus, detail);
                book.book(&entry);
                entries.push(entry);
            }
            book.plan_result = Some(figures);
        }
        self.closed.insert(period, seq);
        self.changes.record(|changes| {
            changes.closed.insert(period);
        });
        Ruling::applied(entries, None)
    }
}

/// The plan figures of a book under a scheme: booked at close, projected before.
pub fn plan_figures(scheme: &Scheme, book: &ManagerBook, plan: &Plan) -> PlanFigures {
    let actual = match scheme.plan.metric {
        crate::scheme::PlanMetric::Received => book.received,
        crate::scheme::PlanMetric::MarginReceived => book.margin_received,
        crate::scheme::PlanMetric::Booked => book.booked,
    };
    let bonus_base = plan.bonus_base.unwrap_or(scheme.plan.bonus_base);
    let achievement = exact(mul_div_round(&[actual], plan.target, 4));
    let (coefficient, bonus) = match scheme.coefficient(actual, plan.target) {
        Coefficient::Fixed(k) => (
            k.round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointAwayFromZero),
            exact(mul_div_round(&[bonus_base, k], Decimal::ONE, 2)),
        ),
        Coefficient::Proportional => (achievement, exact(mul_div_round(&[bonus_base, actual], plan.target, 2))),
    };
    PlanFigures { target: plan.target, actual, bonus_base, achievement, coefficient, bonus }
}
