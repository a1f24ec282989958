//! Statements: what the ledger reports per period and manager, in the exact JSON shape of the
//! contract (amounts as strings with two decimals), plus a one-line reason per entry.

use rust_decimal::Decimal;
use schemars::JsonSchema;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};

use crate::calendar::{date_text, Period};
use crate::event::Id;
use crate::fold::{plan_figures, Entry, EntryDetail, EntryKind, LedgerState, ManagerBook, PlanFigures, Timing};
use crate::money::{fixed_text, money_grouped, money_text, percent_text};
use crate::scheme::Scheme;

pub(crate) fn money<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&money_text(*value))
}

pub(crate) fn ratio4<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&fixed_text(*value, 4))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Statement {
    pub period: String,
    pub currency: String,
    /// `open` or `closed`.
    pub status: &'static str,
    pub managers: Vec<ManagerStatement>,
    /// The period's seal once it is closed (absent while it is open): see docs/AUDIT.md.
    /// It covers every entry of the period, whichever managers the statement shows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal: Option<crate::seal::SealView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ManagerStatement {
    pub manager_id: String,
    #[serde(serialize_with = "money")]
    #[schemars(with = "String")]
    pub commission: Decimal,
    #[serde(serialize_with = "money")]
    #[schemars(with = "String")]
    pub clawback: Decimal,
    #[serde(serialize_with = "money")]
    #[schemars(with = "String")]
    pub fines: Decimal,
    #[serde(serialize_with = "money")]
    #[schemars(with = "String")]
    pub plan_bonus: Decimal,
    /// The sum of booked entries (a projected bonus is not booked money).
    #[serde(serialize_with = "money")]
    #[schemars(with = "String")]
    pub total: Decimal,
    pub plan: Option<PlanView>,
    pub entries: Vec<EntryView>,
}

