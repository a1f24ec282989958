//! `premia-bench`: the NATS benchmark, in one run on the same pre-published events.
//!
//! 1. Generates the events (`premia generate`'s synthetic CRM) and publishes them to a scratch
//!    JetStream stream.
//! 2. (a) A durable pull consumer fetches and acks them with no processing, one ack per 1,000.
//! 3. (b) `premia serve --drain` (the library call the binary makes) into an empty ledger,
//!    durably; once without and once with the accrual feed.
//! 4. (c) The same workload the way a team would otherwise build it: the same rules folded in
//!    memory, written to PostgreSQL (events unique on source and id, entries, per-manager,
//!    per-period totals upserted), one transaction per batch of 1,000, acked after commit.
//! 5. The latency from publish to feed message at a steady rate, p50 and p99.
//!
//! Everything runs on a nats-server it starts itself (free loopback port, temporary store)
//! unless `--nats-url` is given. Figures go to stdout; nothing is asserted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, consumer};
use clap::Parser;
use futures::StreamExt;
use premia_core::{Admission, Admitted, LedgerState, Outcome};
use premia_ledger::{Ledger, LedgerOptions};
use premia_nats::{NatsSettings, ServeOptions, StreamSettings};

#[derive(Parser)]
#[command(about = "Measure premia's NATS path against a raw JetStream consumer and a PostgreSQL baseline")]
struct Args {
    /// Events to generate and publish (premia generate --events N).
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Seed of the synthetic CRM.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Messages per batch: per fetch and ack, per committed ledger batch, per PostgreSQL transaction.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// A NATS server to use instead of starting a scratch nats-server (its streams PREMIA_BENCH*
    /// are deleted afterwards).
    #[arg(long)]
    nats_url: Option<String>,
    /// PostgreSQL connection string for the baseline (schema premia_bench is dropped and recreated).
    #[arg(long, default_value = "host=127.0.0.1 port=5432 user=postgres dbname=postgres")]
    postgres: String,
    /// Skip the PostgreSQL baseline.
    #[arg(long)]
    skip_postgres: bool,
    /// Events per second for the latency run.
    #[arg(long, default_value_t = 5000)]
    latency_rate: u64,
    /// Seconds the latency run publishes for.
    #[arg(long, default_value_t = 20)]
    latency_seconds: u64,
    /// Measure only the latency (no publish of the N events, no throughput runs).
    #[arg(long)]
    latency_only: bool,
}

#[derive(Debug, serde::Serialize)]
struct Rate {
    messages: u64,
    seconds: f64,
    per_second: f64,
}

