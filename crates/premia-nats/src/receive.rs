//! Receiving: a task of its own takes messages from the pull consumer and parses them ahead of
//! the fold.

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use premia_core::Admission;

/// Messages as they came in, each parsed and validated (the costly part of taking an event in)
/// ahead of the fold.
pub(crate) struct ParsedChunk {
    pub(crate) messages: Vec<Received>,
    /// The chunk's last message, kept whole: acking it acks the chunk.
    pub(crate) last: Option<jetstream::Message>,
    pub(crate) parsed_with: std::sync::Arc<premia_core::Scheme>,
    /// Receiving failed after these messages: the consumer must be set up again.
    pub(crate) failure: Option<consumer::pull::MessagesError>,
}

/// One message as the fold needs it.
pub(crate) struct Received {
    pub(crate) payload: bytes::Bytes,
    pub(crate) stream_sequence: u64,
    /// Messages the server still had for the consumer after this one.
    pub(crate) pending: u64,
    pub(crate) event: Result<premia_core::Event, premia_core::Rejection>,
}

/// Receives and parses on a task of its own, so parsing overlaps the fold. At most two parsed
/// chunks wait; the task ends with the receiver, or after a failure.
pub(crate) fn spawn_parser(
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
