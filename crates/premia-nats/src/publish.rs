//! `premia publish`: JSON Lines to the events stream, pipelined, with `Nats-Msg-Id` from each
//! event's source and id. A message JetStream has not acknowledged (a stream leader changing, a
//! node dying, the connection lost) is sent again with the same message id, so it is stored once;
//! what is never acknowledged within the retry time is reported, line by line.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishErrorKind};
use bytes::Bytes;

use crate::connect::NatsError;
use crate::streams::{ensure_stream, message_id, subject_prefix, StreamSettings};

/// What `publish_lines` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PublishReport {
    pub published: u64,
    /// Messages JetStream dropped because it saw their `Nats-Msg-Id` within its window.
    pub duplicates: u64,
    /// Lines that are not events (no source, id and type to name them by), published with the
    /// SHA-256 of their bytes as message id; the ledger rejects them.
    pub not_events: u64,
    /// Sends repeated because JetStream did not acknowledge the first (same message id).
    pub resent: u64,
    /// Line numbers (from 1) JetStream never acknowledged: they may or may not be in the stream.
    pub unconfirmed: Vec<u64>,
}

/// How long publishing goes on retrying without any acknowledgement before what is not
/// acknowledged counts as unconfirmed.
pub const RETRY_FOR: Duration = Duration::from_secs(60);

/// One message on its way: what is needed to send it again.
struct Outgoing {
    line: u64,
    subject: String,
    id: String,
    /// Named by the hash of its bytes: not an event.
    not_an_event: bool,
    payload: Bytes,
}

impl Outgoing {
    fn message(&self) -> jetstream::message::PublishMessage {
        jetstream::message::PublishMessage::build().payload(self.payload.clone()).message_id(self.id.clone())
    }
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
    let mut window = Window { js, sent: VecDeque::new(), last_ack: Instant::now(), report: PublishReport::default() };
    for (number, line) in lines.enumerate() {
        let mut line = line.map_err(NatsError::Read)?;
        if line.ends_with(b"\r") {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let outgoing = outgoing(number as u64 + 1, line, &subject_prefix);
        if outgoing.not_an_event {
            window.report.not_events += 1;
        }
        window.send(outgoing, 0).await;
        while window.sent.len() >= in_flight {
            window.settle_first().await;
        }
        if window.report.published % 4096 == 0 {
            progress(&window.report);
        }
    }
    while !window.sent.is_empty() {
        window.settle_first().await;
    }
    progress(&window.report);
    Ok(window.report)
}

/// The messages sent and not yet acknowledged, in order.
struct Window {
    js: jetstream::Context,
    sent: VecDeque<(Outgoing, u32, Sent)>,
    last_ack: Instant,
    report: PublishReport,
}

impl Window {
    async fn send(&mut self, outgoing: Outgoing, attempt: u32) {
        let sent = self.js.send_publish(outgoing.subject.clone(), outgoing.message()).await;
        self.sent.push_back((outgoing, attempt, sent));
    }

    /// Waits for the oldest message's ack. When it is not acknowledged, every message in the
    /// window is sent again at once (same message ids: what JetStream stored already is a
    /// duplicate), after a pause that grows with the attempts; a message keeps its place until
    /// it is acknowledged, or until nothing at all has been acknowledged for [`RETRY_FOR`]
    /// (then it is unconfirmed).
    async fn settle_first(&mut self) {
        let Some((outgoing, attempt, sent)) = self.sent.pop_front() else { return };
        let outcome = match sent {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(ack) => {
                self.report.published += 1;
                // A duplicate of a message this run sent again is its own first copy.
                self.report.duplicates += u64::from(ack.duplicate && attempt == 0);
                self.last_ack = Instant::now();
            }
            Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded || self.last_ack.elapsed() >= RETRY_FOR => {
                tracing::warn!(line = outgoing.line, error = %e, "JetStream never acknowledged this line");
                self.report.unconfirmed.push(outgoing.line);
            }
            Err(e) => {
                tracing::info!(line = outgoing.line, error = %e, "not acknowledged; sending the window again");
                let pause = Duration::from_millis(50 << attempt.min(5)).min(Duration::from_secs(2));
                tokio::time::sleep(pause).await;
                let waiting: Vec<(Outgoing, u32, Sent)> =
                    std::iter::once((outgoing, attempt, Err(e))).chain(std::mem::take(&mut self.sent)).collect();
                for (outgoing, attempt, _) in waiting {
                    self.report.resent += 1;
                    self.send(outgoing, attempt + 1).await;
                }
            }
        }
    }
}

fn outgoing(line: u64, payload: Vec<u8>, subject_prefix: &str) -> Outgoing {
    let envelope = serde_json::from_slice::<Envelope>(&payload).ok();
    let (subject, id, not_an_event) = match &envelope {
        Some(Envelope { source: Some(source), id: Some(id), event_type: Some(t) }) if !t.contains(['*', '>', ' ']) => {
            (format!("{subject_prefix}{t}"), message_id(source, id), false)
        }
        _ => (format!("{subject_prefix}unparsed"), crate::streams::unparsed_message_id(&payload), true),
    };
    Outgoing { line, subject, id, not_an_event, payload: payload.into() }
}

type Sent = Result<jetstream::context::PublishAckFuture, jetstream::context::PublishError>;

#[derive(serde::Deserialize)]
struct Envelope {
    source: Option<String>,
    id: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
}
