//! What an auditor asks of one entry, payment or deal: the arithmetic behind an entry, and which
//! log records and entries of a payment or deal the fold state points to (`premia explain`, the
//! explain routes). Pure functions of the fold state, so the binary and the API only render them.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::Serialize;

use crate::calendar::date_text;
use crate::event::EventData;
use crate::fold::{Deal, Entry, EntryDetail, LedgerState, Payment, PlanFigures, Timing};
use crate::money::{fixed_text, money_grouped};
use crate::replay_index::RecordKeys;
use crate::scheme::{Coefficient, Scheme};
use crate::statement::EntryView;

/// A log record an entry depends on, with its part in the arithmetic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct EventLink {
    /// `deal`, `payment`, `refund`, `cancellation`, `plan`, `close`.
    pub role: &'static str,
    pub seq: u64,
}

/// The scheme an entry was computed under: the `scheme.activated` record in force when the
/// event was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SchemeRef {
    pub seq: Option<u64>,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct EntryExplanation {
    pub entry: EntryView,
    pub period: String,
    pub manager_id: String,
    /// The arithmetic with the real numbers, ending in `= amount`.
    pub formula: String,
    /// The rule of RULES.md that applied, with the scheme parameters it used.
    pub rule: String,
    /// The seq of the record whose fold booked it: the event's own, or (for an event that
    /// waited for its deal or payment) the record that released it.
    pub applied_at_seq: u64,
    pub scheme: SchemeRef,
    pub depends_on: Vec<EventLink>,
}

fn working_days(n: u32) -> &'static str {
    if n == 1 {
        "working day"
    } else {
        "working days"
    }
}

/// The arithmetic of one entry. `scheme` is the scheme in force when it was booked.
pub fn explain_entry(
    state: &LedgerState,
    entry: &Entry,
    applied_at_seq: u64,
    scheme: &Scheme,
    scheme_seq: Option<u64>,
) -> EntryExplanation {
    let explaining = Explaining { state, entry, scheme, amount: money_grouped(entry.amount) };
    let (mut formula, rule, mut depends_on) = match &entry.detail {
        EntryDetail::Commission { deal_id, payment_id, timing, working_days_late, grace_working_days, rate } => {
            explaining.commission(deal_id, payment_id, *timing, *working_days_late, *grace_working_days, *rate)
        }
        EntryDetail::Clawback { deal_id, payment_id, refund_id, refunded, rate } => {
            explaining.clawback(deal_id, payment_id, refund_id, *refunded, *rate)
        }
        EntryDetail::Fine { deal_id } => explaining.fine(deal_id),
        EntryDetail::PlanBonus(figures) => explaining.plan_bonus(figures),
    };
    if let Some(original) = entry.adjustment_of {
        formula.push_str(&format!(
            "; dated in {original}, which was closed, so booked in the first open period {} (RULES.md 8)",
            entry.period
        ));
    }
    depends_on.sort_by_key(|l| l.seq);
    EntryExplanation {
        entry: state.entry_view(entry),
        period: entry.period.to_string(),
        manager_id: entry.manager_id.to_string(),
        formula,
        rule,
        applied_at_seq,
        scheme: SchemeRef { seq: scheme_seq, name: scheme.name.clone() },
        depends_on,
    }
}

/// What the working of every entry reads: the state, the entry, the scheme it was booked
/// under, and its amount as text.
struct Explaining<'a> {
    state: &'a LedgerState,
    entry: &'a Entry,
    scheme: &'a Scheme,
    amount: String,
}

/// The working of one entry: the arithmetic with the real numbers, the rule that applied, and
/// the records it depends on.
type Working = (String, String, Vec<EventLink>);

