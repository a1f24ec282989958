//! Announcing committed batches: rejection notices on `premia.rejected.<reason>` and the accrual
//! feed on `premia.accruals.<manager>`, published by a task of its own in batch order.

use async_nats::jetstream;
use async_nats::HeaderMap;
use futures::StreamExt;

use crate::feed::FeedMessage;
use crate::streams::{subject_token, FEED_SUBJECT_PREFIX};

/// Publishes rejection notices and the accrual feed on a task of its own, in batch order, so
/// that waiting for JetStream to confirm feed messages never holds up the next batch. The
/// queue is bounded: when NATS is slower than the ledger, serving slows down with it.
pub(crate) struct Announcer {
    sender: Option<tokio::sync::mpsc::Sender<Announcement>>,
    task: tokio::task::JoinHandle<u64>,
}

type Announcement = (Vec<(premia_core::Rejection, bytes::Bytes)>, Vec<FeedMessage>);

impl Announcer {
    pub(crate) fn start(client: async_nats::Client) -> Announcer {
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

    pub(crate) async fn announce(&self, rejected: Vec<(premia_core::Rejection, bytes::Bytes)>, feed: Vec<FeedMessage>) {
        if rejected.is_empty() && feed.is_empty() {
            return;
        }
        if let Some(sender) = &self.sender {
            // The task ends only when the sender is dropped, so this fails only if it panicked.
            let _ = sender.send((rejected, feed)).await;
        }
    }

    /// Publishes everything still queued; returns the feed messages JetStream did not confirm.
    pub(crate) async fn close(mut self) -> u64 {
        self.sender = None;
        match self.task.await {
            Ok(failures) => failures,
            // A panic in the task is a bug: it surfaces here rather than as a count of 0.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("the announcer task is never cancelled, yet it was: {e}"),
        }
    }
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
