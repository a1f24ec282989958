//! premia-core: the pure heart of the premia commission ledger.
//!
//! Architecture invariant: this crate does no IO, reads no clock, draws no random numbers and
//! has no async. Every function is a function of its inputs, so the same log always folds into
//! the same entries and statements. Storage, NATS, HTTP and the command line live elsewhere.

pub mod calendar;
pub mod compare;
pub mod event;
pub mod explain;
pub mod figures;
pub mod fold;
pub mod json;
pub mod money;
pub mod reject;
pub mod replay_index;
pub mod schema;
pub mod scheme;
pub mod seal;
mod stable_maps;
pub mod statement;

pub use calendar::Period;
pub use event::{Admission, Event, EventData, EventType};
pub use fold::{Admitted, Entry, EntryKind, Folded, LedgerState, Outcome};
pub use reject::{Reason, Rejection};
pub use scheme::Scheme;
pub use statement::Statement;
