//! A statement or the figures of one period, read from the period projection (`projection`)
//! without loading the fold state: the data dir is locked and its store checked against the
//! committed head exactly as [`Ledger::open`](crate::Ledger::open) does, then one section of
//! `DIR/periods.bin` is decoded. When the projection does not cover the end of the store (a
//! writer stopped without writing it, or was killed), is of another format or is damaged,
//! [`read_period`] says so with `None` and the caller opens the ledger, which folds as before.

use std::path::Path;

use premia_core::figures::Figures;
use premia_core::seal::seal;
use premia_core::statement::{EntryFacts, PeriodParts};
use premia_core::{Period, Scheme, Statement};

use crate::error::LedgerError;
use crate::integrity::{open_checked, Access};
use crate::lock::DirLock;
use crate::projection::{figures_of, open_projection, projection_path, FiguresCover, ProjectionRead, Section};
use crate::store::LedgerOptions;

/// What the projection holds for one period.
#[derive(Debug)]
pub struct PeriodRead {
    scheme: Scheme,
    period: Period,
    /// `None`: nothing is booked or closed in the period.
    section: Option<Section>,
    /// `None`: the figures must be read from the state.
    figures: Option<Figures>,
}

/// Reads `period` from the projection when it covers the end of the store. Errors are those of
/// opening the ledger (the data dir in use, a store that does not reach its committed head);
/// `Ok(None)` means: open the ledger instead.
pub fn read_period(
    dir: &Path,
    options: &LedgerOptions,
    command: &str,
    period: Period,
) -> Result<Option<PeriodRead>, LedgerError> {
    let lock = DirLock::acquire(dir, command)?;
    let mut projection = match open_projection(dir) {
        ProjectionRead::Read(projection) => projection,
        ProjectionRead::Unused(why) => {
            tracing::debug!("the period projection is not used ({why}); loading the state");
            return Ok(None);
        }
        ProjectionRead::Damaged(why) => return Ok(damaged(dir, &why)),
    };
    let checked = open_checked(dir, dir, options, Access::Read)?;
    let covers = projection.toc.covers;
    let end = (checked.end.last_seq, checked.end.chain_hash);
    drop(checked);
    drop(lock);
    if end != (covers.last_seq, covers.last_hash) {
        tracing::debug!(
            covers = covers.last_seq,
            store_ends = end.0,
            "the period projection is of another point of the log; loading the state"
        );
        return Ok(None);
    }
    let section = match projection.section(period) {
        Ok(section) => section,
        Err(why) => return Ok(damaged(dir, &why)),
    };
    let scheme = &projection.toc.scheme;
    let figures = match &projection.toc.figures {
        FiguresCover::Nothing => Some(figures_of(scheme, period, &[])),
        FiguresCover::Span { first, .. } if period < *first => Some(figures_of(scheme, period, &[])),
        FiguresCover::Span { last, beyond, .. } if period > *last => Some(figures_of(scheme, period, beyond)),
        FiguresCover::Span { .. } => match &section {
            Some(section) => Some(figures_of(scheme, period, &section.figures)),
            None => return Ok(damaged(dir, &format!("it has no section of {period}, which its figures span covers"))),
        },
        FiguresCover::FromState => None,
    };
    tracing::debug!(%period, "read from the period projection");
    Ok(Some(PeriodRead { scheme: projection.toc.scheme, period, section, figures }))
}

fn damaged(dir: &Path, why: &str) -> Option<PeriodRead> {
    tracing::warn!(
        "the period projection {} is damaged ({why}); loading the state instead. `premia verify` says whether anything else is",
        projection_path(dir).display()
    );
    None
}

impl PeriodRead {
    /// The statement of the period, for every manager or one, with its seal when closed: what
    /// [`Ledger::statement`](crate::Ledger::statement) gives.
    pub fn statement(&self, manager: Option<&str>) -> Statement {
        let Some(section) = &self.section else {
            let parts = PeriodParts { scheme: &self.scheme, period: self.period, closed: false, books: None };
            return parts.statement(manager, &[], |_, _| EntryFacts::default());
        };
        let parts = PeriodParts {
            scheme: &self.scheme,
            period: self.period,
            closed: section.closed.is_some(),
            books: Some(&section.books),
        };
        let mut statement = parts.statement(manager, &section.entries, |i, _| section.facts[i].clone());
        statement.seal = section.closed.map(|(seq, hash)| seal(self.period, &section.entries, seq, &hash).view());
        statement
    }

    /// The period's figures, as `LedgerState::figures` gives them, unless they must be read
    /// from the state.
    pub fn figures(&self) -> Option<Figures> {
        self.figures.clone()
    }
}