/// What changed for one manager in one period: the period's totals and plan after a batch,
/// and (in `figures.entries`) the entries the batch booked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct AccrualUpdate {
    pub period: String,
    pub currency: String,
    pub status: &'static str,
    #[serde(flatten)]
    pub figures: ManagerStatement,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PlanView {
    #[serde(serialize_with = "money")]
    #[schemars(with = "String")]
    pub target: Decimal,
    #[serde(serialize_with = "money")]
    #[schemars(with = "String")]
    pub actual: Decimal,
    #[serde(serialize_with = "ratio4")]
    #[schemars(with = "String")]
    pub achievement: Decimal,
    #[serde(serialize_with = "ratio4")]
    #[schemars(with = "String")]
    pub coefficient: Decimal,
    #[serde(serialize_with = "money")]
    #[schemars(with = "String")]
    pub bonus: Decimal,
    #[serde(serialize_with = "money")]
    #[schemars(with = "String")]
    pub bonus_base: Decimal,
    pub metric: &'static str,
    /// `booked` once the period is closed, `projected` before.
    pub status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct EventRef {
    pub seq: u64,
    pub source: String,
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct EntryView {
    pub kind: &'static str,
    #[serde(serialize_with = "money")]
    #[schemars(with = "String")]
    pub amount: Decimal,
    pub event: EventRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_days_late: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    /// The closed period the fact was dated in, when booked later as an adjustment.
    pub adjustment_of: Option<String>,
    /// One line a person can check with a calculator.
    pub explanation: String,
}

impl LedgerState {
    /// Every period that has anything in it, in order.
    pub fn periods(&self) -> Vec<Period> {
        let mut periods: Vec<Period> = self
            .books()
            .iter()
            .filter(|(_, managers)| managers.values().any(ManagerBook::is_visible))
            .map(|(p, _)| *p)
            .collect();
        periods.extend(self.closed_periods().keys().copied());
        periods.sort();
        periods.dedup();
        periods
    }

    /// The statement of one period, for every manager or one. `entries` are the entries booked
    /// in the period, in booking order (the edge keeps them; others are ignored).
    pub fn statement(&self, period: Period, manager: Option<&str>, entries: &[Entry]) -> Statement {
        let parts = PeriodParts {
            scheme: self.scheme(),
            period,
            closed: self.is_closed(period),
            books: self.books().get(&period),
        };
        parts.statement(manager, entries, |_, entry| self.entry_facts(entry))
    }

    /// One manager's figures in one period with the given entries (for the live feed: the
    /// entries a batch just booked), or `None` when nothing is there for them.
    pub fn accrual_update(&self, period: Period, manager_id: &str, new_entries: &[&Entry]) -> Option<AccrualUpdate> {
        let book = self.books().get(&period)?.get(manager_id)?;
        let views = new_entries.iter().map(|e| self.entry_view(e)).collect();
        let figures = manager_statement(self.scheme(), manager_id, book, self.is_closed(period), views);
        Some(AccrualUpdate {
            period: period.to_string(),
            currency: self.scheme().currency.clone(),
            status: if self.is_closed(period) { "closed" } else { "open" },
            figures,
        })
    }

    /// What the explanation of `entry` reads from its deal and payment.
    pub fn entry_facts(&self, entry: &Entry) -> EntryFacts {
        let deal = |id: &str| {
            self.deal(id).map(|d| DealFacts {
                margin: d.margin,
                amount: d.amount,
                due_date: d.due_date,
                cancelled_on: d.cancelled.map(|(on, _)| on),
            })
        };
        match &entry.detail {
            EntryDetail::Commission { deal_id, payment_id, .. } => EntryFacts {
                deal: deal(deal_id),
                payment: self.payment(payment_id).map(|p| PaymentFacts { amount: p.amount, paid_on: p.paid_on }),
            },
            EntryDetail::Clawback { deal_id, .. } | EntryDetail::Fine { deal_id } => {
                EntryFacts { deal: deal(deal_id), payment: None }
            }
            EntryDetail::PlanBonus(_) => EntryFacts::default(),
        }
    }

    pub fn entry_view(&self, entry: &Entry) -> EntryView {
        entry_view(entry, &self.entry_facts(entry))
    }

    /// The arithmetic of an entry with its real numbers, in one line.
    pub fn explain(&self, entry: &Entry) -> String {
        explain(entry, &self.entry_facts(entry))
    }
}

/// The figures of a deal an explanation shows. A deal's amount, margin and due date never
/// change once it is created, and it is cancelled at most once (before any fine on it), so
/// these can be taken when an entry is booked and kept beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealFacts {
    #[serde(with = "crate::money::decimal_bytes")]
    pub margin: Decimal,
    #[serde(with = "crate::money::decimal_bytes")]
    pub amount: Decimal,
    pub due_date: time::Date,
    pub cancelled_on: Option<time::Date>,
}

/// The figures of a payment an explanation shows (they never change once it is received).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFacts {
    #[serde(with = "crate::money::decimal_bytes")]
    pub amount: Decimal,
    pub paid_on: time::Date,
}

/// What an entry's view and explanation read from the state besides the entry itself
/// ([`LedgerState::entry_facts`]): with these, [`entry_view`] needs no state, so a read model
/// can render entries away from the fold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryFacts {
    pub deal: Option<DealFacts>,
    pub payment: Option<PaymentFacts>,
}

/// What a statement of one period reads besides its entries: the scheme in force, whether the
/// period is closed, and its books. The fold state has them ([`LedgerState::statement`]); so
/// does the period projection the ledger stores beside its snapshot, read without the state.
#[derive(Debug, Clone, Copy)]
pub struct PeriodParts<'a> {
    pub scheme: &'a Scheme,
    pub period: Period,
    pub closed: bool,
    pub books: Option<&'a BTreeMap<Id, ManagerBook>>,
}