impl Rate {
    fn new(messages: u64, elapsed: Duration) -> Rate {
        let seconds = elapsed.as_secs_f64();
        Rate { messages, seconds, per_second: messages as f64 / seconds }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // RUST_LOG=premia_nats=debug shows the serving loop's batches, with times to lay beside
    // the latency run's slow windows.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut _scratch = None;
    let url = match &args.nats_url {
        Some(url) => url.clone(),
        None => {
            let (server, url) = premia::nats::start_scratch_server()?;
            _scratch = Some(server);
            url
        }
    };
    let events = if args.latency_only { 0 } else { args.events };
    eprintln!("generating {events} events (seed {})", args.seed);
    let lines: Vec<Vec<u8>> = premia::synth::Synth::new(args.seed, premia::synth::SynthOptions::default())
        .take(events)
        .map(String::into_bytes)
        .collect();
    let results = runtime.block_on(run(&args, &url, lines))?;
    println!("{}", serde_json::to_string_pretty(&results)?);
    Ok(())
}

async fn run(args: &Args, url: &str, lines: Vec<Vec<u8>>) -> anyhow::Result<serde_json::Value> {
    let client = premia_nats::connect(&NatsSettings { url: url.to_string(), ..NatsSettings::default() }).await?;
    if args.latency_only {
        let latency = feed_latency(&client, args).await?;
        let _ = jetstream::new(client.clone()).delete_stream(premia_nats::FEED_STREAM).await;
        return Ok(serde_json::json!({ "latency": latency }));
    }
    let js = jetstream::new(client.clone());
    let settings = StreamSettings {
        stream: "PREMIA_BENCH".into(),
        subjects: vec!["bench.events.>".into()],
        consumer: "premia".into(),
        ..StreamSettings::default()
    };
    let _ = js.delete_stream(&settings.stream).await;

    eprintln!("publishing");
    let started = Instant::now();
    let published = premia_nats::publish_lines(&client, &settings, lines.into_iter().map(Ok), 4096, |_| {}).await?;
    let publish = Rate::new(published.published, started.elapsed());
    let stored = published.published - published.duplicates;
    eprintln!("published {} ({} stored) at {:.0}/s", published.published, stored, publish.per_second);
    let stream = js.get_stream(&settings.stream).await.context("the bench stream")?;

    eprintln!("(a) raw consumer");
    let raw = raw_consumer(&stream, stored, args.batch).await?;
    eprintln!("(a) {:.0} msg/s", raw.per_second);

    eprintln!("(b) premia serve --drain, no feed");
    let serve_plain = serve_drain(&client, &settings, args.batch, false).await?;
    eprintln!("(b) {:.0} msg/s", serve_plain.per_second);
    eprintln!("(b') premia serve --drain, with the accrual feed");
    let serve_feed = serve_drain(&client, &settings, args.batch, true).await?;
    eprintln!("(b') {:.0} msg/s", serve_feed.per_second);
    let _ = js.delete_stream(premia_nats::FEED_STREAM).await;

    let postgres = if args.skip_postgres {
        None
    } else {
        eprintln!("(c) PostgreSQL baseline");
        let rate = postgres_baseline(&args.postgres, &stream, stored, args.batch).await?;
        eprintln!("(c) {:.0} msg/s", rate.per_second);
        Some(rate)
    };
    let _ = js.delete_stream(&settings.stream).await;

    eprintln!("latency at {} events/s for {} s", args.latency_rate, args.latency_seconds);
    let latency = feed_latency(&client, args).await?;
    let _ = js.delete_stream(premia_nats::FEED_STREAM).await;

    Ok(serde_json::json!({
        "events": args.events,
        "stored_in_stream": stored,
        "batch": args.batch,
        "publish": publish,
        "a_raw_consumer": raw,
        "b_serve": serve_plain,
        "b_serve_with_feed": serve_feed,
        "b_over_a": serve_plain.per_second / raw.per_second,
        "c_postgres": postgres,
        "b_over_c": postgres.as_ref().map(|c| serve_plain.per_second / c.per_second),
        "latency": latency,
    }))
}

/// A durable pull consumer from the start of the stream, acked once per batch.
async fn durable_consumer(
    stream: &jetstream::stream::Stream,
    name: &str,
    batch: usize,
) -> anyhow::Result<consumer::PullConsumer> {
    Ok(stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(name.into()),
            ack_policy: consumer::AckPolicy::All,
            max_ack_pending: (batch * 8) as i64,
            ..Default::default()
        })
        .await?)
}

/// (a): fetch and ack with no processing, acking once per batch (AckAll covers the batch).
async fn raw_consumer(stream: &jetstream::stream::Stream, expected: u64, batch: usize) -> anyhow::Result<Rate> {
    let consumer = durable_consumer(stream, "raw", batch).await?;
    let started = Instant::now();
    let mut messages = consumer.stream().max_messages_per_batch(batch).messages().await?;
    let mut received = 0u64;
    while received < expected {
        let message = messages.next().await.context("the stream ended early")?.map_err(anyhow::Error::msg)?;
        received += 1;
        if received.is_multiple_of(batch as u64) || received == expected {
            message.ack().await.map_err(anyhow::Error::msg)?;
        }
    }
    let rate = Rate::new(received, started.elapsed());
    stream.delete_consumer("raw").await.ok();
    Ok(rate)
}

/// (b): the real serve loop into an empty ledger in a temporary directory.
async fn serve_drain(
    client: &async_nats::Client,
    settings: &StreamSettings,
    batch: usize,
    feed: bool,
) -> anyhow::Result<Rate> {
    let dir = tempfile::tempdir()?;
    let mut ledger = Ledger::open(dir.path(), &LedgerOptions::default(), "bench")?;
    let options = ServeOptions { batch, drain: true, feed, ..ServeOptions::default() };
    let started = Instant::now();
    let report = premia_nats::serve(&mut ledger, client, settings, &options, std::future::pending(), None).await?;
    let elapsed = started.elapsed();
    let total = report.counts.total() + report.skipped;
    Ok(Rate::new(total, elapsed))
}

