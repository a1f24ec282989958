//! What one batch changed for statements: recorded by the ledger when the batch is submitted,
//! handed to the statements' read model once the batch is durable.

use std::sync::Arc;

use premia_core::event::Id;
use premia_core::fold::{Entry, LedgerState, ManagerBook};
use premia_core::{Period, Scheme};

/// What a batch changed for statements, recorded by the ledger when the batch is submitted
/// (from the state it leaves) and published once it is durable.
#[derive(Debug, Clone)]
pub struct StatementUpdate {
    /// The ledger's `next_seq` after the batch: stored entry chunks before it are published.
    pub(crate) next_seq: u64,
    /// The scheme, when the batch activated one.
    pub(crate) scheme: Option<Arc<Scheme>>,
    /// Periods the batch closed, with the seq of the close.
    pub(crate) closed: Vec<(Period, u64)>,
    /// Every book the batch moved, every book of a period it closed, and after a scheme
    /// change every book: as the batch left them.
    pub(crate) books: Vec<(Period, Id, ManagerBook)>,
    /// The entries the batch booked, in booking order (those written beside its log chunk).
    pub(crate) entries: Vec<Entry>,
}

impl StatementUpdate {
    /// Takes the changes `state` recorded since the last update; `entries` are the batch's.
    pub(crate) fn take(state: &mut LedgerState, entries: &[Entry]) -> StatementUpdate {
        let changes = state.take_changes();
        let mut pairs = changes.books;
        for (period, managers) in state.books() {
            if changes.scheme || changes.closed.contains(period) {
                pairs.extend(managers.keys().map(|m| (*period, m.clone())));
            }
        }
        let books = pairs
            .into_iter()
            .filter_map(|(period, manager)| {
                let book = state.books().get(&period)?.get(&manager)?.clone();
                Some((period, manager, book))
            })
            .collect();
        StatementUpdate {
            next_seq: state.next_seq(),
            scheme: changes.scheme.then(|| state.scheme_shared()),
            closed: changes.closed.iter().filter_map(|p| Some((*p, *state.closed_periods().get(p)?))).collect(),
            books,
            entries: entries.to_vec(),
        }
    }
}
