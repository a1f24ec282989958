//! premia-nats: the JetStream edge.
//!
//! - [`connect`]: a client from the settings NATS users expect (URL, user/password, token, NKey
//!   seed, `.creds` file, TLS with a custom CA).
//! - [`ensure_stream`] / [`reset_consumer`]: the file-backed events stream (created when
//!   missing) and premia's durable pull consumer, recreated at each start from the ledger's cursor.
//! - [`serve`]: receive a batch, offer every message to the ledger, commit (the stream sequence
//!   is written in the same sled batch), and only then ack the batch; rejections are published
//!   to `premia.rejected.<reason>`, the accrual feed to `premia.accruals.<manager>`. Batches are
//!   pipelined (the next is folded while the last is flushed), and NATS restarts are ridden out.
//! - [`publish_lines`]: JSON Lines to the stream, pipelined, with `Nats-Msg-Id` from each event's
//!   source and id.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use async_nats::HeaderMap;
use futures::StreamExt;
use premia_core::fold::Admitted;
use premia_core::Admission;
use premia_ledger::ingest::{now_ms, tally};
use premia_ledger::{Counts, Ledger, LedgerError, Origin};

/// How to reach NATS. Every field can come from a flag, an environment variable or the config file.
#[derive(Debug, Clone, Default)]
pub struct NatsSettings {
    pub url: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// An NKey seed (`SU...`).
    pub nkey_seed: Option<String>,
    /// A `.creds` file (JWT and NKey seed), as `nsc` writes them.
    pub creds_file: Option<PathBuf>,
    /// A PEM file of CA certificates to trust, for a server with a private CA.
    pub tls_ca_file: Option<PathBuf>,
    /// Refuse to talk to the server without TLS.
    pub tls_required: bool,
}

/// Names in JetStream premia uses.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub stream: String,
    pub subjects: Vec<String>,
    pub consumer: String,
    /// JetStream drops a message whose `Nats-Msg-Id` it saw within this window.
    pub duplicate_window: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            stream: "PREMIA_EVENTS".into(),
            subjects: vec!["crm.events.>".into()],
            consumer: "premia".into(),
            duplicate_window: Duration::from_secs(120),
        }
    }
}

/// The stream that keeps the accrual feed, so a consumer that was away can resume.
pub const FEED_STREAM: &str = "PREMIA_FEED";
/// Feed messages go to `premia.accruals.<manager id>`.
pub const FEED_SUBJECT_PREFIX: &str = "premia.accruals.";

/// A manager id as one subject token: characters NATS gives meaning to (`.`, `*`, `>`, white
/// space) become `_`.
pub fn subject_token(id: &str) -> String {
    id.chars().map(|c| if c == '.' || c == '*' || c == '>' || c.is_whitespace() { '_' } else { c }).collect()
}

pub async fn ensure_feed_stream(js: &jetstream::Context) -> Result<stream::Stream, NatsError> {
    js.get_or_create_stream(stream::Config {
        name: FEED_STREAM.into(),
        subjects: vec![format!("{FEED_SUBJECT_PREFIX}>")],
        storage: stream::StorageType::File,
        max_age: Duration::from_secs(90 * 24 * 3600),
        ..Default::default()
    })
    .await
    .map_err(|e| js_error(format!("create or open the stream {FEED_STREAM}"))(e.to_string()))
}

/// One feed message: what a batch changed for one manager.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
#[schemars(
    title = "premia accrual feed message",
    description = "Published on premia.accruals.<manager id> after each committed batch, for every manager the batch booked entries for or whose plan it changed; kept in the PREMIA_FEED stream."
)]
pub struct FeedMessage {
    pub manager_id: String,
    /// The ledger position after the batch: a consumer can tell updates apart and order them.
    pub ledger_seq: u64,
    pub updates: Vec<premia_core::statement::AccrualUpdate>,
}

/// The JSON Schema (2020-12) of a feed message, as checked in under `schemas/feed/`.
pub fn feed_schema() -> serde_json::Value {
    let mut schema = schemars::SchemaGenerator::default().root_schema_for::<FeedMessage>().to_value();
    if let serde_json::Value::Object(map) = &mut schema {
        map.insert("$id".into(), "urn:premia:schema:feed:accrual".into());
    }
    schema
}

