//! The fold: `(state, event) -> (state, entries | parked | rejection)`, RULES.md sections 3-10.
//!
//! Everything here is deterministic: no clock, no IO, no randomness, and no iteration over a
//! hash map decides anything (ordered maps hold whatever is iterated).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::calendar::{Calendar, Period};
use crate::event::{
    parse_event, Admission, DealCancelled, DealCreated, Event, EventData, EventType, Fault, Id, PaymentLate,
    PaymentReceived, PaymentRefunded, PaymentTerms, PlanAssigned,
};
use crate::money::mul_div_round;
use crate::reject::{Reason, Rejection};
use crate::scheme::{Coefficient, Scheme};

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deal {
    pub seq: u64,
    pub manager_id: Id,
    pub client_id: Id,
    #[serde(with = "crate::money::decimal_bytes")]
    pub amount: Decimal,
    #[serde(with = "crate::money::decimal_bytes")]
    pub margin: Decimal,
    pub payment_terms: PaymentTerms,
    pub due_date: Date,
    pub created_on: Date,
    /// Sum of accepted payments; refunds do not restore the balance.
    #[serde(with = "crate::money::decimal_bytes")]
    pub paid: Decimal,
    pub cancelled: Option<(Date, Fault)>,
    /// The latest late notice: as of, days overdue.
    pub overdue: Option<(Date, Option<u32>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub seq: u64,
    pub deal_id: Id,
    #[serde(with = "crate::money::decimal_bytes")]
    pub amount: Decimal,
    pub paid_on: Date,
    #[serde(with = "crate::money::decimal_bytes")]
    pub refunded: Decimal,
    /// The rate its commission was booked at: refunds claw back at the same rate.
    #[serde(with = "crate::money::decimal_bytes")]
    pub rate: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub seq: u64,
    #[serde(with = "crate::money::decimal_bytes")]
    pub target: Decimal,
    #[serde(with = "crate::money::decimal_bytes::option")]
    pub bonus_base: Option<Decimal>,
}

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

    fn book(&mut self, entry: &Entry) {
        match entry.kind {
            EntryKind::Commission => self.commission += entry.amount,
            EntryKind::Clawback => self.clawback += entry.amount,
            EntryKind::Fine => self.fines += entry.amount,
            EntryKind::PlanBonus => self.plan_bonus += entry.amount,
        }
        self.entry_count += 1;
    }

    /// Whether the manager appears on the period's statement.
    pub fn is_visible(&self) -> bool {
        self.entry_count > 0 || self.plan.is_some()
    }
}

/// What a parked event waits for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WaitKey {
    Deal(Id),
    Payment(Id),
}

impl std::fmt::Display for WaitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitKey::Deal(id) => write!(f, "deal {id}"),
            WaitKey::Payment(id) => write!(f, "payment {id}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parked {
    pub event: Event,
    pub waits_for: WaitKey,
}

/// What became of one logged event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Applied { entries: Vec<Entry> },
    Parked { waits_for: WaitKey },
    Rejected(Rejection),
}

/// One event's outcome, either the event just admitted or a parked one it released.
#[derive(Debug, Clone, PartialEq)]
pub struct Folded {
    pub seq: u64,
    pub event_type: EventType,
    pub outcome: Outcome,
    /// True when the event had been parked and this is its release.
    pub released: bool,
}

/// A record the ledger writes to its log on its own account, before the admitted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnRecord {
    pub seq: u64,
    pub raw: Vec<u8>,
}

/// The result of offering one input line to the ledger.
#[derive(Debug, Clone, PartialEq)]
pub enum Admitted {
    /// The event is new: it gets `seq` and must be appended to the log (after `preamble`).
    Logged { seq: u64, preamble: Option<OwnRecord>, folded: Vec<Folded> },
    /// Same source, id and content as an earlier event: counted, not applied.
    Duplicate,
    /// Failed validation or conflicts with an earlier event: not logged.
    Rejected(Rejection),
}

