//! The fold: `(state, event) -> (state, entries | parked | rejection)`, RULES.md sections 3-10.
//!
//! Everything here is deterministic: no clock, no IO, no randomness, and no iteration over a
//! hash map decides anything (ordered maps hold whatever is iterated).
//!
//! One job a file: `entry.rs` the entries booked, `records.rs` what the state keeps of deals,
//! payments, plans and parked events, `facts.rs` the deals and payments in dense vectors,
//! `names.rs` their interned ids, `stored_amount.rs` their amounts packed, `book.rs` a
//! manager's book in a period, `state.rs` the state and what may be read of it, `admission.rs` validation, duplicates and numbering,
//! `parking.rs` one fold step with its releases, `rules.rs` the rules applied to one event,
//! `plan.rs` plans, closes and plan figures, `outcome.rs` what became of each line and event.

mod admission;
mod book;
mod entry;
mod facts;
mod names;
mod outcome;
mod parking;
mod plan;
mod records;
mod rules;
mod state;
mod stored_amount;

pub use admission::{scheme_activation_record, OWN_SOURCE};
pub use book::ManagerBook;
pub use entry::{Entry, EntryDetail, EntryKind, PlanFigures, Timing};
pub use outcome::{Admitted, Folded, Outcome, OwnRecord, ReplayError};
pub use plan::plan_figures;
pub use records::{Deal, Parked, Payment, Plan, WaitKey};
pub use state::{Changes, LedgerState};
