//! The auditor's commands on the whole log: `verify`, `export`, and the export branch of
//! `ingest` (docs/AUDIT.md).

use std::fs::File;
use std::io::{self, BufRead, BufWriter, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use premia_ledger::export::import_export;
use premia_ledger::verify::{ProjectionCheck, SnapshotCheck, VerifyReport};
use serde_json::json;

use crate::cli::{ExportArgs, Format, IngestArgs, VerifyArgs};
use crate::support::{open, print_counts, progress_bar};

/// The exit status of `verify` when the ledger does not match its log (distinct from 1, "cannot
/// run", and from `rebuild`'s 3).
pub const VERIFY_FAILED: u8 = 4;

/// A seal given on the command line (from paper) and what the log says.
#[derive(serde::Serialize)]
struct PaperSeal {
    period: String,
    given: String,
    /// The seal recomputed from the log; null when the period is not closed in it.
    ledger: Option<String>,
    matches: bool,
}

pub fn verify(data_dir: &Path, args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let mut wanted = Vec::new();
    for text in &args.seal {
        let Some((period, digest)) = text.split_once('=') else {
            bail!("--seal {text:?} should be PERIOD=DIGEST, such as 2026-11=<the 64 hex digits on the statement>");
        };
        wanted.push((period.trim().to_string(), digest.trim().to_ascii_lowercase()));
    }
    let bar = progress_bar(None, "verifying log records");
    let report = premia_ledger::verify::verify(data_dir, |n| bar.set_position(n))?;
    bar.finish_and_clear();
    let paper: Vec<PaperSeal> = wanted
        .into_iter()
        .map(|(period, given)| {
            let ledger = report.seals.iter().find(|s| s.period == period).map(|s| s.digest.clone());
            PaperSeal { matches: ledger.as_deref() == Some(given.as_str()), period, given, ledger }
        })
        .collect();
    let intact = report.intact() && paper.iter().all(|p| p.matches);
    let mut out = io::stdout().lock();
    match args.format {
        Format::Json => {
            let mut value = serde_json::to_value(&report)?;
            if let Some(object) = value.as_object_mut() {
                object.insert("intact".into(), json!(intact));
                object.insert("first_bad_seq".into(), json!(report.first_bad_seq()));
                object.insert("paper_seals".into(), serde_json::to_value(&paper)?);
            }
            writeln!(out, "{}", serde_json::to_string(&value)?)?;
        }
        Format::Text => {
            verify_text(&report, &mut out)?;
            for p in &paper {
                match (&p.ledger, p.matches) {
                    (_, true) => writeln!(out, "The seal given for {} matches the log.", p.period)?,
                    (Some(ledger), false) => writeln!(
                        out,
                        "SEAL MISMATCH for {}: given {}, but the log gives {ledger}. The statement it came from is not this ledger's.",
                        p.period, p.given
                    )?,
                    (None, false) => writeln!(
                        out,
                        "SEAL MISMATCH for {}: given {}, but {} is not closed in this log (or the log is damaged before its close).",
                        p.period, p.given, p.period
                    )?,
                }
            }
        }
    }
    Ok(if intact { ExitCode::SUCCESS } else { ExitCode::from(VERIFY_FAILED) })
}

fn verify_text(report: &VerifyReport, out: &mut impl Write) -> io::Result<()> {
    if !report.problems.is_empty() {
        match report.first_bad_seq().filter(|&seq| seq > 0) {
            Some(first) => writeln!(out, "VERIFY FAILED: the first bad ledger sequence number is {first}.")?,
            None => writeln!(out, "VERIFY FAILED: the data dir is damaged.")?,
        }
        for p in &report.problems {
            writeln!(out, "  seq {:<10} {:<12} {}", p.seq, p.kind.as_str(), p.message)?;
        }
        writeln!(
            out,
            "Checked {} log records before the first break. Restore the data dir from a backup taken before the damage, or build a new one with `premia recover` from the stream or an export of an intact copy (docs/OPERATIONS.md).",
            report.records
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "The hash chain is intact: {} log records in {} chunks, seq 1 to {}, last hash {}.",
        report.records, report.chunks, report.last_seq, report.last_hash
    )?;
    match report.committed_seq {
        Some(seq) => writeln!(out, "The log reaches the committed head (log record {seq}) with its hash.")?,
        None => writeln!(out, "The data dir records no committed head (a ledger written before premia kept one).")?,
    }
    writeln!(out, "The fold of the whole log books exactly the {} stored entries.", report.entries)?;
    writeln!(out, "The {} kept rejections digest to what the ledger committed.", report.rejections)?;
    match &report.snapshot {
        SnapshotCheck::Identical { next_seq } => {
            writeln!(out, "The snapshot equals the fold of the log up to seq {}.", next_seq - 1)?
        }
        SnapshotCheck::Absent => writeln!(out, "There is no snapshot (the next open folds the log).")?,
        SnapshotCheck::Unused => writeln!(
            out,
            "The snapshot was written by another version of premia and is not used; the ledger folds the log."
        )?,
        SnapshotCheck::NotReached | SnapshotCheck::Differs { .. } | SnapshotCheck::Damaged { .. } => {}
    }
    match &report.projection {
        ProjectionCheck::Identical { covers } => writeln!(
            out,
            "The period projection (what statements and figures read) equals what the fold of the log up to seq {covers} writes."
        )?,
        ProjectionCheck::Absent => {
            writeln!(out, "There is no period projection (statements and figures load the state).")?
        }
        ProjectionCheck::Unused { covers } => writeln!(
            out,
            "The period projection covers the log up to seq {covers}, not its end, so no read uses it."
        )?,
        ProjectionCheck::NotReached | ProjectionCheck::Differs { .. } | ProjectionCheck::Damaged { .. } => {}
    }
    if report.seals.is_empty() {
        writeln!(out, "No period is closed, so there are no seals.")?;
    } else {
        writeln!(out, "Seals of the closed periods, recomputed from the log (as printed on their statements):")?;
        for s in &report.seals {
            writeln!(out, "  {}  closed at seq {:<10} {}  ({} entries)", s.period, s.closed_seq, s.digest, s.entries)?;
        }
    }
    writeln!(out, "Verified: nothing in the ledger differs from its log.")
}

pub fn export(data_dir: &Path, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let ledger = open(data_dir, "export")?;
    let last = ledger.state().next_seq() - 1;
    if last == 0 {
        bail!("the ledger in {} is empty: there is nothing to export", data_dir.display());
    }
    let (from, to) = match (&args.period, args.from_seq) {
        (Some(text), _) => {
            let period = premia_core::Period::parse(text)
                .with_context(|| format!("{text:?} is not a period; write a calendar month as YYYY-MM"))?;
            match ledger.state().closed_periods().get(&period) {
                Some(&closed_seq) => (1, closed_seq),
                None => {
                    eprintln!("{period} is open: its statement can still change, so the whole log so far (seq 1 to {last}) is exported.");
                    (1, last)
                }
            }
        }
        (None, Some(from)) => (from, args.to_seq.unwrap_or(last)),
        (None, None) => bail!("say what to export: --period YYYY-MM, or --from-seq A [--to-seq B]"),
    };
    if from == 0 || from > to || to > last {
        bail!("the log holds seq 1 to {last}; choose 1 <= --from-seq <= --to-seq <= {last} (asked for {from} to {to})");
    }
    let written = match &args.out {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("cannot create {}; check the directory", path.display()))?;
            premia_ledger::export::export(&ledger, from, to, &mut BufWriter::with_capacity(1 << 20, file))?
        }
        None => premia_ledger::export::export(
            &ledger,
            from,
            to,
            &mut BufWriter::with_capacity(1 << 20, io::stdout().lock()),
        )?,
    };
    eprintln!("Exported {written} log records (seq {from} to {to}).");
    if from > 1 {
        eprintln!("Only an export from seq 1 can be ingested into an empty data dir.");
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads up to and including the first line that is not blank, so that `ingest` can tell an
/// export from events; the bytes read are returned to be put back in front of the rest.
pub fn first_line(mut reader: Box<dyn BufRead + Send>) -> anyhow::Result<(Vec<u8>, Box<dyn BufRead + Send>)> {
    let mut consumed = Vec::new();
    loop {
        let start = consumed.len();
        let n = reader.read_until(b'\n', &mut consumed).context("cannot read the input")?;
        if n == 0 || !consumed[start..].iter().all(u8::is_ascii_whitespace) {
            return Ok((consumed, reader));
        }
    }
}

pub fn ingest_export(
    mut ledger: premia_ledger::Ledger,
    first: Vec<u8>,
    rest: Box<dyn BufRead + Send>,
    len: Option<u64>,
    args: &IngestArgs,
) -> anyhow::Result<ExitCode> {
    let bar = progress_bar(len, "importing an export");
    let input = io::BufReader::new(io::Cursor::new(first).chain(rest));
    let report = import_export(&mut ledger, input, args.batch_lines as usize, |bytes| bar.set_position(bytes))?;
    bar.finish_and_clear();
    ledger.snapshot_and_project()?;
    match args.format {
        Format::Json => {
            let mut value = serde_json::to_value(report.counts)?;
            if let Some(object) = value.as_object_mut() {
                object.insert("imported".into(), json!(report.records));
                object.insert("already_held".into(), json!(report.already_held));
                object.insert("first_seq".into(), json!(report.first_seq));
                object.insert("last_seq".into(), json!(report.last_seq));
                object.insert("last_hash".into(), json!(report.last_hash));
            }
            println!("{}", serde_json::to_string(&value)?);
        }
        Format::Text => {
            match (report.first_seq, report.last_seq) {
                (Some(first), Some(last)) => println!(
                    "An export: re-logged {} records (seq {first} to {last}) with their original arrival times; chain hash at seq {last}: {}",
                    report.records, report.last_hash
                ),
                _ => println!("An export: no new records, nothing changed."),
            }
            if report.already_held > 0 {
                println!(
                    "{} records of the export were already in this ledger, with the same hash chain.",
                    report.already_held
                );
            }
            print_counts(&report.counts, Format::Text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