/// The feed messages for the entries a batch booked, one per manager, in manager order.
/// Plan changes (manager, period) without entries get an update of their own: the projected
/// bonus moved.
pub fn feed_messages(
    state: &premia_core::LedgerState,
    booked: &[premia_core::Entry],
    plan_changes: &[(String, premia_core::Period)],
) -> Vec<FeedMessage> {
    let mut by_manager: std::collections::BTreeMap<
        &str,
        std::collections::BTreeMap<premia_core::Period, Vec<&premia_core::Entry>>,
    > = std::collections::BTreeMap::new();
    for entry in booked {
        by_manager.entry(&entry.manager_id).or_default().entry(entry.period).or_default().push(entry);
    }
    for (manager_id, period) in plan_changes {
        by_manager.entry(manager_id).or_default().entry(*period).or_default();
    }
    by_manager
        .into_iter()
        .map(|(manager_id, periods)| FeedMessage {
            manager_id: manager_id.to_string(),
            ledger_seq: state.next_seq() - 1,
            updates: periods
                .into_iter()
                .filter_map(|(period, entries)| state.accrual_update(period, manager_id, &entries))
                .collect(),
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot connect to NATS at {url}: {reason}. Is nats-server running there (with -js)? Check --nats-url and the credentials")]
    Connect { url: String, reason: String },
    #[error("cannot read {what} {path}: {reason}")]
    Credentials { what: &'static str, path: PathBuf, reason: String },
    #[error("JetStream refused to {action}: {reason}. Check that JetStream is enabled on the server (nats-server -js) and that no other stream claims the same subjects")]
    JetStream { action: String, reason: String },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("cannot read the input: {0}")]
    Read(std::io::Error),
}

fn js_error(action: impl Into<String>) -> impl FnOnce(String) -> NatsError {
    let action = action.into();
    move |reason| NatsError::JetStream { action, reason }
}

pub async fn connect(settings: &NatsSettings) -> Result<async_nats::Client, NatsError> {
    let mut options = async_nats::ConnectOptions::new().name("premia");
    if let (Some(user), Some(password)) = (&settings.user, &settings.password) {
        options = options.user_and_password(user.clone(), password.clone());
    }
    if let Some(token) = &settings.token {
        options = options.token(token.clone());
    }
    if let Some(seed) = &settings.nkey_seed {
        options = options.nkey(seed.clone());
    }
    if let Some(path) = &settings.creds_file {
        options = options.credentials_file(path).await.map_err(|e| NatsError::Credentials {
            what: "the credentials file",
            path: path.clone(),
            reason: e.to_string(),
        })?;
    }
    if let Some(path) = &settings.tls_ca_file {
        options = options.add_root_certificates(path.clone());
    }
    if settings.tls_required {
        options = options.require_tls(true);
    }
    options
        .connect(settings.url.as_str())
        .await
        .map_err(|e| NatsError::Connect { url: settings.url.clone(), reason: e.to_string() })
}

/// The events stream: file-backed, created when missing.
pub async fn ensure_stream(js: &jetstream::Context, settings: &StreamSettings) -> Result<stream::Stream, NatsError> {
    js.get_or_create_stream(stream::Config {
        name: settings.stream.clone(),
        subjects: settings.subjects.clone(),
        storage: stream::StorageType::File,
        duplicate_window: settings.duplicate_window,
        ..Default::default()
    })
    .await
    .map_err(|e| js_error(format!("create or open the stream {}", settings.stream))(e.to_string()))
}

/// premia's durable pull consumer, starting right after `cursor` (the last stream sequence the
/// ledger holds). It acks once per batch (`AckPolicy::All`: acking the last message of a batch
/// acknowledges every one before it).
///
/// The ledger's cursor is the authority on what has been taken in, not the consumer's own
/// delivery state: after a crash, messages delivered to the dead process stay unacked until
/// their ack wait runs out, and JetStream would meanwhile deliver later ones (and an ack of a
/// later one would acknowledge them all). So the consumer is recreated at every start from the
/// cursor, and deliveries within one run are in stream order.
pub async fn reset_consumer(
    stream: &stream::Stream,
    settings: &StreamSettings,
    batch: usize,
    cursor: u64,
) -> Result<consumer::PullConsumer, NatsError> {
    // Not found is fine: the first start has no consumer yet.
    let _ = stream.delete_consumer(&settings.consumer).await;
    let deliver_policy = if cursor == 0 {
        consumer::DeliverPolicy::All
    } else {
        consumer::DeliverPolicy::ByStartSequence { start_sequence: cursor + 1 }
    };
    stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(settings.consumer.clone()),
            deliver_policy,
            ack_policy: consumer::AckPolicy::All,
            ack_wait: Duration::from_secs(60),
            // Received but not yet acked: prefetched, parsed, folded, in flight to disk. What
            // bounds memory is the pull (a batch at a time) and the bounded queues after it;
            // this limit only must not stall delivery while a batch is being made durable.
            max_ack_pending: (batch as i64) * 64,
            ..Default::default()
        })
        .await
        .map_err(|e| js_error(format!("create the consumer {}", settings.consumer))(e.to_string()))
}

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The most messages folded into one committed batch (and acked with one ack). Under load
    /// batches fill up; when messages trickle in, whatever has arrived is committed at once, so
    /// latency stays low.
    pub batch: usize,
    /// Stop once the stream has nothing pending for premia.
    pub drain: bool,
    /// How long to wait for a message before checking whether the stream is drained, and how
    /// long to wait before retrying after NATS went away.
    pub idle_wait: Duration,
    /// Store a snapshot after this many logged events. Writing one holds up the fold (about a
    /// second per million events held), and recovery folds at most this many events again.
    pub snapshot_every: u64,
    /// Publish the accrual feed (off for scratch runs such as the demo).
    pub feed: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            batch: 1000,
            drain: false,
            idle_wait: Duration::from_millis(500),
            snapshot_every: 2_000_000,
            feed: true,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ServeReport {
    pub counts: Counts,
    pub batches: u64,
    /// Feed messages JetStream did not confirm (the ledger is unaffected; see the logs).
    pub feed_failures: u64,
    /// Messages at or below the stored cursor: already in the ledger, redelivered after a
    /// crash between commit and ack. Acked again, not offered again.
    pub skipped: u64,
    /// Times the consumer was set up again after NATS went away or a fetch failed.
    pub resumes: u64,
    pub timings: ServeTimings,
    /// Rejections since serve started, by reason (those `counts.rejected` counts).
    pub rejected_by_reason: ReasonCounts,
    /// Messages per committed batch (buckets: [`BATCH_SIZE_BOUNDS`]).
    pub batch_sizes: Histogram,
    /// Seconds each committed batch waited for its flush (buckets: [`COMMIT_SECONDS_BOUNDS`]).
    pub commit_seconds: Histogram,
    /// Messages the server still had for the consumer after the last one delivered (its
    /// `num_pending`, as each message's metadata carries it); `None` before the first message.
    pub consumer_pending: Option<u64>,
}

