//! `premia replay`: statements folded again from the raw log, as of a moment, as a diff
//! between two moments, or under a what-if scheme.
//!
//! Statements are built by the same core function (`LedgerState::statement`) and printed by the
//! same renderers as `premia statement`, so the two cannot drift apart in shape.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use premia_core::compare::{self, ManagerChange, ManagerComparison};
use premia_core::fold::Entry;
use premia_core::money::{fixed_text, money_grouped};
use premia_core::statement::EntryView;
use premia_core::{Period, Scheme, Statement};
use premia_ledger::audit_log::{period_selection, AuditLog, IndexHead, Replayed, Selection};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::json;

use crate::cli::{ReplayArgs, StatementFormat};
use crate::render;
use crate::support::{open_indexed, parse_period, progress_bar};

fn parse_day(text: &str, flag: &str) -> anyhow::Result<time::Date> {
    premia_core::calendar::parse_date(text)
        .with_context(|| format!("{flag} {text:?} is not a date; write YYYY-MM-DD, such as 2026-11-01"))
}

/// The periods asked for: one, or every month the dates from..=to overlap.
fn periods_of(args: &ReplayArgs) -> anyhow::Result<Vec<Period>> {
    if let Some(p) = &args.period {
        return Ok(vec![parse_period(p)?]);
    }
    let (Some(from), Some(to)) = (&args.from, &args.to) else {
        bail!("say which period to replay: --period YYYY-MM, or --from YYYY-MM-DD --to YYYY-MM-DD");
    };
    let (from, to) = (Period::of(parse_day(from, "--from")?), Period::of(parse_day(to, "--to")?));
    if from > to {
        bail!("--from is after --to; give the earlier date first");
    }
    let mut periods = vec![from];
    while let Some(&last) = periods.last() {
        if last >= to || periods.len() > 1200 {
            break;
        }
        periods.push(last.next());
    }
    Ok(periods)
}

/// A moment: a log seq, or an RFC 3339 time (the last record received by then).
fn moment(log: &AuditLog, text: &str, end: u64, flag: &str) -> anyhow::Result<u64> {
    if let Ok(seq) = text.parse::<u64>() {
        if seq > end {
            bail!("{flag} {seq} is past the end of the log (its last record is seq {end}); give a seq up to {end}, or leave {flag} out for the whole log");
        }
        return Ok(seq);
    }
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).with_context(|| {
        format!("{flag} {text:?} is neither a log seq nor an RFC 3339 time such as 2026-12-05T00:00:00Z")
    })?;
    let ms = i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).unwrap_or(i64::MAX);
    Ok(log.seq_received_by(ms)?)
}

fn load_scheme(file: &Path) -> anyhow::Result<Scheme> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read {}; check the path and that it is readable", file.display()))?;
    Scheme::from_toml(&text).map_err(|p| {
        anyhow::anyhow!(
            "{} is not a valid scheme:\n  - {}\n`premia scheme show --default` prints one to start from",
            file.display(),
            p.0.join("\n  - ")
        )
    })
}

struct PeriodReplay {
    statement: Statement,
    replayed: Replayed,
}

struct Replayer<'a> {
    log: &'a AuditLog,
    head: &'a IndexHead,
    manager: Option<&'a str>,
    full: bool,
    folded: u64,
}

impl Replayer<'_> {
    /// Folds what `period` depends on up to `until` (under `what_if` when given) and builds its
    /// statement. Entries of other periods dated in this one are kept too (for diffs).
    fn period(&mut self, period: Period, until: u64, what_if: Option<&Scheme>) -> anyhow::Result<PeriodReplay> {
        let keep = |e: &Entry| e.period == period || e.adjustment_of == Some(period);
        let replayed = if self.full {
            let bar = progress_bar(None, "replaying the whole log");
            let r = self.log.fold(Selection::All { until }, &self.head.schemes, what_if, keep, |n| bar.set_position(n));
            bar.finish_and_clear();
            r
        } else {
            let records = self.log.period_records(self.head, period)?;
            let seqs = period_selection(self.head, &records, self.manager, until);
            let bar = progress_bar(None, &format!("replaying {period}"));
            let r = self.log.fold(Selection::Seqs(&seqs), &self.head.schemes, what_if, keep, |n| bar.set_position(n));
            bar.finish_and_clear();
            r
        };
        let replayed = match what_if {
            Some(scheme) => replayed.with_context(|| {
                format!("the log cannot be folded under the what-if scheme {:?}; a scheme with another currency or stricter limits refuses the log's events", scheme.name)
            })?,
            None => replayed?,
        };
        self.folded += replayed.records_folded;
        let mut statement = replayed.state.statement(period, self.manager, &replayed.entries_of(period));
        // A closed period's seal, as `premia statement` prints it (none under a what-if scheme:
        // its entries are not the ledger's).
        if what_if.is_none() {
            statement.seal = self.seal(period, until, &replayed)?.map(|s| s.view());
        }
        Ok(PeriodReplay { statement, replayed })
    }

    /// The seal digests every entry of the period, so a replay restricted to one manager folds
    /// the period again for all of them first.
    fn seal(
        &mut self,
        period: Period,
        until: u64,
        replayed: &Replayed,
    ) -> anyhow::Result<Option<premia_core::seal::Seal>> {
        let Some(&closed_seq) = replayed.state.closed_periods().get(&period) else { return Ok(None) };
        let Some(record) = self.log.record(closed_seq)? else {
            bail!("log record {closed_seq}, which closed {period}, is missing; run `premia verify`")
        };
        let entries = if self.manager.is_some() && !self.full {
            let records = self.log.period_records(self.head, period)?;
            let seqs = period_selection(self.head, &records, None, until);
            let all = self.log.fold(
                Selection::Seqs(&seqs),
                &self.head.schemes,
                None,
                |e: &Entry| e.period == period,
                |_| {},
            )?;
            self.folded += all.records_folded;
            all.entries_of(period)
        } else {
            replayed.entries_of(period)
        };
        Ok(Some(premia_core::seal::seal(period, &entries, closed_seq, &record.hash)))
    }
}

