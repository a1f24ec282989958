//! `premia serve` and `premia publish`: the NATS commands, on a tokio runtime of their own.

use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use premia_ledger::{Ledger, LedgerOptions};
use premia_nats::{NatsSettings, ServeOptions, StreamSettings};

use crate::cli::{Format, NatsArgs, PublishArgs, ServeArgs};

fn settings(args: &NatsArgs) -> NatsSettings {
    NatsSettings {
        url: args.nats_url.clone(),
        user: args.nats_user.clone(),
        password: args.nats_password.clone(),
        token: args.nats_token.clone(),
        nkey_seed: args.nats_nkey_seed.clone(),
        creds_file: args.nats_creds.clone(),
        tls_ca_file: args.nats_tls_ca.clone(),
        tls_required: args.nats_tls_required,
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down after the batch in hand");
}

pub fn serve(data_dir: &Path, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let mut ledger = Ledger::open(data_dir, &LedgerOptions::default(), "serve")?;
    let stream = StreamSettings {
        stream: args.nats.stream.clone(),
        consumer: args.consumer.clone(),
        ..StreamSettings::default()
    };
    let options = ServeOptions { batch: args.batch as usize, drain: args.drain, ..ServeOptions::default() };
    let report = runtime()?.block_on(async {
        let client = premia_nats::connect(&settings(&args.nats)).await?;
        premia_nats::serve(&mut ledger, &client, &stream, &options, shutdown_signal()).await
    })?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string(&report.counts)?),
        Format::Text => {
            println!("applied     {:>10}", report.counts.applied);
            println!("duplicates  {:>10}", report.counts.duplicates);
            println!("rejected    {:>10}", report.counts.rejected);
            println!("parked      {:>10}", report.counts.parked);
            println!(
                "({} batches committed and acked; {} redelivered messages skipped)",
                report.batches, report.skipped
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn publish(args: &PublishArgs) -> anyhow::Result<ExitCode> {
    let reader: Box<dyn BufRead + Send> = if args.input == "-" {
        Box::new(BufReader::with_capacity(1 << 20, io::stdin()))
    } else {
        let file =
            std::fs::File::open(&args.input).with_context(|| format!("cannot open {}; check the path", args.input))?;
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    let stream = StreamSettings { stream: args.nats.stream.clone(), ..StreamSettings::default() };
    let bar = crate::commands::progress_bar(None, "publishing");
    let report = runtime()?.block_on(async {
        let client = premia_nats::connect(&settings(&args.nats)).await?;
        let lines = reader.split(b'\n');
        let report = premia_nats::publish_lines(&client, &stream, lines, args.in_flight.max(1), |r| {
            bar.set_position(r.published)
        })
        .await?;
        client.flush().await.ok();
        Ok::<_, premia_nats::NatsError>(report)
    })?;
    bar.finish_and_clear();
    match args.format {
        Format::Json => println!("{}", serde_json::to_string(&report)?),
        Format::Text => {
            println!("published   {:>10}", report.published);
            println!("duplicates  {:>10}   (JetStream had these message ids already)", report.duplicates);
            if report.without_id > 0 {
                println!(
                    "not events  {:>10}   (published without a message id; the ledger will reject them)",
                    report.without_id
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
