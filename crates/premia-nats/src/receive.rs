//! Receiving: a task of its own takes messages from the pull consumer and parses them ahead of
//! the fold, each with its place in the stream.

use std::sync::Arc;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use premia_core::{Admission, Scheme};

use crate::connect::NatsError;

/// Messages as they came in, each parsed and validated (the costly part of taking an event in)
/// ahead of the fold.
pub(crate) struct ParsedChunk {
    pub(crate) messages: Vec<Received>,
    /// The chunk's last message, kept whole: acking it acks the chunk.
    pub(crate) last: Option<jetstream::Message>,
    pub(crate) parsed_with: Arc<Scheme>,
    /// What stopped the chunk after these messages, if anything did.
    pub(crate) failure: Option<Failure>,
}

/// Why a chunk ends before the messages that arrived with it.
pub(crate) enum Failure {
    /// Receiving failed: the consumer must be set up again.
    Receive(consumer::pull::MessagesError),
    /// The next message has no place in the stream that can be read ([`NatsError::Metadata`]):
    /// serving stops before it.
    Unplaced(NatsError),
}

/// One message as the fold needs it.
pub(crate) struct Received {
    pub(crate) payload: bytes::Bytes,
    pub(crate) stream_sequence: u64,
    /// When JetStream stored the message (Unix milliseconds): the record's arrival, the same
    /// for every ledger that takes the stream in.
    pub(crate) published_ms: i64,
    /// Messages the server still had for the consumer after this one.
    pub(crate) pending: u64,
    pub(crate) event: Result<premia_core::Event, premia_core::Rejection>,
}

/// A delivered message as the fold needs it: its stream sequence and the server's count of what
/// is still pending, both read from its JetStream metadata, and the event parsed from it.
///
/// A message whose metadata cannot be read has no known place in the stream. The ledger's cursor
/// must not skip past it, and an ack (`AckPolicy::All`) of a message after it would acknowledge
/// it unseen, so it is an error, never a sequence of 0.
pub(crate) fn received(message: &jetstream::Message, scheme: &Scheme) -> Result<Received, NatsError> {
    let info = message.info().map_err(|e| NatsError::Metadata {
        subject: message.subject.to_string(),
        reply: message.reply.as_ref().map(|r| r.to_string()),
        reason: e.to_string(),
    })?;
    let (stream_sequence, pending) = (info.stream_sequence, info.pending);
    assert!(stream_sequence > 0, "JetStream numbers a stream's messages from 1, and delivered a 0");
    let published_ms = i64::try_from(info.published.unix_timestamp_nanos() / 1_000_000)
        .expect("a JetStream timestamp in milliseconds fits an i64");
    let event = premia_core::event::parse_event(&message.payload, scheme, Admission::Publisher);
    Ok(Received { payload: message.payload.clone(), stream_sequence, published_ms, pending, event })
}

/// Parses one chunk of deliveries up to the first failure: a receive error, or a message without
/// readable metadata (neither it nor anything after it is taken).
fn parse_chunk(
    chunk: Vec<Result<jetstream::Message, consumer::pull::MessagesError>>,
    scheme: Arc<Scheme>,
) -> ParsedChunk {
    let mut parsed = Vec::with_capacity(chunk.len());
    let mut last = None;
    let mut failure = None;
    for message in chunk {
        let message = match message {
            Ok(message) => message,
            Err(e) => {
                failure = Some(Failure::Receive(e));
                break;
            }
        };
        match received(&message, &scheme) {
            Ok(one) => parsed.push(one),
            Err(e) => {
                failure = Some(Failure::Unplaced(e));
                break;
            }
        }
        // Only the last message is needed whole (for the ack); the others are dropped here, on
        // the thread that allocated them.
        last = Some(message);
    }
    ParsedChunk { messages: parsed, last, parsed_with: scheme, failure }
}

/// Chunks being parsed at once, besides the one the fold has in hand.
const PARSING_AHEAD: usize = 2;

