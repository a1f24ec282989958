//! What premia sets up in JetStream and names there: the events stream, premia's pull consumer
//! (recreated from the ledger's cursor), the feed stream, subjects and message ids.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use crate::connect::{js_error, NatsError};

/// Names in JetStream premia uses.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub stream: String,
    pub subjects: Vec<String>,
    pub consumer: String,
    /// JetStream drops a message whose `Nats-Msg-Id` it saw within this window.
    pub duplicate_window: Duration,
    /// The replicas a missing events stream is created with (3 on a three-node cluster keeps
    /// every event on three servers).
    pub replicas: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            stream: "PREMIA_EVENTS".into(),
            subjects: vec!["crm.events.>".into()],
            consumer: "premia".into(),
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
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

/// The feed stream, created when missing with `replicas` replicas (the events stream's: on a
/// cluster, a feed on one node would stop with that node). Its duplicate window is where
/// replicas publishing the same message (the same `Nats-Msg-Id`) are told apart.
pub async fn ensure_feed_stream(js: &jetstream::Context, replicas: usize) -> Result<stream::Stream, NatsError> {
    js.get_or_create_stream(stream::Config {
        name: FEED_STREAM.into(),
        subjects: vec![format!("{FEED_SUBJECT_PREFIX}>")],
        storage: stream::StorageType::File,
        num_replicas: replicas,
        max_age: Duration::from_secs(90 * 24 * 3600),
        duplicate_window: FEED_DUPLICATE_WINDOW,
        ..Default::default()
    })
    .await
    .map_err(|e| js_error(format!("create or open the stream {FEED_STREAM}"))(e.to_string()))
}

/// How long the feed stream remembers a message id: replicas more than this far apart are kept
/// from doubling by the feed's high-water mark instead (announce.rs).
pub const FEED_DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// The events stream: file-backed, created when missing with `settings.replicas` replicas; an
/// existing one with fewer is used as it is, with a warning (premia does not change a stream it
/// did not create).
pub async fn ensure_stream(js: &jetstream::Context, settings: &StreamSettings) -> Result<stream::Stream, NatsError> {
    let stream = js
        .get_or_create_stream(stream::Config {
            name: settings.stream.clone(),
            subjects: settings.subjects.clone(),
            storage: stream::StorageType::File,
            duplicate_window: settings.duplicate_window,
            num_replicas: settings.replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| js_error(format!("create or open the stream {}", settings.stream))(e.to_string()))?;
    let replicas = stream.cached_info().config.num_replicas.max(1);
    if replicas < settings.replicas {
        tracing::warn!(
            stream = %settings.stream,
            replicas,
            wanted = settings.replicas,
            "the events stream has fewer replicas than asked for; raise them with `nats stream edit {} --replicas {}`",
            settings.stream,
            settings.replicas
        );
    }
    Ok(stream)
}

/// premia's durable pull consumer, starting right after `cursor` (the last stream sequence the
/// ledger holds). It acks once per batch (`AckPolicy::All`: acking the last message of a batch
/// acknowledges every one before it).
///
/// The ledger's cursor is the authority on what has been taken in, not the consumer's own
/// delivery state: after a crash, messages delivered to the dead process stay unacked until
/// their ack wait runs out, and JetStream would meanwhile deliver later ones (and an ack of a
/// later one would acknowledge them all). So the consumer is recreated at every start from the
/// cursor. Within one run, deliveries are expected in stream order without holes; a delivery that
/// skips sequences (messages lost in flight when a node died) sets it up again (gather.rs).
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

/// Deletes premia's durable consumer on the events stream (a rebuild's, once it is done).
pub async fn delete_consumer(client: &async_nats::Client, settings: &StreamSettings) -> Result<(), NatsError> {
    let js = jetstream::new(client.clone());
    let stream = js
        .get_stream(&settings.stream)
        .await
        .map_err(|e| js_error(format!("open the stream {}", settings.stream))(e.to_string()))?;
    stream
        .delete_consumer(&settings.consumer)
        .await
        .map(|_| ())
        .map_err(|e| js_error(format!("delete the consumer {}", settings.consumer))(e.to_string()))
}

/// The cursor name under which the ledger keeps the last stream sequence it took in.
pub fn cursor_name(settings: &StreamSettings) -> String {
    format!("nats:{}", settings.stream)
}

/// The last stream sequence the ledger took in under `cursor_key` ([`cursor_name`]): 0 when it
/// has taken none in from this stream yet (a new ledger, or one fed only from files), which is
/// also where JetStream's numbering starts below.
pub(crate) fn stored_cursor(ledger: &premia_ledger::Ledger, cursor_key: &str) -> u64 {
    ledger.cursor(cursor_key).unwrap_or(0)
}

/// Whether the stream holds nothing the ledger lacks: nothing left to deliver, and everything
/// delivered is at or below the ledger's cursor. The consumer's own count of unacked messages
/// is not used: after a server restart it can keep counting messages whose acks were lost,
/// though the ack floor is past them, and the ledger's cursor is the authority anyway.
pub(crate) async fn nothing_pending(consumer: &mut consumer::PullConsumer, cursor: u64) -> Result<bool, NatsError> {
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

/// The `Nats-Msg-Id` of an event: its source and id, length-prefixed so that no two
/// (source, id) pairs share one.
pub fn message_id(source: &str, id: &str) -> String {
    format!("{}:{source}{id}", source.len())
}

/// The `Nats-Msg-Id` of a line without a source, id and type to name it by: the SHA-256 of its
/// bytes, so a publish that sends it again after a lost acknowledgement does not store it twice.
/// It starts with a letter, where [`message_id`] starts with a digit: the two never meet.
pub fn unparsed_message_id(payload: &[u8]) -> String {
    use sha2::Digest;
    format!("unparsed:{}", hex::encode(sha2::Sha256::digest(payload)))
}

/// What an event's subject starts with, `crm.events.` by default; its type follows. The first of
/// the stream's subjects gives it: a stream premia sets up always has one.
pub fn subject_prefix(settings: &StreamSettings) -> String {
    let Some(first) = settings.subjects.first() else {
        panic!("the events stream {} is set up with no subject, so events have none to go to", settings.stream);
    };
    first.trim_end_matches('>').to_string()
}
