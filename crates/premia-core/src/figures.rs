//! The article's KPIs per manager per period (`premia figures`), computed from the fold state.
//!
//! Definitions (also in docs/RULES-CHOICES.md):
//! - **deals won**: deals created with a date in the period (`deal.created` is a won deal);
//!   **average deal amount** ("средний чек"): their amounts' mean, rounded to 0.01.
//! - **distinct clients**: clients of those deals; **repeat clients**: those of them with
//!   another deal with the same manager created on or before the end of the period.
//! - **money received** / **margin received**: the plan metrics the period booked (payments
//!   minus refunds, under the booking rule of RULES.md section 8, so late facts count in the
//!   period they were booked in).
//! - **cancellations by fault**: deals of the manager cancelled in the period, fault `manager`.
//! - **overdue deals** / **overdue receivables**: at the end of the period's last day, deals
//!   due on or before it, not cancelled by then, with money outstanding (amount minus payments dated up to the
//!   end of the period); the count and the outstanding sum.
//! - **plan achievement**: as on the statement (booked when the period is closed, projected
//!   before), absent without a plan.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::Serialize;

use crate::calendar::Period;
use crate::event::Fault;
use crate::fold::{plan_figures, LedgerState};
use crate::money::round2;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ManagerFigures {
    pub manager_id: String,
    pub deals_won: u64,
    #[serde(serialize_with = "crate::statement::money")]
    pub deals_amount: Decimal,
    #[serde(serialize_with = "crate::statement::money")]
    pub average_deal_amount: Decimal,
    pub distinct_clients: u64,
    pub repeat_clients: u64,
    #[serde(serialize_with = "crate::statement::money")]
    pub money_received: Decimal,
    #[serde(serialize_with = "crate::statement::money")]
    pub margin_received: Decimal,
    pub cancellations_by_fault: u64,
    pub overdue_deals: u64,
    #[serde(serialize_with = "crate::statement::money")]
    pub overdue_receivables: Decimal,
    /// Actual over target, 4 decimals; absent without a plan.
    #[serde(serialize_with = "option_ratio4")]
    pub plan_achievement: Option<Decimal>,
}

fn option_ratio4<S: serde::Serializer>(value: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => crate::statement::ratio4(value, s),
        None => s.serialize_none(),
    }
}

/// One deal overdue at the end of a period (the definition of `overdue deals` above).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct OverdueDeal {
    pub deal_id: String,
    pub client_id: String,
    pub due_date: String,
    #[serde(serialize_with = "crate::statement::money")]
    #[schemars(with = "String")]
    pub amount: Decimal,
    /// Amount minus the payments dated up to the end of the period.
    #[serde(serialize_with = "crate::statement::money")]
    #[schemars(with = "String")]
    pub outstanding: Decimal,
    /// Working days late as the CRM's latest `payment.late` notice up to the period's end says,
    /// when there was one.
    pub days_overdue: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Figures {
    pub period: String,
    pub currency: String,
    pub managers: Vec<ManagerFigures>,
}

