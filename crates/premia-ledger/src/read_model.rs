//! The statements' read model: what the HTTP API serves statements from without going through
//! the serving loop that owns the [`Ledger`].
//!
//! It holds, as of the last durable batch:
//! - a copy of every (period, manager) book (totals, plan), and the scheme and closes in force;
//! - for at most `capacity` periods, every entry of the period with the figures its explanation
//!   reads from its deal and payment ([`EntryFacts`], which never change once booked), so a
//!   statement is rendered here, away from the fold, with premia-core's own functions;
//! - the seals of closed periods, once computed (a closed period never changes);
//! - the rendered JSON of what was read, until a batch changes what it shows.
//!
//! Only the owner of the ledger writes, one call at a time (the serving loop, between its
//! steps): [`publish`](ReadModel::publish) applies, once a batch is flushed, the update the
//! ledger recorded when that batch was submitted ([`Ledger::track_statements`]): the books it
//! moved, the entries it booked, its closes and scheme; [`load`](ReadModel::load) decodes a
//! period's stored entries, of the published batches only, when a reader needs them. Readers
//! take the lock only to clone a few `Arc`s, and render outside it. So a reader never sees a
//! batch that is not durable, never waits for a fold or a flush, and sees each batch whole.
//!
//! Memory: the books (a few hundred bytes per (period, manager)), the entries of `capacity`
//! periods (about 350 bytes each), and what was rendered for those periods. Loading a period
//! beyond `capacity` drops the entries of the one read least recently.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use premia_core::event::Id;
use premia_core::fold::{Entry, ManagerBook};
use premia_core::seal::{SealHasher, SealView};
use premia_core::statement::{entry_view, manager_statement, EntryFacts};
use premia_core::{Period, Scheme, Statement};

use crate::error::LedgerError;
use crate::ledger::Ledger;
use crate::statement_update::StatementUpdate;

/// The answer of a read.
pub enum Read<T> {
    Ready(T),
    /// The period's entries (or its seal) are not held: [`ReadModel::load`] them first.
    NotLoaded,
    /// The ledger has no book for this manager in any period.
    UnknownManager,
    /// Nothing was published yet (the serving loop has not started).
    NotReady,
}

pub struct ReadModel {
    inner: RwLock<Inner>,
    /// How many periods' entries are held at most.
    capacity: usize,
    /// Ticks for least-recently-read eviction.
    clock: AtomicU64,
    /// Times a published batch's entries disagreed with its books (a bug): the period was
    /// dropped, to be loaded again from the store.
    repairs: AtomicU64,
}

#[derive(Default)]
struct Inner {
    /// `None` until [`ReadModel::reset`].
    scheme: Option<Arc<Scheme>>,
    /// The ledger's `next_seq` after the last published batch.
    next_seq: u64,
    /// Every period with a book or a close.
    periods: BTreeMap<Period, PeriodModel>,
    /// Managers with a book in some period (others are answered 404).
    known: HashSet<Id>,
}

struct PeriodModel {
    /// The seq of the close, when closed.
    closed: Option<u64>,
    /// Known once the entries of the closed period were loaded; never changes after.
    seal: Option<SealView>,
    /// Ordered as the state's books, so the whole-period statement lists managers alike.
    managers: BTreeMap<Id, Arc<Pair>>,
    /// Whether every manager's entries are held.
    loaded: bool,
    last_read: AtomicU64,
    /// The whole-period statement, rendered once per change of the period.
    whole: Arc<OnceLock<Bytes>>,
}

impl PeriodModel {
    fn new() -> PeriodModel {
        PeriodModel {
            closed: None,
            seal: None,
            managers: BTreeMap::new(),
            loaded: false,
            last_read: AtomicU64::new(0),
            whole: Arc::new(OnceLock::new()),
        }
    }

    /// Drops the entries held (and everything rendered from them).
    fn unload(&mut self) {
        self.loaded = false;
        self.whole = Arc::new(OnceLock::new());
        for pair in self.managers.values_mut() {
            *pair = Arc::new(Pair { book: pair.book.clone(), entries: None, rendered: OnceLock::new() });
        }
    }
}

/// One manager in one period: immutable; a batch that changes it replaces it.
struct Pair {
    book: ManagerBook,
    /// The manager's entries in the period, when the period is loaded.
    entries: Option<Held>,
    /// This manager's statement of the period, rendered on first read.
    rendered: OnceLock<Bytes>,
}

/// A manager's entries in a period: the first `len` of a list that only grows. Every version
/// of a pair shares the list, so a batch appends its entries instead of copying the others.
#[derive(Clone)]
struct Held {
    list: Arc<RwLock<Vec<Arc<HeldEntry>>>>,
    len: usize,
}

