//! premia's HTTP API: statements, entries, rejections and parked events, health and metrics.
//!
//! The API does not own the ledger: `premia_nats::serve` does. Statements and a manager's
//! entries are read from the statements' read model ([`premia_ledger::ReadModel`]), which the
//! serving loop publishes each durable batch to: such a read waits for no fold and no flush.
//! When the entries of a period are not held there, the loop is asked to load them. Every other
//! handler sends the serving loop a closure (a [`premia_ledger::Query`]) that computes the answer
//! from `&Ledger` between batches and sends it back on a oneshot channel: it sees exactly what
//! the loop has folded and never races a batch, but waits for the fold step in hand (and, for
//! anything read from the store, for the flush in progress).

pub mod auth;
mod dashboard;
pub mod events;
pub mod explain;
mod feed;
pub mod openapi;
pub mod views;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use premia_core::Period;
use premia_ledger::read_model::{Prepared, Read};
use premia_ledger::serving::{Histogram, Query as LoopQuery, ServeReport, BATCH_SIZE_BOUNDS, COMMIT_SECONDS_BOUNDS};
use premia_ledger::{Ledger, ReadModel};
use premia_nats::StreamSettings;
use serde::Deserialize;
use serde_json::{json, Value};

pub use auth::{Role, TokenConfig, Tokens};

/// The `[http]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The address to listen on, such as `127.0.0.1:9090`, or `off` for no API; `premia serve`
    /// listens on 127.0.0.1:8080 when neither this, --http nor PREMIA_HTTP says otherwise.
    pub listen: Option<String>,
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
}

/// How many queries may wait for the serving loop; more wait in the handlers (backpressure).
pub const QUERY_QUEUE: usize = 64;
/// How long a handler waits for the serving loop before answering 503.
pub(crate) const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long /readyz waits for the serving loop.
const READY_TIMEOUT: Duration = Duration::from_secs(2);
/// Paging: the default and the largest page.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// The most periods one entries request may span (ten years).
const MAX_PERIODS: usize = 120;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

struct Inner {
    queries: tokio::sync::mpsc::Sender<LoopQuery>,
    /// Published by the serving loop after each durable batch.
    statements: Arc<ReadModel>,
    tokens: Tokens,
    nats: Option<async_nats::Client>,
    /// The events stream `POST /v1/events` publishes to.
    stream: StreamSettings,
}

impl ApiState {
    /// `queries` goes to the serving loop, which publishes `statements`; `nats` is the client
    /// it consumes with (for /readyz, the feed and publishing); `stream` names the events stream
    /// it consumes.
    pub fn new(
        queries: tokio::sync::mpsc::Sender<LoopQuery>,
        statements: Arc<ReadModel>,
        tokens: Tokens,
        nats: Option<async_nats::Client>,
        stream: StreamSettings,
    ) -> ApiState {
        ApiState { inner: Arc::new(Inner { queries, statements, tokens, nats, stream }) }
    }

    /// A statement from the read model (one manager's, or the whole period's). When the
    /// period's entries are not held, the serving loop loads them and prepares it (loads run
    /// only there, between batches, so none can drop them in between).
    async fn prepared(&self, period: Period, manager: Option<String>) -> Result<Prepared, ApiError> {
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
        match read {
            Read::Ready(prepared) => Ok(prepared),
            Read::UnknownManager => Err(unknown_manager(manager.as_deref().unwrap_or_default())),
            Read::NotReady | Read::NotLoaded => Err(ApiError::new(
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
        let query: LoopQuery = Box::new(move |ledger, report| {
            // Queries wait in the channel while the loop is away (NATS down, a snapshot): one
            // whose handler has given up meanwhile is not worth a read of the store.
            if sender.is_closed() {
                return;
            }
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

    /// The role of the request's bearer token, or 401.
    pub(crate) fn role(&self, headers: &HeaderMap) -> Result<&Role, ApiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        let Some(token) = token else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this route needs a bearer token: send the header Authorization: Bearer TOKEN",
            ));
        };
        // Never log the token itself, nor its hash.
        self.inner.tokens.role_of(token).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "the bearer token is not one of the configured tokens; check it, or ask an administrator to add its SHA-256 to [[http.tokens]]",
            )
        })
    }

    fn require_everything(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let role = self.role(headers)?;
        if role.reads_everything() {
            Ok(())
        } else {
            Err(forbidden("only the admin and auditor roles read this; a manager reads /v1/managers/{id}/..."))
        }
    }

    fn require_manager(&self, headers: &HeaderMap, manager: &str) -> Result<(), ApiError> {
        let role = self.role(headers)?;
        if role.reads_manager(manager) {
            Ok(())
        } else {
            Err(forbidden(&format!("this token's role may not read manager {manager}'s statements and entries")))
        }
    }
}

