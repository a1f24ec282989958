//! The ledger's derived state: what it holds, how it is created and restored after a snapshot
//! is loaded, and what callers may read of it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, Period};
use crate::event::{EventType, Id};
use crate::reject::Rejection;
use crate::scheme::Scheme;
use crate::stable_maps::{StableMap, StableSet};

use super::book::ManagerBook;
use super::facts::Facts;
use super::records::{Deal, Parked, Payment, WaitKey};

/// The whole derived state of the ledger: a pure function of the log folded so far.
///
/// Its hash maps (foldhash: several times faster than SipHash on short ids) have a fixed seed
/// and are written in key order (stable_maps.rs), so the same log gives the same snapshot bytes.
/// Nothing iterates them to decide an outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerState {
    pub(super) next_seq: u64,
    pub(super) scheme: Arc<Scheme>,
    /// The sequence number of the `scheme.activated` record in force; `None` before the first.
    pub(super) scheme_seq: Option<u64>,
    #[serde(skip, default = "default_calendar")]
    pub(super) calendar: Arc<Calendar>,
    /// identity (source, id) -> content fingerprint, for every logged event.
    pub(super) seen: StableMap<Identity, Fingerprint>,
    /// Every deal and every accepted payment.
    pub(super) facts: Facts,
    pub(super) refunds: StableSet<Id>,
    /// Payment id -> log seqs of the refunds applied to it, in the order applied. Only refunded
    /// payments are here (a few): explain finds a payment's clawbacks by these seqs, without an
    /// index of the log.
    pub(super) refunds_of: StableMap<Id, Vec<u64>>,
    /// Deal id -> log seq of the cancellation applied to it (the fine's seq, when the manager
    /// was at fault), for the same reason. Only cancelled deals are here.
    pub(super) cancellations: StableMap<Id, u64>,
    /// Closed periods and the sequence number of the event that closed each.
    pub(super) closed: BTreeMap<Period, u64>,
    pub(super) books: BTreeMap<Period, BTreeMap<Id, ManagerBook>>,
    pub(super) parked: BTreeMap<u64, Parked>,
    pub(super) waiting: StableMap<WaitKey, Vec<u64>>,
    pub(super) rejected_by_rule: BTreeMap<u64, (EventType, Rejection)>,
    /// Sequence numbers of the `scheme.activated` records, in order.
    pub(super) scheme_history: Vec<u64>,
    /// Sources and manager ids recur in every entry: one shared copy of each.
    #[serde(skip)]
    pub(super) names: Interner,
    /// What folds changed, while someone keeps a read model beside this state.
    #[serde(skip)]
    pub(super) changes: ChangeLog,
}

/// An event's identity, the 128-bit digest of its (source, id): two events share one only by
/// a collision of the digest, about 2^-128 a pair, so the seen set keeps all of it (a collision
/// would drop a new fact as a duplicate). Two words rather than a `u128`, whose 16-byte alignment
/// would pad every entry of the set from 24 bytes to 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(super) struct Identity(u64, u64);

/// The high 64 bits of an event's 128-bit content digest. It tells a redelivery (same identity,
/// same content: a duplicate) from a conflict (same identity, other content). Only events of
/// one identity are compared, so a conflicting copy passes as a duplicate only when its digest
/// agrees with the first copy's in these 64 bits: 2^-64 for each conflicting copy sent, which
/// are themselves rare (a publisher reusing an id). A full digest would cost 8 bytes more for
/// every event ever logged, for no risk that matters next to that one.
pub(super) type Fingerprint = u64;

impl Identity {
    pub(super) fn of(identity: u128) -> Identity {
        Identity((identity >> 64) as u64, identity as u64)
    }
}

pub(super) fn fingerprint(content: u128) -> Fingerprint {
    (content >> 64) as u64
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
pub(super) struct ChangeLog(Option<Changes>);

impl ChangeLog {
    /// Records a change, when changes are being recorded.
    pub(super) fn record(&mut self, change: impl FnOnce(&mut Changes)) {
        if let Some(changes) = &mut self.0 {
            change(changes);
        }
    }
}

impl PartialEq for ChangeLog {
    fn eq(&self, _: &ChangeLog) -> bool {
        true
    }
}

/// A cache of shared names. It changes no outcome, so two states are equal whatever it holds.
#[derive(Debug, Clone, Default)]
pub(super) struct Interner(StableSet<Id>);

impl Interner {
    /// The shared copy of `name`, which becomes the shared one when it is new.
    fn share(&mut self, name: &Id) -> Id {
        match self.0.get(name) {
            Some(shared) => shared.clone(),
            None => {
                self.0.insert(name.clone());
                name.clone()
            }
        }
    }
}

impl PartialEq for Interner {
    fn eq(&self, _: &Interner) -> bool {
        true
    }
}

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
            seen: StableMap::default(),
            facts: Facts::default(),
            refunds: StableSet::default(),
            refunds_of: StableMap::default(),
            cancellations: StableMap::default(),
            closed: BTreeMap::new(),
            books: BTreeMap::new(),
            parked: BTreeMap::new(),
            waiting: StableMap::default(),
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

    pub(super) fn intern(&mut self, name: &Id) -> Id {
        self.names.share(name)
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
        for manager in self.facts.managers_mut() {
            *manager = self.names.share(manager);
        }
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

    /// Every deal the ledger knows, with its id, in the order created.
    pub fn deals(&self) -> impl Iterator<Item = (&str, Deal<'_>)> {
        self.facts.deals()
    }

    /// Every accepted payment, with its id, in the order accepted.
    pub fn payments(&self) -> impl Iterator<Item = (&str, Payment<'_>)> {
        self.facts.payments()
    }

    pub fn is_closed(&self, period: Period) -> bool {
        self.closed.contains_key(&period)
    }

    pub fn closed_periods(&self) -> &BTreeMap<Period, u64> {
        &self.closed
    }

    pub fn deal(&self, id: &str) -> Option<Deal<'_>> {
        self.facts.deal_index(id).map(|d| self.facts.deal(d))
    }

    pub fn payment(&self, id: &str) -> Option<Payment<'_>> {
        self.facts.payment_index(id).map(|p| self.facts.payment(p))
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
}