pub fn replay(data_dir: &Path, args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let periods = periods_of(args)?;
    let what_if = args.scheme.as_deref().map(load_scheme).transpose()?;
    let started = Instant::now();
    let (log, head) = open_indexed(data_dir, "replay")?;
    let index_ms = started.elapsed().as_millis();
    let end = head.last_seq();
    let until = match &args.as_of {
        Some(text) => moment(&log, text, end, "--as-of")?,
        None => end,
    };
    let mut replayer =
        Replayer { log: &log, head: &head, manager: args.manager.as_deref(), full: args.full, folded: 0 };
    let fold_started = Instant::now();
    let mut out = io::stdout().lock();
    match (&args.diff_as_of, &what_if) {
        (Some(text), _) => {
            let from = moment(&log, text, end, "--diff-as-of")?;
            if from > until {
                bail!("--diff-as-of {from} is after the moment compared with ({until}); give the earlier moment to --diff-as-of");
            }
            replay_diffs(&mut replayer, args, &periods, from, until, &mut out)?;
        }
        (None, Some(scheme)) => replay_what_if(&mut replayer, args, &periods, scheme, until, &mut out)?,
        (None, None) => {
            let mut statements = Vec::new();
            for &period in &periods {
                let PeriodReplay { statement, replayed } = replayer.period(period, until, None)?;
                replayed.drop_aside();
                statements.push(statement);
            }
            if args.format == StatementFormat::Text {
                let moment = if until == end { "the end of the log".to_string() } else { "--as-of".to_string() };
                writeln!(out, "Replayed from the raw log up to seq {until} ({moment}).\n")?;
            }
            write_statements(&mut out, &statements, args.format, args.period.is_some())?;
        }
    }
    if args.stats {
        eprintln!(
            "{}",
            json!({"log_records": end, "until_seq": until, "records_folded": replayer.folded,
                   "index_ms": index_ms as u64, "fold_ms": fold_started.elapsed().as_millis() as u64,
                   "full": args.full})
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `--diff-as-of`: what changed in each period between the moments `from` and `until`.
fn replay_diffs(
    replayer: &mut Replayer<'_>,
    args: &ReplayArgs,
    periods: &[Period],
    from: u64,
    until: u64,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut diffs = Vec::new();
    for &period in periods {
        let before = replayer.period(period, from, None)?;
        let after = replayer.period(period, until, None)?;
        diffs.push(period_diff(period, from, until, &before, &after, args.manager.as_deref()));
        before.replayed.drop_aside();
        after.replayed.drop_aside();
    }
    write_text_or_json(out, &diffs, args, "--diff-as-of", diff_text)
}

/// `--scheme`: the periods' statements under a what-if scheme, or (`--compare`) side by side
/// with the log's.
fn replay_what_if(
    replayer: &mut Replayer<'_>,
    args: &ReplayArgs,
    periods: &[Period],
    scheme: &Scheme,
    until: u64,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut comparisons = Vec::new();
    let mut statements = Vec::new();
    for &period in periods {
        let PeriodReplay { statement: what, replayed } = replayer.period(period, until, Some(scheme))?;
        replayed.drop_aside();
        if args.compare {
            let PeriodReplay { statement: actual, replayed } = replayer.period(period, until, None)?;
            replayed.drop_aside();
            comparisons.push(Comparison {
                period: what.period.clone(),
                scheme: scheme.name.clone(),
                as_of_seq: until,
                managers: compare::compare(&actual, &what),
                changes: compare::statement_changes(&actual, &what),
            });
        }
        statements.push(what);
    }
    if args.compare {
        return write_text_or_json(out, &comparisons, args, "--compare", comparison_text);
    }
    if args.format == StatementFormat::Text {
        writeln!(
            out,
            "What-if: the log folded under scheme {:?} in place of the schemes it activated; nothing was written.\n",
            scheme.name
        )?;
    }
    write_statements(out, &statements, args.format, args.period.is_some())
}

/// Diffs and comparisons: pretty JSON, or `text` for each; they have no CSV form (`flag` says
/// which was asked for).
fn write_text_or_json<T: Serialize, W: Write>(
    out: &mut W,
    items: &[T],
    args: &ReplayArgs,
    flag: &str,
    text: impl Fn(&T, &mut W) -> io::Result<()>,
) -> anyhow::Result<()> {
    match args.format {
        StatementFormat::Json => write_json(out, items, args.period.is_some())?,
        StatementFormat::Text => {
            for item in items {
                text(item, out)?;
            }
        }
        StatementFormat::Csv => bail!("{flag} prints text or json; use --format text or --format json"),
    }
    Ok(())
}

/// One value as pretty JSON (as `premia statement` prints it), or several as a JSON array.
fn write_json<T: Serialize>(out: &mut impl Write, items: &[T], single: bool) -> anyhow::Result<()> {
    match (single, items) {
        (true, [one]) => writeln!(out, "{}", serde_json::to_string_pretty(one)?)?,
        _ => writeln!(out, "{}", serde_json::to_string_pretty(items)?)?,
    }
    Ok(())
}

fn write_statements(
    out: &mut impl Write,
    statements: &[Statement],
    format: StatementFormat,
    single: bool,
) -> anyhow::Result<()> {
    match format {
        StatementFormat::Json => write_json(out, statements, single)?,
        StatementFormat::Text => {
            for (i, s) in statements.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                render::statement_text(s, out)?;
            }
        }
        StatementFormat::Csv => {
            for (i, s) in statements.iter().enumerate() {
                let mut buffer = Vec::new();
                render::statement_csv(s, &mut buffer)?;
                // One header for all periods.
                let header = buffer.iter().position(|&b| b == b'\n').expect("a statement's CSV starts with its header");
                out.write_all(&buffer[if i == 0 { 0 } else { header + 1 }..])?;
            }
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct Booked {
    period: String,
    manager_id: String,
    #[serde(flatten)]
    entry: EntryView,
}

#[derive(Serialize)]
struct PeriodDiff {
    period: String,
    from_seq: u64,
    to_seq: u64,
    status_before: &'static str,
    status_after: &'static str,
    managers: Vec<ManagerChange>,
    /// Facts dated in this period that were booked, after `from_seq`, in a later period
    /// because this one was closed (prior-period adjustments).
    booked_elsewhere: Vec<Booked>,
}

fn period_diff(
    period: Period,
    from: u64,
    to: u64,
    before: &PeriodReplay,
    after: &PeriodReplay,
    manager: Option<&str>,
) -> PeriodDiff {
    let elsewhere = |r: &PeriodReplay| -> Vec<(u64, String, String)> {
        r.replayed
            .entries
            .iter()
            .filter(|a| a.entry.period != period && a.entry.adjustment_of == Some(period))
            .filter(|a| manager.is_none_or(|m| &*a.entry.manager_id == m))
            .map(|a| (a.entry.seq, a.entry.kind.as_str().to_string(), a.entry.manager_id.to_string()))
            .collect()
    };
    let known = elsewhere(before);
    let booked_elsewhere = after
        .replayed
        .entries
        .iter()
        .filter(|a| a.entry.period != period && a.entry.adjustment_of == Some(period))
        .filter(|a| manager.is_none_or(|m| &*a.entry.manager_id == m))
        .filter(|a| !known.contains(&(a.entry.seq, a.entry.kind.as_str().to_string(), a.entry.manager_id.to_string())))
        .map(|a| Booked {
            period: a.entry.period.to_string(),
            manager_id: a.entry.manager_id.to_string(),
            entry: after.replayed.state.entry_view(&a.entry),
        })
        .collect();
    PeriodDiff {
        period: period.to_string(),
        from_seq: from,
        to_seq: to,
        status_before: before.statement.status,
        status_after: after.statement.status,
        managers: compare::statement_changes(&before.statement, &after.statement),
        booked_elsewhere,
    }
}

fn signed(d: Decimal) -> String {
    if d >= Decimal::ZERO {
        format!("+{}", money_grouped(d))
    } else {
        money_grouped(d)
    }
}

/// A figure before, after, and the signed change, as diffs and comparisons print them.
fn change_cells(before: Decimal, after: Decimal, change: Decimal) -> [String; 3] {
    [money_grouped(before), money_grouped(after), signed(change)]
}

fn diff_text(d: &PeriodDiff, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "Period {}: as of seq {} -> as of seq {}", d.period, d.from_seq, d.to_seq)?;
    if d.status_before != d.status_after {
        writeln!(out, "  status {} -> {}", d.status_before, d.status_after)?;
    }
    if d.managers.is_empty() && d.booked_elsewhere.is_empty() && d.status_before == d.status_after {
        writeln!(out, "  No change.")?;
    }
    for m in &d.managers {
        let [before, after, change] = change_cells(m.before.total, m.after.total, m.change.total);
        writeln!(out, "  {:<24} total {before} -> {after} ({change})", m.manager_id)?;
        for (name, b, a, c) in [
            ("commission", m.before.commission, m.after.commission, m.change.commission),
            ("clawback", m.before.clawback, m.after.clawback, m.change.clawback),
            ("fines", m.before.fines, m.after.fines, m.change.fines),
            ("plan bonus", m.before.plan_bonus, m.after.plan_bonus, m.change.plan_bonus),
        ] {
            if !c.is_zero() {
                let [before, after, change] = change_cells(b, a, c);
                writeln!(out, "    {name} {before} -> {after} ({change})")?;
            }
        }
        if m.plan_before != m.plan_after {
            let plan = |p: &Option<premia_core::statement::PlanView>| match p {
                Some(p) => format!(
                    "actual {} of {} ({} %), bonus {} {}",
                    money_grouped(p.actual),
                    money_grouped(p.target),
                    fixed_text(p.achievement * Decimal::ONE_HUNDRED, 2),
                    money_grouped(p.bonus),
                    p.status
                ),
                None => "none".to_string(),
            };
            writeln!(out, "    plan: {} -> {}", plan(&m.plan_before), plan(&m.plan_after))?;
        }
        for e in &m.entries_added {
            writeln!(out, "    + seq {:<8} {}", e.event.seq, e.explanation)?;
        }
        for e in &m.entries_removed {
            writeln!(out, "    - seq {:<8} {}", e.event.seq, e.explanation)?;
        }
    }
    if !d.booked_elsewhere.is_empty() {
        writeln!(out, "  Dated in {} but booked in a later period (it was closed):", d.period)?;
        for b in &d.booked_elsewhere {
            writeln!(
                out,
                "    {} {:<16} seq {:<8} {}",
                b.period, b.manager_id, b.entry.event.seq, b.entry.explanation
            )?;
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct Comparison {
    period: String,
    scheme: String,
    as_of_seq: u64,
    managers: Vec<ManagerComparison>,
    /// Per manager, the entries that differ: `entries_removed` as the log's schemes booked
    /// them, `entries_added` as the what-if scheme books them.
    changes: Vec<ManagerChange>,
}

fn comparison_text(c: &Comparison, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "Period {}: the log's schemes vs what-if scheme {:?} (nothing written)", c.period, c.scheme)?;
    comparison_row(out, "manager", ["actual", "what-if", "difference"].map(String::from))?;
    let mut sums = [Decimal::ZERO; 3];
    for m in &c.managers {
        comparison_row(out, &m.manager_id, change_cells(m.actual.total, m.what_if.total, m.difference.total))?;
        sums[0] += m.actual.total;
        sums[1] += m.what_if.total;
        sums[2] += m.difference.total;
    }
    comparison_row(out, "all", change_cells(sums[0], sums[1], sums[2]))?;
    let changed: usize = c.changes.iter().map(|m| m.entries_added.len() + m.entries_removed.len()).sum();
    if changed > 0 {
        writeln!(out, "  Entries that change:")?;
    }
    for m in &c.changes {
        for e in &m.entries_removed {
            writeln!(out, "    {:<16} seq {:<8} actual  {}", m.manager_id, e.event.seq, e.explanation)?;
        }
        for e in &m.entries_added {
            writeln!(out, "    {:<16} seq {:<8} what-if {}", m.manager_id, e.event.seq, e.explanation)?;
        }
    }
    Ok(())
}

/// One row of the what-if comparison's table: a manager (or the header, or "all") and three
/// right-aligned figures.
fn comparison_row(out: &mut impl Write, first: &str, [actual, what_if, difference]: [String; 3]) -> io::Result<()> {
    writeln!(out, "  {first:<24} {actual:>16} {what_if:>16} {difference:>14}")
}
