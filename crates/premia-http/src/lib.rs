//! premia's HTTP API: statements, entries, rejections and parked events, health and metrics.
//! This file lists the routes and builds the router; each resource has a file of its own.
//!
//! The API does not own the ledger: `premia_nats::serve` does. Statements and a manager's
//! entries are read from the statements' read model ([`premia_ledger::ReadModel`]), which the
//! serving loop publishes each durable batch to: such a read waits for no fold and no flush.
//! When the entries of a period are not held there, the loop is asked to load them. Every other
//! handler sends the serving loop a closure (a [`premia_ledger::Query`]) that computes the answer
//! from `&Ledger` between batches and sends it back on a oneshot channel: it sees exactly what
//! the loop has folded and never races a batch, but waits for the fold step in hand (and, for
//! anything read from the store, for the flush in progress).

mod access;
mod admin;
pub mod auth;
mod connections;
mod dashboard;
mod errors;
pub mod events;
pub mod explain;
mod feed;
mod feed_slots;
mod health;
mod limits;
mod managers;
mod metrics;
pub mod openapi;
mod rejected;
mod server;
mod state;
mod statements;
pub mod views;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

pub use auth::{Role, TokenConfig, Tokens};
pub use errors::ApiError;
pub use limits::Limits;
pub use metrics::prometheus_text;
pub use state::{ApiState, QUERY_QUEUE};

/// The `[http]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The address to listen on, such as `127.0.0.1:9090`, or `off` for no API; `premia serve`
    /// listens on 127.0.0.1:8080 when neither this, --http nor PREMIA_HTTP says otherwise.
    pub listen: Option<String>,
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Where `POST /v1/admin/backup` puts backups (`--backup-dir` wins).
    pub backup_dir: Option<std::path::PathBuf>,
    /// Seconds a client has to send a request's line and headers, from when it connects or its
    /// previous answer ends (so also the idle keep-alive timeout); 10 when left out.
    pub header_timeout_secs: Option<u64>,
    /// Seconds a client has to send a whole request body (`POST /v1/events`); 408 after; 30.
    pub body_timeout_secs: Option<u64>,
    /// Connections open at once; beyond it the oldest idle one is closed; 1024.
    pub max_connections: Option<usize>,
    /// Server-Sent Events feeds one token holds open at once; the next gets 429; 8.
    pub max_feeds_per_token: Option<usize>,
}

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
    ("post", "/v1/admin/backup"),
];

/// The API's routes (each one listed in [`ROUTES`]).
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/dashboard/app.js", get(dashboard::script))
        .route("/dashboard/app.css", get(dashboard::style))
        .route("/healthz", get(health::healthz))
        .route("/openapi.json", get(health::openapi_json))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/statements/{period}", get(statements::statement_all))
        .route("/v1/managers/{id}/statements/{period}", get(statements::statement_manager))
        .route("/v1/managers/{id}/entries", get(statements::entries))
        .route("/v1/explain/{seq}", get(explain::record))
        .route("/v1/explain/payments/{id}", get(explain::payment))
        .route("/v1/explain/deals/{id}", get(explain::deal))
        .route("/v1/rejected", get(rejected::rejected))
        .route("/v1/pending", get(rejected::pending))
        .route("/v1/whoami", get(managers::whoami))
        .route("/v1/periods", get(managers::periods))
        .route("/v1/managers", get(managers::managers))
        .route("/v1/managers/{id}/overdue/{period}", get(managers::overdue))
        .route("/v1/managers/{id}/feed", get(feed::feed))
        .route("/v1/events", post(events::post_events))
        .route("/v1/admin/backup", post(admin::backup))
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

/// Serves the API on `listener` until the process ends, within the state's [`Limits`].
pub async fn run(listener: tokio::net::TcpListener, state: ApiState) -> std::io::Result<()> {
    let limits = state.limits();
    server::run(listener, router(state), limits).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use premia_ledger::{Ledger, ReadModel, ServeReport};
    use premia_nats::StreamSettings;
    use serde_json::Value;
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
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<premia_ledger::Query>(4);
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
}