impl Explaining<'_> {
    fn commission(
        &self,
        deal_id: &str,
        payment_id: &str,
        timing: Timing,
        working_days_late: u32,
        grace_working_days: u32,
        rate: Decimal,
    ) -> Working {
        let (amount, scheme) = (&self.amount, self.scheme);
        let deal = self.state.deal(deal_id);
        let payment = self.state.payment(payment_id);
        let mut depends_on = Vec::new();
        if let Some(d) = deal {
            depends_on.push(EventLink { role: "deal", seq: d.seq });
        }
        depends_on.push(EventLink { role: "payment", seq: self.entry.seq });
        let when = timing_text(deal.zip(payment), timing, working_days_late, grace_working_days);
        let formula = match (deal, payment) {
            (Some(d), Some(p)) => format!(
                "margin {} x paid {} / amount {} x rate {} ({when}) = {amount}",
                money_grouped(d.margin),
                money_grouped(p.amount),
                money_grouped(d.amount),
                rate.normalize()
            ),
            _ => format!("rate {} ({when}) = {amount}", rate.normalize()),
        };
        let rule = format!(
            "RULES.md 3: commission = round2(margin x paid x rate / amount); payment {payment_id} on deal {deal_id} is {}, rates prepaid {} / on time {} / late {}, grace {} working days",
            timing.as_str(),
            scheme.commission.prepaid_rate.normalize(),
            scheme.commission.on_time_rate.normalize(),
            scheme.commission.late_rate.normalize(),
            scheme.commission.grace_working_days
        );
        (formula, rule, depends_on)
    }

    fn clawback(&self, deal_id: &str, payment_id: &str, refund_id: &str, refunded: Decimal, rate: Decimal) -> Working {
        let amount = &self.amount;
        let deal = self.state.deal(deal_id);
        let mut depends_on = Vec::new();
        if let Some(d) = deal {
            depends_on.push(EventLink { role: "deal", seq: d.seq });
        }
        if let Some(p) = self.state.payment(payment_id) {
            depends_on.push(EventLink { role: "payment", seq: p.seq });
        }
        depends_on.push(EventLink { role: "refund", seq: self.entry.seq });
        let formula = match deal {
            Some(d) => format!(
                "-(margin {} x refunded {} / amount {} x rate {} (the rate payment {payment_id} was booked at)) = {amount}",
                money_grouped(d.margin),
                money_grouped(refunded),
                money_grouped(d.amount),
                rate.normalize()
            ),
            None => format!("-(refunded {} x rate {}) = {amount}", money_grouped(refunded), rate.normalize()),
        };
        let rule = format!(
            "RULES.md 4: clawback = -round2(margin x refunded x rate of the payment / amount); refund {refund_id} of payment {payment_id} on deal {deal_id}"
        );
        (formula, rule, depends_on)
    }

    fn fine(&self, deal_id: &str) -> Working {
        let amount = &self.amount;
        let deal = self.state.deal(deal_id);
        let mut depends_on = Vec::new();
        if let Some(d) = deal {
            depends_on.push(EventLink { role: "deal", seq: d.seq });
        }
        depends_on.push(EventLink { role: "cancellation", seq: self.entry.seq });
        let on = deal.and_then(|d| d.cancelled).map(|(on, _)| format!(" on {}", date_text(on))).unwrap_or_default();
        (
            format!("fine for deal {deal_id} cancelled{on} through the manager's fault = {amount}"),
            format!(
                "RULES.md 5: a cancellation with fault = manager books -fines.manager_fault ({})",
                money_grouped(self.scheme.fines.manager_fault)
            ),
            depends_on,
        )
    }

    fn plan_bonus(&self, f: &PlanFigures) -> Working {
        let (amount, scheme, entry) = (&self.amount, self.scheme, self.entry);
        let plan_seq = self
            .state
            .books()
            .get(&entry.period)
            .and_then(|b| b.get(&entry.manager_id))
            .and_then(|b| b.plan.as_ref())
            .map(|p| p.seq);
        let mut depends_on = Vec::new();
        if let Some(seq) = plan_seq {
            depends_on.push(EventLink { role: "plan", seq });
        }
        depends_on.push(EventLink { role: "close", seq: entry.seq });
        let achievement = format!(
            "achievement {} / target {} = {}",
            money_grouped(f.actual),
            money_grouped(f.target),
            fixed_text(f.achievement, 4)
        );
        let formula = match scheme.coefficient(f.actual, f.target) {
            Coefficient::Proportional => format!(
                "bonus base {} x actual {} / target {} ({achievement}, proportional tier) = {amount}",
                money_grouped(f.bonus_base),
                money_grouped(f.actual),
                money_grouped(f.target)
            ),
            Coefficient::Fixed(k) => {
                format!(
                    "bonus base {} x coefficient {} ({achievement}) = {amount}",
                    money_grouped(f.bonus_base),
                    k.normalize()
                )
            }
        };
        let rule = format!(
            "RULES.md 6: plan_bonus = round2(bonus_base x coefficient(actual / target)), metric {}, cap {}, booked when {} was closed",
            scheme.plan.metric.as_str(),
            scheme.plan.cap.normalize(),
            entry.period
        );
        (formula, rule, depends_on)
    }
}

/// How fast a payment came, in words, from its deal and payment when the state has both.
fn timing_text(
    deal_and_payment: Option<(Deal<'_>, Payment<'_>)>,
    timing: Timing,
    working_days_late: u32,
    grace: u32,
) -> String {
    let Some((d, p)) = deal_and_payment else { return timing.as_str().to_string() };
    match timing {
        Timing::Prepaid => format!(
            "prepaid: prepayment terms, paid {} on or before due date {}",
            date_text(p.paid_on),
            date_text(d.due_date)
        ),
        Timing::OnTime if working_days_late == 0 => {
            format!("on time: paid {}, not after due date {}", date_text(p.paid_on), date_text(d.due_date))
        }
        t => format!(
            "{}: {} {} after due date {}, grace {}",
            if t == Timing::Late { "late" } else { "on time" },
            working_days_late,
            working_days(working_days_late),
            date_text(d.due_date),
            grace
        ),
    }
}

