//! Probes and the API's own description, none of which needs a token: `/healthz` (alive),
//! `/readyz` (NATS connected and the serving loop answering) and `/openapi.json`.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::openapi;
use crate::state::ApiState;

/// How long /readyz waits for the serving loop.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) async fn healthz() -> Response {
    Json(json!({ "status": "alive" })).into_response()
}

/// The OpenAPI 3 document of this API; no token needed.
pub(crate) async fn openapi_json() -> Response {
    Json(openapi::document()).into_response()
}

/// Ready when NATS is connected and the serving loop (which holds the open store) answers.
pub(crate) async fn readyz(State(api): State<ApiState>) -> Response {
    let not_ready = |reason: String| {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "not ready", "error": reason }))).into_response()
    };
    if let Some(client) = api.nats_if_any() {
        let state = client.connection_state();
        if state != async_nats::connection::State::Connected {
            return not_ready(format!("NATS is not connected ({state}); premia serve reconnects by itself"));
        }
    }
    let asked = api.ask(READY_TIMEOUT, |ledger, _| (ledger.state().next_seq(), ledger.committed_head())).await;
    match asked {
        // The committed head (seq and chain hash) is what replicas of one stream compare: at the
        // same seq they have the same hash.
        Ok((next_seq, head)) => Json(json!({
            "status": "ready",
            "ledger_seq": next_seq.saturating_sub(1),
            "committed_seq": head.last_seq,
            "chain_hash": hex::encode(head.chain_hash),
        }))
        .into_response(),
        Err(e) => not_ready(e.message),
    }
}
