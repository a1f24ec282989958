//! `premia explain`: the arithmetic behind an entry, a payment or a deal, folded again from the
//! raw log (only the records joined to it by an id, and the global ones).

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use premia_core::explain::{self, EntryExplanation, Subject};
use premia_core::fold::Entry;
use premia_core::money::money_grouped;
use premia_core::replay_index::ReplayIndex;
use premia_http::explain as explain_json;
use premia_ledger::audit_log::{period_selection, AuditLog, IndexHead, Selection};
use serde_json::Value;

use crate::cli::{ExplainArgs, Format};
use crate::support::open_indexed;

/// `seq`, `source`, `id`, `type` and arrival of a log record, for naming the events an entry
/// depends on (the same names `GET /v1/explain/...` gives).
fn event_names(log: &AuditLog, seq: u64) -> anyhow::Result<Value> {
    let record = log.record(seq)?.with_context(|| format!("log record {seq} is missing; run `premia verify`"))?;
    Ok(explain_json::event_names(&record))
}

/// Which entries of a fold an explanation is about.
type EntryFilter<'a> = Box<dyn Fn(&Entry) -> bool + 'a>;

/// What an explanation is about: the records to fold, and which of the entries they book.
struct Asked<'a> {
    seqs: Vec<u64>,
    /// As the text names it: `payment P-1`, `deal D-1`, `log record 12`.
    name: String,
    keep: EntryFilter<'a>,
    /// The entry's seq, when one entry was asked for.
    entry_seq: Option<u64>,
}

/// The records a payment or a deal depends on: its component (every record joined to it by an
/// id) and the global records.
fn asked_subject<'a>(subject: Subject<'a>, index: &mut ReplayIndex, head: &IndexHead) -> anyhow::Result<Asked<'a>> {
    let mut seqs = index.component_of_key(&subject.index_key());
    if seqs.is_empty() {
        match subject {
            Subject::Payment(id) => {
                bail!("no payment {id:?} is in the log; check the id (payment_id of payment.received)")
            }
            Subject::Deal(id) => bail!("no deal {id:?} is in the log; check the id (deal_id of deal.created)"),
        }
    }
    seqs.extend(head.globals.iter().copied());
    seqs.sort_unstable();
    seqs.dedup();
    Ok(Asked { seqs, name: subject.name(), keep: Box::new(move |e: &Entry| subject.covers(e)), entry_seq: None })
}

/// The records the entry booked by log record `text` (`123` or `seq:123`) depends on.
fn asked_entry(
    text: &str,
    log: &AuditLog,
    index: &mut ReplayIndex,
    head: &IndexHead,
    manager: Option<&str>,
) -> anyhow::Result<Asked<'static>> {
    let end = head.last_seq();
    let digits = text.trim_start_matches("seq").trim_start_matches([':', ' ']);
    let seq: u64 = digits.parse().with_context(|| {
        format!("{text:?} is not an entry ref; give the seq a statement shows beside the entry, such as 123 or seq:123")
    })?;
    if seq == 0 || seq > end {
        bail!("there is no log record {seq}; the log runs from seq 1 to {end}");
    }
    let closed = index.closes().iter().find(|(_, &s)| s == seq).map(|(p, _)| *p);
    let seqs = match closed {
        // A close books every plan bonus of its period from the whole period's books.
        Some(period) => period_selection(head, &log.period_records(head, period)?, manager, seq),
        None => {
            let mut s = index.component_of_record(seq);
            s.extend(head.globals.iter().copied());
            s.sort_unstable();
            s.dedup();
            s
        }
    };
    Ok(Asked {
        seqs,
        name: format!("log record {seq}"),
        keep: Box::new(move |e: &Entry| e.seq == seq),
        entry_seq: Some(seq),
    })
}