fn not_serving() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the serving loop is not running, so the ledger cannot be read here; check the logs of premia serve",
    )
}

pub(crate) fn forbidden(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, message)
}

/// An error answer: a status and a sentence saying what to do, as `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

pub(crate) type Answer = Result<Response, ApiError>;

/// Every route `router` serves, as (method, path): kept next to the router, and asserted
/// against both the router and the OpenAPI document by the tests.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/"),
    ("get", "/dashboard/app.js"),
    ("get", "/dashboard/app.css"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/v1/statements/{period}"),
    ("get", "/v1/managers/{id}/statements/{period}"),
    ("get", "/v1/managers/{id}/entries"),
    ("get", "/v1/explain/{seq}"),
    ("get", "/v1/explain/payments/{id}"),
    ("get", "/v1/explain/deals/{id}"),
    ("get", "/v1/rejected"),
    ("get", "/v1/pending"),
    ("get", "/v1/whoami"),
    ("get", "/v1/periods"),
    ("get", "/v1/managers"),
    ("get", "/v1/managers/{id}/overdue/{period}"),
    ("get", "/v1/managers/{id}/feed"),
    ("post", "/v1/events"),
];

/// The API's routes (each one listed in [`ROUTES`]).
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/dashboard/app.js", get(dashboard::script))
        .route("/dashboard/app.css", get(dashboard::style))
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi_json))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/statements/{period}", get(statement_all))
        .route("/v1/managers/{id}/statements/{period}", get(statement_manager))
        .route("/v1/managers/{id}/entries", get(entries))
        .route("/v1/explain/{seq}", get(explain))
        .route("/v1/explain/payments/{id}", get(explain::payment))
        .route("/v1/explain/deals/{id}", get(explain::deal))
        .route("/v1/rejected", get(rejected))
        .route("/v1/pending", get(pending))
        .route("/v1/whoami", get(whoami))
        .route("/v1/periods", get(periods))
        .route("/v1/managers", get(managers))
        .route("/v1/managers/{id}/overdue/{period}", get(overdue))
        .route("/v1/managers/{id}/feed", get(feed::feed))
        .route("/v1/events", post(events::post_events))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "no such route; see docs/ARCHITECTURE.md for the API")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this route does not answer this method: POST /v1/events takes events, every other route answers GET",
            )
        })
        .with_state(state)
}

/// Serves the API on `listener` until the process ends.
pub async fn run(listener: tokio::net::TcpListener, state: ApiState) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

fn parse_period(text: &str) -> Result<Period, ApiError> {
    Period::parse(text).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{text:?} is not a period; write a calendar month as YYYY-MM, such as 2026-11"),
        )
    })
}

/// Whether the ledger has booked anything for this manager in any period.
fn known_manager(ledger: &Ledger, manager: &str) -> bool {
    ledger.state().books().values().any(|managers| managers.contains_key(manager))
}

fn unknown_manager(manager: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("the ledger has nothing for manager {manager:?} in any period; check the id (they are case-sensitive)"),
    )
}

async fn healthz() -> Response {
    Json(json!({ "status": "alive" })).into_response()
}

/// The OpenAPI 3 document of this API; no token needed.
async fn openapi_json() -> Response {
    Json(openapi::document()).into_response()
}

/// Ready when NATS is connected and the serving loop (which holds the open store) answers.
async fn readyz(State(api): State<ApiState>) -> Response {
    let not_ready = |reason: String| {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "not ready", "error": reason }))).into_response()
    };
    if let Some(client) = &api.inner.nats {
        let state = client.connection_state();
        if state != async_nats::connection::State::Connected {
            return not_ready(format!("NATS is not connected ({state}); premia serve reconnects by itself"));
        }
    }
    match api.ask(READY_TIMEOUT, |ledger, _| ledger.state().next_seq()).await {
        Ok(next_seq) => Json(json!({ "status": "ready", "ledger_seq": next_seq.saturating_sub(1) })).into_response(),
        Err(e) => not_ready(e.message),
    }
}

