//! The serving loop: receive a chunk, fold it into the ledger, commit (the stream sequence goes
//! in the same sled batch), and only once the batch is durable acknowledge it: ack, publish it to
//! the statements' read model, announce it. [`ServeLoop`]'s methods are these steps.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use premia_core::Scheme;
use premia_ledger::serving::{Query, ServeReport, BATCH_SIZE_BOUNDS, COMMIT_SECONDS_BOUNDS};
use premia_ledger::{Ledger, LedgerError, ReadModel};
use tokio::sync::{mpsc, watch};

use crate::announce::Announcer;
use crate::connect::{js_error, NatsError};
use crate::feed::StampedFeed;
use crate::gather::Gathering;
use crate::receive::{spawn_parser, Failure, ParsedChunk};
use crate::streams::{
    cursor_name, ensure_feed_stream, ensure_stream, nothing_pending, reset_consumer, stored_cursor, StreamSettings,
};

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

/// How the HTTP API reads what `serve` holds: queries the loop runs between its steps, and the
/// statements' read model, which the loop publishes each batch to once it is durable, and which
/// the API reads without the loop (loading a period's entries is a query).
pub struct Readers {
    pub queries: mpsc::Receiver<Query>,
    pub statements: Arc<ReadModel>,
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
    shutdown: impl Future<Output = ()>,
    readers: Option<Readers>,
) -> Result<ServeReport, NatsError> {
    ServeLoop::start(ledger, client, settings, options, readers)?.run(shutdown).await
}

/// How long serve keeps trying to set up its stream and consumer at start before it reports
/// the failure.
const STARTUP_PATIENCE: Duration = Duration::from_secs(30);

/// A folded batch on its way to disk: acked, announced and fed once it is durable.
struct InFlight {
    ticket: u64,
    last: jetstream::Message,
    messages: usize,
    cursor: u64,
    rejected: Vec<(premia_core::Rejection, bytes::Bytes)>,
    feed: Vec<StampedFeed>,
    /// The last message said nothing more was pending for the consumer.
    drained: bool,
}

/// The serving loop's state between its steps. At most one batch is in flight (handed to the
/// writer thread, not yet acknowledged) while the next one gathers.
struct ServeLoop<'a> {
    ledger: &'a mut Ledger,
    settings: &'a StreamSettings,
    options: &'a ServeOptions,
    js: jetstream::Context,
    queries: Option<mpsc::Receiver<Query>>,
    statements: Option<Arc<ReadModel>>,
    /// Where the ledger keeps the last stream sequence it took in.
    cursor_key: String,
    /// The events stream's name, for each record's origin.
    stream: std::sync::Arc<str>,
    /// The ledger's next seq when serving started: the counters count from here.
    first_seq: u64,
    last_snapshot_seq: u64,
    report: ServeReport,
    gathering: Gathering,
    in_flight: Option<InFlight>,
    announcer: Announcer,
    /// Told the ticket of each batch the writer thread has flushed.
    durable: watch::Receiver<u64>,
}

/// The consumer as set up from the ledger's cursor, and the task receiving from it. It lasts
/// until the message stream ends or fails, or serving stops.
struct Connection {
    consumer: consumer::PullConsumer,
    chunks: mpsc::Receiver<ParsedChunk>,
    parser: tokio::task::JoinHandle<()>,
    /// The scheme the fold last saw, for the parser.
    schemes: watch::Sender<Arc<Scheme>>,
    /// Nothing folded from this consumer yet: its first message may be past the cursor + 1.
    fresh: bool,
}

/// What woke the serving loop.
enum Wakeup {
    Shutdown,
    /// The writer thread finished a flush.
    Flushed,
    Query(Query),
    Received(Box<ParsedChunk>),
    /// The parser's channel closed: the message stream ended.
    Ended,
    /// Nothing in hand, and nothing came for `idle_wait`.
    Idle,
}

/// What the loop does once a connection is over.
enum Then {
    /// Set the consumer up again at once.
    Reconnect,
    /// Set it up again after `idle_wait` (receiving failed, or NATS is not answering yet).
    ReconnectLater,
    /// Serving is over: shutdown, or the stream is drained.
    Stop,
    /// Stop as for `Stop`, then return this error.
    Fail(NatsError),
}

