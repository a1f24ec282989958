//! premia-nats: the JetStream edge.
//!
//! - [`connect`]: a client from the settings NATS users expect (URL, user/password, token, NKey
//!   seed, `.creds` file, TLS with a custom CA).
//! - [`ensure_stream`] / [`reset_consumer`]: the file-backed events stream (created when
//!   missing) and premia's durable pull consumer, recreated at each start from the ledger's cursor.
//! - [`serve`]: fetch a batch, offer every message to the ledger, commit (the stream sequence is
//!   written in the same sled batch), and only then ack the batch; rejections are published to
//!   `premia.rejected.<reason>`.
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
    description = "Published on premia.accruals.<manager id> after each committed batch, for every manager the batch booked entries for; kept in the PREMIA_FEED stream."
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
pub fn feed_messages(state: &premia_core::LedgerState, booked: &[premia_core::Entry]) -> Vec<FeedMessage> {
    let mut by_manager: std::collections::BTreeMap<
        &str,
        std::collections::BTreeMap<premia_core::Period, Vec<&premia_core::Entry>>,
    > = std::collections::BTreeMap::new();
    for entry in booked {
        by_manager.entry(&entry.manager_id).or_default().entry(entry.period).or_default().push(entry);
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
            max_ack_pending: (batch as i64) * 4,
            ..Default::default()
        })
        .await
        .map_err(|e| js_error(format!("create the consumer {}", settings.consumer))(e.to_string()))
}

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Messages per fetch, and so per committed batch and per ack.
    pub batch: usize,
    /// Stop once the stream has nothing pending for premia.
    pub drain: bool,
    /// How long a fetch waits for messages before coming back empty.
    pub fetch_wait: Duration,
    /// Store a snapshot after this many logged events.
    pub snapshot_every: u64,
    /// Publish the accrual feed (off for scratch runs such as the demo).
    pub feed: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            batch: 1000,
            drain: false,
            fetch_wait: Duration::from_millis(500),
            snapshot_every: 500_000,
            feed: true,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServeReport {
    pub counts: Counts,
    pub batches: u64,
    /// Feed messages JetStream did not confirm (the ledger is unaffected; see the logs).
    pub feed_failures: u64,
    /// Messages at or below the stored cursor: already in the ledger, redelivered after a
    /// crash between commit and ack. Acked again, not offered again.
    pub skipped: u64,
}

/// The cursor name under which the ledger keeps the last stream sequence it took in.
pub fn cursor_name(settings: &StreamSettings) -> String {
    format!("nats:{}", settings.stream)
}

/// Consumes the stream into the ledger until `shutdown` resolves (or, with `drain`, until
/// nothing is pending). A batch is acked only after the sled batch holding it is flushed.
pub async fn serve(
    ledger: &mut Ledger,
    client: &async_nats::Client,
    settings: &StreamSettings,
    options: &ServeOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<ServeReport, NatsError> {
    let js = jetstream::new(client.clone());
    let stream = ensure_stream(&js, settings).await?;
    let cursor_key = cursor_name(settings);
    let mut cursor = ledger.cursor(&cursor_key).unwrap_or(0);
    let mut consumer = reset_consumer(&stream, settings, options.batch, cursor).await?;
    if options.feed {
        ensure_feed_stream(&js).await?;
    }
    let first_seq = ledger.state().next_seq();
    let mut report = ServeReport::default();
    let mut last_snapshot_seq = first_seq;
    tokio::pin!(shutdown);
    loop {
        let fetch = consumer.fetch().max_messages(options.batch).expires(options.fetch_wait).messages();
        let mut messages = tokio::select! {
            _ = &mut shutdown => break,
            fetched = fetch => fetched.map_err(|e| js_error("fetch messages")(e.to_string()))?,
        };
        let mut last = None;
        let mut rejected = Vec::new();
        let mut booked = Vec::new();
        let mut in_batch = 0usize;
        // The batch in hand is always finished: shutdown is checked between batches.
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| js_error("fetch messages")(e.to_string()))?;
            let stream_sequence = message.info().map(|i| i.stream_sequence).unwrap_or(0);
            in_batch += 1;
            if stream_sequence > cursor {
                let admitted = ledger.offer(&message.payload, Origin::Nats, Admission::Publisher, now_ms());
                tally(&mut report.counts, &admitted, first_seq);
                match &admitted {
                    Admitted::Rejected(rejection) => rejected.push((rejection.clone(), message.payload.clone())),
                    Admitted::Logged { folded, .. } => {
                        for f in folded {
                            if let premia_core::Outcome::Applied { entries } = &f.outcome {
                                booked.extend(entries.iter().cloned());
                            }
                        }
                    }
                    Admitted::Duplicate => {}
                }
                cursor = stream_sequence;
            } else {
                report.skipped += 1;
            }
            last = Some(message);
        }
        let Some(last) = last else {
            if options.drain && nothing_pending(&mut consumer).await? {
                break;
            }
            continue;
        };
        ledger.set_cursor(&cursor_key, cursor);
        ledger.commit()?;
        last.ack().await.map_err(|e| js_error("acknowledge a batch")(e.to_string()))?;
        report.batches += 1;
        tracing::debug!(messages = in_batch, cursor, "batch committed and acked");
        for (rejection, payload) in rejected {
            publish_rejection(client, &rejection, payload).await;
        }
        if options.feed {
            report.feed_failures += publish_feed(&js, feed_messages(ledger.state(), &booked)).await;
        }
        if ledger.state().next_seq() - last_snapshot_seq >= options.snapshot_every {
            ledger.snapshot()?;
            last_snapshot_seq = ledger.state().next_seq();
        }
    }
    ledger.commit()?;
    ledger.snapshot()?;
    report.counts.parked = ledger.state().parked().range(first_seq..).count() as u64;
    Ok(report)
}

async fn nothing_pending(consumer: &mut consumer::PullConsumer) -> Result<bool, NatsError> {
    let info = consumer.info().await.map_err(|e| js_error("read the consumer's state")(e.to_string()))?;
    Ok(info.num_pending == 0 && info.num_ack_pending == 0)
}

/// Publishes the feed of a committed batch, all acks in flight at once; returns how many failed.
async fn publish_feed(js: &jetstream::Context, messages: Vec<FeedMessage>) -> u64 {
    let mut acks = Vec::with_capacity(messages.len());
    let mut failures = 0;
    for message in messages {
        let subject = format!("{FEED_SUBJECT_PREFIX}{}", subject_token(&message.manager_id));
        let payload = match serde_json::to_vec(&message) {
            Ok(p) => p,
            Err(_) => {
                failures += 1;
                continue;
            }
        };
        match js.publish(subject, payload.into()).await {
            Ok(ack) => acks.push(ack),
            Err(e) => {
                tracing::warn!(error = %e, "could not publish a feed message");
                failures += 1;
            }
        }
    }
    for ack in acks {
        if let Err(e) = ack.await {
            tracing::warn!(error = %e, "a feed message was not confirmed");
            failures += 1;
        }
    }
    failures
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
    let subject_prefix = settings.subjects.first().map(|s| s.trim_end_matches('>').to_string()).unwrap_or_default();
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