impl LedgerState {
    /// The deals of `manager` overdue at the end of `period`, by due date then id: those the
    /// figures count as `overdue_deals` (their outstanding sums to `overdue_receivables`).
    pub fn overdue_deals(&self, period: Period, manager: &str) -> Vec<OverdueDeal> {
        let mut overdue: Vec<(crate::fold::Deal<'_>, &str)> = self
            .deals()
            .filter(|(_, deal)| &*deal.manager_id == manager && Period::of(deal.due_date) <= period)
            .filter(|(_, deal)| Period::of(deal.created_on) <= period)
            .filter(|(_, deal)| deal.cancelled.as_ref().is_none_or(|(on, _)| Period::of(*on) > period))
            .map(|(id, deal)| (deal, id))
            .collect();
        if overdue.is_empty() {
            return Vec::new();
        }
        let ids: BTreeSet<&str> = overdue.iter().map(|(_, id)| *id).collect();
        let mut paid_to_date: BTreeMap<&str, Decimal> = BTreeMap::new();
        for (_, payment) in self.payments() {
            if Period::of(payment.paid_on) <= period && ids.contains(&*payment.deal_id) {
                *paid_to_date.entry(payment.deal_id).or_default() += payment.amount;
            }
        }
        overdue.sort_by_key(|(deal, id)| (deal.due_date, *id));
        overdue
            .into_iter()
            .filter_map(|(deal, id)| {
                let outstanding = deal.amount - paid_to_date.get(id).copied().unwrap_or_default();
                (outstanding > Decimal::ZERO).then(|| OverdueDeal {
                    deal_id: id.to_string(),
                    client_id: deal.client_id.to_string(),
                    due_date: crate::calendar::date_text(deal.due_date),
                    amount: deal.amount,
                    outstanding,
                    days_overdue: deal
                        .overdue
                        .filter(|(as_of, _)| Period::of(*as_of) <= period)
                        .and_then(|(_, days)| days),
                })
            })
            .collect()
    }

    /// Every manager with a deal, a booking, a plan or an overdue deal in `period`, by id.
    pub fn figures(&self, period: Period) -> Figures {
        let mut by_manager: BTreeMap<&str, ManagerFigures> = BTreeMap::new();
        let mut clients: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        // Deals per (manager, client) created up to the end of the period, for repeat clients.
        let mut deals_to_date: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        let mut paid_to_date: BTreeMap<&str, Decimal> = BTreeMap::new();
        for (_, payment) in self.payments() {
            if Period::of(payment.paid_on) <= period {
                *paid_to_date.entry(payment.deal_id).or_default() += payment.amount;
            }
        }
        for (deal_id, deal) in self.deals() {
            let created = Period::of(deal.created_on);
            if created > period {
                continue;
            }
            *deals_to_date.entry((deal.manager_id, deal.client_id)).or_default() += 1;
            let figures = by_manager.entry(deal.manager_id).or_default();
            if created == period {
                figures.deals_won += 1;
                figures.deals_amount += deal.amount;
                clients.entry(deal.manager_id).or_default().insert(deal.client_id);
            }
            let cancelled_by_end = deal.cancelled.as_ref().filter(|(on, _)| Period::of(*on) <= period);
            if let Some((on, Fault::Manager)) = cancelled_by_end {
                if Period::of(*on) == period {
                    figures.cancellations_by_fault += 1;
                }
            }
            let outstanding = deal.amount - paid_to_date.get(deal_id).copied().unwrap_or_default();
            if cancelled_by_end.is_none() && Period::of(deal.due_date) <= period && outstanding > Decimal::ZERO {
                figures.overdue_deals += 1;
                figures.overdue_receivables += outstanding;
            }
        }
        for (manager, figures) in by_manager.iter_mut() {
            if figures.deals_won > 0 {
                figures.average_deal_amount = round2(figures.deals_amount / Decimal::from(figures.deals_won));
            }
            let of_period = clients.get(manager).map(|c| c.iter().copied().collect::<Vec<_>>()).unwrap_or_default();
            figures.distinct_clients = of_period.len() as u64;
            figures.repeat_clients = of_period
                .iter()
                .filter(|client| deals_to_date.get(&(*manager, **client)).copied().unwrap_or(0) > 1)
                .count() as u64;
        }
        let mut booked: BTreeSet<&str> = BTreeSet::new();
        if let Some(books) = self.books().get(&period) {
            for (manager, book) in books {
                booked.insert(manager);
                let figures = by_manager.entry(manager).or_default();
                figures.money_received = book.received;
                figures.margin_received = book.margin_received;
                figures.plan_achievement = match (&book.plan_result, &book.plan) {
                    (Some(result), _) => Some(result.achievement),
                    (None, Some(plan)) => Some(plan_figures(self.scheme(), book, plan).achievement),
                    (None, None) => None,
                };
            }
        }
        Figures {
            period: period.to_string(),
            currency: self.scheme().currency.clone(),
            managers: by_manager
                .into_iter()
                .filter(|(manager, f)| {
                    booked.contains(manager) || f.deals_won > 0 || f.cancellations_by_fault > 0 || f.overdue_deals > 0
                })
                .map(|(manager, mut figures)| {
                    figures.manager_id = manager.to_string();
                    figures
                })
                .collect(),
        }
    }
}
