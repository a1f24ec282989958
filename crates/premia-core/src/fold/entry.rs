//! The entries the fold books: their kinds, what each was booked for, and a plan's figures.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::calendar::Period;
use crate::event::{Event, Id};

/// How fast a client paid (RULES.md section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    Prepaid,
    OnTime,
    Late,
}

impl Timing {
    pub fn as_str(self) -> &'static str {
        match self {
            Timing::Prepaid => "prepaid",
            Timing::OnTime => "on_time",
            Timing::Late => "late",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Commission,
    Clawback,
    Fine,
    PlanBonus,
}

impl EntryKind {
    /// Whether `amount` has the sign RULES.md gives the kind (section 1): a commission is never
    /// negative (0.00 for a deal with zero margin), a clawback never positive (0.00 when it
    /// rounds away), a fine never positive (the scheme's fine may be 0), and a plan bonus is
    /// booked only above 0.00 (section 6).
    pub fn admits(self, amount: Decimal) -> bool {
        match self {
            EntryKind::Commission => amount >= Decimal::ZERO,
            EntryKind::Clawback | EntryKind::Fine => amount <= Decimal::ZERO,
            EntryKind::PlanBonus => amount > Decimal::ZERO,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Commission => "commission",
            EntryKind::Clawback => "clawback",
            EntryKind::Fine => "fine",
            EntryKind::PlanBonus => "plan_bonus",
        }
    }
}

/// What an entry was booked for. Numbers that the deal or payment already holds are looked up
/// there when explaining, not copied into every entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryDetail {
    Commission {
        deal_id: Id,
        payment_id: Id,
        timing: Timing,
        working_days_late: u32,
        grace_working_days: u32,
        #[serde(with = "crate::money::decimal_bytes")]
        rate: Decimal,
    },
    Clawback {
        deal_id: Id,
        payment_id: Id,
        refund_id: Id,
        #[serde(with = "crate::money::decimal_bytes")]
        refunded: Decimal,
        #[serde(with = "crate::money::decimal_bytes")]
        rate: Decimal,
    },
    Fine {
        deal_id: Id,
    },
    PlanBonus(PlanFigures),
}

impl EntryDetail {
    /// The kind of entry booked for this.
    pub fn kind(&self) -> EntryKind {
        match self {
            EntryDetail::Commission { .. } => EntryKind::Commission,
            EntryDetail::Clawback { .. } => EntryKind::Clawback,
            EntryDetail::Fine { .. } => EntryKind::Fine,
            EntryDetail::PlanBonus(_) => EntryKind::PlanBonus,
        }
    }
}

/// One booked amount: append-only, never changed once made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Ledger sequence number of the event that caused it.
    pub seq: u64,
    pub source: Id,
    pub event_id: Id,
    pub kind: EntryKind,
    pub manager_id: Id,
    pub period: Period,
    /// Rounded once, half away from zero, to 0.01; negative for clawbacks and fines.
    #[serde(with = "crate::money::decimal_bytes")]
    pub amount: Decimal,
    /// The closed period the fact was dated in, when it was booked in a later one.
    pub adjustment_of: Option<Period>,
    pub detail: EntryDetail,
}

impl Entry {
    /// The entry `event`, folded at `seq`, books for `manager_id` in `booking`: the period, and
    /// the closed period the fact was dated in when it is booked in a later one. Its kind is
    /// that of `detail`, and `amount` must have the kind's sign.
    pub(super) fn booked(
        seq: u64,
        event: &Event,
        manager_id: Id,
        booking: (Period, Option<Period>),
        amount: Decimal,
        detail: EntryDetail,
    ) -> Entry {
        let kind = detail.kind();
        debug_assert!(kind.admits(amount), "a {} of {amount} (record {seq}) has the wrong sign", kind.as_str());
        debug_assert!(amount.scale() <= 2, "a {} of {amount} (record {seq}) is not rounded to 0.01", kind.as_str());
        let (period, adjustment_of) = booking;
        Entry {
            seq,
            source: event.source.clone(),
            event_id: event.id.clone(),
            kind,
            manager_id,
            period,
            amount,
            adjustment_of,
            detail,
        }
    }
}

/// A plan's figures: exact inputs, the displayed ratios (4 decimals) and the bonus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanFigures {
    #[serde(with = "crate::money::decimal_bytes")]
    pub target: Decimal,
    #[serde(with = "crate::money::decimal_bytes")]
    pub actual: Decimal,
    #[serde(with = "crate::money::decimal_bytes")]
    pub bonus_base: Decimal,
    #[serde(with = "crate::money::decimal_bytes")]
    pub achievement: Decimal,
    #[serde(with = "crate::money::decimal_bytes")]
    pub coefficient: Decimal,
    #[serde(with = "crate::money::decimal_bytes")]
    pub bonus: Decimal,
}
