//! `GET /v1/managers/{id}/feed`: the accrual feed of one manager as Server-Sent Events, for
//! browsers (the dashboard) and tools that cannot speak NATS.
//!
//! Each connection gets an ordered, ephemeral JetStream consumer of its own on the feed stream,
//! filtered to the manager's subject; the serving loop is not involved at all, so a slow reader
//! holds up nothing but itself. The SSE `id:` is the message's sequence in the feed stream, so
//! a client that lost the connection sends it back as `Last-Event-ID` and is delivered
//! everything after it (what EventSource does by itself); without it only new messages come.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use premia_nats::{subject_token, FEED_STREAM, FEED_SUBJECT_PREFIX};

use crate::errors::{forbidden, Answer, ApiError};
use crate::state::ApiState;

/// A comment line this often keeps proxies and load balancers from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The stream sequence to resume after, from `Last-Event-ID`.
fn resume_after(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else { return Ok(None) };
    value.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()).map(Some).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "Last-Event-ID must be the id of an event this feed sent (a whole number); leave it out to get only new messages",
        )
    })
}

/// How long a client refused for too many feeds is told to wait before it asks again.
const RETRY_AFTER_SECS: u64 = 5;

/// 429: the token holds as many feeds open as it may.
fn too_many_feeds(per_token: usize) -> Response {
    let message = format!(
        "this token has {per_token} feeds open already, as many as [http] max_feeds_per_token allows; close one \
         (or let one end) and try again in {RETRY_AFTER_SECS} s, or give each reader a token of its own"
    );
    let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}

pub(crate) async fn feed(State(api): State<ApiState>, headers: HeaderMap, Path(manager): Path<String>) -> Answer {
    let (token, role) = api.caller(&headers)?;
    if !role.reads_manager(&manager) {
        return Err(forbidden(&format!("this token's role may not read manager {manager}'s feed")));
    }
    // Taken before the consumer is made and owned by the stream below: given back when the
    // stream is dropped, on an error here or when the connection ends.
    let Some(slot) = api.feeds().take(token) else {
        return Ok(too_many_feeds(api.feeds().per_token()));
    };
    let deliver_policy = match resume_after(&headers)? {
        Some(last) => consumer::DeliverPolicy::ByStartSequence { start_sequence: last.saturating_add(1) },
        None => consumer::DeliverPolicy::New,
    };
    let client = api.nats("read the feed from")?;
    let unavailable = |what: &str, e: &dyn std::fmt::Display| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("{what} ({e}); try again shortly"))
    };
    let js = jetstream::new(client.clone());
    let stream = js.get_stream(FEED_STREAM).await.map_err(|e| {
        unavailable(
            &format!("the feed stream {FEED_STREAM} cannot be read; premia serve creates it when it starts, unless run with --no-feed"),
            &e,
        )
    })?;
    // Created before the answer starts, so with DeliverPolicy::New nothing published after the
    // client saw the response headers is missed.
    let consumer = stream
        .create_consumer(consumer::push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: format!("{FEED_SUBJECT_PREFIX}{}", subject_token(&manager)),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable("JetStream refused a consumer for the feed", &e))?;
    let messages = consumer.messages().await.map_err(|e| unavailable("the feed cannot be consumed", &e))?;
    let events = messages.filter_map(move |message| {
        slot.hold();
        std::future::ready(sse_event(message, &manager))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response())
}

/// A feed message as an SSE event whose id is its feed stream sequence; `None` for another
/// manager's message. An error ends the stream: the client reconnects with Last-Event-ID and
/// loses nothing.
fn sse_event(
    message: Result<jetstream::Message, consumer::push::OrderedError>,
    manager: &str,
) -> Option<Result<Event, axum::BoxError>> {
    let message = match message {
        Ok(message) => message,
        Err(e) => return Some(Err(axum::BoxError::from(e))),
    };
    // Two ids can share a subject token (`a.b` and `a_b`): never hand one manager another's
    // message.
    let own = serde_json::from_slice::<serde_json::Value>(&message.payload)
        .is_ok_and(|v| v["manager_id"].as_str() == Some(manager));
    match message.info() {
        Ok(info) if own => Some(Ok(Event::default()
            .id(info.stream_sequence.to_string())
            .data(String::from_utf8_lossy(&message.payload)))),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    }
}
