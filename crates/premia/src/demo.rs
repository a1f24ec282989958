//! `premia demo`: the worked month of the article, end to end (through NATS, or straight from
//! the embedded file), into a scratch ledger, and its statements.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context;
use premia_ledger::ingest::{ingest_reader, IngestOptions};
use premia_ledger::{Counts, Ledger};
use premia_nats::{NatsSettings, ServeOptions, StreamSettings};
use serde_json::json;

use crate::cli::{DemoArgs, Format};
use crate::nats;
use crate::render;
use crate::support::{open, print_counts};

/// The worked example month, embedded so `premia demo` needs nothing beside the binary.
pub const SEED_MONTH: &str = include_str!("../../../tests/data/seed-month.jsonl");

pub fn demo(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let scratch;
    let dir = match &args.keep {
        Some(dir) => dir.clone(),
        None => {
            scratch = tempfile::tempdir().context("cannot create a temporary directory for the demo")?;
            scratch.path().to_path_buf()
        }
    };
    let mut ledger = open(&dir, "demo")?;
    let (counts, path) = if args.offline {
        let counts = ingest_reader(&mut ledger, SEED_MONTH.as_bytes(), &IngestOptions::default(), |_| {})?;
        (counts, "read straight from the embedded file".to_string())
    } else {
        through_nats(&mut ledger, &args.nats_url)?
    };
    ledger.snapshot_and_project()?;
    let periods = ledger.state().periods();
    if args.format == Format::Json {
        let statements = periods.iter().map(|p| ledger.statement(*p, None)).collect::<Result<Vec<_>, _>>()?;
        println!("{}", serde_json::to_string_pretty(&json!({"counts": counts, "statements": statements}))?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("premia demo: the worked month of the article (five managers, 29 CRM events), {path},");
    println!("folded into a ledger in {}.\n", dir.display());
    print_counts(&counts, Format::Text)?;
    let mut out = io::stdout().lock();
    for period in &periods {
        writeln!(out)?;
        render::statement_text(&ledger.statement(*period, None)?, &mut out)?;
    }
    writeln!(out, "\nWhat to try next:")?;
    let d = if args.keep.is_some() { format!(" --data-dir {}", dir.display()) } else { " --data-dir DIR".to_string() };
    writeln!(out, "  premia demo --keep ./demo-data                    keep this ledger to explore it")?;
    writeln!(out, "  premia{d} statement --period 2026-11 --format json")?;
    writeln!(out, "  premia{d} rejected                   the event in USD, and why it was refused")?;
    writeln!(out, "  premia{d} rebuild                    fold the log again and compare")?;
    writeln!(out, "  premia scheme show                               the rules in force")?;
    writeln!(out, "  premia generate --events 100000 > events.jsonl && premia ingest events.jsonl")?;
    Ok(ExitCode::SUCCESS)
}

/// Publishes the embedded month to a stream of the demo's own and serves it into `ledger`.
fn through_nats(ledger: &mut Ledger, url: &str) -> anyhow::Result<(Counts, String)> {
    let runtime = nats::runtime()?;
    let existing = runtime.block_on(async {
        async_nats::ConnectOptions::new().connection_timeout(std::time::Duration::from_secs(2)).connect(url).await.ok()
    });
    let mut _own_server = None;
    let (client, how) = match existing {
        Some(client) => (client, format!("published to the NATS server at {url}")),
        None => {
            let (server, own_url) = nats::start_scratch_server()?;
            _own_server = Some(server);
            let client = runtime
                .block_on(premia_nats::connect(&NatsSettings { url: own_url.clone(), ..NatsSettings::default() }))?;
            (client, format!("published to a nats-server started for the demo at {own_url}"))
        }
    };
    let tag = std::process::id();
    let stream = StreamSettings {
        stream: format!("PREMIA_DEMO_{tag}"),
        subjects: vec![format!("premia.demo.{tag}.>")],
        consumer: "premia-demo".into(),
        ..StreamSettings::default()
    };
    let options = ServeOptions { drain: true, feed: false, ..ServeOptions::default() };
    let report = runtime.block_on(async {
        let lines = SEED_MONTH.lines().map(|l| Ok(l.as_bytes().to_vec()));
        premia_nats::publish_lines(&client, &stream, lines, 256, |_| {}).await?;
        let report = premia_nats::serve(ledger, &client, &stream, &options, std::future::pending(), None).await;
        // The demo's stream is scratch: remove it whether or not serving worked.
        let _ = async_nats::jetstream::new(client.clone()).delete_stream(&stream.stream).await;
        report
    })?;
    Ok((report.counts, how))
}
