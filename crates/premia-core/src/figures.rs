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

    /// The periods from the first to the last that any deal date, payment date, book or close
    /// falls in (`None` when there is none). Before the first, [`figures`](Self::figures) has no
    /// manager; after the last, the same managers with the same figures in every period (every
    /// deal created, paid, due and cancelled as it will ever be by then, nothing won,
    /// cancelled or booked in the period itself).
    pub fn figures_span(&self) -> Option<(Period, Period)> {
        let deal_periods = self.deals().flat_map(|(_, deal)| {
            [Some(deal.created_on), Some(deal.due_date), deal.cancelled.map(|(on, _)| on)]
                .into_iter()
                .flatten()
                .map(Period::of)
        });
        let periods = deal_periods
            .chain(self.payments().map(|(_, payment)| Period::of(payment.paid_on)))
            .chain(self.books().keys().copied())
            .chain(self.closed_periods().keys().copied());
        periods.fold(None, |span, p| match span {
            None => Some((p, p)),
            Some((first, last)) => Some((first.min(p), last.max(p))),
        })
    }

    /// [`figures`](Self::figures) of each of `periods` (ascending, each once), in one pass over
    /// the deals and payments rather than one per period. `figures` is the definition; this
    /// must agree with it (a property test compares them on every state the fold can reach).
    pub fn figures_of_periods(&self, periods: &[Period]) -> Vec<Figures> {
        assert!(periods.windows(2).all(|w| w[0] < w[1]), "the periods ascend, each once");
        let mut by_manager: Vec<BTreeMap<&str, ManagerFigures>> = vec![BTreeMap::new(); periods.len()];
        let mut clients: Vec<BTreeMap<&str, BTreeSet<&str>>> = vec![BTreeMap::new(); periods.len()];
        // The creation period of every deal per (manager, client), for repeat clients.
        let mut created_of: BTreeMap<(&str, &str), Vec<Period>> = BTreeMap::new();
        let mut payments_of: BTreeMap<&str, Vec<(Period, Decimal)>> = BTreeMap::new();
        for (_, payment) in self.payments() {
            payments_of.entry(payment.deal_id).or_default().push((Period::of(payment.paid_on), payment.amount));
        }
        for payments in payments_of.values_mut() {
            payments.sort_by_key(|(period, _)| *period);
        }
        let at = |period: Period| periods.binary_search(&period).ok();
        for (deal_id, deal) in self.deals() {
            let (manager, created) = (deal.manager_id, Period::of(deal.created_on));
            created_of.entry((manager, deal.client_id)).or_default().push(created);
            if let Some(i) = at(created) {
                let figures = by_manager[i].entry(manager).or_default();
                figures.deals_won += 1;
                figures.deals_amount += deal.amount;
                clients[i].entry(manager).or_default().insert(deal.client_id);
            }
            let cancelled = deal.cancelled.as_ref().map(|(on, fault)| (Period::of(*on), *fault));
            if let Some((on, Fault::Manager)) = cancelled.filter(|(on, _)| *on >= created) {
                if let Some(i) = at(on) {
                    by_manager[i].entry(manager).or_default().cancellations_by_fault += 1;
                }
            }
            // Overdue from the later of its creation and due date until it is cancelled, while
            // money is outstanding at the end of the period.
            let from = created.max(Period::of(deal.due_date));
            let payments = payments_of.get(deal_id).map(Vec::as_slice).unwrap_or_default();
            let (mut paid, mut counted) = (Decimal::ZERO, 0);
            for (i, &period) in periods.iter().enumerate().skip(periods.partition_point(|p| *p < from)) {
                if cancelled.is_some_and(|(on, _)| on <= period) {
                    break;
                }
                while let Some((_, amount)) = payments.get(counted).filter(|(on, _)| *on <= period) {
                    paid += *amount;
                    counted += 1;
                }
                let outstanding = deal.amount - paid;
                if outstanding > Decimal::ZERO {
                    let figures = by_manager[i].entry(manager).or_default();
                    figures.overdue_deals += 1;
                    figures.overdue_receivables += outstanding;
                }
            }
        }
        let mut all = Vec::with_capacity(periods.len());
        for (i, &period) in periods.iter().enumerate() {
            let mut managers = std::mem::take(&mut by_manager[i]);
            for (manager, figures) in managers.iter_mut() {
                if figures.deals_won > 0 {
                    figures.average_deal_amount = round2(figures.deals_amount / Decimal::from(figures.deals_won));
                }
                let of_period = clients[i].get(manager).map(|c| c.iter().copied().collect::<Vec<_>>()).unwrap_or_default();
                figures.distinct_clients = of_period.len() as u64;
                let to_date = |client: &str| {
                    created_of.get(&(*manager, client)).map_or(0, |created| created.iter().filter(|c| **c <= period).count())
                };
                figures.repeat_clients = of_period.iter().filter(|client| to_date(client) > 1).count() as u64;
            }
            all.push(self.figures_with_books(period, managers));
        }
        all
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
        self.figures_with_books(period, by_manager)
    }

    /// The figures of `period` from those of its deals: the books' plan metrics and
    /// achievement added, and the managers with nothing in the period left out.
    fn figures_with_books<'a>(&'a self, period: Period, mut by_manager: BTreeMap<&'a str, ManagerFigures>) -> Figures {
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