/// (c): the same rules (premia's pure core, in memory) with PostgreSQL as the store.
async fn postgres_baseline(
    connection: &str,
    stream: &jetstream::stream::Stream,
    expected: u64,
    batch: usize,
) -> anyhow::Result<Rate> {
    let (mut pg, driver) = tokio_postgres::connect(connection, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL ({connection}); pass --skip-postgres to skip"))?;
    tokio::spawn(driver);
    pg.batch_execute(
        "DROP SCHEMA IF EXISTS premia_bench CASCADE;
         CREATE SCHEMA premia_bench;
         CREATE TABLE premia_bench.events (
             source text NOT NULL, id text NOT NULL, type text NOT NULL, payload jsonb NOT NULL,
             stream_seq bigint NOT NULL, PRIMARY KEY (source, id));
         CREATE TABLE premia_bench.rejections (stream_seq bigint PRIMARY KEY, reason text NOT NULL, raw bytea NOT NULL);
         CREATE TABLE premia_bench.entries (
             event_source text NOT NULL, event_id text NOT NULL, kind text NOT NULL,
             manager_id text NOT NULL, period text NOT NULL, amount numeric(20, 2) NOT NULL);
         CREATE INDEX ON premia_bench.entries (manager_id, period);
         CREATE TABLE premia_bench.totals (
             manager_id text NOT NULL, period text NOT NULL, total numeric(20, 2) NOT NULL,
             PRIMARY KEY (manager_id, period));
         CREATE TABLE premia_bench.cursor (name text PRIMARY KEY, stream_seq bigint NOT NULL);",
    )
    .await?;
    let consumer = durable_consumer(stream, "postgres", batch).await?;
    let started = Instant::now();
    let mut messages = consumer.stream().max_messages_per_batch(batch).messages().await?;
    let mut state = LedgerState::new();
    let mut received = 0u64;
    while received < expected {
        let mut rows = Rows::default();
        let mut last = None;
        while rows.messages < batch && received < expected {
            let message = messages.next().await.context("the stream ended early")?.map_err(anyhow::Error::msg)?;
            received += 1;
            rows.offer(&mut state, &message);
            last = Some(message);
        }
        rows.write(&mut pg).await?;
        if let Some(last) = last {
            last.ack().await.map_err(anyhow::Error::msg)?;
        }
    }
    let rate = Rate::new(received, started.elapsed());
    stream.delete_consumer("postgres").await.ok();
    pg.batch_execute("DROP SCHEMA premia_bench CASCADE").await?;
    Ok(rate)
}

/// One batch's rows, as arrays for `unnest`: one statement per table per transaction.
#[derive(Default)]
struct Rows {
    messages: usize,
    last_seq: i64,
    events: EventColumns,
    rejections: RejectionColumns,
    entries: EntryColumns,
    /// Summed as exact decimals, sent to PostgreSQL as text.
    totals: HashMap<(String, String), rust_decimal::Decimal>,
}

#[derive(Default)]
struct EventColumns {
    source: Vec<String>,
    id: Vec<String>,
    event_type: Vec<&'static str>,
    payload: Vec<String>,
    stream_seq: Vec<i64>,
}

#[derive(Default)]
struct RejectionColumns {
    stream_seq: Vec<i64>,
    reason: Vec<&'static str>,
    raw: Vec<Vec<u8>>,
}

#[derive(Default)]
struct EntryColumns {
    source: Vec<String>,
    event_id: Vec<String>,
    kind: Vec<&'static str>,
    manager_id: Vec<String>,
    period: Vec<String>,
    amount: Vec<String>,
}

impl Rows {
    fn offer(&mut self, state: &mut LedgerState, message: &jetstream::Message) {
        self.messages += 1;
        let seq = message.info().map(|i| i.stream_sequence as i64).unwrap_or(0);
        self.last_seq = seq;
        let parsed = premia_core::event::parse_event(&message.payload, state.scheme(), Admission::Publisher);
        let identity =
            parsed.as_ref().ok().map(|e| (e.source.to_string(), e.id.to_string(), e.data.event_type().as_str()));
        let scheme = state.scheme_shared();
        match state.admit_parsed(&message.payload, parsed, &scheme, Admission::Publisher) {
            Admitted::Rejected(rejection) => {
                self.rejections.stream_seq.push(seq);
                self.rejections.reason.push(rejection.reason.code());
                self.rejections.raw.push(message.payload.to_vec());
            }
            Admitted::Duplicate => {}
            Admitted::Logged { folded, .. } => {
                if let Some((source, id, event_type)) = identity {
                    self.events.source.push(source);
                    self.events.id.push(id);
                    self.events.event_type.push(event_type);
                    self.events.payload.push(String::from_utf8_lossy(&message.payload).into_owned());
                    self.events.stream_seq.push(seq);
                }
                for f in &folded {
                    if let Outcome::Applied { entries } = &f.outcome {
                        for entry in entries {
                            let period = entry.period.to_string();
                            *self.totals.entry((entry.manager_id.to_string(), period.clone())).or_default() +=
                                entry.amount;
                            self.entries.source.push(entry.source.to_string());
                            self.entries.event_id.push(entry.event_id.to_string());
                            self.entries.kind.push(entry.kind.as_str());
                            self.entries.manager_id.push(entry.manager_id.to_string());
                            self.entries.period.push(period);
                            self.entries.amount.push(entry.amount.to_string());
                        }
                    }
                }
            }
        }
    }

    async fn write(self, pg: &mut tokio_postgres::Client) -> anyhow::Result<()> {
        let transaction = pg.transaction().await?;
        let e = &self.events;
        transaction
            .execute(
                "INSERT INTO premia_bench.events (source, id, type, payload, stream_seq)
                 SELECT s, i, t, p::jsonb, q FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
                     AS u(s, i, t, p, q)
                 ON CONFLICT (source, id) DO NOTHING",
                &[&e.source, &e.id, &e.event_type, &e.payload, &e.stream_seq],
            )
            .await?;
        let r = &self.rejections;
        transaction
            .execute(
                "INSERT INTO premia_bench.rejections SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[])",
                &[&r.stream_seq, &r.reason, &r.raw],
            )
            .await?;
        let n = &self.entries;
        transaction
            .execute(
                "INSERT INTO premia_bench.entries
                 SELECT s, i, k, m, p, a::numeric FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                     AS u(s, i, k, m, p, a)",
                &[&n.source, &n.event_id, &n.kind, &n.manager_id, &n.period, &n.amount],
            )
            .await?;
        let (mut managers, mut periods, mut amounts) = (Vec::new(), Vec::new(), Vec::new());
        for ((manager, period), amount) in self.totals {
            managers.push(manager);
            periods.push(period);
            amounts.push(amount.to_string());
        }
        transaction
            .execute(
                "INSERT INTO premia_bench.totals
                 SELECT m, p, a::numeric FROM unnest($1::text[], $2::text[], $3::text[]) AS u(m, p, a)
                 ON CONFLICT (manager_id, period) DO UPDATE SET total = premia_bench.totals.total + EXCLUDED.total",
                &[&managers, &periods, &amounts],
            )
            .await?;
        transaction
            .execute(
                "INSERT INTO premia_bench.cursor VALUES ('nats', $1)
                 ON CONFLICT (name) DO UPDATE SET stream_seq = EXCLUDED.stream_seq",
                &[&self.last_seq],
            )
            .await?;
        transaction.commit().await?;
        Ok(())
    }
}

#[derive(Debug, serde::Serialize)]
struct Latency {
    rate_per_second: u64,
    published: u64,
    measured: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// The 100 ms windows of publishing (from the start of the run, just before serve
    /// starts) whose slowest entry took more than 20 ms, in time order: where the tail is.
    slow_windows: Vec<SlowWindow>,
    /// How long each batch of the run waited to be durable (the flush), as `/metrics` shows it.
    serve_commit_seconds: premia_ledger::Histogram,
    serve_timings: premia_ledger::ServeTimings,
}

#[derive(Debug, serde::Serialize)]
struct SlowWindow {
    /// Milliseconds from the start of the run to the window's start.
    at_ms: u64,
    entries: usize,
    over_20_ms: usize,
    max_ms: f64,
}

/// The windows of `window_ms` whose slowest entry took more than 20 ms; `samples` are
/// (publish time from the start, latency).
fn slow_windows(samples: &[(Duration, Duration)], window_ms: u64) -> Vec<SlowWindow> {
    let slow = Duration::from_millis(20);
    let mut windows: std::collections::BTreeMap<u64, SlowWindow> = std::collections::BTreeMap::new();
    for &(at, latency) in samples {
        let start = at.as_millis() as u64 / window_ms * window_ms;
        let w = windows.entry(start).or_insert(SlowWindow { at_ms: start, entries: 0, over_20_ms: 0, max_ms: 0.0 });
        w.entries += 1;
        w.over_20_ms += usize::from(latency > slow);
        w.max_ms = w.max_ms.max(latency.as_secs_f64() * 1000.0);
    }
    windows.into_values().filter(|w| w.over_20_ms > 0).collect()
}

/// Publishes at a steady rate while `premia serve` runs with the feed on, and times each
/// booked entry from its event's publish to the feed message that carries it.
async fn feed_latency(client: &async_nats::Client, args: &Args) -> anyhow::Result<Latency> {
    let settings = StreamSettings {
        stream: "PREMIA_BENCH_LATENCY".into(),
        subjects: vec!["bench.latency.>".into()],
        consumer: "premia-latency".into(),
        ..StreamSettings::default()
    };
    let js = jetstream::new(client.clone());
    let _ = js.delete_stream(&settings.stream).await;
    premia_nats::ensure_stream(&js, &settings).await?;
    premia_nats::ensure_feed_stream(&js, 1).await?;

    let published_at: Arc<Mutex<HashMap<(String, String), Instant>>> = Arc::default();
    // (publish time from the start, latency) of every entry fed.
    let latencies: Arc<Mutex<Vec<(Duration, Duration)>>> = Arc::default();
    let start = Instant::now();
    eprintln!("latency run starts at {:?} (slow windows count from here)", std::time::SystemTime::now());
    let mut feed = client.subscribe(format!("{}>", premia_nats::FEED_SUBJECT_PREFIX)).await?;
    client.flush().await?;
    let watcher = {
        let (published_at, latencies) = (published_at.clone(), latencies.clone());
        tokio::spawn(async move {
            while let Some(message) = feed.next().await {
                let now = Instant::now();
                let Ok(value) = serde_json::from_slice::<serde_json::Value>(&message.payload) else { continue };
                let entries = value["updates"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|u| u["entries"].as_array().into_iter().flatten());
                let published_at = published_at.lock().unwrap_or_else(|p| p.into_inner());
                let mut latencies = latencies.lock().unwrap_or_else(|p| p.into_inner());
                for entry in entries {
                    let key = (
                        entry["event"]["source"].as_str().unwrap_or("").to_string(),
                        entry["event"]["id"].as_str().unwrap_or("").to_string(),
                    );
                    if let Some(at) = published_at.get(&key) {
                        latencies.push((*at - start, now - *at));
                    }
                }
            }
        })
    };

    let dir = tempfile::tempdir()?;
    let mut ledger = Ledger::open(dir.path(), &LedgerOptions::default(), "bench")?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serve_client = client.clone();
    let serve_settings = settings.clone();
    let server = tokio::spawn(async move {
        let options = ServeOptions { batch: 1000, ..ServeOptions::default() };
        let stopped = async {
            let _ = stopped.await;
        };
        let report = premia_nats::serve(&mut ledger, &serve_client, &serve_settings, &options, stopped, None).await;
        (ledger, report)
    });

    // A clean stream (no redeliveries, nothing parked), so every entry is booked by the event
    // just published rather than by a release of an older one.
    let options = premia::synth::SynthOptions { noise: false, ..premia::synth::SynthOptions::default() };
    let total = args.latency_rate * args.latency_seconds;
    let mut lines = premia::synth::Synth::new(args.seed + 1, options).take(total as usize);
    let per_tick = (args.latency_rate / 1000).max(1);
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let (acks_tx, mut acks_rx) = tokio::sync::mpsc::channel::<jetstream::context::PublishAckFuture>(65536);
    let acker = tokio::spawn(async move {
        while let Some(ack) = acks_rx.recv().await {
            let _ = ack.await;
        }
    });
    let mut published = 0u64;
    'publish: loop {
        ticker.tick().await;
        for _ in 0..per_tick {
            let Some(line) = lines.next() else { break 'publish };
            let envelope: serde_json::Value = serde_json::from_str(&line)?;
            let key = (
                envelope["source"].as_str().unwrap_or("").to_string(),
                envelope["id"].as_str().unwrap_or("").to_string(),
            );
            let subject = format!("bench.latency.{}", envelope["type"].as_str().unwrap_or("unknown"));
            published_at.lock().unwrap_or_else(|p| p.into_inner()).insert(key, Instant::now());
            let ack = js.publish(subject, line.into_bytes().into()).await?;
            acks_tx.send(ack).await.ok();
            published += 1;
        }
    }
    drop(acks_tx);
    acker.await.ok();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop.send(());
    let (_ledger, report) = server.await?;
    let report = report?;
    watcher.abort();
    let _ = js.delete_stream(&settings.stream).await;

    let samples = latencies.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut latencies: Vec<Duration> = samples.iter().map(|&(_, latency)| latency).collect();
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    Ok(Latency {
        rate_per_second: args.latency_rate,
        published,
        measured: latencies.len(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: latencies.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
        slow_windows: slow_windows(&samples, 100),
        serve_commit_seconds: report.commit_seconds,
        serve_timings: report.timings,
    })
}