impl PeriodParts<'_> {
    /// The statement of the period, for every manager or one. `entries` are the entries booked
    /// in the period, in booking order (others are ignored); `facts(i, entry)` gives the
    /// [`EntryFacts`] of `entries[i]`.
    pub fn statement(
        &self,
        manager: Option<&str>,
        entries: &[Entry],
        facts: impl Fn(usize, &Entry) -> EntryFacts,
    ) -> Statement {
        let period = self.period;
        let mut by_manager: std::collections::HashMap<&str, Vec<(usize, &Entry)>> = std::collections::HashMap::new();
        for (i, entry) in entries.iter().enumerate().filter(|(_, e)| e.period == period) {
            by_manager.entry(&entry.manager_id).or_default().push((i, entry));
        }
        let mut managers = Vec::new();
        for (manager_id, book) in self.books.into_iter().flatten() {
            if !book.is_visible() || manager.is_some_and(|m| m != &**manager_id) {
                continue;
            }
            let own = by_manager.remove(&**manager_id).unwrap_or_default();
            debug_assert_eq!(own.len() as u64, book.entry_count, "the edge supplied the entries of {period} {manager_id}");
            let views = own.iter().map(|&(i, e)| entry_view(e, &facts(i, e))).collect();
            managers.push(manager_statement(self.scheme, manager_id, book, self.closed, views));
        }
        Statement::frame(self.scheme, period, self.closed, managers)
    }
}

impl Statement {
    /// A statement of `period` with these managers' figures and no seal (the seal needs the
    /// log's chain hash, which only the edge holds).
    pub fn frame(scheme: &Scheme, period: Period, closed: bool, managers: Vec<ManagerStatement>) -> Statement {
        Statement {
            period: period.to_string(),
            currency: scheme.currency.clone(),
            status: if closed { "closed" } else { "open" },
            managers,
            seal: None,
        }
    }
}

/// One manager's figures in a period under `scheme`, with the given entry views.
pub fn manager_statement(
    scheme: &Scheme,
    manager_id: &str,
    book: &ManagerBook,
    closed: bool,
    entries: Vec<EntryView>,
) -> ManagerStatement {
    let plan = book.plan.as_ref().map(|plan| {
        let (figures, status) = match (&book.plan_result, closed) {
            (Some(f), true) => (f.clone(), "booked"),
            _ => (plan_figures(scheme, book, plan), "projected"),
        };
        PlanView {
            target: figures.target,
            actual: figures.actual,
            achievement: figures.achievement,
            coefficient: figures.coefficient,
            bonus: figures.bonus,
            bonus_base: figures.bonus_base,
            metric: scheme.plan.metric.as_str(),
            status,
        }
    });
    ManagerStatement {
        manager_id: manager_id.to_string(),
        commission: book.commission,
        clawback: book.clawback,
        fines: book.fines,
        plan_bonus: book.plan_bonus,
        total: book.total(),
        plan,
        entries,
    }
}

/// An entry as statements show it, with its one-line explanation.
pub fn entry_view(entry: &Entry, facts: &EntryFacts) -> EntryView {
    let event_type = match entry.kind {
        EntryKind::Commission => "payment.received",
        EntryKind::Clawback => "payment.refunded",
        EntryKind::Fine => "deal.cancelled",
        EntryKind::PlanBonus => "period.closed",
    };
    let mut view = EntryView {
        kind: entry.kind.as_str(),
        amount: entry.amount,
        event: EventRef {
            seq: entry.seq,
            source: entry.source.to_string(),
            id: entry.event_id.to_string(),
            event_type,
        },
        deal_id: None,
        payment_id: None,
        refund_id: None,
        timing: None,
        working_days_late: None,
        rate: None,
        adjustment_of: entry.adjustment_of.map(|p| p.to_string()),
        explanation: explain(entry, facts),
    };
    match &entry.detail {
        EntryDetail::Commission { deal_id, payment_id, timing, working_days_late, rate, .. } => {
            view.deal_id = Some(deal_id.to_string());
            view.payment_id = Some(payment_id.to_string());
            view.timing = Some(timing.as_str());
            view.working_days_late = Some(*working_days_late);
            view.rate = Some(rate.to_string());
        }
        EntryDetail::Clawback { deal_id, payment_id, refund_id, rate, .. } => {
            view.deal_id = Some(deal_id.to_string());
            view.payment_id = Some(payment_id.to_string());
            view.refund_id = Some(refund_id.to_string());
            view.rate = Some(rate.to_string());
        }
        EntryDetail::Fine { deal_id } => view.deal_id = Some(deal_id.to_string()),
        EntryDetail::PlanBonus(_) => {}
    }
    view
}

