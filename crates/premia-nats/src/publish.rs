//! `premia publish`: JSON Lines to the events stream, pipelined, with `Nats-Msg-Id` from each
//! event's source and id.

use async_nats::jetstream;

use crate::connect::{js_error, NatsError};
use crate::streams::{ensure_stream, message_id, subject_prefix, StreamSettings};

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
