//! `premia figures` (the article's KPIs per manager per period) and `premia plan suggest`
//! (next period's targets from this period's actuals, as `plan.assigned` events).

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use premia_core::figures::Figures;
use premia_core::money::{money_text, round2};
use rust_decimal::Decimal;
use serde_json::json;

use crate::cli::{PlanSuggestArgs, StatementArgs, StatementFormat};
use crate::support::{open, parse_period, read_period};

pub fn figures(data_dir: &Path, args: &StatementArgs) -> anyhow::Result<ExitCode> {
    let period = parse_period(&args.period)?;
    let from_projection = read_period(data_dir, period, "figures")?.and_then(|read| read.figures());
    let mut figures = match from_projection {
        Some(figures) => figures,
        None => open(data_dir, "figures")?.state().figures(period),
    };
    if let Some(manager) = &args.manager {
        figures.managers.retain(|m| &m.manager_id == manager);
    }
    let mut out = io::stdout().lock();
    match args.format {
        StatementFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&figures)?)?,
        StatementFormat::Csv => figures_csv(&figures, &mut out)?,
        StatementFormat::Text => figures_text(&figures, &mut out)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn ratio_text(value: Option<Decimal>) -> String {
    value.map(|v| format!("{:.1} %", v * Decimal::ONE_HUNDRED)).unwrap_or_else(|| "-".into())
}

fn figures_text(f: &Figures, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "Figures for {} ({})", f.period, f.currency)?;
    if f.managers.is_empty() {
        writeln!(out, "  nothing happened in this period")?;
    }
    for m in &f.managers {
        writeln!(out)?;
        writeln!(out, "{}", m.manager_id)?;
        writeln!(out, "  deals won                {:>8}   for {:>16}", m.deals_won, money_text(m.deals_amount))?;
        writeln!(out, "  average deal amount               {:>16}", money_text(m.average_deal_amount))?;
        writeln!(
            out,
            "  distinct clients         {:>8}   of them repeat clients {}",
            m.distinct_clients, m.repeat_clients
        )?;
        writeln!(out, "  money received                    {:>16}", money_text(m.money_received))?;
        writeln!(out, "  margin received                   {:>16}", money_text(m.margin_received))?;
        writeln!(out, "  cancellations by fault   {:>8}", m.cancellations_by_fault)?;
        writeln!(
            out,
            "  overdue deals            {:>8}   receivables {:>16}",
            m.overdue_deals,
            money_text(m.overdue_receivables)
        )?;
        writeln!(out, "  plan achievement         {:>8}", ratio_text(m.plan_achievement))?;
    }
    Ok(())
}

fn figures_csv(f: &Figures, out: &mut impl Write) -> anyhow::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record([
        "period",
        "currency",
        "manager_id",
        "deals_won",
        "deals_amount",
        "average_deal_amount",
        "distinct_clients",
        "repeat_clients",
        "money_received",
        "margin_received",
        "cancellations_by_fault",
        "overdue_deals",
        "overdue_receivables",
        "plan_achievement",
    ])?;
    for m in &f.managers {
        writer.write_record([
            f.period.clone(),
            f.currency.clone(),
            m.manager_id.clone(),
            m.deals_won.to_string(),
            money_text(m.deals_amount),
            money_text(m.average_deal_amount),
            m.distinct_clients.to_string(),
            m.repeat_clients.to_string(),
            money_text(m.money_received),
            money_text(m.margin_received),
            m.cancellations_by_fault.to_string(),
            m.overdue_deals.to_string(),
            money_text(m.overdue_receivables),
            m.plan_achievement.map(|a| a.round_dp(4).to_string()).unwrap_or_default(),
        ])?;
    }
    writer.flush()?;
    Ok(())
}

/// `10%`, `10` (per cent) or `12.5%`.
fn parse_growth(text: &str) -> anyhow::Result<Decimal> {
    let number = text.trim().trim_end_matches('%').trim();
    let percent: Decimal =
        number.parse().with_context(|| format!("--growth {text:?} is not a percentage; write it as 10% or 12.5"))?;
    if percent < Decimal::ZERO || percent > Decimal::ONE_HUNDRED {
        bail!("--growth {text} is outside 0-100 %; the article sets plans 5-20 % above what was achieved");
    }
    Ok(percent / Decimal::ONE_HUNDRED)
}

/// Prints one `plan.assigned` event per manager with an actual in `--period`, for the period
/// after it: the actual (the scheme's plan metric) raised by `--growth`, rounded to 0.01.
/// Ids are deterministic, so publishing the same suggestion twice is a duplicate, not a conflict.
pub fn plan_suggest(data_dir: &Path, args: &PlanSuggestArgs) -> anyhow::Result<ExitCode> {
    let period = parse_period(&args.period)?;
    let growth = parse_growth(&args.growth)?;
    let ledger = open(data_dir, "plan suggest")?;
    let state = ledger.state();
    let next = period.next();
    let mut out = io::stdout().lock();
    let mut skipped = Vec::new();
    let Some(books) = state.books().get(&period) else {
        bail!("nothing is booked in {period}, so there is no actual to base {next}'s plans on; pick a period with activity (see `premia statement --period {period}`)");
    };
    for (manager, book) in books {
        let actual = match state.scheme().plan.metric {
            premia_core::scheme::PlanMetric::Received => book.received,
            premia_core::scheme::PlanMetric::MarginReceived => book.margin_received,
            premia_core::scheme::PlanMetric::Booked => book.booked,
        };
        if actual <= Decimal::ZERO {
            skipped.push(manager.to_string());
            continue;
        }
        let target = round2(actual * (Decimal::ONE + growth));
        let event = json!({
            "specversion": "1.0",
            "id": format!("plan-suggest-{next}-{manager}"),
            "source": "premia/plan-suggest",
            "type": "plan.assigned",
            "time": crate::render::rfc3339(premia_ledger::ingest::now_ms()),
            "datacontenttype": "application/json",
            "data": { "manager_id": manager.to_string(), "period": next.to_string(), "target": money_text(target) },
        });
        writeln!(out, "{}", serde_json::to_string(&event)?)?;
    }
    if !skipped.is_empty() {
        eprintln!(
            "no plan suggested for {} (nothing {} in {period}); assign theirs by hand",
            skipped.join(", "),
            state.scheme().plan.metric.as_str()
        );
    }
    Ok(ExitCode::SUCCESS)
}