/// The arithmetic of an entry with its real numbers, in one line.
pub fn explain(entry: &Entry, facts: &EntryFacts) -> String {
    let signed = |d: Decimal| if d >= Decimal::ZERO { format!("+{}", money_text(d)) } else { money_text(d) };
    let mut line = match &entry.detail {
        EntryDetail::Commission { deal_id, payment_id, timing, working_days_late, grace_working_days, rate } => {
            let (deal, payment) = (facts.deal.as_ref(), facts.payment.as_ref());
            let numbers = match (deal, payment) {
                (Some(d), Some(p)) => format!(
                    "{} of margin {} x paid {} / amount {}",
                    percent_text(*rate),
                    money_grouped(d.margin),
                    money_grouped(p.amount),
                    money_grouped(d.amount)
                ),
                _ => percent_text(*rate),
            };
            let when = match (timing, deal, payment) {
                (Timing::Prepaid, Some(d), Some(p)) => {
                    format!("prepaid on {}, due {}", date_text(p.paid_on), date_text(d.due_date))
                }
                (t, Some(d), Some(p)) => format!(
                    "{}: paid {}, {} {} after the due date {}, grace {}",
                    if *t == Timing::Late { "late" } else { "on time" },
                    date_text(p.paid_on),
                    working_days_late,
                    if *working_days_late == 1 { "working day" } else { "working days" },
                    date_text(d.due_date),
                    grace_working_days
                ),
                _ => timing.as_str().to_string(),
            };
            format!("{}: {numbers} ({when}); payment {payment_id} on deal {deal_id}", signed(entry.amount))
        }
        EntryDetail::Clawback { payment_id, refund_id, refunded, rate, .. } => {
            let numbers = match &facts.deal {
                Some(d) => format!(
                    "{} of margin {} x refunded {} / amount {}",
                    percent_text(*rate),
                    money_grouped(d.margin),
                    money_grouped(*refunded),
                    money_grouped(d.amount)
                ),
                None => percent_text(*rate),
            };
            format!("{}: refund {refund_id} of payment {payment_id} takes back {numbers}", signed(entry.amount))
        }
        EntryDetail::Fine { deal_id } => {
            let on = facts
                .deal
                .as_ref()
                .and_then(|d| d.cancelled_on)
                .map(|on| format!(" on {}", date_text(on)))
                .unwrap_or_default();
            format!("{}: deal {deal_id} cancelled{on} through the manager's fault", signed(entry.amount))
        }
        EntryDetail::PlanBonus(f) => plan_line(entry.amount, f),
    };
    if let Some(original) = entry.adjustment_of {
        line.push_str(&format!("; dated in closed period {original}, booked in {}", entry.period));
    }
    line
}

fn plan_line(amount: Decimal, f: &PlanFigures) -> String {
    format!(
        "+{}: plan achieved {} % ({} of {}), coefficient {} x bonus base {}",
        money_text(amount),
        fixed_text(f.achievement * Decimal::ONE_HUNDRED, 2),
        money_grouped(f.actual),
        money_grouped(f.target),
        fixed_text(f.coefficient, 4),
        money_grouped(f.bonus_base)
    )
}