impl Held {
    fn new(entries: Vec<Arc<HeldEntry>>) -> Held {
        Held { len: entries.len(), list: Arc::new(RwLock::new(entries)) }
    }

    fn append(&self, more: Vec<Arc<HeldEntry>>) -> Held {
        if more.is_empty() {
            return self.clone();
        }
        let mut list = self.list.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Only the newest version is ever appended to, so nothing lies beyond its prefix.
        list.truncate(self.len);
        list.extend(more);
        Held { list: self.list.clone(), len: list.len() }
    }

    fn entries(&self) -> Vec<Arc<HeldEntry>> {
        let list = self.list.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        list[..self.len.min(list.len())].to_vec()
    }
}

struct HeldEntry {
    entry: Entry,
    facts: EntryFacts,
}

/// A statement ready to render: what it needs, taken under the lock.
pub struct Prepared {
    scheme: Arc<Scheme>,
    period: Period,
    closed: bool,
    seal: Option<SealView>,
    what: What,
}

enum What {
    /// One manager: their pair, or none when they have no book in the period.
    Manager(Id, Option<Arc<Pair>>),
    /// Every manager of the period.
    Whole(Vec<(Id, Arc<Pair>)>, Arc<OnceLock<Bytes>>),
}

impl Prepared {
    /// The statement, as [`Ledger::statement`] gives it after the same batch.
    pub fn statement(&self) -> Statement {
        let figures = |manager: &Id, pair: &Pair| {
            let views = match &pair.entries {
                Some(held) => held.entries().iter().map(|h| entry_view(&h.entry, &h.facts)).collect(),
                None => Vec::new(),
            };
            manager_statement(&self.scheme, manager, &pair.book, self.closed, views)
        };
        let managers = match &self.what {
            What::Manager(manager, Some(pair)) if pair.book.is_visible() => vec![figures(manager, pair)],
            What::Manager(..) => Vec::new(),
            What::Whole(pairs, _) => {
                pairs.iter().filter(|(_, pair)| pair.book.is_visible()).map(|(m, pair)| figures(m, pair)).collect()
            }
        };
        let mut statement = Statement::frame(&self.scheme, self.period, self.closed, managers);
        statement.seal = self.seal.clone();
        statement
    }

    /// The JSON, when it was rendered already.
    pub fn cached(&self) -> Option<Bytes> {
        self.cell().and_then(|cell| cell.get().cloned())
    }

    /// The statement as [`statement_json`] writes it, rendered once per change.
    pub fn json(&self) -> Result<Bytes, serde_json::Error> {
        if let Some(bytes) = self.cached() {
            return Ok(bytes);
        }
        let bytes = Bytes::from(statement_json(&self.statement())?);
        if let Some(cell) = self.cell() {
            // Two readers may render at once; they render the same bytes.
            let _ = cell.set(bytes.clone());
        }
        Ok(bytes)
    }

    fn cell(&self) -> Option<&OnceLock<Bytes>> {
        match &self.what {
            What::Manager(_, Some(pair)) => Some(&pair.rendered),
            // Without a book there is little to render, and nothing to keep it in.
            What::Manager(_, None) => None,
            What::Whole(_, cell) => Some(cell),
        }
    }
}

/// A statement as the HTTP API answers it: compact JSON of its `serde_json::Value`, which
/// orders every object's keys.
pub fn statement_json(statement: &Statement) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&serde_json::to_value(statement)?)
}

