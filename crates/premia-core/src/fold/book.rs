//! A manager's book in one period: the money booked there, the plan metrics, the plan.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::entry::{Entry, EntryKind, PlanFigures};
use super::records::Plan;

/// Everything booked for one manager in one period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagerBook {
    #[serde(with = "crate::money::decimal_bytes")]
    pub commission: Decimal,
    #[serde(with = "crate::money::decimal_bytes")]
    pub clawback: Decimal,
    #[serde(with = "crate::money::decimal_bytes")]
    pub fines: Decimal,
    #[serde(with = "crate::money::decimal_bytes")]
    pub plan_bonus: Decimal,
    /// Plan metric `received`: payments minus refunds booked here.
    #[serde(with = "crate::money::decimal_bytes")]
    pub received: Decimal,
    /// Plan metric `margin_received`.
    #[serde(with = "crate::money::decimal_bytes")]
    pub margin_received: Decimal,
    /// Plan metric `booked`: amounts of deals created here.
    #[serde(with = "crate::money::decimal_bytes")]
    pub booked: Decimal,
    pub plan: Option<Plan>,
    /// Set when the period is closed: the figures the bonus was booked from.
    pub plan_result: Option<PlanFigures>,
    /// How many entries are booked here. The entries themselves are kept by the edge (the
    /// ledger stores each batch's entries beside its log chunk), not in this state.
    pub entry_count: u64,
}

impl ManagerBook {
    pub fn total(&self) -> Decimal {
        self.commission + self.clawback + self.fines + self.plan_bonus
    }

    /// Adds `entry` to the total of its kind. The book's total moves by exactly its amount.
    pub(super) fn book(&mut self, entry: &Entry) {
        debug_assert_eq!(entry.kind, entry.detail.kind(), "entry of record {} is of its detail's kind", entry.seq);
        debug_assert!(
            entry.kind.admits(entry.amount),
            "a {} of {} (record {}) has the wrong sign",
            entry.kind.as_str(),
            entry.amount,
            entry.seq
        );
        let total_before = self.total();
        match entry.kind {
            EntryKind::Commission => self.commission += entry.amount,
            EntryKind::Clawback => self.clawback += entry.amount,
            EntryKind::Fine => self.fines += entry.amount,
            EntryKind::PlanBonus => self.plan_bonus += entry.amount,
        }
        self.entry_count += 1;
        debug_assert_eq!(
            self.total(),
            total_before + entry.amount,
            "booking {} of record {} moves the book's total by exactly its amount",
            entry.amount,
            entry.seq
        );
    }

    /// Whether the manager appears on the period's statement.
    pub fn is_visible(&self) -> bool {
        self.entry_count > 0 || self.plan.is_some()
    }
}
