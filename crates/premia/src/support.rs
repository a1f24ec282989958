//! Helpers the commands share: opening the ledger, reading a period, the progress bar, and
//! printing an ingest's counts.

use std::io::{self, IsTerminal, Write};
use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use premia_core::Period;
use premia_ledger::audit_log::{AuditLog, IndexHead};
use premia_ledger::period_read::PeriodRead;
use premia_ledger::{Counts, Ledger, LedgerOptions};

use crate::cli::Format;

pub(crate) fn open(data_dir: &Path, command: &str) -> anyhow::Result<Ledger> {
    Ledger::open(data_dir, &LedgerOptions::default(), command).map_err(anyhow::Error::from)
}

/// One period from the period projection, when it covers the ledger; `None`: [`open`] it.
pub(crate) fn read_period(data_dir: &Path, period: Period, command: &str) -> anyhow::Result<Option<PeriodRead>> {
    premia_ledger::period_read::read_period(data_dir, &LedgerOptions::default(), command, period)
        .map_err(anyhow::Error::from)
}

/// Opens the log for a replay and brings the replay index up to date, with a progress bar on a
/// terminal.
pub(crate) fn open_indexed(data_dir: &Path, command: &str) -> anyhow::Result<(AuditLog, IndexHead)> {
    let log = AuditLog::open(data_dir, command)?;
    let bar = progress_bar(None, "indexing the log for replay");
    let head = log.index(|done, _| bar.set_position(done))?;
    bar.finish_and_clear();
    Ok((log, head))
}

pub(crate) fn parse_period(text: &str) -> anyhow::Result<Period> {
    Period::parse(text)
        .with_context(|| format!("{text:?} is not a period; write a calendar month as YYYY-MM, such as 2026-11"))
}

/// A progress bar on standard error, drawn only when it is a terminal.
pub(crate) fn progress_bar(len: Option<u64>, what: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{msg} {spinner} {pos}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.set_message(what.to_string());
    bar
}

/// The four counts, a line each, as `ingest` and `serve` print them.
pub(crate) fn counts_text(counts: &Counts, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "applied     {:>10}", counts.applied)?;
    writeln!(out, "duplicates  {:>10}", counts.duplicates)?;
    writeln!(out, "rejected    {:>10}", counts.rejected)?;
    writeln!(out, "parked      {:>10}", counts.parked)
}

/// What an ingest did: one JSON object, or the counts with a hint where to look further.
pub(crate) fn print_counts(counts: &Counts, format: Format) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(counts)?)?,
        Format::Text => {
            counts_text(counts, &mut out)?;
            if counts.rejected > 0 {
                writeln!(out, "Rejected lines are kept with their reason: `premia rejected`.")?;
            }
            if counts.parked > 0 {
                writeln!(out, "Parked events wait for the deal or payment they refer to: `premia pending`.")?;
            }
        }
    }
    Ok(())
}
