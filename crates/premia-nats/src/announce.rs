//! Announcing committed batches: rejection notices on `premia.rejected.<reason>` and the accrual
//! feed on `premia.accruals.<manager>`, published by a task of its own in batch order.

use async_nats::jetstream;
use async_nats::HeaderMap;
use futures::StreamExt;

use crate::feed::StampedFeed;
use crate::streams::{subject_token, FEED_SUBJECT_PREFIX};

/// Publishes rejection notices and the accrual feed on a task of its own, in batch order, so
/// that waiting for JetStream to confirm feed messages never holds up the next batch. The
/// queue is bounded: when NATS is slower than the ledger, serving slows down with it.
pub(crate) struct Announcer {
    sender: Option<tokio::sync::mpsc::Sender<Announcement>>,
    task: tokio::task::JoinHandle<u64>,
}

type Announcement = (Vec<(premia_core::Rejection, bytes::Bytes)>, Vec<StampedFeed>);

impl Announcer {
    pub(crate) fn start(client: async_nats::Client) -> Announcer {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Announcement>(64);
        let task = tokio::spawn(async move {
            let js = jetstream::new(client.clone());
            let mut failures = FeedFailures::default();
            let published = SharedPublished::default();
            let watcher = tokio::spawn(watch_feed_stream(js.clone(), published.clone()));
            let mut acks = futures::stream::FuturesUnordered::<FeedAck>::new();
            loop {
                tokio::select! {
                    Some(acked) = acks.next(), if !acks.is_empty() => {
                        settle(&js, acked, &acks, &mut failures);
                    }
                    next = receiver.recv() => {
                        let Some((rejected, feed)) = next else { break };
                        for (rejection, payload) in rejected {
                            publish_rejection(&client, &rejection, payload).await;
                        }
                        // The first batch waits for the feed stream to be read once (see
                        // `Published`); later ones take what the watcher last read.
                        let mut known = published.get();
                        if known.read_at.is_none() {
                            known.refresh(&js).await;
                            published.merge(known);
                        }
                        publish_feed(&js, feed, &known, &mut acks, &mut failures).await;
                    }
                }
            }
            watcher.abort();
            while let Some(acked) = acks.next().await {
                settle(&js, acked, &acks, &mut failures);
            }
            failures.count
        });
        Announcer { sender: Some(sender), task }
    }

    pub(crate) async fn announce(&self, rejected: Vec<(premia_core::Rejection, bytes::Bytes)>, feed: Vec<StampedFeed>) {
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

/// JetStream's confirmation of one feed message, or the message back with why it was not
/// confirmed, to be sent again.
type FeedAck = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), (FeedSend, String)>> + Send>>;

/// One feed message on its way, with what it takes to send it again.
struct FeedSend {
    subject: String,
    payload: bytes::Bytes,
    id: String,
    first_sent: std::time::Instant,
    attempt: u32,
}

/// How long a feed message JetStream did not confirm is sent again (same message id, so a copy it
/// did store is not stored twice) before it is counted as lost: long enough for a cluster to
/// elect a new leader, short enough that stopping serve does not wait long for a dead NATS.
const FEED_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// Sends `message` (after a pause when it is a retry) and waits for JetStream's confirmation.
fn send_feed(js: &jetstream::Context, message: FeedSend) -> FeedAck {
    let js = js.clone();
    Box::pin(async move {
        if message.attempt > 0 {
            let pause = std::time::Duration::from_millis(100 << message.attempt.min(4));
            tokio::time::sleep(pause).await;
        }
        let publish =
            jetstream::message::PublishMessage::build().payload(message.payload.clone()).message_id(message.id.clone());
        match js.send_publish(message.subject.clone(), publish).await {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| (message, e.to_string())),
            Err(e) => Err((message, e.to_string())),
        }
    })
}

/// What a confirmation says: nothing to do, a message to send again, or one given up on.
fn settle(
    js: &jetstream::Context,
    acked: Result<(), (FeedSend, String)>,
    acks: &futures::stream::FuturesUnordered<FeedAck>,
    failures: &mut FeedFailures,
) {
    let Err((mut message, error)) = acked else { return };
    if message.first_sent.elapsed() < FEED_RETRY_FOR {
        message.attempt += 1;
        acks.push(send_feed(js, message));
    } else {
        failures.count(&error);
    }
}

/// How far the clocks of this machine and the NATS servers may disagree, taken off the feed
/// stream's duplicate window when telling whether it still covers a message.
const FEED_CLOCK_MARGIN: std::time::Duration = std::time::Duration::from_secs(60);

/// The most feed messages awaiting JetStream's confirmation at once.
const FEED_ACKS_IN_FLIGHT: usize = 4096;

