//! Text, CSV and JSON renderings of what the ledger reports.

use std::io::Write;

use premia_core::money::{fixed_text, money_grouped, money_text};
use premia_core::Statement;
use premia_ledger::Ledger;

use crate::cli::Format;

pub use premia_http::views::{rejections, rfc3339, RejectionItem};

pub fn statement_text(s: &Statement, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "Statement {}  ({}, {})", s.period, s.status, s.currency)?;
    if let Some(seal) = &s.seal {
        writeln!(
            out,
            "  Seal {}  (closed at ledger seq {}, {} entries; `premia verify` recomputes it)",
            seal.digest, seal.closed_seq, seal.entries
        )?;
    }
    if s.managers.is_empty() {
        writeln!(out, "  Nothing is booked in {} and no manager has a plan in it.", s.period)?;
        return Ok(());
    }
    for m in &s.managers {
        writeln!(out)?;
        writeln!(out, "  {:<24} total {:>16}", m.manager_id, money_grouped(m.total))?;
        writeln!(
            out,
            "    commission {}  clawback {}  fines {}  plan bonus {}",
            money_grouped(m.commission),
            money_grouped(m.clawback),
            money_grouped(m.fines),
            money_grouped(m.plan_bonus)
        )?;
        if let Some(p) = &m.plan {
            writeln!(
                out,
                "    plan: {} of {} ({} %), coefficient {}, bonus {} {}",
                money_grouped(p.actual),
                money_grouped(p.target),
                fixed_text(p.achievement * rust_decimal::Decimal::ONE_HUNDRED, 2),
                fixed_text(p.coefficient, 4),
                money_grouped(p.bonus),
                p.status
            )?;
        }
        for e in &m.entries {
            writeln!(out, "    seq {:<8} {}", e.event.seq, e.explanation)?;
        }
    }
    Ok(())
}

pub fn statement_csv(s: &Statement, out: &mut impl Write) -> anyhow::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record([
        "period",
        "status",
        "currency",
        "manager_id",
        "commission",
        "clawback",
        "fines",
        "plan_bonus",
        "total",
        "plan_target",
        "plan_actual",
        "plan_achievement",
        "plan_coefficient",
        "plan_bonus_amount",
        "plan_status",
        "seal",
    ])?;
    for m in &s.managers {
        let plan = m.plan.as_ref();
        writer.write_record([
            s.period.clone(),
            s.status.to_string(),
            s.currency.clone(),
            m.manager_id.clone(),
            money_text(m.commission),
            money_text(m.clawback),
            money_text(m.fines),
            money_text(m.plan_bonus),
            money_text(m.total),
            plan.map(|p| money_text(p.target)).unwrap_or_default(),
            plan.map(|p| money_text(p.actual)).unwrap_or_default(),
            plan.map(|p| fixed_text(p.achievement, 4)).unwrap_or_default(),
            plan.map(|p| fixed_text(p.coefficient, 4)).unwrap_or_default(),
            plan.map(|p| money_text(p.bonus)).unwrap_or_default(),
            plan.map(|p| p.status.to_string()).unwrap_or_default(),
            s.seal.as_ref().map(|seal| seal.digest.clone()).unwrap_or_default(),
        ])?;
    }
    writer.flush()?;
    Ok(())
}

pub fn rejections_text(items: &[RejectionItem], out: &mut impl Write) -> std::io::Result<()> {
    if items.is_empty() {
        return writeln!(out, "Nothing was rejected.");
    }
    for i in items {
        writeln!(
            out,
            "{:<10} {:<24} {}  ({} via {})",
            i.reference,
            i.reason,
            i.message,
            rfc3339(i.arrived_ms),
            i.origin.as_str()
        )?;
        let shown = String::from_utf8_lossy(&i.raw[..i.raw.len().min(160)]).replace('\n', " ");
        let more = if i.raw.len() > 160 {
            format!(" ... ({} bytes; `premia rejected --raw {}`)", i.raw.len(), i.reference)
        } else {
            String::new()
        };
        writeln!(out, "           {shown}{more}")?;
    }
    writeln!(out, "{} rejected. The exact bytes of one: premia rejected --raw REF", items.len())
}

pub fn pending(ledger: &Ledger, format: Format, out: &mut impl Write) -> anyhow::Result<()> {
    let parked = ledger.state().parked();
    let rows = premia_http::views::pending_rows(ledger);
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?,
        Format::Text => {
            if rows.is_empty() {
                writeln!(out, "Nothing is parked: every event found what it refers to.")?;
            }
            for (seq, p) in parked {
                writeln!(
                    out,
                    "seq {:<8} {:<18} {}/{}  waits for {}",
                    seq,
                    p.event.data.event_type().as_str(),
                    p.event.source,
                    p.event.id,
                    p.waits_for
                )?;
            }
            if !rows.is_empty() {
                writeln!(out, "{} parked. Each is applied the moment what it waits for arrives.", rows.len())?;
            }
        }
    }
    Ok(())
}