/// The source premia's own records carry.
pub const OWN_SOURCE: &str = "premia/ledger";

/// Why replaying a log record did not give what the log says it gave when it was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("log record {seq} is out of order: the ledger expected sequence number {expected}")]
    OutOfOrder { seq: u64, expected: u64 },
    #[error("log record {seq} no longer passes validation: {rejection}")]
    Invalid { seq: u64, rejection: Rejection },
    #[error("log record {seq} repeats the source and id of an earlier record")]
    Repeated { seq: u64 },
}

/// The whole derived state of the ledger: a pure function of the log folded so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerState {
    next_seq: u64,
    scheme: Arc<Scheme>,
    /// The sequence number of the `scheme.activated` record in force; `None` before the first.
    scheme_seq: Option<u64>,
    #[serde(skip, default = "default_calendar")]
    calendar: Arc<Calendar>,
    /// identity (source, id) -> content fingerprint, for every logged event.
    seen: FastMap<u128, u128>,
    deals: FastMap<Id, Deal>,
    payments: FastMap<Id, Payment>,
    refunds: FastSet<Id>,
    /// Payment id -> log seqs of the refunds applied to it, in the order applied. Only refunded
    /// payments are here (a few): explain finds a payment's clawbacks by these seqs, without an
    /// index of the log.
    refunds_of: FastMap<Id, Vec<u64>>,
    /// Deal id -> log seq of the cancellation applied to it (the fine's seq, when the manager
    /// was at fault), for the same reason. Only cancelled deals are here.
    cancellations: FastMap<Id, u64>,
    /// Closed periods and the sequence number of the event that closed each.
    closed: BTreeMap<Period, u64>,
    books: BTreeMap<Period, BTreeMap<Id, ManagerBook>>,
    parked: BTreeMap<u64, Parked>,
    waiting: FastMap<WaitKey, Vec<u64>>,
    rejected_by_rule: BTreeMap<u64, (EventType, Rejection)>,
    /// Sequence numbers of the `scheme.activated` records, in order.
    scheme_history: Vec<u64>,
    /// Sources and manager ids recur in every entry: one shared copy of each.
    #[serde(skip)]
    names: Interner,
    /// What folds changed, while someone keeps a read model beside this state.
    #[serde(skip)]
    changes: ChangeLog,
}

/// What folds changed that a statement shows, since it was last taken: which books moved,
/// which periods were closed, whether a scheme was activated. Recorded only while tracking is
/// on ([`LedgerState::track_changes`]): a read model kept beside the state (the HTTP API's
/// statements) refreshes exactly these instead of everything after each batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// (period, manager) of every book an event moved (entries, plan, the `booked` metric).
    pub books: BTreeSet<(Period, Id)>,
    /// Periods closed: every book in them shows a new status, some a booked plan bonus.
    pub closed: BTreeSet<Period>,
    /// A scheme was activated: the currency and plan figures of every statement may differ.
    pub scheme: bool,
}

/// `Some` while changes are recorded. Like the interner, it changes no outcome, so two states
/// are equal whatever it holds.
#[derive(Debug, Clone, Default)]
struct ChangeLog(Option<Changes>);

impl PartialEq for ChangeLog {
    fn eq(&self, _: &ChangeLog) -> bool {
        true
    }
}

/// A cache of shared names. It changes no outcome, so two states are equal whatever it holds.
#[derive(Debug, Clone, Default)]
struct Interner(FastSet<Id>);

impl PartialEq for Interner {
    fn eq(&self, _: &Interner) -> bool {
        true
    }
}

/// Hash maps keyed by ids: foldhash (randomly seeded, so no adversarial key set is known in
/// advance) is several times faster than SipHash on short keys. Nothing iterates them to decide
/// an outcome, so their order never matters.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

fn default_calendar() -> Arc<Calendar> {
    Arc::new(Scheme::default_scheme().calendar())
}

impl Default for LedgerState {
    fn default() -> Self {
        LedgerState::new()
    }
}