/// Receives on a task of its own and parses each chunk on a blocking thread, so that parsing
/// overlaps the fold and up to [`PARSING_AHEAD`] chunks are parsed side by side; the fold gets
/// them in the order they came. The task ends with the receiver, or after a failure.
pub(crate) fn spawn_parser(
    messages: consumer::pull::Stream,
    batch: usize,
    // The scheme in force, as the fold last saw it: an event parsed under another one is
    // parsed again by the fold.
    schemes: tokio::sync::watch::Receiver<Arc<Scheme>>,
) -> (tokio::sync::mpsc::Receiver<ParsedChunk>, tokio::task::JoinHandle<()>) {
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    let task = tokio::spawn(async move {
        let chunks = messages.ready_chunks(batch).map(|chunk| {
            let scheme = schemes.borrow().clone();
            tokio::task::spawn_blocking(move || parse_chunk(chunk, scheme))
        });
        let mut parsed_chunks = chunks.buffered(PARSING_AHEAD);
        while let Some(parsed) = parsed_chunks.next().await {
            let parsed = match parsed {
                Ok(parsed) => parsed,
                // parse_chunk does not panic on any input; if it did, that is a bug to surface.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Blocking tasks are cancelled only when the runtime shuts down.
                Err(_) => break,
            };
            let failed = parsed.failure.is_some();
            if sender.send(parsed).await.is_err() || failed {
                break;
            }
        }
    });
    (receiver, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYMENT: &str = r#"{"specversion": "1.0", "id": "e-1", "source": "crm/x", "type": "payment.received", "data": {"payment_id": "P-1", "deal_id": "D-1", "amount": "10.00", "currency": "RUB", "paid_on": "2026-11-09"}}"#;

    /// A delivered message with this reply subject (where JetStream puts a message's metadata),
    /// on a client that never reaches a server: nothing here talks to NATS.
    async fn delivered(reply: Option<&str>) -> jetstream::Message {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect("127.0.0.1:1")
            .await
            .expect("with retry_on_initial_connect, connect returns at once");
        jetstream::Message {
            message: async_nats::Message {
                subject: "crm.events.payment.received".into(),
                reply: reply.map(Into::into),
                payload: PAYMENT.into(),
                headers: None,
                status: None,
                description: None,
                length: PAYMENT.len(),
            },
            context: jetstream::new(client),
        }
    }

    #[tokio::test]
    async fn a_message_is_placed_by_its_metadata() {
        let scheme = Scheme::default_scheme();
        // $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>
        let message = delivered(Some("$JS.ACK.PREMIA_EVENTS.premia.1.42.7.1700000000000000000.5")).await;
        let one = received(&message, &scheme).unwrap();
        assert_eq!((one.stream_sequence, one.pending), (42, 5));
        assert!(one.event.is_ok(), "{:?}", one.event.err());
        assert_eq!(one.payload, PAYMENT.as_bytes());
    }

    #[tokio::test]
    async fn a_message_without_readable_metadata_is_an_error_that_names_it() {
        let scheme = Scheme::default_scheme();
        for reply in [None, Some("_INBOX.not-jetstream"), Some("$JS.ACK.PREMIA_EVENTS.premia.1.x.7.1.5")] {
            let message = delivered(reply).await;
            let error = received(&message, &scheme).err().expect("no place in the stream");
            let text = error.to_string();
            assert!(matches!(error, NatsError::Metadata { .. }), "{text}");
            assert!(
                text.contains("crm.events.payment.received") && text.contains("start premia serve again"),
                "{text}"
            );
        }
    }

    #[tokio::test]
    async fn a_chunk_stops_before_a_message_it_cannot_place() {
        let scheme = Arc::new(Scheme::default_scheme());
        let chunk = vec![
            Ok(delivered(Some("$JS.ACK.PREMIA_EVENTS.premia.1.1.1.1700000000000000000.2")).await),
            Ok(delivered(Some("$JS.ACK.PREMIA_EVENTS.premia.1.2.2.1700000000000000000.1")).await),
            Ok(delivered(None).await),
            Ok(delivered(Some("$JS.ACK.PREMIA_EVENTS.premia.1.4.4.1700000000000000000.0")).await),
        ];
        let parsed = parse_chunk(chunk, scheme);
        let sequences: Vec<u64> = parsed.messages.iter().map(|m| m.stream_sequence).collect();
        assert_eq!(sequences, [1, 2], "nothing after the message without metadata is taken");
        let last = parsed.last.expect("the last message placed is kept for the ack");
        assert_eq!(last.info().unwrap().stream_sequence, 2, "the ack goes no further than the last placed message");
        assert!(matches!(parsed.failure, Some(Failure::Unplaced(NatsError::Metadata { .. }))));
    }
}