pub fn explain(data_dir: &Path, args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let (log, head) = open_indexed(data_dir, "explain")?;
    let mut index = log.full_index()?;
    let manager = args.manager.as_deref();
    let asked = match (&args.payment, &args.deal, &args.entry) {
        (Some(id), _, _) => asked_subject(Subject::Payment(id), &mut index, &head)?,
        (None, Some(id), _) => asked_subject(Subject::Deal(id), &mut index, &head)?,
        (None, None, Some(text)) => asked_entry(text, &log, &mut index, &head, manager)?,
        (None, None, None) => bail!("say what to explain: an entry's seq, --payment ID or --deal ID"),
    };
    let replayed = log.fold(Selection::Seqs(&asked.seqs), &head.schemes, None, |e| (asked.keep)(e), |_| {})?;
    let state = &replayed.state;
    let explanations: Vec<EntryExplanation> = replayed
        .entries
        .iter()
        .filter(|a| manager.is_none_or(|m| &*a.entry.manager_id == m))
        .map(|a| explain::explain_entry(state, &a.entry, a.applied_at, &a.scheme, a.scheme_seq))
        .collect();
    // What became of the subject's records that booked nothing: rejected by a rule, or parked.
    let outcomes: Vec<Value> = asked
        .seqs
        .iter()
        .filter(|s| !head.globals.contains(s))
        .filter_map(|s| explain_json::unbooked(state, *s))
        .collect();
    let mut items = Vec::new();
    for x in &explanations {
        items.push(explain_json::item(x, |seq| event_names(&log, seq))?);
    }
    let mut out = io::stdout().lock();
    match args.format {
        Format::Json => {
            let document = explain_json::document(&asked.name, items, outcomes);
            writeln!(out, "{}", serde_json::to_string_pretty(&document)?)?
        }
        Format::Text => {
            if items.is_empty() {
                nothing_booked_text(&log, &asked, &mut out)?;
            }
            for (x, v) in explanations.iter().zip(&items) {
                explanation_text(x, v, &mut out)?;
            }
            for o in &outcomes {
                outcome_text(o, &mut out)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The sentence for an explanation that found no entry.
fn nothing_booked_text(log: &AuditLog, asked: &Asked<'_>, out: &mut impl Write) -> anyhow::Result<()> {
    let what = match asked.entry_seq {
        Some(seq) => {
            let names = event_names(log, seq)?;
            format!(
                " ({} {} {}); deals, plans, late notices and events a rule refused or that still wait book nothing",
                names["type"].as_str().unwrap_or("?"),
                names["source"].as_str().unwrap_or("?"),
                names["id"].as_str().unwrap_or("?")
            )
        }
        None => String::new(),
    };
    writeln!(out, "No entry was booked for {}{what}.", asked.name)?;
    Ok(())
}

/// One entry's explanation: the arithmetic, the rule, the scheme and the events it depends on
/// (`item` is its JSON, which names them).
fn explanation_text(x: &EntryExplanation, item: &Value, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{} {} {} for {} in {} (ledger seq {}{})",
        x.entry.kind,
        money_grouped(x.entry.amount),
        x.entry.event.id,
        x.manager_id,
        x.period,
        x.entry.event.seq,
        if x.applied_at_seq != x.entry.event.seq {
            format!(", applied when seq {} arrived", x.applied_at_seq)
        } else {
            String::new()
        }
    )?;
    writeln!(out, "  {}", x.formula)?;
    writeln!(out, "  rule: {}", x.rule)?;
    match x.scheme.seq {
        Some(seq) => writeln!(out, "  scheme: {:?}, activated at ledger seq {seq}", x.scheme.name)?,
        None => writeln!(out, "  scheme: {:?} (built in)", x.scheme.name)?,
    }
    for e in item["events"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "  {:<12} seq {:<8} {} {} ({}), received {}",
            e["role"].as_str().unwrap_or_default(),
            e["seq"],
            e["source"].as_str().unwrap_or_default(),
            e["id"].as_str().unwrap_or_default(),
            e["type"].as_str().unwrap_or_default(),
            e["arrived"].as_str().unwrap_or_default()
        )?;
    }
    Ok(())
}

/// What became of a record that booked nothing (its JSON from `explain_json::unbooked`).
fn outcome_text(o: &Value, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "seq {} {} was {}: {}",
        o["seq"],
        o["type"].as_str().unwrap_or_default(),
        o["outcome"].as_str().unwrap_or_default(),
        o["message"].as_str().or(o["waits_for"].as_str()).unwrap_or_default()
    )
}