impl LedgerState {
    /// An empty ledger. Until a `scheme.activated` is folded, the default scheme validates, and
    /// it is activated (logged) before the first other event.
    pub fn new() -> LedgerState {
        let scheme = Scheme::default_scheme();
        LedgerState {
            next_seq: 1,
            calendar: Arc::new(scheme.calendar()),
            scheme: Arc::new(scheme),
            scheme_seq: None,
            seen: FastMap::default(),
            deals: FastMap::default(),
            payments: FastMap::default(),
            refunds: FastSet::default(),
            refunds_of: FastMap::default(),
            cancellations: FastMap::default(),
            closed: BTreeMap::new(),
            books: BTreeMap::new(),
            parked: BTreeMap::new(),
            waiting: FastMap::default(),
            rejected_by_rule: BTreeMap::new(),
            scheme_history: Vec::new(),
            names: Interner::default(),
            changes: ChangeLog::default(),
        }
    }

    /// Starts (or stops) recording what folds change, for [`take_changes`](Self::take_changes).
    /// Off by default: nothing but a read model needs it.
    pub fn track_changes(&mut self, on: bool) {
        self.changes.0 = if on { Some(Changes::default()) } else { None };
    }

    /// What folds changed since tracking started or this was last called (nothing when
    /// tracking is off).
    pub fn take_changes(&mut self) -> Changes {
        match &mut self.changes.0 {
            Some(changes) => std::mem::take(changes),
            None => Changes::default(),
        }
    }

    fn intern(&mut self, name: &Id) -> Id {
        match self.names.0.get(name) {
            Some(shared) => shared.clone(),
            None => {
                self.names.0.insert(name.clone());
                name.clone()
            }
        }
    }

    /// Restores what `#[serde(skip)]` left out after a snapshot is loaded.
    pub fn after_load(&mut self) {
        self.calendar = Arc::new(self.scheme.calendar());
        // Deserialized names are separate copies; share them again.
        let mut books = std::mem::take(&mut self.books);
        for managers in books.values_mut() {
            let owned = std::mem::take(managers);
            for (manager_id, book) in owned {
                managers.insert(self.intern(&manager_id), book);
            }
        }
        self.books = books;
        let mut deals = std::mem::take(&mut self.deals);
        for deal in deals.values_mut() {
            deal.manager_id = self.intern(&deal.manager_id);
        }
        self.deals = deals;
    }

