//! `premia recover` (a new data dir from the stream or an export, compared with the damaged
//! one's committed head) and `premia backup` (docs/OPERATIONS.md).

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use premia_ledger::head::{read_head, CommittedHead, HeadRead};
use premia_ledger::{Counts, Ledger, LedgerError, LedgerOptions};
use premia_nats::{ServeOptions, StreamSettings};
use serde::Serialize;

use crate::cli::{BackupArgs, Format, RecoverArgs};
use crate::config::ConfigFile;
use crate::nats::{runtime, settings, stream_settings};
use crate::support::progress_bar;

/// What the damaged data dir's committed head says, as far as it can be read.
#[derive(Serialize)]
struct DamagedHead {
    /// `read`, `one_copy_damaged`, `unreadable` or `absent`.
    state: &'static str,
    last_seq: Option<u64>,
    chain_hash: Option<String>,
    rejections: Option<u64>,
}

#[derive(Serialize)]
struct RecoverReport {
    source: String,
    into: String,
    counts: Counts,
    last_seq: u64,
    chain_hash: String,
    rejections: u64,
    damaged_head: DamagedHead,
    /// The new log holds the damaged dir's last committed record, with the same hash.
    reaches_head: Option<bool>,
    /// The new log ends exactly where the damaged dir's did, with the same hash and rejections.
    equals_head: Option<bool>,
}