/// Upper bounds of the batch size histogram's buckets (messages per batch; +Inf follows).
pub const BATCH_SIZE_BOUNDS: &[f64] = &[1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0];
/// Upper bounds of the commit latency histogram's buckets (seconds; +Inf follows).
pub const COMMIT_SECONDS_BOUNDS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// A fixed-bucket histogram: `buckets[i]` counts the observations at or below bound i (and
/// above bound i - 1); `buckets[bounds.len()]` those above every bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Histogram {
    pub buckets: [u64; 16],
    /// Of the observed values (batch sizes, seconds): Prometheus' `_sum`. Never money.
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&mut self, bounds: &[f64], value: f64) {
        let slot = bounds.iter().position(|&b| value <= b).unwrap_or(bounds.len()).min(self.buckets.len() - 1);
        self.buckets[slot] += 1;
        self.sum += value;
        self.count += 1;
    }

    /// `(bound, observations at or below it)` for each bound, then `(+Inf, count)`.
    pub fn cumulative(&self, bounds: &[f64]) -> Vec<(f64, u64)> {
        let mut total = 0;
        let mut out: Vec<(f64, u64)> = bounds
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                total += self.buckets.get(i).copied().unwrap_or(0);
                (b, total)
            })
            .collect();
        out.push((f64::INFINITY, self.count));
        out
    }
}

/// Counts per rejection reason, in the order of `Reason::ALL`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReasonCounts([u64; premia_core::Reason::ALL.len()]);

impl Default for ReasonCounts {
    fn default() -> ReasonCounts {
        ReasonCounts([0; premia_core::Reason::ALL.len()])
    }
}

impl ReasonCounts {
    pub fn add(&mut self, reason: premia_core::Reason) {
        if let Some(i) = premia_core::Reason::ALL.iter().position(|&r| r == reason) {
            self.0[i] += 1;
        }
    }

    /// `(reason, count)` of every reason counted at least once.
    pub fn nonzero(&self) -> impl Iterator<Item = (premia_core::Reason, u64)> + '_ {
        premia_core::Reason::ALL.iter().zip(self.0.iter()).filter(|(_, &n)| n > 0).map(|(&r, &n)| (r, n))
    }
}

impl serde::Serialize for ReasonCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.nonzero().map(|(r, n)| (r.code(), n)))
    }
}

/// Where the serving loop's time went (milliseconds, summed over batches), for tuning.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ServeTimings {
    /// Waiting for the next parsed chunk from NATS.
    pub receive_wait_ms: f64,
    /// Offering messages to the ledger (admit, fold, hash chain) and computing the feed.
    pub fold_ms: f64,
    /// Waiting for the writer thread to flush a batch.
    pub durable_wait_ms: f64,
}

/// The cursor name under which the ledger keeps the last stream sequence it took in.
pub fn cursor_name(settings: &StreamSettings) -> String {
    format!("nats:{}", settings.stream)
}

/// A folded batch on its way to disk: acked, announced and fed once it is durable.
struct InFlight {
    ticket: u64,
    last: jetstream::Message,
    messages: usize,
    cursor: u64,
    rejected: Vec<(premia_core::Rejection, bytes::Bytes)>,
    feed: Vec<FeedMessage>,
    /// The last message said nothing more was pending for the consumer.
    drained: bool,
}

/// A read of the ledger asked from outside the serving loop (the HTTP API). The loop owns the
/// ledger, so a reader hands it a closure, which the loop runs between batches with the ledger
/// and its own counters; the closure sends its answer back however it likes (a oneshot).
pub type Query = Box<dyn FnOnce(&Ledger, &ServeReport) + Send>;

/// How the HTTP API reads what `serve` holds: queries the loop runs between its steps, and the
/// statements' read model, which the loop publishes each batch to once it is durable, and which
/// the API reads without the loop (loading a period's entries is a query).
pub struct Readers {
    pub queries: tokio::sync::mpsc::Receiver<Query>,
    pub statements: std::sync::Arc<premia_ledger::ReadModel>,
}

/// What woke the serving loop.
enum Step {
    Flushed,
    Received(Option<Box<ParsedChunk>>),
    Query(Query),
    Idle,
}