impl ReadModel {
    /// An empty model holding the entries of at most `capacity` periods (at least one).
    pub fn new(capacity: usize) -> ReadModel {
        ReadModel {
            inner: RwLock::new(Inner::default()),
            capacity: capacity.max(1),
            clock: AtomicU64::new(0),
            repairs: AtomicU64::new(0),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts over from the ledger's state, which must be wholly durable (nothing offered
    /// since the last commit): every book, close and the scheme; no entries.
    pub fn reset(&self, ledger: &Ledger) {
        debug_assert_eq!(ledger.pending_writes(), 0, "the read model starts from a committed state");
        let state = ledger.state();
        let mut inner = Inner {
            scheme: Some(state.scheme_shared()),
            next_seq: state.next_seq(),
            periods: BTreeMap::new(),
            known: HashSet::new(),
        };
        for (period, managers) in state.books() {
            let model = inner.periods.entry(*period).or_insert_with(PeriodModel::new);
            for (manager, book) in managers {
                inner.known.insert(manager.clone());
                model.managers.insert(
                    manager.clone(),
                    Arc::new(Pair { book: book.clone(), entries: None, rendered: OnceLock::new() }),
                );
            }
        }
        for (period, seq) in state.closed_periods() {
            inner.periods.entry(*period).or_insert_with(PeriodModel::new).closed = Some(*seq);
        }
        *self.write() = inner;
    }

    /// Applies a durable batch's update. `ledger` is the one that recorded it (for the facts
    /// of the entries it booked, which never change).
    pub fn publish(&self, ledger: &Ledger, update: StatementUpdate) {
        let state = ledger.state();
        let mut guard = self.write();
        let inner = &mut *guard;
        if let Some(scheme) = update.scheme {
            inner.scheme = Some(scheme);
            // The currency and plan figures of every statement: every rendering is stale.
            for model in inner.periods.values_mut() {
                model.whole = Arc::new(OnceLock::new());
            }
        }
        for (period, seq) in update.closed {
            let model = inner.periods.entry(period).or_insert_with(PeriodModel::new);
            model.closed = Some(seq);
            // Loaded again with its seal on the next read (a close happens once a month).
            model.unload();
        }
        let mut booked: BTreeMap<(Period, Id), Vec<Arc<HeldEntry>>> = BTreeMap::new();
        for entry in update.entries {
            if inner.periods.get(&entry.period).is_some_and(|m| m.loaded) {
                let facts = state.entry_facts(&entry);
                booked
                    .entry((entry.period, entry.manager_id.clone()))
                    .or_default()
                    .push(Arc::new(HeldEntry { entry, facts }));
            }
        }
        let mut damaged = Vec::new();
        for (period, manager, book) in update.books {
            inner.known.insert(manager.clone());
            let model = inner.periods.entry(period).or_insert_with(PeriodModel::new);
            model.whole = Arc::new(OnceLock::new());
            let entries = if model.loaded {
                let before = model.managers.get(&manager).and_then(|p| p.entries.clone());
                let more = booked.remove(&(period, manager.clone())).unwrap_or_default();
                let held = match before {
                    Some(held) => held.append(more),
                    None => Held::new(more),
                };
                if held.len as u64 != book.entry_count {
                    damaged.push(period);
                }
                Some(held)
            } else {
                None
            };
            model.managers.insert(manager, Arc::new(Pair { book, entries, rendered: OnceLock::new() }));
        }
        // Entries for a book the update does not carry cannot happen either.
        damaged.extend(booked.keys().map(|(period, _)| *period));
        for period in damaged {
            tracing::error!(%period, "the read model's entries disagree with the books; loading the period again");
            self.repairs.fetch_add(1, Ordering::Relaxed);
            if let Some(model) = inner.periods.get_mut(&period) {
                model.unload();
            }
        }
        inner.next_seq = update.next_seq;
    }

    /// Loads the entries of `period` (and its seal, when closed) from the stored entry chunks
    /// of the published batches, unless they are held already. Must be called by the owner of
    /// `ledger`, between publishes (the serving loop runs it as a query).
    pub fn load(&self, ledger: &Ledger, period: Period) -> Result<(), LedgerError> {
        let (next_seq, closed) = {
            let inner = self.read();
            match inner.periods.get(&period) {
                // Nothing booked or closed there: nothing to load.
                None => return Ok(()),
                Some(model) if model.loaded && (model.closed.is_none() || model.seal.is_some()) => return Ok(()),
                Some(model) => (inner.next_seq, model.closed),
            }
        };
        let (by_manager, seal) = read_stored_period(ledger, period, next_seq, closed)?;
        let mut guard = self.write();
        let inner = &mut *guard;
        if inner.next_seq != next_seq {
            return Err(LedgerError::Decode(format!(
                "a batch was published while the entries of {period} were loaded; load them from the serving loop"
            )));
        }
        let Some(model) = inner.periods.get_mut(&period) else { return Ok(()) };
        model.managers = held_pairs(period, &model.managers, by_manager)?;
        model.loaded = true;
        model.seal = seal;
        model.whole = Arc::new(OnceLock::new());
        model.last_read.store(self.clock.fetch_add(1, Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.unload_beyond_capacity(inner, period);
        Ok(())
    }

    /// Beyond capacity, the periods read least recently (other than `kept`) let go of their
    /// entries.
    fn unload_beyond_capacity(&self, inner: &mut Inner, kept: Period) {
        loop {
            let loaded: Vec<(u64, Period)> = inner
                .periods
                .iter()
                .filter(|(p, m)| m.loaded && **p != kept)
                .map(|(p, m)| (m.last_read.load(Ordering::Relaxed), *p))
                .collect();
            if loaded.len() < self.capacity {
                break;
            }
            let Some(&(_, oldest)) = loaded.iter().min() else { break };
            if let Some(model) = inner.periods.get_mut(&oldest) {
                model.unload();
            }
        }
    }

    /// One manager's statement of `period` (`manager` given), or the whole period's.
    pub fn prepare(&self, period: Period, manager: Option<&str>) -> Read<Prepared> {
        let inner = self.read();
        let Some(scheme) = inner.scheme.clone() else { return Read::NotReady };
        let manager = match manager {
            Some(m) => match inner.known.get(m) {
                Some(id) => Some(id.clone()),
                None => return Read::UnknownManager,
            },
            None => None,
        };
        let Some(model) = inner.periods.get(&period) else {
            // Neither booked nor closed: an open period with nobody in it.
            let what = match manager {
                Some(m) => What::Manager(m, None),
                None => What::Whole(Vec::new(), Arc::new(OnceLock::new())),
            };
            return Read::Ready(Prepared { scheme, period, closed: false, seal: None, what });
        };
        if model.closed.is_some() && model.seal.is_none() {
            return Read::NotLoaded;
        }
        let what = match manager {
            Some(m) => {
                let pair = model.managers.get(&m).cloned();
                if pair.as_ref().is_some_and(|p| p.book.entry_count > 0 && p.entries.is_none()) {
                    return Read::NotLoaded;
                }
                What::Manager(m, pair)
            }
            None => {
                if !model.loaded && model.managers.values().any(|p| p.book.entry_count > 0) {
                    return Read::NotLoaded;
                }
                What::Whole(model.managers.iter().map(|(m, p)| (m.clone(), p.clone())).collect(), model.whole.clone())
            }
        };
        model.last_read.store(self.clock.fetch_add(1, Ordering::Relaxed) + 1, Ordering::Relaxed);
        Read::Ready(Prepared { scheme, period, closed: model.closed.is_some(), seal: model.seal.clone(), what })
    }

    /// The periods whose entries are held, for tests and metrics.
    pub fn loaded_periods(&self) -> Vec<Period> {
        self.read().periods.iter().filter(|(_, m)| m.loaded).map(|(p, _)| *p).collect()
    }

    /// How many times published entries disagreed with the books (never, unless a bug).
    pub fn repairs(&self) -> u64 {
        self.repairs.load(Ordering::Relaxed)
    }
}

/// A period's entries read from the store, by manager, in booking order.
type EntriesByManager = BTreeMap<Id, Vec<Arc<HeldEntry>>>;

/// The entries of `period` stored by the batches before `next_seq`, by manager, in one pass in
/// booking order, and the period's seal when it is closed (at `closed`).
fn read_stored_period(
    ledger: &Ledger,
    period: Period,
    next_seq: u64,
    closed: Option<u64>,
) -> Result<(EntriesByManager, Option<SealView>), LedgerError> {
    let mut sealing = closed.map(|_| SealHasher::new(period));
    let state = ledger.state();
    let no_books = BTreeMap::new();
    let books = state.books().get(&period).unwrap_or(&no_books);
    // Decoded ids are copies of their own; the manager's and the source's are shared again.
    let mut sources: HashSet<Id> = HashSet::new();
    let mut by_manager = EntriesByManager::new();
    ledger.for_each_stored_entry_before(period, next_seq, |mut entry| {
        if let Some(hasher) = &mut sealing {
            hasher.add(&entry);
        }
        if let Some((manager, _)) = books.get_key_value(&entry.manager_id) {
            entry.manager_id = manager.clone();
        }
        match sources.get(&entry.source) {
            Some(source) => entry.source = source.clone(),
            None => {
                sources.insert(entry.source.clone());
            }
        }
        let facts = state.entry_facts(&entry);
        by_manager.entry(entry.manager_id.clone()).or_default().push(Arc::new(HeldEntry { entry, facts }));
    })?;
    let seal = match (sealing, closed) {
        (Some(hasher), Some(closed_seq)) => Some(hasher.finish(closed_seq, &ledger.stored_hash(closed_seq)?).view()),
        _ => None,
    };
    Ok((by_manager, seal))
}

/// Every manager's pair of `period` with its entries held, checked against its book's count.
fn held_pairs(
    period: Period,
    managers: &BTreeMap<Id, Arc<Pair>>,
    mut by_manager: EntriesByManager,
) -> Result<BTreeMap<Id, Arc<Pair>>, LedgerError> {
    let mismatch = |manager: &str, held: usize, booked: u64| {
        LedgerError::Decode(format!(
            "the stored entries of {period} hold {held} for manager {manager}, whose book counts {booked}; run `premia verify`"
        ))
    };
    let mut pairs = BTreeMap::new();
    for (manager, pair) in managers {
        let held = by_manager.remove(manager).unwrap_or_default();
        if held.len() as u64 != pair.book.entry_count {
            return Err(mismatch(manager, held.len(), pair.book.entry_count));
        }
        pairs.insert(
            manager.clone(),
            Arc::new(Pair { book: pair.book.clone(), entries: Some(Held::new(held)), rendered: OnceLock::new() }),
        );
    }
    if let Some((manager, held)) = by_manager.into_iter().next() {
        return Err(mismatch(&manager, held.len(), 0));
    }
    Ok(pairs)
}