fn hex(hash: &[u8]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

fn damaged_head(dir: &Path) -> (DamagedHead, Option<CommittedHead>) {
    let (state, head) = match read_head(dir) {
        Ok(HeadRead::Found { head, damaged }) if damaged.is_empty() => ("read", Some(head)),
        Ok(HeadRead::Found { head, .. }) => ("one_copy_damaged", Some(head)),
        Ok(HeadRead::Unreadable { .. }) | Err(_) => ("unreadable", None),
        Ok(HeadRead::Absent) => ("absent", None),
    };
    let view = DamagedHead {
        state,
        last_seq: head.map(|h| h.last_seq),
        chain_hash: head.map(|h| hex(&h.chain_hash)),
        rejections: head.map(|h| h.rejections),
    };
    (view, head)
}

pub fn recover(data_dir: &Path, args: &RecoverArgs, config: &ConfigFile) -> anyhow::Result<ExitCode> {
    if std::fs::read_dir(&args.into).is_ok_and(|mut entries| entries.next().is_some()) {
        bail!(
            "{} is not empty: recover builds a new data dir; give --into a new or empty directory",
            args.into.display()
        );
    }
    let (damaged, head) = damaged_head(data_dir);
    let mut ledger = Ledger::open(&args.into, &LedgerOptions::default(), "recover")?;
    let (source, counts) = match &args.from_export {
        Some(file) => (format!("export {}", file.display()), from_export(&mut ledger, file)?),
        None => from_stream(&mut ledger, args, config)?,
    };
    ledger.snapshot_and_project()?;
    let last_seq = ledger.state().next_seq() - 1;
    let rejections = ledger.rejections()?.len() as u64;
    let reaches_head = match head {
        Some(h) if h.last_seq == 0 => Some(true),
        Some(h) => Some(ledger.record(h.last_seq)?.is_some_and(|r| r.hash == h.chain_hash)),
        None => None,
    };
    let equals_head =
        head.map(|h| h.last_seq == last_seq && h.chain_hash == ledger.last_hash() && h.rejections == rejections);
    let report = RecoverReport {
        source,
        into: args.into.display().to_string(),
        counts,
        last_seq,
        chain_hash: hex(&ledger.last_hash()),
        rejections,
        damaged_head: damaged,
        reaches_head,
        equals_head,
    };
    print_recovered(&report, args.format)?;
    Ok(ExitCode::SUCCESS)
}

fn from_export(ledger: &mut Ledger, file: &Path) -> anyhow::Result<Counts> {
    let input = std::fs::File::open(file).with_context(|| format!("cannot open the export {}", file.display()))?;
    let len = input.metadata().ok().map(|m| m.len());
    let bar = progress_bar(len, "rebuilding from the export");
    let report =
        premia_ledger::export::import_export(ledger, io::BufReader::new(input), 8192, |n| bar.set_position(n))?;
    bar.finish_and_clear();
    Ok(report.counts)
}

fn from_stream(ledger: &mut Ledger, args: &RecoverArgs, config: &ConfigFile) -> anyhow::Result<(String, Counts)> {
    let stream = StreamSettings {
        consumer: args.consumer.clone().unwrap_or_else(|| "premia-recover".to_string()),
        ..stream_settings(&args.nats, config)
    };
    let options = ServeOptions { drain: true, feed: false, ..ServeOptions::default() };
    let report = runtime()?.block_on(async {
        let client = premia_nats::connect(&settings(&args.nats, config)).await?;
        let report = premia_nats::serve(ledger, &client, &stream, &options, std::future::pending(), None).await?;
        premia_nats::delete_consumer(&client, &stream).await?;
        anyhow::Ok(report)
    })?;
    Ok((format!("stream {}", stream.stream), report.counts))
}

fn print_recovered(report: &RecoverReport, format: Format) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    if format == Format::Json {
        writeln!(out, "{}", serde_json::to_string(report)?)?;
        return Ok(());
    }
    writeln!(out, "Rebuilt {} from the {}.", report.into, report.source)?;
    writeln!(
        out,
        "Its log ends at record {} with chain hash {}; {} rejected lines are kept.",
        report.last_seq, report.chain_hash, report.rejections
    )?;
    let head = &report.damaged_head;
    match (head.last_seq, report.equals_head, report.reaches_head) {
        (Some(seq), Some(true), _) => writeln!(
            out,
            "This equals the committed head of the damaged data dir (record {seq}, the same chain hash and rejections): nothing was lost."
        )?,
        (Some(seq), _, Some(true)) => {
            writeln!(out, "The new log holds the damaged data dir's last committed record {seq} with the same chain hash.")?;
            if report.last_seq > seq {
                writeln!(out, "It goes on to record {}: the source held more than the damaged dir had taken in.", report.last_seq)?;
            }
            if head.rejections != Some(report.rejections) {
                writeln!(
                    out,
                    "The damaged dir kept {} rejected lines, the new one {} (an export carries the log, not the rejected lines).",
                    head.rejections.unwrap_or(0),
                    report.rejections
                )?;
            }
        }
        (Some(seq), _, _) => writeln!(
            out,
            "The damaged data dir committed up to record {seq} with chain hash {}: the new log does not hold that record with that hash (its records took other arrival times, or came from another source). Compare the statements before replacing the damaged dir.",
            head.chain_hash.as_deref().unwrap_or("?")
        )?,
        (None, _, _) => writeln!(
            out,
            "The damaged data dir's committed head is {}: there is nothing to compare with.",
            head.state.replace('_', " ")
        )?,
    }
    writeln!(out, "Check it (`premia --data-dir {} verify`), then move it into the damaged dir's place.", report.into)?;
    Ok(())
}

pub fn backup(data_dir: &Path, args: &BackupArgs) -> anyhow::Result<ExitCode> {
    let ledger = match Ledger::open(data_dir, &LedgerOptions::default(), "backup") {
        Err(LedgerError::Locked(e)) => bail!(
            "{e}. While premia serve runs, ask it for the backup instead: POST /v1/admin/backup with an admin token (docs/OPERATIONS.md)"
        ),
        other => other?,
    };
    let report = ledger.back_up(&args.to)?;
    let mut out = io::stdout().lock();
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&report)?)?,
        Format::Text => writeln!(
            out,
            "Backed up the ledger into {}: log records 1 to {} (chain hash {}), {} rejected lines. Restore it by moving it into the data dir's place while nothing runs on it.",
            report.path.display(),
            report.last_seq,
            report.chain_hash,
            report.rejections
        )?,
    }
    Ok(ExitCode::SUCCESS)
}