/// The next query, or never when no one can ask (no receiver, or every sender is gone), so the
/// loop's select does not spin on a closed channel.
async fn next_query(queries: &mut Option<tokio::sync::mpsc::Receiver<Query>>) -> Query {
    match queries {
        Some(receiver) => match receiver.recv().await {
            Some(query) => query,
            None => {
                *queries = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

/// Messages folded into the ledger's memory but not yet handed to the writer. Chunks keep
/// being gathered here while the batch before is being flushed (group commit): the slower the
/// disk, the bigger the batches, and no message waits for more than one flush.
#[derive(Default)]
struct Gathering {
    last: Option<jetstream::Message>,
    messages: usize,
    rejected: Vec<(premia_core::Rejection, bytes::Bytes)>,
    booked: Vec<premia_core::Entry>,
    /// (manager, period) of each plan assignment applied: no entry, yet the projection moved.
    plans: Vec<(String, premia_core::Period)>,
    drained: bool,
}

/// Consumes the stream into the ledger until `shutdown` resolves (or, with `drain`, until
/// nothing is pending). A batch is acked only after the sled batch holding it is flushed.
///
/// Three stages overlap: a task receives and parses messages; this loop folds them; the
/// ledger's writer thread flushes the previous batch meanwhile. Each batch is acked (and its
/// feed published) as soon as it is durable. When NATS goes away (a restart, a network cut),
/// the batch in hand is finished, and the consumer is set up again from the ledger's cursor
/// once the server answers; nothing is lost or counted twice.
pub async fn serve(
    ledger: &mut Ledger,
    client: &async_nats::Client,
    settings: &StreamSettings,
    options: &ServeOptions,
    shutdown: impl std::future::Future<Output = ()>,
    readers: Option<Readers>,
) -> Result<ServeReport, NatsError> {
    let (mut queries, statements) = match readers {
        Some(Readers { queries, statements }) => (Some(queries), Some(statements)),
        None => (None, None),
    };
    if let Some(statements) = &statements {
        // The read model starts from a durable state, and follows each batch from here on.
        ledger.commit()?;
        ledger.track_statements(true);
        statements.reset(ledger);
    }
    let statements = statements.as_deref();
    let js = jetstream::new(client.clone());
    let cursor_key = cursor_name(settings);
    let first_seq = ledger.state().next_seq();
    let mut report = ServeReport::default();
    let mut last_snapshot_seq = first_seq;
    let mut in_flight: Option<InFlight> = None;
    let mut gathering = Gathering::default();
    let mut setup_failures = 0u32;
    let announcer = Announcer::start(client.clone());
    let (durable_sender, mut durable) = tokio::sync::watch::channel(0u64);
    ledger.on_durable(move |ticket| {
        let _ = durable_sender.send(ticket);
    });
    tokio::pin!(shutdown);
    'resume: loop {
        // (Re)connect to the stream and recreate the consumer from the ledger's cursor.
        let setup = async {
            let stream = ensure_stream(&js, settings).await?;
            if options.feed {
                ensure_feed_stream(&js).await?;
            }
            let cursor = ledger.cursor(&cursor_key).unwrap_or(0);
            let consumer = reset_consumer(&stream, settings, options.batch, cursor).await?;
            let messages = consumer
                .stream()
                .max_messages_per_batch(options.batch)
                // Two missed heartbeats tell a dead connection: a NATS restart is noticed
                // within about four seconds.
                .heartbeat(Duration::from_secs(2))
                .expires(Duration::from_secs(20))
                .messages()
                .await
                .map_err(|e| js_error("start consuming")(e.to_string()))?;
            Ok::<_, NatsError>((consumer, messages))
        };
        let (mut consumer, messages) = match setup.await {
            Ok(ready) => {
                setup_failures = 0;
                ready
            }
            // The first setup failing is a configuration problem: say so at once. Later ones
            // are NATS coming back after a restart: wait for it.
            Err(e) if report.batches == 0 && report.resumes == 0 => return Err(e),
            Err(e) => {
                setup_failures += 1;
                if setup_failures % 10 == 1 {
                    tracing::warn!(error = %e, "NATS is not answering yet; retrying");
                }
                tokio::select! {
                    _ = &mut shutdown => break 'resume,
                    _ = tokio::time::sleep(options.idle_wait) => continue 'resume,
                }
            }
        };
        let (scheme_sender, schemes) = tokio::sync::watch::channel(ledger.state().scheme_shared());
        let (mut received, parser) = spawn_parser(messages, options.batch, schemes);
        loop {
            let idle = in_flight.is_none() && gathering.messages == 0;
            let waited = std::time::Instant::now();
            let event = tokio::select! {
                biased;
                _ = &mut shutdown => break 'resume,
                // A flush finished: ack and announce that batch, hand the writer the next.
                _ = durable.changed(), if in_flight.is_some() => Step::Flushed,
                // Ahead of new messages, so reads are not starved while a backlog is folded.
                query = next_query(&mut queries) => Step::Query(query),
                chunk = received.recv() => Step::Received(chunk.map(Box::new)),
                _ = tokio::time::sleep(options.idle_wait), if idle => Step::Idle,
            };
            report.timings.receive_wait_ms += waited.elapsed().as_secs_f64() * 1e3;
            let chunk = match event {
                Step::Flushed => {
                    if in_flight.as_ref().map(|b| ledger.is_durable(b.ticket)).transpose()? == Some(true) {
                        finish(ledger, &announcer, statements, in_flight.take(), &mut report).await?;
                        in_flight = submit(ledger, &cursor_key, &mut gathering, options.feed)?;
                    }
                    None
                }
                Step::Query(query) => {
                    query(&*ledger, &report);
                    None
                }
                Step::Idle => {
                    if options.drain
                        && nothing_pending(&mut consumer, ledger.cursor(&cursor_key).unwrap_or(0))
                            .await
                            .unwrap_or(false)
                    {
                        parser.abort();
                        break 'resume;
                    }
                    None
                }
                Step::Received(None) => {
                    settle_all(
                        ledger,
                        &announcer,
                        statements,
                        &cursor_key,
                        &mut in_flight,
                        &mut gathering,
                        options,
                        &mut report,
                    )
                    .await?;
                    tracing::warn!("the message stream ended; setting the consumer up again");
                    report.resumes += 1;
                    continue 'resume;
                }
                Step::Received(Some(chunk)) => Some(chunk),
            };
            let Some(chunk) = chunk else { continue };
            let mut chunk = *chunk;
            let failure = chunk.failure.take();
            let folding = std::time::Instant::now();
            gather(ledger, &cursor_key, chunk, first_seq, &mut gathering, &mut report);
            // The first event of an empty ledger logs the scheme (a new one in memory), as does
            // an activation: parse what follows under it.
            if !std::sync::Arc::ptr_eq(&scheme_sender.borrow(), &ledger.state().scheme_shared()) {
                scheme_sender.send_replace(ledger.state().scheme_shared());
            }
            report.timings.fold_ms += folding.elapsed().as_secs_f64() * 1e3;
            // Group commit: one batch at a time is being flushed; what arrives meanwhile
            // gathers and goes next. A full gathering waits for the flush in progress.
            if in_flight.is_none() || gathering.messages >= options.batch {
                finish(ledger, &announcer, statements, in_flight.take(), &mut report).await?;
                in_flight = submit(ledger, &cursor_key, &mut gathering, options.feed)?;
            }
            if ledger.state().next_seq() - last_snapshot_seq >= options.snapshot_every {
                settle_all(
                    ledger,
                    &announcer,
                    statements,
                    &cursor_key,
                    &mut in_flight,
                    &mut gathering,
                    options,
                    &mut report,
                )
                .await?;
                ledger.snapshot()?;
                last_snapshot_seq = ledger.state().next_seq();
            }
            let drained =
                gathering.drained || (gathering.messages == 0 && in_flight.as_ref().is_some_and(|b| b.drained));
            if options.drain && drained {
                settle_all(
                    ledger,
                    &announcer,
                    statements,
                    &cursor_key,
                    &mut in_flight,
                    &mut gathering,
                    options,
                    &mut report,
                )
                .await?;
                if nothing_pending(&mut consumer, ledger.cursor(&cursor_key).unwrap_or(0)).await.unwrap_or(false) {
                    parser.abort();
                    break 'resume;
                }
            }
            if let Some(e) = failure {
                settle_all(
                    ledger,
                    &announcer,
                    statements,
                    &cursor_key,
                    &mut in_flight,
                    &mut gathering,
                    options,
                    &mut report,
                )
                .await?;
                tracing::warn!(error = %e, "receiving from JetStream failed; setting the consumer up again");
                report.resumes += 1;
                parser.abort();
                tokio::select! {
                    _ = &mut shutdown => break 'resume,
                    _ = tokio::time::sleep(options.idle_wait) => continue 'resume,
                }
            }
        }
    }
    settle_all(ledger, &announcer, statements, &cursor_key, &mut in_flight, &mut gathering, options, &mut report)
        .await?;
    report.feed_failures += announcer.close().await;
    ledger.commit()?;
    ledger.snapshot()?;
    if let Some(statements) = statements {
        publish_statements(ledger, statements)?;
        ledger.track_statements(false);
    }
    report.counts.parked = ledger.state().parked().range(first_seq..).count() as u64;
    tracing::info!(
        batches = report.batches,
        receive_wait_ms = report.timings.receive_wait_ms as u64,
        fold_ms = report.timings.fold_ms as u64,
        durable_wait_ms = report.timings.durable_wait_ms as u64,
        "serving stopped"
    );
    Ok(report)
}

/// Makes everything folded so far durable, acked and announced.
#[allow(clippy::too_many_arguments)]
async fn settle_all(
    ledger: &mut Ledger,
    announcer: &Announcer,
    statements: Option<&premia_ledger::ReadModel>,
    cursor_key: &str,
    in_flight: &mut Option<InFlight>,
    gathering: &mut Gathering,
    options: &ServeOptions,
    report: &mut ServeReport,
) -> Result<(), NatsError> {
    finish(ledger, announcer, statements, in_flight.take(), report).await?;
    let last = submit(ledger, cursor_key, gathering, options.feed)?;
    finish(ledger, announcer, statements, last, report).await
}

/// Publishes to the read model what the batches made durable so far changed.
fn publish_statements(ledger: &mut Ledger, statements: &premia_ledger::ReadModel) -> Result<(), LedgerError> {
    for update in ledger.durable_statement_updates()? {
        statements.publish(ledger, update);
    }
    Ok(())
}

/// Messages as they came in, each parsed and validated (the costly part of taking an event in)
/// ahead of the fold.
struct ParsedChunk {
    messages: Vec<Received>,
    /// The chunk's last message, kept whole: acking it acks the chunk.
    last: Option<jetstream::Message>,
    parsed_with: std::sync::Arc<premia_core::Scheme>,
    /// Receiving failed after these messages: the consumer must be set up again.
    failure: Option<consumer::pull::MessagesError>,
}

/// One message as the fold needs it.
struct Received {
    payload: bytes::Bytes,
    stream_sequence: u64,
    /// Messages the server still had for the consumer after this one.
    pending: u64,
    event: Result<premia_core::Event, premia_core::Rejection>,
}

/// Receives and parses on a task of its own, so parsing overlaps the fold. At most two parsed
/// chunks wait; the task ends with the receiver, or after a failure.
fn spawn_parser(
    messages: consumer::pull::Stream,
    batch: usize,
    // The scheme in force, as the fold last saw it: an event parsed under another one is
    // parsed again by the fold.
    schemes: tokio::sync::watch::Receiver<std::sync::Arc<premia_core::Scheme>>,
) -> (tokio::sync::mpsc::Receiver<ParsedChunk>, tokio::task::JoinHandle<()>) {
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    let task = tokio::spawn(async move {
        let mut chunks = messages.ready_chunks(batch);
        while let Some(chunk) = chunks.next().await {
            let scheme = schemes.borrow().clone();
            let parse = || {
                let mut parsed = Vec::with_capacity(chunk.len());
                let mut last = None;
                let mut failure = None;
                for message in chunk {
                    match message {
                        Ok(message) => {
                            let event =
                                premia_core::event::parse_event(&message.payload, &scheme, Admission::Publisher);
                            let (stream_sequence, pending) =
                                message.info().map(|i| (i.stream_sequence, i.pending)).unwrap_or((0, 1));
                            parsed.push(Received { payload: message.payload.clone(), stream_sequence, pending, event });
                            // Only the last message is needed whole (for the ack); the others are
                            // dropped here, on the thread that allocated them.
                            last = Some(message);
                        }
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                ParsedChunk { messages: parsed, last, parsed_with: scheme.clone(), failure }
            };
            let parsed = match tokio::runtime::Handle::current().runtime_flavor() {
                tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(parse),
                _ => parse(),
            };
            let failed = parsed.failure.is_some();
            if sender.send(parsed).await.is_err() || failed {
                break;
            }
        }
    });
    (receiver, task)
}

/// Offers every message of a chunk to the ledger (in memory) and moves the cursor.
fn gather(
    ledger: &mut Ledger,
    cursor_key: &str,
    chunk: ParsedChunk,
    first_seq: u64,
    gathering: &mut Gathering,
    report: &mut ServeReport,
) {
    let ParsedChunk { messages: received, last, parsed_with, .. } = chunk;
    let mut cursor = ledger.cursor(cursor_key).unwrap_or(0);
    for Received { payload, stream_sequence, pending, event: parsed } in received {
        gathering.drained = pending == 0;
        report.consumer_pending = Some(pending);
        gathering.messages += 1;
        if stream_sequence <= cursor {
            report.skipped += 1;
        } else {
            // Taken from the parse already made: the plan's manager and period do not depend on
            // the scheme, so they hold even if the fold parses the event again.
            let plan = match &parsed {
                Ok(premia_core::Event { data: premia_core::EventData::PlanAssigned(plan), .. }) => {
                    Some((plan.manager_id.to_string(), plan.period))
                }
                _ => None,
            };
            let admitted =
                ledger.offer_parsed(&payload, parsed, &parsed_with, Origin::Nats, Admission::Publisher, now_ms());
            tally(&mut report.counts, &admitted, first_seq);
            tally_reasons(&mut report.rejected_by_reason, &admitted, first_seq);
            match &admitted {
                Admitted::Rejected(rejection) => gathering.rejected.push((rejection.clone(), payload.clone())),
                Admitted::Logged { folded, .. } => {
                    for f in folded {
                        if let premia_core::Outcome::Applied { entries } = &f.outcome {
                            gathering.booked.extend(entries.iter().cloned());
                            if f.event_type == premia_core::EventType::PlanAssigned && !f.released {
                                gathering.plans.extend(plan.clone());
                            }
                        }
                    }
                }
                Admitted::Duplicate => {}
            }
            cursor = stream_sequence;
        }
    }
    if last.is_some() {
        gathering.last = last;
    }
    ledger.set_cursor(cursor_key, cursor);
}

/// Counts the rejections of one offer by reason, as `tally` counts them.
fn tally_reasons(counts: &mut ReasonCounts, admitted: &Admitted, first_seq: u64) {
    match admitted {
        Admitted::Logged { folded, .. } => {
            for f in folded {
                if f.seq < first_seq || f.event_type == premia_core::EventType::SchemeActivated {
                    continue;
                }
                if let premia_core::Outcome::Rejected(rejection) = &f.outcome {
                    counts.add(rejection.reason);
                }
            }
        }
        Admitted::Rejected(rejection) => counts.add(rejection.reason),
        Admitted::Duplicate => {}
    }
}

/// Hands what was gathered to the writer thread, with the cursor in the same batch, and
/// computes its feed from the state it leaves. `None` when nothing was gathered.
fn submit(
    ledger: &mut Ledger,
    cursor_key: &str,
    gathering: &mut Gathering,
    feed: bool,
) -> Result<Option<InFlight>, NatsError> {
    let Gathering { last, messages, rejected, booked, plans, drained } = std::mem::take(gathering);
    let Some(last) = last else { return Ok(None) };
    let cursor = ledger.cursor(cursor_key).unwrap_or(0);
    let feed = if feed { feed_messages(ledger.state(), &booked, &plans) } else { vec![] };
    let ticket = ledger.submit()?;
    Ok(Some(InFlight { ticket, last, messages, cursor, rejected, feed, drained }))
}

/// Waits until a folded batch is durable, then acks it and hands its rejection notices and
/// feed to the announcer. Neither of those can lose anything: the batch is already stored.
async fn finish(
    ledger: &mut Ledger,
    announcer: &Announcer,
    statements: Option<&premia_ledger::ReadModel>,
    batch: Option<InFlight>,
    report: &mut ServeReport,
) -> Result<(), NatsError> {
    let Some(batch) = batch else { return Ok(()) };
    let waited = std::time::Instant::now();
    wait_durable(ledger, batch.ticket)?;
    let flush_wait = waited.elapsed().as_secs_f64();
    // Before the counters move: whoever sees this batch counted (/metrics) can read it.
    if let Some(statements) = statements {
        publish_statements(ledger, statements)?;
    }
    report.timings.durable_wait_ms += flush_wait * 1e3;
    report.commit_seconds.observe(COMMIT_SECONDS_BOUNDS, flush_wait);
    report.batch_sizes.observe(BATCH_SIZE_BOUNDS, batch.messages as f64);
    // A failed ack loses nothing: the cursor is stored, and a redelivery is skipped. The last
    // batch of a drain waits for the server's confirmation, so the consumer's state that
    // decides whether the stream is drained already counts it.
    let acked = if batch.drained { batch.last.double_ack().await } else { batch.last.ack().await };
    if let Err(e) = acked {
        tracing::warn!(error = %e, cursor = batch.cursor, "could not acknowledge a stored batch");
    }
    report.batches += 1;
    tracing::debug!(messages = batch.messages, cursor = batch.cursor, "batch committed and acked");
    announcer.announce(batch.rejected, batch.feed).await;
    Ok(())
}

/// Publishes rejection notices and the accrual feed on a task of its own, in batch order, so
/// that waiting for JetStream to confirm feed messages never holds up the next batch. The
/// queue is bounded: when NATS is slower than the ledger, serving slows down with it.
struct Announcer {
    sender: Option<tokio::sync::mpsc::Sender<Announcement>>,
    task: tokio::task::JoinHandle<u64>,
}

type Announcement = (Vec<(premia_core::Rejection, bytes::Bytes)>, Vec<FeedMessage>);

impl Announcer {
    fn start(client: async_nats::Client) -> Announcer {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Announcement>(64);
        let task = tokio::spawn(async move {
            let js = jetstream::new(client.clone());
            let mut failures = FeedFailures::default();
            let mut acks = futures::stream::FuturesUnordered::<FeedAck>::new();
            loop {
                tokio::select! {
                    Some(acked) = acks.next(), if !acks.is_empty() => {
                        if let Err(e) = acked {
                            failures.count(&e);
                        }
                    }
                    next = receiver.recv() => {
                        let Some((rejected, feed)) = next else { break };
                        for (rejection, payload) in rejected {
                            publish_rejection(&client, &rejection, payload).await;
                        }
                        publish_feed(&js, feed, &mut acks, &mut failures).await;
                    }
                }
            }
            while let Some(acked) = acks.next().await {
                if let Err(e) = acked {
                    failures.count(&e);
                }
            }
            failures.count
        });
        Announcer { sender: Some(sender), task }
    }

    async fn announce(&self, rejected: Vec<(premia_core::Rejection, bytes::Bytes)>, feed: Vec<FeedMessage>) {
        if rejected.is_empty() && feed.is_empty() {
            return;
        }
        if let Some(sender) = &self.sender {
            // The task ends only when the sender is dropped, so this fails only if it panicked.
            let _ = sender.send((rejected, feed)).await;
        }
    }

    /// Publishes everything still queued; returns the feed messages JetStream did not confirm.
    async fn close(mut self) -> u64 {
        self.sender = None;
        self.task.await.unwrap_or(0)
    }
}

/// Blocks on the writer thread without stalling the runtime's other tasks (the NATS
/// connection keeps being served meanwhile).
fn wait_durable(ledger: &Ledger, ticket: u64) -> Result<(), LedgerError> {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(|| ledger.wait_durable(ticket)),
        _ => ledger.wait_durable(ticket),
    }
}

/// Whether the stream holds nothing the ledger lacks: nothing left to deliver, and everything
/// delivered is at or below the ledger's cursor. The consumer's own count of unacked messages
/// is not used: after a server restart it can keep counting messages whose acks were lost,
/// though the ack floor is past them, and the ledger's cursor is the authority anyway.
async fn nothing_pending(consumer: &mut consumer::PullConsumer, cursor: u64) -> Result<bool, NatsError> {
    let info = consumer.info().await.map_err(|e| js_error("read the consumer's state")(e.to_string()))?;
    tracing::debug!(
        pending = info.num_pending,
        ack_pending = info.num_ack_pending,
        ack_floor = info.ack_floor.stream_sequence,
        delivered = info.delivered.stream_sequence,
        "consumer state"
    );
    Ok(info.num_pending == 0 && info.delivered.stream_sequence <= cursor)
}

/// JetStream's confirmation of one feed message.
type FeedAck =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), jetstream::context::PublishError>> + Send>>;

/// The most feed messages awaiting JetStream's confirmation at once.
const FEED_ACKS_IN_FLIGHT: usize = 4096;

/// Publishes the feed of a committed batch in order; confirmations are awaited alongside,
/// up to [`FEED_ACKS_IN_FLIGHT`] at once, so a slow or restarting server never stalls the
/// publishing of later batches for a round trip each.
async fn publish_feed(
    js: &jetstream::Context,
    messages: Vec<FeedMessage>,
    acks: &mut futures::stream::FuturesUnordered<FeedAck>,
    failures: &mut FeedFailures,
) {
    for message in messages {
        while acks.len() >= FEED_ACKS_IN_FLIGHT {
            if let Some(Err(e)) = acks.next().await {
                failures.count(&e);
            }
        }
        let subject = format!("{FEED_SUBJECT_PREFIX}{}", subject_token(&message.manager_id));
        let payload = match serde_json::to_vec(&message) {
            Ok(p) => p,
            Err(e) => {
                failures.count(&e);
                continue;
            }
        };
        match js.publish(subject, payload.into()).await {
            Ok(ack) => acks.push(Box::pin(async move { ack.await.map(|_| ()) })),
            Err(e) => failures.count(&e),
        }
    }
}

/// Feed messages JetStream did not take, logged without flooding the log during an outage.
#[derive(Default)]
struct FeedFailures {
    count: u64,
}

impl FeedFailures {
    fn count(&mut self, error: &dyn std::fmt::Display) {
        self.count += 1;
        if self.count == 1 || self.count.is_multiple_of(1000) {
            tracing::warn!(error = %error, failures = self.count, "feed messages were not confirmed by JetStream");
        }
    }
}

/// Tells subscribers at once why an event was refused. Best effort: the rejection is already
/// stored in the ledger, so a failed publish loses nothing.
async fn publish_rejection(client: &async_nats::Client, rejection: &premia_core::Rejection, payload: bytes::Bytes) {
    let mut headers = HeaderMap::new();
    headers.insert("Premia-Reason", rejection.reason.code());
    headers.insert("Premia-Message", rejection.message.replace(['\r', '\n'], " ").as_str());
    let subject = format!("premia.rejected.{}", rejection.reason.code());
    if let Err(e) = client.publish_with_headers(subject, headers, payload).await {
        tracing::warn!(error = %e, "could not publish a rejection notice");
    }
}

/// The `Nats-Msg-Id` of an event: its source and id, length-prefixed so that no two
/// (source, id) pairs share one.
pub fn message_id(source: &str, id: &str) -> String {
    format!("{}:{source}{id}", source.len())
}

/// What an event's subject starts with, `crm.events.` by default; its type follows.
pub fn subject_prefix(settings: &StreamSettings) -> String {
    settings.subjects.first().map(|s| s.trim_end_matches('>').to_string()).unwrap_or_default()
}

/// What `publish_lines` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PublishReport {
    pub published: u64,
    /// Messages JetStream dropped because it saw their `Nats-Msg-Id` within its window.
    pub duplicates: u64,
    /// Lines that are not events, published without a message id (the ledger rejects them).
    pub without_id: u64,
}

/// Publishes JSON Lines to the stream, keeping up to `in_flight` acks outstanding.
pub async fn publish_lines(
    client: &async_nats::Client,
    settings: &StreamSettings,
    lines: impl Iterator<Item = std::io::Result<Vec<u8>>>,
    in_flight: usize,
    mut progress: impl FnMut(&PublishReport),
) -> Result<PublishReport, NatsError> {
    let js = jetstream::new(client.clone());
    ensure_stream(&js, settings).await?;
    let subject_prefix = subject_prefix(settings);
    let mut report = PublishReport::default();
    let mut acks = std::collections::VecDeque::new();
    for line in lines {
        let mut line = line.map_err(NatsError::Read)?;
        if line.ends_with(b"\r") {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let envelope = serde_json::from_slice::<Envelope>(&line).ok();
        let (subject, id) = match &envelope {
            Some(Envelope { source: Some(source), id: Some(id), event_type: Some(t) })
                if !t.contains(['*', '>', ' ']) =>
            {
                (format!("{subject_prefix}{t}"), Some(message_id(source, id)))
            }
            _ => (format!("{subject_prefix}unparsed"), None),
        };
        let mut message = jetstream::message::PublishMessage::build().payload(line.into());
        match id {
            Some(id) => message = message.message_id(id),
            None => report.without_id += 1,
        }
        let ack = js.send_publish(subject, message).await.map_err(|e| js_error("publish")(e.to_string()))?;
        acks.push_back(ack);
        while acks.len() >= in_flight {
            settle(acks.pop_front(), &mut report).await?;
        }
        if report.published % 4096 == 0 {
            progress(&report);
        }
    }
    while let Some(ack) = acks.pop_front() {
        settle(Some(ack), &mut report).await?;
    }
    progress(&report);
    Ok(report)
}

async fn settle(
    ack: Option<jetstream::context::PublishAckFuture>,
    report: &mut PublishReport,
) -> Result<(), NatsError> {
    if let Some(ack) = ack {
        let ack = ack.await.map_err(|e| js_error("store a published message")(e.to_string()))?;
        report.published += 1;
        if ack.duplicate {
            report.duplicates += 1;
        }
    }
    Ok(())
}

#[derive(serde::Deserialize)]
struct Envelope {
    source: Option<String>,
    id: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
}
