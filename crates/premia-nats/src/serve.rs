//! The serving loop: receive a batch, offer every message to the ledger, commit (the stream
//! sequence goes in the same sled batch), and only once the batch is durable ack it, publish it
//! to the statements' read model and announce it.

use std::time::Duration;

use async_nats::jetstream;
use premia_ledger::serving::{Query, ServeReport, BATCH_SIZE_BOUNDS, COMMIT_SECONDS_BOUNDS};
use premia_ledger::{Ledger, LedgerError};

use crate::announce::Announcer;
use crate::connect::{js_error, NatsError};
use crate::feed::{feed_messages, FeedMessage};
use crate::fold::gather;
use crate::receive::{spawn_parser, ParsedChunk};
use crate::streams::{cursor_name, ensure_feed_stream, ensure_stream, nothing_pending, reset_consumer, StreamSettings};

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
pub(crate) struct Gathering {
    pub(crate) last: Option<jetstream::Message>,
    pub(crate) messages: usize,
    pub(crate) rejected: Vec<(premia_core::Rejection, bytes::Bytes)>,
    pub(crate) booked: Vec<premia_core::Entry>,
    /// (manager, period) of each plan assignment applied: no entry, yet the projection moved.
    pub(crate) plans: Vec<(String, premia_core::Period)>,
    pub(crate) drained: bool,
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

/// Blocks on the writer thread without stalling the runtime's other tasks (the NATS
/// connection keeps being served meanwhile).
fn wait_durable(ledger: &Ledger, ticket: u64) -> Result<(), LedgerError> {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(|| ledger.wait_durable(ticket)),
        _ => ledger.wait_durable(ticket),
    }
}