async fn statement_all(State(api): State<ApiState>, headers: HeaderMap, Path(period): Path<String>) -> Answer {
    api.require_everything(&headers)?;
    let period = parse_period(&period)?;
    let prepared = api.prepared(period, None).await?;
    json_response(prepared).await
}

async fn statement_manager(
    State(api): State<ApiState>,
    headers: HeaderMap,
    Path((manager, period)): Path<(String, String)>,
) -> Answer {
    api.require_manager(&headers, &manager)?;
    let period = parse_period(&period)?;
    let prepared = api.prepared(period, Some(manager)).await?;
    json_response(prepared).await
}

/// The statement's JSON: the bytes rendered already, or rendered now on a blocking thread (a
/// whole period's runs to megabytes).
async fn json_response(prepared: Prepared) -> Answer {
    let bytes = match prepared.cached() {
        Some(bytes) => bytes,
        None => tokio::task::spawn_blocking(move || prepared.json())
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?,
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

fn to_json(value: impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(ApiError::internal)
}

/// A manager's entries over `from..=to` (periods), as the statements show them, each with its
/// period.
async fn entries(
    State(api): State<ApiState>,
    headers: HeaderMap,
    Path(manager): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Answer {
    api.require_manager(&headers, &manager)?;
    let bad = |m: &str| ApiError::new(StatusCode::BAD_REQUEST, m);
    let from = parse_period(params.get("from").ok_or_else(|| bad("give the first period as from=YYYY-MM"))?)?;
    let to = match params.get("to") {
        Some(to) => parse_period(to)?,
        None => from,
    };
    if to < from {
        return Err(bad("to comes before from; give from=YYYY-MM&to=YYYY-MM with from <= to"));
    }
    let mut periods = vec![from];
    while let Some(&last) = periods.last() {
        if last >= to {
            break;
        }
        if periods.len() >= MAX_PERIODS {
            return Err(bad(&format!("ask for at most {MAX_PERIODS} periods at once")));
        }
        periods.push(last.next());
    }
    let mut entries = Vec::new();
    for period in periods {
        let prepared = api.prepared(period, Some(manager.clone())).await?;
        let statement = tokio::task::spawn_blocking(move || prepared.statement()).await.map_err(ApiError::internal)?;
        for m in statement.managers.iter().filter(|m| m.manager_id == manager) {
            for entry in &m.entries {
                let mut value = to_json(entry)?;
                value["period"] = Value::String(period.to_string());
                entries.push(value);
            }
        }
    }
    let answer = json!({ "manager_id": manager, "from": from.to_string(), "to": to.to_string(), "entries": entries });
    Ok(Json(answer).into_response())
}

/// The entries log record `seq` booked, each as the statements show it (with its one-line
/// explanation and its period), from the stored entries and the current state; and, when it
/// booked nothing, what became of it (rejected by a rule, or parked). A manager reads only a
/// record that booked something for them, and sees only their own entries.
async fn explain(State(api): State<ApiState>, headers: HeaderMap, Path(seq): Path<String>) -> Answer {
    let role = api.role(&headers)?.clone();
    if role == Role::Publisher {
        return Err(forbidden("the publisher role only posts events; it reads nothing"));
    }
    let seq: u64 = seq.trim_start_matches("seq:").parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{seq:?} is not a log seq; give the seq a statement shows beside the entry, such as 123"),
        )
    })?;
    let answer = api
        .ask(QUERY_TIMEOUT, move |ledger, _| {
            let state = ledger.state();
            let last = state.next_seq().saturating_sub(1);
            if seq == 0 || seq > last {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("there is no log record {seq}; the log runs from seq 1 to {last}"),
                ));
            }
            let mut entries = ledger.entries_of_seq(seq).map_err(ApiError::internal)?;
            if let Role::Manager(own) = &role {
                entries.retain(|e| *e.manager_id == **own);
                if entries.is_empty() {
                    return Err(forbidden(&format!(
                        "log record {seq} booked nothing for manager {own}; this token reads only that manager's entries"
                    )));
                }
            }
            let mut views = Vec::with_capacity(entries.len());
            for entry in &entries {
                let mut view = to_json(state.entry_view(entry))?;
                view["manager_id"] = Value::String(entry.manager_id.to_string());
                view["period"] = Value::String(entry.period.to_string());
                views.push(view);
            }
            let outcome = if !entries.is_empty() {
                json!({ "outcome": "booked" })
            } else if let Some((event_type, rejection)) = state.rejected_by_rule().get(&seq) {
                json!({ "outcome": "rejected", "type": event_type.as_str(), "reason": rejection.reason.code(),
                        "message": rejection.message })
            } else if let Some(parked) = state.parked().get(&seq) {
                json!({ "outcome": "parked", "type": parked.event.data.event_type().as_str(),
                        "waits_for": parked.waits_for.to_string() })
            } else {
                json!({ "outcome": "nothing booked" })
            };
            let mut answer = json!({ "seq": seq, "entries": views });
            if let (Value::Object(answer), Value::Object(outcome)) = (&mut answer, outcome) {
                answer.extend(outcome);
            }
            Ok(answer)
        })
        .await??;
    Ok(Json(answer).into_response())
}

