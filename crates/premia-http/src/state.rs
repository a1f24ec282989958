//! What the handlers share, and the two ways they read the ledger: a query the serving loop runs
//! between its steps, or a statement from the statements' read model.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use premia_core::Period;
use premia_ledger::read_model::{Prepared, Read};
use premia_ledger::serving::{Query, ServeReport};
use premia_ledger::{Ledger, ReadModel};
use premia_nats::StreamSettings;

use crate::auth::Tokens;
use crate::errors::{not_serving, unknown_manager, ApiError};
use crate::feed_slots::FeedSlots;
use crate::limits::Limits;

/// How many queries may wait for the serving loop; more wait in the handlers (backpressure).
pub const QUERY_QUEUE: usize = 64;
/// How long a handler waits for the serving loop before answering 503.
pub(crate) const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

struct Inner {
    queries: tokio::sync::mpsc::Sender<Query>,
    /// Published by the serving loop after each durable batch.
    statements: Arc<ReadModel>,
    tokens: Tokens,
    nats: Option<async_nats::Client>,
    /// The events stream `POST /v1/events` publishes to.
    stream: StreamSettings,
    /// Where `POST /v1/admin/backup` puts backups; none without one.
    backup_dir: Option<std::path::PathBuf>,
    /// What a client may take (time, connections, feeds).
    limits: Limits,
    /// The feeds each token holds open.
    feeds: Arc<FeedSlots>,
}

impl ApiState {
    /// `queries` goes to the serving loop, which publishes `statements`; `nats` is the client
    /// it consumes with (for /readyz, the feed and publishing); `stream` names the events stream
    /// it consumes.
    pub fn new(
        queries: tokio::sync::mpsc::Sender<Query>,
        statements: Arc<ReadModel>,
        tokens: Tokens,
        nats: Option<async_nats::Client>,
        stream: StreamSettings,
    ) -> ApiState {
        let limits = Limits::default();
        let feeds = FeedSlots::new(limits.feeds_per_token);
        ApiState {
            inner: Arc::new(Inner { queries, statements, tokens, nats, stream, backup_dir: None, limits, feeds }),
        }
    }

    /// Lets `POST /v1/admin/backup` put backups in `dir`. Set before the state is shared.
    pub fn with_backup_dir(mut self, dir: Option<std::path::PathBuf>) -> ApiState {
        let inner = Arc::get_mut(&mut self.inner).expect("the backup directory is set before the state is shared");
        inner.backup_dir = dir;
        self
    }

    /// Applies `limits` (the defaults until then). Set before the state is shared.
    pub fn with_limits(mut self, limits: Limits) -> ApiState {
        let inner = Arc::get_mut(&mut self.inner).expect("the limits are set before the state is shared");
        inner.limits = limits;
        inner.feeds = FeedSlots::new(limits.feeds_per_token);
        self
    }

    pub(crate) fn limits(&self) -> Limits {
        self.inner.limits
    }

    pub(crate) fn feeds(&self) -> &Arc<FeedSlots> {
        &self.inner.feeds
    }

    pub(crate) fn backup_dir(&self) -> Option<&std::path::Path> {
        self.inner.backup_dir.as_deref()
    }

    pub(crate) fn tokens(&self) -> &Tokens {
        &self.inner.tokens
    }

    /// The events stream `POST /v1/events` publishes to: the one the serving loop consumes.
    pub(crate) fn stream(&self) -> &StreamSettings {
        &self.inner.stream
    }

    /// The NATS client, for a route that needs one to `what` (publish, read the feed).
    pub(crate) fn nats(&self, what: &str) -> Result<async_nats::Client, ApiError> {
        self.inner.nats.clone().ok_or_else(|| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("this server has no NATS connection to {what}"))
        })
    }

    /// The NATS client, when this server has one (a test may run without).
    pub(crate) fn nats_if_any(&self) -> Option<&async_nats::Client> {
        self.inner.nats.as_ref()
    }

    /// A statement from the read model: one manager's, or the whole period's. When the
    /// period's entries are not held, the serving loop loads them and prepares it (loads run
    /// only there, between batches, so none can drop them in between).
    pub(crate) async fn prepared(&self, period: Period, manager: Option<String>) -> Result<Prepared, ApiError> {
        let read = match self.inner.statements.prepare(period, manager.as_deref()) {
            Read::NotLoaded => {
                let statements = self.inner.statements.clone();
                let manager = manager.clone();
                self.ask(QUERY_TIMEOUT, move |ledger, _| {
                    statements.load(ledger, period).map(|()| statements.prepare(period, manager.as_deref()))
                })
                .await?
                .map_err(ApiError::internal)?
            }
            read => read,
        };
        match (read, manager) {
            (Read::Ready(prepared), _) => Ok(prepared),
            (Read::UnknownManager, Some(manager)) => Err(unknown_manager(&manager)),
            (Read::UnknownManager, None) => {
                unreachable!("the read model knows every manager of a whole period's statement")
            }
            (Read::NotReady | Read::NotLoaded, _) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the serving loop has not published the ledger's statements yet; try again in a moment",
            )),
        }
    }

    /// Runs `f` on the serving loop's ledger between batches and returns its result.
    pub(crate) async fn ask<T: Send + 'static>(
        &self,
        timeout: Duration,
        f: impl FnOnce(&Ledger, &ServeReport) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let query: Query = Box::new(move |ledger, report| {
            // Queries wait in the channel while the loop is away (NATS down, a snapshot): one
            // whose handler has given up meanwhile is not worth a read of the store.
            if sender.is_closed() {
                return;
            }
            // The handler may give up between the check above and now: nobody is left to tell.
            let _ = sender.send(f(ledger, report));
        });
        let asked = async {
            self.inner.queries.send(query).await.map_err(|_| not_serving())?;
            receiver.await.map_err(|_| not_serving())
        };
        tokio::time::timeout(timeout, asked).await.map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the serving loop did not answer within {} s (a large batch or a snapshot in progress); try again",
                    timeout.as_secs()
                ),
            )
        })?
    }
}
