//! How a period's statements differ: what changed between two moments of one log, manager by
//! manager, and how a period comes out under a what-if scheme beside the schemes in the log.
//! Pure functions of statements, so the binary only renders them.

use rust_decimal::Decimal;
use serde::Serialize;

use crate::money::money_text;
use crate::statement::{EntryView, ManagerStatement, PlanView, Statement};

/// The money of one manager in one statement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    #[serde(serialize_with = "money")]
    pub commission: Decimal,
    #[serde(serialize_with = "money")]
    pub clawback: Decimal,
    #[serde(serialize_with = "money")]
    pub fines: Decimal,
    #[serde(serialize_with = "money")]
    pub plan_bonus: Decimal,
    #[serde(serialize_with = "money")]
    pub total: Decimal,
}

fn money<S: serde::Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&money_text(*value))
}

impl Totals {
    pub fn of(m: Option<&ManagerStatement>) -> Totals {
        match m {
            Some(m) => Totals {
                commission: m.commission,
                clawback: m.clawback,
                fines: m.fines,
                plan_bonus: m.plan_bonus,
                total: m.total,
            },
            None => Totals::default(),
        }
    }

    pub fn minus(&self, other: &Totals) -> Totals {
        Totals {
            commission: self.commission - other.commission,
            clawback: self.clawback - other.clawback,
            fines: self.fines - other.fines,
            plan_bonus: self.plan_bonus - other.plan_bonus,
            total: self.total - other.total,
        }
    }
}

/// One manager's change between two statements of the same period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManagerChange {
    pub manager_id: String,
    pub before: Totals,
    pub after: Totals,
    pub change: Totals,
    pub plan_before: Option<PlanView>,
    pub plan_after: Option<PlanView>,
    /// Entries on the later statement that the earlier one did not have.
    pub entries_added: Vec<EntryView>,
    /// Entries of the earlier statement missing from the later one, or with another amount
    /// (never for two moments of one log: entries are append-only; possible under a what-if).
    pub entries_removed: Vec<EntryView>,
}

/// Entries are told apart by the event that booked them, their kind and manager.
fn entry_key(e: &EntryView) -> (u64, &'static str, Option<&str>) {
    (e.event.seq, e.kind, e.payment_id.as_deref().or(e.deal_id.as_deref()))
}

/// What differs between two statements of one period, manager by manager; managers whose
/// figures, plan and entries are the same are left out.
pub fn statement_changes(before: &Statement, after: &Statement) -> Vec<ManagerChange> {
    let mut ids: Vec<&str> = before.managers.iter().chain(&after.managers).map(|m| m.manager_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let find = |s: &'_ Statement, id: &str| s.managers.iter().find(|m| m.manager_id == id).cloned();
    let mut changes = Vec::new();
    for id in ids {
        let (b, a) = (find(before, id), find(after, id));
        if b == a {
            continue;
        }
        let empty = Vec::new();
        let b_entries = b.as_ref().map_or(&empty, |m| &m.entries);
        let a_entries = a.as_ref().map_or(&empty, |m| &m.entries);
        let added: Vec<EntryView> = a_entries
            .iter()
            .filter(|e| !b_entries.iter().any(|o| entry_key(o) == entry_key(e) && o.amount == e.amount))
            .cloned()
            .collect();
        let removed: Vec<EntryView> = b_entries
            .iter()
            .filter(|e| !a_entries.iter().any(|o| entry_key(o) == entry_key(e) && o.amount == e.amount))
            .cloned()
            .collect();
        let (before_totals, after_totals) = (Totals::of(b.as_ref()), Totals::of(a.as_ref()));
        // Explanations may differ in wording alone (a what-if scheme's grace days appear in
        // them); only money, plans and the entries booked count as a change.
        let plan_of = |m: &Option<ManagerStatement>| m.as_ref().and_then(|m| m.plan.clone());
        if added.is_empty() && removed.is_empty() && before_totals == after_totals && plan_of(&b) == plan_of(&a) {
            continue;
        }
        changes.push(ManagerChange {
            manager_id: id.to_string(),
            change: after_totals.minus(&before_totals),
            before: before_totals,
            after: after_totals,
            plan_before: b.and_then(|m| m.plan),
            plan_after: a.and_then(|m| m.plan),
            entries_added: added,
            entries_removed: removed,
        });
    }
    changes
}

/// One manager's figures under the schemes in the log and under a what-if scheme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManagerComparison {
    pub manager_id: String,
    pub actual: Totals,
    pub what_if: Totals,
    pub difference: Totals,
}

/// Every manager of either statement, side by side (unchanged ones too: finance reads the
/// whole table).
pub fn compare(actual: &Statement, what_if: &Statement) -> Vec<ManagerComparison> {
    let mut ids: Vec<&str> = actual.managers.iter().chain(&what_if.managers).map(|m| m.manager_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .map(|id| {
            let a = Totals::of(actual.managers.iter().find(|m| m.manager_id == id));
            let w = Totals::of(what_if.managers.iter().find(|m| m.manager_id == id));
            ManagerComparison { manager_id: id.to_string(), difference: w.minus(&a), actual: a, what_if: w }
        })
        .collect()
}