/// The role of the token presented: what the dashboard needs to know whose page to show.
async fn whoami(State(api): State<ApiState>, headers: HeaderMap) -> Answer {
    let answer = match api.role(&headers)? {
        Role::Admin => json!({ "role": "admin" }),
        Role::Auditor => json!({ "role": "auditor" }),
        Role::Publisher => json!({ "role": "publisher" }),
        Role::Manager(id) => json!({ "role": "manager", "manager_id": id }),
    };
    Ok(Json(answer).into_response())
}

/// Every period with anything in it, open or closed, and the one a dashboard opens on: the
/// latest open period (the ledger has no clock; the CRM's dates say what is current).
async fn periods(State(api): State<ApiState>, headers: HeaderMap) -> Answer {
    if *api.role(&headers)? == Role::Publisher {
        return Err(forbidden("the publisher role only posts events; it reads nothing"));
    }
    let answer = api
        .ask(QUERY_TIMEOUT, |ledger, _| {
            let state = ledger.state();
            let periods = state.periods();
            let current = periods.iter().rev().find(|p| !state.is_closed(**p)).or(periods.last());
            json!({
                "current": current.map(|p| p.to_string()),
                "periods": periods.iter().map(|p| json!({
                    "period": p.to_string(),
                    "status": if state.is_closed(*p) { "closed" } else { "open" },
                })).collect::<Vec<_>>(),
            })
        })
        .await?;
    Ok(Json(answer).into_response())
}

/// Every manager the ledger has booked anything for, by id.
async fn managers(State(api): State<ApiState>, headers: HeaderMap) -> Answer {
    api.require_everything(&headers)?;
    let answer = api
        .ask(QUERY_TIMEOUT, |ledger, _| {
            let mut ids: Vec<&str> =
                ledger.state().books().values().flat_map(|managers| managers.keys().map(|id| &**id)).collect();
            ids.sort_unstable();
            ids.dedup();
            json!({ "managers": ids })
        })
        .await?;
    Ok(Json(answer).into_response())
}

/// A manager's deals overdue at the end of a period (as `premia figures` counts them), each
/// with what is still outstanding.
async fn overdue(
    State(api): State<ApiState>,
    headers: HeaderMap,
    Path((manager, period)): Path<(String, String)>,
) -> Answer {
    api.require_manager(&headers, &manager)?;
    let period = parse_period(&period)?;
    let answer = api
        .ask(QUERY_TIMEOUT, move |ledger, _| {
            if !known_manager(ledger, &manager) {
                return Err(unknown_manager(&manager));
            }
            let state = ledger.state();
            let deals = state.overdue_deals(period, &manager);
            let outstanding: rust_decimal::Decimal = deals.iter().map(|d| d.outstanding).sum();
            Ok(json!({
                "manager_id": manager,
                "period": period.to_string(),
                "currency": state.scheme().currency,
                "outstanding": premia_core::money::money_text(outstanding),
                "deals": to_json(&deals)?,
            }))
        })
        .await??;
    Ok(Json(answer).into_response())
}

/// `offset` and `limit` of a paged list.
fn paging(params: &HashMap<String, String>) -> Result<(usize, usize), ApiError> {
    let number = |name: &str, default: usize| match params.get(name) {
        None => Ok(default),
        Some(text) => text.parse::<usize>().map_err(|_| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("{name} must be a whole number of 0 or more, not {text:?}"))
        }),
    };
    let offset = number("offset", 0)?;
    let limit = number("limit", DEFAULT_LIMIT)?;
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    Ok((offset, limit))
}

fn page(items: Vec<Value>, offset: usize, limit: usize) -> Value {
    let total = items.len();
    let items: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    json!({ "total": total, "offset": offset, "limit": limit, "items": items })
}