    /// The scheme in force, shared: parsing may happen on another thread with a copy of it.
    pub fn scheme_shared(&self) -> Arc<Scheme> {
        self.scheme.clone()
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    pub fn scheme_seq(&self) -> Option<u64> {
        self.scheme_seq
    }

    pub fn scheme_history(&self) -> &[u64] {
        &self.scheme_history
    }

    pub fn books(&self) -> &BTreeMap<Period, BTreeMap<Id, ManagerBook>> {
        &self.books
    }

    /// Every deal the ledger knows, in no particular order.
    pub fn deals(&self) -> impl Iterator<Item = (&Id, &Deal)> {
        self.deals.iter()
    }

    /// Every accepted payment, in no particular order.
    pub fn payments(&self) -> impl Iterator<Item = (&Id, &Payment)> {
        self.payments.iter()
    }

    pub fn is_closed(&self, period: Period) -> bool {
        self.closed.contains_key(&period)
    }

    pub fn closed_periods(&self) -> &BTreeMap<Period, u64> {
        &self.closed
    }

    pub fn deal(&self, id: &str) -> Option<&Deal> {
        self.deals.get(id)
    }

    pub fn payment(&self, id: &str) -> Option<&Payment> {
        self.payments.get(id)
    }

    /// The log seqs of the refunds applied to payment `id`, in the order applied.
    pub fn refund_seqs(&self, payment_id: &str) -> &[u64] {
        self.refunds_of.get(payment_id).map(Vec::as_slice).unwrap_or_default()
    }

    /// The log seq of the cancellation applied to deal `id`, if it was cancelled.
    pub fn cancellation_seq(&self, deal_id: &str) -> Option<u64> {
        self.cancellations.get(deal_id).copied()
    }

    pub fn parked(&self) -> &BTreeMap<u64, Parked> {
        &self.parked
    }

    pub fn rejected_by_rule(&self) -> &BTreeMap<u64, (EventType, Rejection)> {
        &self.rejected_by_rule
    }

    /// Offers one input line. On `Logged` the caller must append the preamble (if any) and the
    /// line to the log, in that order, before reporting anything as done.
    pub fn admit(&mut self, raw: &[u8], admission: Admission) -> Admitted {
        let parsed = parse_event(raw, &self.scheme, admission);
        let scheme = self.scheme.clone();
        self.admit_parsed(raw, parsed, &scheme, admission)
    }

    /// [`admit`](Self::admit) for a line already parsed (on another thread, say) under
    /// `parsed_with`. When a scheme activated since then is in force, the line is parsed again.
    pub fn admit_parsed(
        &mut self,
        raw: &[u8],
        parsed: Result<Event, Rejection>,
        parsed_with: &Arc<Scheme>,
        admission: Admission,
    ) -> Admitted {
        let parsed =
            if Arc::ptr_eq(parsed_with, &self.scheme) { parsed } else { parse_event(raw, &self.scheme, admission) };
        let event = match parsed {
            Ok(e) => e,
            Err(rejection) => return Admitted::Rejected(rejection),
        };
        if let Some(&fingerprint) = self.seen.get(&event.identity) {
            if fingerprint == event.fingerprint {
                return Admitted::Duplicate;
            }
            return Admitted::Rejected(Rejection::new(
                Reason::Conflict,
                format!(
                    "an event with source {:?} and id {:?} was already received with other content; the first copy stands. Use a new id for a new fact",
                    event.source, event.id
                ),
            ));
        }
        let mut preamble = None;
        if self.scheme_seq.is_none() && event.data.event_type() != EventType::SchemeActivated {
            let raw = scheme_activation_record(&self.scheme, self.next_seq);
            let seq = self.next_seq;
            match self.replay(seq, &raw) {
                Ok(_) => preamble = Some(OwnRecord { seq, raw }),
                Err(e) => unreachable!("the ledger's own scheme record must fold: {e}"),
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.seen.insert(event.identity, event.fingerprint);
        let folded = self.fold(seq, event);
        Admitted::Logged { seq, preamble, folded }
    }

    /// Folds a record read back from the log. The log holds only events that were admitted, so
    /// anything but a clean fold means the log or the code changed.
    pub fn replay(&mut self, seq: u64, raw: &[u8]) -> Result<Vec<Folded>, ReplayError> {
        if seq != self.next_seq {
            return Err(ReplayError::OutOfOrder { seq, expected: self.next_seq });
        }
        let event = parse_event(raw, &self.scheme, Admission::Operator)
            .map_err(|rejection| ReplayError::Invalid { seq, rejection })?;
        if self.seen.insert(event.identity, event.fingerprint).is_some() {
            return Err(ReplayError::Repeated { seq });
        }
        self.next_seq += 1;
        Ok(self.fold(seq, event))
    }

    /// [`replay`](Self::replay) for a record read back after records before it were skipped on
    /// purpose: a replay of one period folds only the records that period depends on
    /// (`replay_index::ReplayIndex`), and the gaps are records that cannot change its outcome.
    pub fn replay_selected(&mut self, seq: u64, raw: &[u8]) -> Result<Vec<Folded>, ReplayError> {
        if seq < self.next_seq {
            return Err(ReplayError::OutOfOrder { seq, expected: self.next_seq });
        }
        self.next_seq = seq;
        self.replay(seq, raw)
    }

    fn fold(&mut self, seq: u64, mut event: Event) -> Vec<Folded> {
        event.source = self.intern(&event.source);
        match &mut event.data {
            EventData::DealCreated(d) => d.manager_id = self.intern(&d.manager_id),
            EventData::PlanAssigned(p) => p.manager_id = self.intern(&p.manager_id),
            _ => {}
        }
        let event_type = event.data.event_type();
        let mut folded = Vec::with_capacity(1);
        let mut ready: BTreeSet<u64> = BTreeSet::new();
        match self.apply(seq, &event) {
            Step::Parked(waits_for) => {
                self.waiting.entry(waits_for.clone()).or_default().push(seq);
                self.parked.insert(seq, Parked { event, waits_for: waits_for.clone() });
                folded.push(Folded { seq, event_type, outcome: Outcome::Parked { waits_for }, released: false });
            }
            step => {
                let outcome = self.settle(seq, event_type, step, &mut ready);
                folded.push(Folded { seq, event_type, outcome, released: false });
            }
        }
        // RULES.md section 9: the earliest-received ready parked event first, one at a time.
        while let Some(parked_seq) = ready.pop_first() {
            let Some(parked) = self.parked.remove(&parked_seq) else { continue };
            let event_type = parked.event.data.event_type();
            let step = self.apply(parked_seq, &parked.event);
            assert!(!matches!(step, Step::Parked(_)), "a released event waits for one thing only, which now exists");
            let outcome = self.settle(parked_seq, event_type, step, &mut ready);
            folded.push(Folded { seq: parked_seq, event_type, outcome, released: true });
        }
        folded
    }

    fn settle(&mut self, seq: u64, event_type: EventType, step: Step, ready: &mut BTreeSet<u64>) -> Outcome {
        match step {
            Step::Applied { entries, now_known } => {
                if let Some(key) = now_known {
                    if let Some(waiters) = self.waiting.remove(&key) {
                        ready.extend(waiters);
                    }
                }
                Outcome::Applied { entries }
            }
            Step::Rejected(rejection) => {
                self.rejected_by_rule.insert(seq, (event_type, rejection.clone()));
                Outcome::Rejected(rejection)
            }
            Step::Parked(_) => unreachable!("parking is handled by the caller"),
        }
    }

    /// The period a fact dated `date` is booked in: its own, or the first open one after it.
    fn booking_period(&self, date: Date) -> (Period, Option<Period>) {
        let own = Period::of(date);
        if !self.closed.contains_key(&own) {
            return (own, None);
        }
        let mut period = own.next();
        while self.closed.contains_key(&period) {
            period = period.next();
        }
        (period, Some(own))
    }

    fn book_of(&mut self, period: Period, manager: &Id) -> &mut ManagerBook {
        if let Some(changes) = &mut self.changes.0 {
            changes.books.insert((period, manager.clone()));
        }
        self.books.entry(period).or_default().entry(manager.clone()).or_default()
    }

    fn apply(&mut self, seq: u64, event: &Event) -> Step {
        match &event.data {
            EventData::DealCreated(d) => self.apply_deal_created(seq, d),
            EventData::PaymentReceived(p) => self.apply_payment(seq, event, p),
            EventData::PaymentLate(l) => self.apply_late_notice(l),
            EventData::DealCancelled(c) => self.apply_cancellation(seq, event, c),
            EventData::PaymentRefunded(r) => self.apply_refund(seq, event, r),
            EventData::PlanAssigned(p) => self.apply_plan(seq, p),
            EventData::PeriodClosed(c) => self.apply_close(seq, event, c.period),
            EventData::SchemeActivated(scheme) => {
                if let Some(changes) = &mut self.changes.0 {
                    changes.scheme = true;
                }
                self.calendar = Arc::new(scheme.calendar());
                self.scheme = Arc::new((**scheme).clone());
                self.scheme_seq = Some(seq);
                self.scheme_history.push(seq);
                Step::applied(vec![], None)
            }
        }
    }

    fn apply_deal_created(&mut self, seq: u64, d: &DealCreated) -> Step {
        if let Some(existing) = self.deals.get(&d.deal_id) {
            return Step::Rejected(Rejection::new(
                Reason::DealIdUsed,
                format!(
                    "deal {} was already created (ledger seq {}); deal ids must be unique",
                    d.deal_id, existing.seq
                ),
            ));
        }
        let (period, _) = self.booking_period(d.created_on);
        self.book_of(period, &d.manager_id).booked += d.amount;
        self.deals.insert(
            d.deal_id.clone(),
            Deal {
                seq,
                manager_id: d.manager_id.clone(),
                client_id: d.client_id.clone(),
                amount: d.amount,
                margin: d.margin,
                payment_terms: d.payment_terms,
                due_date: d.due_date,
                created_on: d.created_on,
                paid: Decimal::ZERO,
                cancelled: None,
                overdue: None,
            },
        );
        Step::applied(vec![], Some(WaitKey::Deal(d.deal_id.clone())))
    }

    fn apply_payment(&mut self, seq: u64, event: &Event, p: &PaymentReceived) -> Step {
        let Some((deal_id, deal)) = self.deals.get_key_value(&p.deal_id) else {
            return Step::Parked(WaitKey::Deal(p.deal_id.clone()));
        };
        let deal_id = deal_id.clone();
        if let Some(existing) = self.payments.get(&p.payment_id) {
            return Step::Rejected(Rejection::new(
                Reason::PaymentIdUsed,
                format!(
                    "payment {} was already received (ledger seq {}); payment ids must be unique",
                    p.payment_id, existing.seq
                ),
            ));
        }
        if let Some((cancelled_on, _)) = deal.cancelled {
            return Step::Rejected(Rejection::new(
                Reason::DealCancelled,
                format!("deal {} was cancelled on {}; no payment is accepted on a cancelled deal (send a refund instead if money must go back)", p.deal_id, crate::calendar::date_text(cancelled_on)),
            ));
        }
        let outstanding = deal.amount - deal.paid;
        if p.amount > outstanding {
            return Step::Rejected(Rejection::new(
                Reason::PaymentExceedsBalance,
                format!(
                    "payment {} of {} is above the {} still owed on deal {} (amount {}, paid so far {})",
                    p.payment_id, p.amount, outstanding, p.deal_id, deal.amount, deal.paid
                ),
            ));
        }
        let rules = &self.scheme.commission;
        let (timing, working_days_late) =
            if deal.payment_terms == PaymentTerms::Prepayment && p.paid_on <= deal.due_date {
                (Timing::Prepaid, 0)
            } else {
                let late = self.calendar.working_days_between(deal.due_date, p.paid_on);
                (if late <= rules.grace_working_days { Timing::OnTime } else { Timing::Late }, late)
            };
        let rate = match timing {
            Timing::Prepaid => rules.prepaid_rate,
            Timing::OnTime => rules.on_time_rate,
            Timing::Late => rules.late_rate,
        };
        let grace_working_days = rules.grace_working_days;
        let commission = exact(mul_div_round(&[deal.margin, p.amount, rate], deal.amount, 2));
        let margin_share = exact(mul_div_round(&[deal.margin, p.amount], deal.amount, 2));
        let manager_id = deal.manager_id.clone();
        let (period, adjustment_of) = self.booking_period(p.paid_on);
        let entry = Entry {
            seq,
            source: event.source.clone(),
            event_id: event.id.clone(),
            kind: EntryKind::Commission,
            manager_id: manager_id.clone(),
            period,
            amount: commission,
            adjustment_of,
            detail: EntryDetail::Commission {
                deal_id: deal_id.clone(),
                payment_id: p.payment_id.clone(),
                timing,
                working_days_late,
                grace_working_days,
                rate,
            },
        };
        let book = self.book_of(period, &manager_id);
        book.received += p.amount;
        book.margin_received += margin_share;
        book.book(&entry);
        if let Some(deal) = self.deals.get_mut(&p.deal_id) {
            deal.paid += p.amount;
        }
        self.payments.insert(
            p.payment_id.clone(),
            Payment { seq, deal_id, amount: p.amount, paid_on: p.paid_on, refunded: Decimal::ZERO, rate },
        );
        Step::applied(vec![entry], Some(WaitKey::Payment(p.payment_id.clone())))
    }

    fn apply_late_notice(&mut self, l: &PaymentLate) -> Step {
        let Some(deal) = self.deals.get_mut(&l.deal_id) else {
            return Step::Parked(WaitKey::Deal(l.deal_id.clone()));
        };
        if deal.cancelled.is_some() {
            return Step::Rejected(Rejection::new(
                Reason::DealCancelled,
                format!("deal {} is cancelled; a late notice applies only to a deal still being paid", l.deal_id),
            ));
        }
        if deal.paid >= deal.amount {
            return Step::Rejected(Rejection::new(
                Reason::DealFullyPaid,
                format!("deal {} is fully paid ({}); nothing can be overdue on it", l.deal_id, deal.amount),
            ));
        }
        deal.overdue = Some((l.as_of, l.days_overdue));
        Step::applied(vec![], None)
    }

    fn apply_cancellation(&mut self, seq: u64, event: &Event, c: &DealCancelled) -> Step {
        let fine_amount = self.scheme.fines.manager_fault;
        let Some(deal) = self.deals.get_mut(&c.deal_id) else {
            return Step::Parked(WaitKey::Deal(c.deal_id.clone()));
        };
        if let Some((on, _)) = deal.cancelled {
            return Step::Rejected(Rejection::new(
                Reason::DealAlreadyCancelled,
                format!(
                    "deal {} was already cancelled on {}; a deal is cancelled once",
                    c.deal_id,
                    crate::calendar::date_text(on)
                ),
            ));
        }
        deal.cancelled = Some((c.cancelled_on, c.fault));
        self.cancellations.insert(c.deal_id.clone(), seq);
        if c.fault != Fault::Manager {
            return Step::applied(vec![], None);
        }
        let manager_id = deal.manager_id.clone();
        let (period, adjustment_of) = self.booking_period(c.cancelled_on);
        let entry = Entry {
            seq,
            source: event.source.clone(),
            event_id: event.id.clone(),
            kind: EntryKind::Fine,
            manager_id: manager_id.clone(),
            period,
            amount: -fine_amount,
            adjustment_of,
            detail: EntryDetail::Fine { deal_id: c.deal_id.clone() },
        };
        self.book_of(period, &manager_id).book(&entry);
        Step::applied(vec![entry], None)
    }

    fn apply_refund(&mut self, seq: u64, event: &Event, r: &PaymentRefunded) -> Step {
        let Some(payment) = self.payments.get(&r.payment_id) else {
            return Step::Parked(WaitKey::Payment(r.payment_id.clone()));
        };
        if self.refunds.contains(&r.refund_id) {
            return Step::Rejected(Rejection::new(
                Reason::RefundIdUsed,
                format!("refund {} was already booked; refund ids must be unique", r.refund_id),
            ));
        }
        let left = payment.amount - payment.refunded;
        if r.amount > left {
            return Step::Rejected(Rejection::new(
                Reason::RefundExceedsPayment,
                format!(
                    "refund {} of {} is above the {} left of payment {} (paid {}, refunded so far {})",
                    r.refund_id, r.amount, left, r.payment_id, payment.amount, payment.refunded
                ),
            ));
        }
        let deal = match self.deals.get(&payment.deal_id) {
            Some(d) => d,
            None => unreachable!("a payment is accepted only on a known deal"),
        };
        let clawback = -exact(mul_div_round(&[deal.margin, r.amount, payment.rate], deal.amount, 2));
        let margin_share = exact(mul_div_round(&[deal.margin, r.amount], deal.amount, 2));
        let manager_id = deal.manager_id.clone();
        let deal_id = payment.deal_id.clone();
        let rate = payment.rate;
        let (period, adjustment_of) = self.booking_period(r.refunded_on);
        let entry = Entry {
            seq,
            source: event.source.clone(),
            event_id: event.id.clone(),
            kind: EntryKind::Clawback,
            manager_id: manager_id.clone(),
            period,
            amount: clawback,
            adjustment_of,
            detail: EntryDetail::Clawback {
                deal_id,
                payment_id: r.payment_id.clone(),
                refund_id: r.refund_id.clone(),
                refunded: r.amount,
                rate,
            },
        };
        let book = self.book_of(period, &manager_id);
        book.received -= r.amount;
        book.margin_received -= margin_share;
        book.book(&entry);
        if let Some(payment) = self.payments.get_mut(&r.payment_id) {
            payment.refunded += r.amount;
        }
        self.refunds.insert(r.refund_id.clone());
        self.refunds_of.entry(r.payment_id.clone()).or_default().push(seq);
        Step::applied(vec![entry], None)
    }

    fn apply_plan(&mut self, seq: u64, p: &PlanAssigned) -> Step {
        if let Some(closed_by) = self.closed.get(&p.period) {
            return Step::Rejected(Rejection::new(
                Reason::PeriodClosed,
                format!(
                    "period {} was closed (ledger seq {closed_by}); plans can be assigned only to open periods",
                    p.period
                ),
            ));
        }
        self.book_of(p.period, &p.manager_id).plan = Some(Plan { seq, target: p.target, bonus_base: p.bonus_base });
        Step::applied(vec![], None)
    }

    fn apply_close(&mut self, seq: u64, event: &Event, period: Period) -> Step {
        if let Some(closed_by) = self.closed.get(&period) {
            return Step::Rejected(Rejection::new(
                Reason::PeriodAlreadyClosed,
                format!("period {period} was already closed (ledger seq {closed_by}); a period is closed once"),
            ));
        }
        let scheme = self.scheme.clone();
        let mut entries = Vec::new();
        if let Some(managers) = self.books.get_mut(&period) {
            for (manager_id, book) in managers.iter_mut() {
                let Some(plan) = &book.plan else { continue };
                let figures = plan_figures(&scheme, book, plan);
                if figures.bonus > Decimal::ZERO {
                    let entry = Entry {
                        seq,
                        source: event.source.clone(),
                        event_id: event.id.clone(),
                        kind: EntryKind::PlanBonus,
                        manager_id: manager_id.clone(),
                        period,
                        amount: figures.bonus,
                        adjustment_of: None,
                        detail: EntryDetail::PlanBonus(figures.clone()),
                    };
                    book.book(&entry);
                    entries.push(entry);
                }
                book.plan_result = Some(figures);
            }
        }
        self.closed.insert(period, seq);
        if let Some(changes) = &mut self.changes.0 {
            changes.closed.insert(period);
        }
        Step::applied(entries, None)
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

/// Unwraps an exact computation whose inputs validation has bounded.
fn exact(value: Option<Decimal>) -> Decimal {
    match value {
        Some(v) => v,
        None => unreachable!("validated amounts and scheme parameters keep every product within i128"),
    }
}

enum Step {
    Applied { entries: Vec<Entry>, now_known: Option<WaitKey> },
    Parked(WaitKey),
    Rejected(Rejection),
}

impl Step {
    fn applied(entries: Vec<Entry>, now_known: Option<WaitKey>) -> Step {
        Step::Applied { entries, now_known }
    }
}

/// The `scheme.activated` record premia writes itself, as canonical JSON bytes (no clock).
pub fn scheme_activation_record(scheme: &Scheme, seq: u64) -> Vec<u8> {
    let event = serde_json::json!({
        "specversion": "1.0",
        "id": format!("scheme-{seq}"),
        "source": OWN_SOURCE,
        "type": EventType::SchemeActivated.as_str(),
        "data": scheme.to_json(),
    });
    serde_json::to_vec(&event).unwrap_or_default()
}