/// What `premia explain --payment/--deal` and `GET /v1/explain/{payments,deals}/{id}` are about.
/// Deal and payment ids are keys of the ledger as a whole, not of a source: the fold keeps one
/// deal per `deal_id` and one payment per `payment_id` whatever source sent them (a second use
/// is refused by a rule), so an id alone names the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    Payment(&'a str),
    Deal(&'a str),
}

impl Subject<'_> {
    /// `payment P-1`, `deal D-1`: how an explanation names its subject.
    pub fn name(&self) -> String {
        match self {
            Subject::Payment(id) => format!("payment {id}"),
            Subject::Deal(id) => format!("deal {id}"),
        }
    }

    /// The replay index's key of the subject (`p:ID`, `d:ID`; see replay_index.rs).
    pub fn index_key(&self) -> String {
        match self {
            Subject::Payment(id) => format!("p:{id}"),
            Subject::Deal(id) => format!("d:{id}"),
        }
    }

    /// Whether `entry` is one of the subject's: a payment's commission and the clawbacks of its
    /// refunds; a deal's commissions, clawbacks and fine.
    pub fn covers(&self, entry: &Entry) -> bool {
        match (self, &entry.detail) {
            (
                Subject::Payment(id),
                EntryDetail::Commission { payment_id, .. } | EntryDetail::Clawback { payment_id, .. },
            ) => &**payment_id == *id,
            (
                Subject::Deal(id),
                EntryDetail::Commission { deal_id, .. }
                | EntryDetail::Clawback { deal_id, .. }
                | EntryDetail::Fine { deal_id },
            ) => &**deal_id == *id,
            _ => false,
        }
    }
}

/// The log records that booked the subject's entries, found in the fold state alone (no index
/// of the log): a payment's own record and its refunds'; for a deal, those of each of its
/// payments and its cancellation. In log order; empty when the state holds no such payment or
/// deal (never received, refused by a rule, or still parked). A deal's payments are found by
/// going over every payment: explain is an auditor's occasional question, not worth an index
/// kept for every deal.
pub fn subject_records(state: &LedgerState, subject: Subject<'_>) -> Vec<u64> {
    let mut seqs = Vec::new();
    match subject {
        Subject::Payment(id) => {
            if let Some(payment) = state.payment(id) {
                seqs.push(payment.seq);
                seqs.extend_from_slice(state.refund_seqs(id));
            }
        }
        Subject::Deal(id) => {
            if state.deal(id).is_none() {
                return seqs;
            }
            for (payment_id, payment) in state.payments().filter(|(_, p)| &*p.deal_id == id) {
                seqs.push(payment.seq);
                seqs.extend_from_slice(state.refund_seqs(payment_id));
            }
            seqs.extend(state.cancellation_seq(id));
        }
    }
    seqs.sort_unstable();
    seqs
}

/// The parked events of the subject, in log order: for a payment, the payment itself waiting for
/// its deal and refunds waiting for it; for a deal, its payments, late notices and cancellation
/// waiting for it, and refunds waiting for those payments. (A payment or deal the state knows
/// has none: whatever waited for it was released when it was applied.)
pub fn subject_parked(state: &LedgerState, subject: Subject<'_>) -> Vec<u64> {
    let mut seqs = Vec::new();
    match subject {
        Subject::Payment(id) => {
            for (seq, parked) in state.parked() {
                let about = match &parked.event.data {
                    EventData::PaymentReceived(p) => &*p.payment_id == id,
                    EventData::PaymentRefunded(r) => &*r.payment_id == id,
                    _ => false,
                };
                if about {
                    seqs.push(*seq);
                }
            }
        }
        Subject::Deal(id) => {
            let mut payments = BTreeSet::new();
            for (seq, parked) in state.parked() {
                let about = match &parked.event.data {
                    EventData::PaymentReceived(p) if &*p.deal_id == id => {
                        payments.insert(p.payment_id.clone());
                        true
                    }
                    EventData::PaymentLate(l) => &*l.deal_id == id,
                    EventData::DealCancelled(c) => &*c.deal_id == id,
                    _ => false,
                };
                if about {
                    seqs.push(*seq);
                }
            }
            for (seq, parked) in state.parked() {
                if let EventData::PaymentRefunded(r) = &parked.event.data {
                    if payments.contains(&r.payment_id) {
                        seqs.push(*seq);
                    }
                }
            }
            seqs.sort_unstable();
        }
    }
    seqs
}