/// Rejections as `premia rejected --format json` lists them, a page at a time.
async fn rejected(
    State(api): State<ApiState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Answer {
    api.require_everything(&headers)?;
    let (offset, limit) = paging(&params)?;
    let items = api
        .ask(QUERY_TIMEOUT, |ledger, _| {
            views::rejections(ledger)
                .map(|items| items.iter().map(views::RejectionItem::to_json).collect::<Vec<_>>())
                .map_err(ApiError::internal)
        })
        .await??;
    Ok(Json(page(items, offset, limit)).into_response())
}

/// Parked events as `premia pending --format json` lists them, a page at a time.
async fn pending(
    State(api): State<ApiState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Answer {
    api.require_everything(&headers)?;
    let (offset, limit) = paging(&params)?;
    let items = api.ask(QUERY_TIMEOUT, |ledger, _| views::pending_rows(ledger)).await?;
    Ok(Json(page(items, offset, limit)).into_response())
}

/// The serving loop's counters in the Prometheus text format (version 0.0.4).
async fn metrics(State(api): State<ApiState>, headers: HeaderMap) -> Answer {
    api.require_everything(&headers)?;
    let text = api
        .ask(QUERY_TIMEOUT, |ledger, report| {
            prometheus_text(report, ledger.state().parked().len() as u64, ledger.state().next_seq())
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

/// The text format of the counters. Counters count since this `premia serve` started.
pub fn prometheus_text(report: &ServeReport, parked: u64, next_seq: u64) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    };
    let counts = &report.counts;
    metric("premia_events_applied_total", "counter", "Events applied since serve started.", counts.applied);
    metric(
        "premia_events_duplicate_total",
        "counter",
        "Events already in the ledger (same source, id and content) since serve started.",
        counts.duplicates,
    );
    metric("premia_events_rejected_total", "counter", "Lines rejected since serve started.", counts.rejected);
    metric("premia_events_parked", "gauge", "Events parked now, waiting for their deal or payment.", parked);
    metric("premia_batches_total", "counter", "Batches committed and acked since serve started.", report.batches);
    metric(
        "premia_redelivered_skipped_total",
        "counter",
        "Redelivered messages already in the ledger, acked without being offered again.",
        report.skipped,
    );
    metric("premia_consumer_resumes_total", "counter", "Times the consumer was set up again.", report.resumes);
    metric("premia_feed_failures_total", "counter", "Feed messages JetStream did not confirm.", report.feed_failures);
    metric("premia_ledger_records", "gauge", "Records in the ledger's log.", next_seq.saturating_sub(1));
    if let Some(pending) = report.consumer_pending {
        metric(
            "premia_consumer_pending",
            "gauge",
            "Messages the stream still had for the consumer after the last one delivered (consumer lag).",
            pending,
        );
    }
    let _ =
        writeln!(out, "# HELP premia_events_rejected_by_reason_total Lines rejected since serve started, by reason.");
    let _ = writeln!(out, "# TYPE premia_events_rejected_by_reason_total counter");
    for (reason, n) in report.rejected_by_reason.nonzero() {
        let _ = writeln!(out, "premia_events_rejected_by_reason_total{{reason=\"{}\"}} {n}", reason.code());
    }
    histogram(&mut out, "premia_batch_size", "Messages per committed batch.", &report.batch_sizes, BATCH_SIZE_BOUNDS);
    histogram(
        &mut out,
        "premia_commit_seconds",
        "Seconds each committed batch waited for its flush to disk.",
        &report.commit_seconds,
        COMMIT_SECONDS_BOUNDS,
    );
    out
}

fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram, bounds: &[f64]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (bound, n) in h.cumulative(bounds) {
        let le = if bound.is_infinite() { "+Inf".to_string() } else { bound.to_string() };
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_sum {}", h.sum);
    let _ = writeln!(out, "{name}_count {}", h.count);
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use sha2::Digest;
    use tower::ServiceExt;

    const TOKEN: &str = "unit-test-admin";

    fn tokens() -> Tokens {
        let hash = hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()));
        Tokens::from_config(&[TokenConfig { sha256: hash, role: "admin".into() }]).unwrap()
    }

    async fn call(state: ApiState, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = Request::get(path);
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let response = router(state).oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    /// A real (empty) ledger answering queries on a thread of its own, as the serving loop
    /// would between batches, and its statements' read model.
    fn answering_loop(dir: &std::path::Path) -> ApiState {
        let ledger = Ledger::open(dir, &premia_ledger::LedgerOptions::default(), "test").unwrap();
        let statements = Arc::new(ReadModel::new(2));
        statements.reset(&ledger);
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<LoopQuery>(4);
        std::thread::spawn(move || {
            let report = ServeReport::default();
            while let Some(query) = receiver.blocking_recv() {
                query(&ledger, &report);
            }
        });
        ApiState::new(sender, statements, tokens(), None, StreamSettings::default())
    }

    #[tokio::test]
    async fn readyz_says_when_no_serving_loop_answers() {
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        drop(receiver);
        let statements = Arc::new(ReadModel::new(1));
        let (status, body) =
            call(ApiState::new(sender, statements.clone(), tokens(), None, StreamSettings::default()), "/readyz", None)
                .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body["error"].as_str().unwrap().contains("serving loop is not running"), "{body}");
        // Alive all the same.
        let (sender, _receiver) = tokio::sync::mpsc::channel(1);
        assert_eq!(
            call(ApiState::new(sender, statements, tokens(), None, StreamSettings::default()), "/healthz", None)
                .await
                .0,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn an_empty_ledger_is_ready_and_knows_no_manager() {
        let dir = tempfile::tempdir().unwrap();
        let state = answering_loop(dir.path());
        let (status, body) = call(state.clone(), "/readyz", None).await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ready")), "{body}");
        let (status, body) = call(state.clone(), "/v1/managers/M-1/statements/2026-11", Some(TOKEN)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, body) = call(state.clone(), "/v1/statements/11-2026", Some(TOKEN)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error"].as_str().unwrap().contains("YYYY-MM"));
        let (status, body) = call(state.clone(), "/v1/statements/2026-11", Some(TOKEN)).await;
        assert_eq!((status, body["managers"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "{body}");
        let post = Request::post("/v1/statements/2026-11").body(Body::empty()).unwrap();
        let response = router(state.clone()).oneshot(post).await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        let (status, _) = call(state, "/v1/statements/2026-11", Some("unit-test-admin ")).await;
        assert_eq!(status, StatusCode::OK, "surrounding blanks of the header value are not part of the token");
    }

    #[test]
    fn metrics_are_in_the_prometheus_text_format() {
        let mut report = ServeReport::default();
        report.counts.applied = 27;
        report.batches = 3;
        let text = prometheus_text(&report, 2, 30);
        assert!(text.contains("# TYPE premia_events_applied_total counter\npremia_events_applied_total 27\n"));
        assert!(text.contains("premia_events_parked 2\n"));
        assert!(text.contains("premia_batches_total 3\n"));
        assert!(text.contains("premia_ledger_records 29\n"));
        // Every sample line is `name value` after its HELP and TYPE lines.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("premia_") && value.parse::<f64>().is_ok(), "{line}");
        }
        assert!(!text.contains("premia_consumer_pending"), "lag is left out until a message says it");
        report.consumer_pending = Some(12);
        report.rejected_by_reason.add(premia_core::Reason::from_code("currency_mismatch").unwrap());
        report.rejected_by_reason.add(premia_core::Reason::from_code("currency_mismatch").unwrap());
        for size in [1.0, 40.0, 40.0, 9000.0] {
            report.batch_sizes.observe(BATCH_SIZE_BOUNDS, size);
        }
        report.commit_seconds.observe(COMMIT_SECONDS_BOUNDS, 0.003);
        let text = prometheus_text(&report, 2, 30);
        assert!(text.contains("premia_consumer_pending 12\n"), "{text}");
        assert!(text.contains("premia_events_rejected_by_reason_total{reason=\"currency_mismatch\"} 2\n"), "{text}");
        assert!(text.contains("premia_batch_size_bucket{le=\"1\"} 1\n"), "{text}");
        assert!(text.contains("premia_batch_size_bucket{le=\"10\"} 1\n"), "{text}");
        assert!(text.contains("premia_batch_size_bucket{le=\"50\"} 3\n"), "{text}");
        assert!(text.contains("premia_batch_size_bucket{le=\"5000\"} 3\n"), "{text}");
        assert!(text.contains("premia_batch_size_bucket{le=\"+Inf\"} 4\n"), "{text}");
        assert!(text.contains("premia_batch_size_sum 9081\npremia_batch_size_count 4\n"), "{text}");
        assert!(text.contains("premia_commit_seconds_bucket{le=\"0.0025\"} 0\n"), "{text}");
        assert!(text.contains("premia_commit_seconds_bucket{le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("# TYPE premia_commit_seconds histogram\n"), "{text}");
    }
}