/// How far the feed stream already goes: the ledger seq of its last message, whoever published
/// it (this premia, or another replica of the same stream), and how long it remembers message ids
/// (its duplicate window), read again about once a second. Until the stream has been read, the
/// window is taken as nothing, so every message goes out from the high-water mark on only.
///
/// Reading it takes three JetStream requests. The first read is made before the first batch's
/// feed goes out; later ones by a task of their own ([`watch_feed_stream`]), so that no batch's
/// feed waits for those answers (they took up to tens of milliseconds on a busy server, once
/// a second, which showed in the feed's latency tail).
#[derive(Default, Clone, Copy)]
struct Published {
    high_water: u64,
    duplicate_window: std::time::Duration,
    read_at: Option<std::time::Instant>,
}

impl Published {
    async fn refresh(&mut self, js: &jetstream::Context) {
        let started = std::time::Instant::now();
        self.read_at = Some(started);
        let Ok(mut stream) = js.get_stream(crate::streams::FEED_STREAM).await else { return };
        let Ok(info) = stream.info().await else { return };
        self.duplicate_window = info.config.duplicate_window;
        let last = info.state.last_sequence;
        if let Some(seq) = last_published_seq(&stream, last).await {
            self.high_water = self.high_water.max(seq);
        }
        tracing::debug!(ms = started.elapsed().as_secs_f64() * 1e3, "read the feed stream's state");
    }

    /// Whether a copy of a message another replica published for a record stored at
    /// `stored_ms` is still within the duplicate window at `now_ms`, with a margin for clocks.
    fn covers(&self, stored_ms: i64, now_ms: i64) -> bool {
        let window = self.duplicate_window.saturating_sub(FEED_CLOCK_MARGIN).as_millis();
        now_ms.saturating_sub(stored_ms) < i64::try_from(window).unwrap_or(i64::MAX)
    }
}

/// [`Published`] as the announcer and [`watch_feed_stream`] share it.
#[derive(Default, Clone)]
struct SharedPublished(std::sync::Arc<std::sync::Mutex<Published>>);

impl SharedPublished {
    fn get(&self) -> Published {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a newer read; the high-water mark only grows.
    fn merge(&self, mut read: Published) {
        let mut known = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        read.high_water = read.high_water.max(known.high_water);
        *known = read;
    }
}

/// Reads the feed stream about once a second into `published`, until the announcer is done.
async fn watch_feed_stream(js: jetstream::Context, published: SharedPublished) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let mut next = published.get();
        next.refresh(&js).await;
        published.merge(next);
    }
}

/// The ledger seq of the feed stream's message `last`, if there is one and it can be read.
async fn last_published_seq(stream: &jetstream::stream::Stream, last: u64) -> Option<u64> {
    if last == 0 {
        return None;
    }
    let message = stream.get_raw_message(last).await.ok()?;
    let value: serde_json::Value = serde_json::from_slice(&message.payload).ok()?;
    value["ledger_seq"].as_u64()
}

/// Publishes the feed of a committed batch in order; confirmations are awaited alongside,
/// up to [`FEED_ACKS_IN_FLIGHT`] at once, so a slow or restarting server never stalls the
/// publishing of later batches for a round trip each.
///
/// Each message carries its `Nats-Msg-Id` (`<manager>:<ledger_seq>`), so when replicas of one
/// stream publish the same message within the feed stream's duplicate window, JetStream keeps
/// one. A message whose record was stored in the events stream within that window (less
/// [`FEED_CLOCK_MARGIN`]) is always sent: a replica ahead may have made the record durable and died
/// before publishing it, then started again past it, so that the feed's high-water mark is no
/// proof the message is there. An older message is sent only from `high_water` on: below it, a
/// replica ahead published it, and sending it again would double it (a replica catching up from
/// far behind, or one just rebuilt by `premia recover`).
async fn publish_feed(
    js: &jetstream::Context,
    messages: Vec<StampedFeed>,
    published: &Published,
    acks: &mut futures::stream::FuturesUnordered<FeedAck>,
    failures: &mut FeedFailures,
) {
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
    let now_ms = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let unsent = messages
        .into_iter()
        .filter(|f| f.message.ledger_seq >= published.high_water || published.covers(f.stored_ms, now_ms));
    for StampedFeed { message, .. } in unsent {
        while acks.len() >= FEED_ACKS_IN_FLIGHT {
            if let Some(acked) = acks.next().await {
                settle(js, acked, acks, failures);
            }
        }
        let payload = match serde_json::to_vec(&message) {
            Ok(p) => p,
            Err(e) => {
                failures.count(&e);
                continue;
            }
        };
        let subject = format!("{FEED_SUBJECT_PREFIX}{}", subject_token(&message.manager_id));
        let send = FeedSend {
            subject: subject.clone(),
            payload: payload.into(),
            id: message.message_id(),
            first_sent: std::time::Instant::now(),
            attempt: 0,
        };
        // Sent here, in ledger order; only the wait for the confirmation runs alongside.
        let publish =
            jetstream::message::PublishMessage::build().payload(send.payload.clone()).message_id(send.id.clone());
        match js.send_publish(subject, publish).await {
            Ok(ack) => acks.push(Box::pin(async move { ack.await.map(|_| ()).map_err(|e| (send, e.to_string())) })),
            Err(e) => settle(js, Err((send, e.to_string())), acks, failures),
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