impl<'a> ServeLoop<'a> {
    fn start(
        ledger: &'a mut Ledger,
        client: &async_nats::Client,
        settings: &'a StreamSettings,
        options: &'a ServeOptions,
        readers: Option<Readers>,
    ) -> Result<ServeLoop<'a>, NatsError> {
        let (queries, statements) = match readers {
            Some(Readers { queries, statements }) => (Some(queries), Some(statements)),
            None => (None, None),
        };
        if let Some(statements) = &statements {
            // The read model starts from a durable state, and follows each batch from here on.
            ledger.commit()?;
            ledger.track_statements(true);
            statements.reset(ledger);
        }
        let first_seq = ledger.state().next_seq();
        let announcer = Announcer::start(client.clone());
        let (durable_sender, durable) = watch::channel(0u64);
        ledger.on_durable(move |ticket| {
            // No receiver left: the loop is over, and nobody waits for this flush.
            let _ = durable_sender.send(ticket);
        });
        Ok(ServeLoop {
            ledger,
            settings,
            options,
            js: jetstream::new(client.clone()),
            queries,
            statements,
            cursor_key: cursor_name(settings),
            stream: settings.stream.as_str().into(),
            first_seq,
            last_snapshot_seq: first_seq,
            report: ServeReport::default(),
            gathering: Gathering::default(),
            in_flight: None,
            announcer,
            durable,
        })
    }

    /// Connects, consumes until the connection is over, and again, until serving stops.
    async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<ServeReport, NatsError> {
        tokio::pin!(shutdown);
        let mut setup_failures = 0u32;
        let started = Instant::now();
        let failure = loop {
            let then = match self.connect().await {
                Ok(connection) => {
                    setup_failures = 0;
                    self.consume(connection, &mut shutdown).await?
                }
                // A first setup that keeps failing is a configuration problem: say so, after
                // STARTUP_PATIENCE (a cluster electing its leaders, a server just starting, does
                // not answer at once). Later ones are NATS coming back after a restart: wait.
                Err(e)
                    if self.report.batches == 0
                        && self.report.resumes == 0
                        && started.elapsed() >= STARTUP_PATIENCE =>
                {
                    return Err(e)
                }
                Err(e) => {
                    setup_failures += 1;
                    if setup_failures % 10 == 1 {
                        tracing::warn!(error = %e, "NATS is not answering yet; retrying");
                    }
                    Then::ReconnectLater
                }
            };
            match then {
                Then::Reconnect => {}
                Then::ReconnectLater => tokio::select! {
                    _ = &mut shutdown => break None,
                    _ = tokio::time::sleep(self.options.idle_wait) => {}
                },
                Then::Stop => break None,
                Then::Fail(e) => break Some(e),
            }
        };
        let report = self.stop().await?;
        match failure {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Sets the consumer up again from the ledger's cursor and starts receiving from it.
    async fn connect(&mut self) -> Result<Connection, NatsError> {
        let stream = ensure_stream(&self.js, self.settings).await?;
        if self.options.feed {
            ensure_feed_stream(&self.js, self.settings.replicas).await?;
        }
        let consumer = reset_consumer(&stream, self.settings, self.options.batch, self.cursor()).await?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(self.options.batch)
            // Two missed heartbeats tell a dead connection: a NATS restart is noticed within
            // about four seconds.
            .heartbeat(Duration::from_secs(2))
            .expires(Duration::from_secs(20))
            .messages()
            .await
            .map_err(|e| js_error("start consuming")(e.to_string()))?;
        let (schemes, parser_schemes) = watch::channel(self.ledger.state().scheme_shared());
        let (chunks, parser) = spawn_parser(messages, self.options.batch, parser_schemes);
        Ok(Connection { consumer, chunks, parser, schemes, fresh: true })
    }

    /// Serves one connection: each step is taken as what it waits for comes, until the
    /// connection is over; the answer says what comes next.
    async fn consume(
        &mut self,
        mut connection: Connection,
        shutdown: &mut Pin<&mut impl Future<Output = ()>>,
    ) -> Result<Then, NatsError> {
        loop {
            let then = match self.receive(&mut connection, shutdown).await {
                Wakeup::Shutdown => Some(Then::Stop),
                Wakeup::Flushed => {
                    self.flushed().await?;
                    None
                }
                Wakeup::Query(query) => {
                    query(&*self.ledger, &self.report);
                    None
                }
                Wakeup::Idle => self.idle(&mut connection).await,
                Wakeup::Ended => {
                    self.finish().await?;
                    tracing::warn!("the message stream ended; setting the consumer up again");
                    self.report.resumes += 1;
                    Some(Then::Reconnect)
                }
                Wakeup::Received(chunk) => self.take_in(*chunk, &mut connection).await?,
            };
            if let Some(then) = then {
                return Ok(then);
            }
        }
    }

    /// Waits for whatever comes first, in this order of precedence: shutdown, a finished flush,
    /// a query (ahead of new messages, so reads are not starved while a backlog is folded), a
    /// parsed chunk, and, with nothing in hand, `idle_wait` without any of those.
    async fn receive(
        &mut self,
        connection: &mut Connection,
        shutdown: &mut Pin<&mut impl Future<Output = ()>>,
    ) -> Wakeup {
        let idle = self.in_flight.is_none() && self.gathering.messages == 0;
        let waited = Instant::now();
        let wakeup = tokio::select! {
            biased;
            _ = shutdown.as_mut() => return Wakeup::Shutdown,
            _ = self.durable.changed(), if self.in_flight.is_some() => Wakeup::Flushed,
            query = next_query(&mut self.queries) => Wakeup::Query(query),
            chunk = connection.chunks.recv() => match chunk {
                Some(chunk) => Wakeup::Received(Box::new(chunk)),
                None => Wakeup::Ended,
            },
            _ = tokio::time::sleep(self.options.idle_wait), if idle => Wakeup::Idle,
        };
        self.report.timings.receive_wait_ms += waited.elapsed().as_secs_f64() * 1e3;
        wakeup
    }

    /// A parsed chunk came: fold it, commit when the writer is free or the gathering is full,
    /// snapshot when one is due, and end the connection when the chunk or a drain says so.
    async fn take_in(
        &mut self,
        mut chunk: ParsedChunk,
        connection: &mut Connection,
    ) -> Result<Option<Then>, NatsError> {
        let failure = chunk.failure.take();
        let gap = self.fold(chunk, connection);
        if let Some((cursor, delivered)) = gap {
            self.finish().await?;
            connection.parser.abort();
            tracing::warn!(
                cursor,
                delivered,
                "JetStream skipped messages the ledger lacks; setting the consumer up again from the cursor"
            );
            self.report.delivery_gaps += 1;
            self.report.resumes += 1;
            return Ok(Some(Then::Reconnect));
        }
        // Group commit: one batch at a time is being flushed; what arrives meanwhile gathers
        // and goes next. A full gathering waits for the flush in progress.
        if self.in_flight.is_none() || self.gathering.messages >= self.options.batch {
            self.acknowledge().await?;
            self.commit()?;
        }
        if self.ledger.state().next_seq() - self.last_snapshot_seq >= self.options.snapshot_every {
            self.finish().await?;
            self.ledger.snapshot()?;
            self.last_snapshot_seq = self.ledger.state().next_seq();
        }
        if self.options.drain && self.drained_in_hand() {
            self.finish().await?;
            if self.nothing_pending(&mut connection.consumer).await {
                connection.parser.abort();
                return Ok(Some(Then::Stop));
            }
        }
        let Some(failure) = failure else { return Ok(None) };
        self.finish().await?;
        connection.parser.abort();
        match failure {
            Failure::Receive(e) => {
                tracing::warn!(error = %e, "receiving from JetStream failed; setting the consumer up again");
                self.report.resumes += 1;
                Ok(Some(Then::ReconnectLater))
            }
            Failure::Unplaced(e) => Ok(Some(Then::Fail(e))),
        }
    }

    /// Offers a chunk's messages to the ledger (in memory) and moves the cursor. A scheme the
    /// fold put in force (the first event of an empty ledger logs one, as does an activation)
    /// goes to the parser, so what follows is parsed under it.
    fn fold(&mut self, chunk: ParsedChunk, connection: &mut Connection) -> Option<(u64, u64)> {
        let folding = Instant::now();
        let (feed, fresh) = (self.options.feed, connection.fresh);
        connection.fresh = false;
        let gap = self.gathering.fold(
            self.ledger,
            &self.stream,
            &self.cursor_key,
            chunk,
            self.first_seq,
            fresh,
            feed,
            &mut self.report,
        );
        let schemes = &connection.schemes;
        if !Arc::ptr_eq(&schemes.borrow(), &self.ledger.state().scheme_shared()) {
            schemes.send_replace(self.ledger.state().scheme_shared());
        }
        self.report.timings.fold_ms += folding.elapsed().as_secs_f64() * 1e3;
        gap
    }

    /// Hands what was gathered to the writer thread, with the cursor in the same sled batch,
    /// and computes its feed from the state it leaves. Nothing gathered, nothing committed.
    fn commit(&mut self) -> Result<(), NatsError> {
        assert!(self.in_flight.is_none(), "a batch is committed only once the one before it is acknowledged");
        let Gathering { last, messages, rejected, feed, drained } = std::mem::take(&mut self.gathering);
        let Some(last) = last else {
            assert!(messages == 0 && rejected.is_empty() && feed.is_empty(), "gathered messages without a last one");
            return Ok(());
        };
        let cursor = self.cursor();
        let ticket = self.ledger.submit()?;
        self.in_flight = Some(InFlight { ticket, last, messages, cursor, rejected, feed, drained });
        Ok(())
    }

    /// The writer thread finished a flush: if it was the batch in flight, acknowledge that one
    /// and commit what gathered meanwhile.
    async fn flushed(&mut self) -> Result<(), NatsError> {
        let durable = match &self.in_flight {
            Some(batch) => self.ledger.is_durable(batch.ticket)?,
            None => false,
        };
        if durable {
            self.acknowledge().await?;
            self.commit()?;
        }
        Ok(())
    }

    /// The one place a batch is acked. Waits until the batch in flight is durable, publishes
    /// what it changed to the statements' read model, acks it (`AckPolicy::All`: acking its last
    /// message acks it whole) and hands its rejection notices and feed to the announcer. None of
    /// these can lose anything: the batch is already stored, with its cursor.
    async fn acknowledge(&mut self) -> Result<(), NatsError> {
        let Some(batch) = self.in_flight.take() else { return Ok(()) };
        let waited = Instant::now();
        wait_durable(self.ledger, batch.ticket)?;
        let flush_wait = waited.elapsed().as_secs_f64();
        // Before the counters move: whoever sees this batch counted (/metrics) can read it.
        if let Some(statements) = self.statements.as_deref() {
            publish_statements(self.ledger, statements)?;
        }
        self.report.timings.durable_wait_ms += flush_wait * 1e3;
        self.report.commit_seconds.observe(COMMIT_SECONDS_BOUNDS, flush_wait);
        self.report.batch_sizes.observe(BATCH_SIZE_BOUNDS, batch.messages as f64);
        // A failed ack loses nothing: the cursor is stored, and a redelivery is skipped. The last
        // batch of a drain waits for the server's confirmation, so the consumer's state that
        // decides whether the stream is drained already counts it.
        let acked = if batch.drained { batch.last.double_ack().await } else { batch.last.ack().await };
        if let Err(e) = acked {
            tracing::warn!(error = %e, cursor = batch.cursor, "could not acknowledge a stored batch");
        }
        self.report.batches += 1;
        tracing::debug!(messages = batch.messages, cursor = batch.cursor, "batch committed and acked");
        self.announcer.announce(batch.rejected, batch.feed).await;
        Ok(())
    }

    /// Makes everything folded so far durable, acked and announced: the batch in flight, then
    /// what gathered behind it. Before a snapshot, a reconnection or the end of serving.
    async fn finish(&mut self) -> Result<(), NatsError> {
        self.acknowledge().await?;
        self.commit()?;
        self.acknowledge().await
    }

    /// Nothing in hand and nothing came: with `--drain`, stop once the stream holds nothing more.
    async fn idle(&mut self, connection: &mut Connection) -> Option<Then> {
        if self.options.drain && self.nothing_pending(&mut connection.consumer).await {
            connection.parser.abort();
            return Some(Then::Stop);
        }
        None
    }

    /// The last message received said the server had nothing more pending for the consumer.
    fn drained_in_hand(&self) -> bool {
        self.gathering.drained
            || (self.gathering.messages == 0 && self.in_flight.as_ref().is_some_and(|batch| batch.drained))
    }

    /// Whether the stream holds nothing the ledger lacks ([`nothing_pending`]). When the server
    /// cannot say (it is away), the answer is no: the drain goes on and asks again.
    async fn nothing_pending(&self, consumer: &mut consumer::PullConsumer) -> bool {
        match nothing_pending(consumer, self.cursor()).await {
            Ok(drained) => drained,
            Err(e) => {
                tracing::debug!(error = %e, "cannot tell whether the stream is drained yet");
                false
            }
        }
    }

    /// The last stream sequence the ledger took in.
    fn cursor(&self) -> u64 {
        stored_cursor(self.ledger, &self.cursor_key)
    }

    /// After the last connection: finishes the batch in hand, waits for the announcer to publish
    /// what is queued, commits and snapshots the ledger and brings the read model up to date.
    async fn stop(mut self) -> Result<ServeReport, NatsError> {
        self.finish().await?;
        self.report.feed_failures += self.announcer.close().await;
        self.ledger.commit()?;
        self.ledger.snapshot_and_project()?;
        if let Some(statements) = self.statements.as_deref() {
            publish_statements(self.ledger, statements)?;
            self.ledger.track_statements(false);
        }
        self.report.counts.parked = self.ledger.state().parked().range(self.first_seq..).count() as u64;
        tracing::info!(
            batches = self.report.batches,
            receive_wait_ms = self.report.timings.receive_wait_ms as u64,
            fold_ms = self.report.timings.fold_ms as u64,
            durable_wait_ms = self.report.timings.durable_wait_ms as u64,
            "serving stopped"
        );
        Ok(self.report)
    }
}

/// The next query, or never when no one can ask (no receiver, or every sender is gone), so the
/// loop's select does not spin on a closed channel.
async fn next_query(queries: &mut Option<mpsc::Receiver<Query>>) -> Query {
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

/// Publishes to the read model what the batches made durable so far changed.
fn publish_statements(ledger: &mut Ledger, statements: &ReadModel) -> Result<(), LedgerError> {
    for update in ledger.durable_statement_updates()? {
        statements.publish(ledger, update);
    }
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