/// The seq of the record whose fold booked `entry`, from the fold state: the entry's own seq,
/// or, for an event that was parked, the seq of the record that released it. Deals never wait,
/// a payment or cancellation waits only for its deal and a refund only for its payment, and a
/// release happens in the fold step of the record that was waited for (fold/parking.rs), so this is the
/// latest of the entry's seq and the seqs of the deal and payment it needed. A plan bonus is
/// booked by its close.
pub fn applied_at(state: &LedgerState, entry: &Entry) -> u64 {
    match &entry.detail {
        EntryDetail::Commission { deal_id, .. } | EntryDetail::Fine { deal_id } => {
            entry.seq.max(deal_applied_at(state, deal_id))
        }
        EntryDetail::Clawback { payment_id, .. } => entry.seq.max(payment_applied_at(state, payment_id)),
        EntryDetail::PlanBonus(_) => entry.seq,
    }
}

/// The same for a log record, whatever it booked: where its entries are stored, since a batch
/// stores the entries its records' folds booked, released ones included. Its ids tell what it
/// may have waited for (the replay index's light parse reads them). A record that booked nothing
/// gets some seq at or after its own, which is harmless: nothing of it is there either.
pub fn record_applied_at(state: &LedgerState, seq: u64, raw: &[u8]) -> u64 {
    match RecordKeys::of(raw) {
        RecordKeys::Fact { keys, .. } => keys.iter().fold(seq, |at, key| {
            if let Some(deal_id) = key.strip_prefix("d:") {
                at.max(deal_applied_at(state, deal_id))
            } else if let Some(payment_id) = key.strip_prefix("p:") {
                at.max(payment_applied_at(state, payment_id))
            } else {
                at
            }
        }),
        _ => seq,
    }
}

/// A deal is applied when it arrives (0 when unknown).
fn deal_applied_at(state: &LedgerState, deal_id: &str) -> u64 {
    state.deal(deal_id).map_or(0, |d| d.seq)
}

/// A payment is applied when it arrives or, when it waited, when its deal did (0 when unknown).
fn payment_applied_at(state: &LedgerState, payment_id: &str) -> u64 {
    state.payment(payment_id).map_or(0, |p| p.seq.max(deal_applied_at(state, &p.deal_id)))
}

/// The `scheme.activated` record in force once record `seq` was folded (`None`: the built-in
/// scheme, before any was logged).
pub fn scheme_seq_at(state: &LedgerState, seq: u64) -> Option<u64> {
    let history = state.scheme_history();
    history.partition_point(|&s| s <= seq).checked_sub(1).map(|i| history[i])
}

/// Entries read back from storage (each record's in the order it booked them), each with the
/// seq of the record whose fold booked it ([`applied_at`]), in the order a fold of the log books
/// them, which is the order `premia explain` lists them in. By that record first; within its fold
/// step, its own entries first, then those of the parked events it released: the earliest ready
/// one first, each one applied making its own waiters ready (fold/parking.rs, RULES.md 9). Only the
/// subject's records matter for their relative order: what releases them is the step's record
/// or another of them (a deal releases its payments and cancellation, a payment its refunds).
pub fn in_booking_order(state: &LedgerState, entries: Vec<Entry>) -> Vec<(Entry, u64)> {
    let mut steps: BTreeMap<u64, Vec<Entry>> = BTreeMap::new();
    for entry in entries {
        steps.entry(applied_at(state, &entry)).or_default().push(entry);
    }
    let mut ordered = Vec::new();
    for (at, step) in steps {
        let (own, mut released): (Vec<Entry>, Vec<Entry>) = step.into_iter().partition(|e| e.seq == at);
        ordered.extend(own.into_iter().map(|e| (e, at)));
        // The record whose application made each released one ready.
        let releaser = |e: &Entry| match &e.detail {
            EntryDetail::Commission { deal_id, .. } | EntryDetail::Fine { deal_id } => {
                state.deal(deal_id).map(|d| d.seq)
            }
            EntryDetail::Clawback { payment_id, .. } => state.payment(payment_id).map(|p| p.seq),
            EntryDetail::PlanBonus(_) => None,
        };
        let mut ready: BTreeSet<u64> = released.iter().filter(|e| releaser(e) == Some(at)).map(|e| e.seq).collect();
        while let Some(seq) = ready.pop_first() {
            let (now, rest): (Vec<Entry>, Vec<Entry>) = released.into_iter().partition(|e| e.seq == seq);
            released = rest;
            ready.extend(released.iter().filter(|e| releaser(e) == Some(seq)).map(|e| e.seq));
            ordered.extend(now.into_iter().map(|e| (e, at)));
        }
        // Entries the state does not account for keep log order rather than being dropped.
        released.sort_by_key(|e| e.seq);
        ordered.extend(released.into_iter().map(|e| (e, at)));
    }
    ordered
}
