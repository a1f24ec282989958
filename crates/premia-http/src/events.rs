//! `POST /v1/events`: CloudEvents from a webhook, validated as the ledger would, then published
//! to the events stream. Nothing is published unless every event of the request is valid, and
//! the answer (202) waits for JetStream to have stored each one: a CRM that gets 202 may forget
//! the events, and one that gets anything else may send the same request again, since
//! `Nats-Msg-Id` (and, past JetStream's window, the ledger's own duplicate check) drops repeats.

use std::collections::VecDeque;

use async_nats::jetstream;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use premia_core::Admission;
use premia_nats::StreamSettings;
use serde_json::{json, value::RawValue, Value};

use crate::errors::{forbidden, Answer, ApiError};
use crate::state::{ApiState, QUERY_TIMEOUT};

/// The largest body taken (a batch of about ten thousand typical events fits).
pub const MAX_BODY: usize = 8 << 20;
/// The most events in one batch.
pub const MAX_BATCH: usize = 10_000;
/// Publishes awaiting JetStream's confirmation at once, as `premia publish` keeps them.
const IN_FLIGHT: usize = 256;

/// What the Content-Type allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `application/cloudevents+json`: structured mode, one event object.
    One,
    /// `application/cloudevents-batch+json`: batched mode, an array of events.
    Batch,
    /// `application/json`: an object or an array, whichever the body is.
    Either,
}

fn shape_of(headers: &HeaderMap) -> Result<Shape, ApiError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/cloudevents+json") => Ok(Shape::One),
        Some("application/cloudevents-batch+json") => Ok(Shape::Batch),
        Some("application/json") => Ok(Shape::Either),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send Content-Type: application/cloudevents+json (one event), application/cloudevents-batch+json \
             (an array of events) or application/json (either)",
        )),
    }
}

/// One valid event, ready to publish.
struct Ready {
    source: String,
    id: String,
    subject: String,
    payload: Bytes,
}

/// Splits the body into its events, keeping each event's own bytes.
fn split(body: &Bytes, shape: Shape) -> Result<Vec<Bytes>, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let is_array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    match (shape, is_array) {
        (Shape::One, true) => {
            return Err(bad("application/cloudevents+json carries one event object; send an array as \
                 application/cloudevents-batch+json"
                .into()))
        }
        (Shape::Batch, false) => {
            return Err(bad("application/cloudevents-batch+json carries a JSON array of events; send one \
                 event as application/cloudevents+json"
                .into()))
        }
        _ => {}
    }
    if !is_array {
        // One event: its bytes go to the validation as they came, whatever they are.
        return Ok(vec![body.clone()]);
    }
    let items: Vec<&RawValue> = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the body is not a JSON array of events ({e}); send [event, event, ...]")))?;
    if items.is_empty() {
        return Err(bad("the batch is empty; send at least one event".into()));
    }
    if items.len() > MAX_BATCH {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the batch holds {} events; send at most {MAX_BATCH} per request", items.len()),
        ));
    }
    // Each element's exact text, as a slice of the body (no copy, no re-serialising).
    Ok(items.iter().map(|raw| body.slice_ref(raw.get().as_bytes())).collect())
}

/// Validates every event as the ledger will (`Admission::Publisher`: the rules cannot be changed
/// through here); the list of what is wrong, by index, when anything is.
fn validate(events: Vec<Bytes>, scheme: &premia_core::Scheme, subject_prefix: &str) -> Result<Vec<Ready>, Vec<Value>> {
    let mut ready = Vec::with_capacity(events.len());
    let mut errors = Vec::new();
    for (index, payload) in events.into_iter().enumerate() {
        match premia_core::event::parse_event(&payload, scheme, Admission::Publisher) {
            Ok(event) => ready.push(Ready {
                source: event.source.to_string(),
                id: event.id.to_string(),
                subject: format!("{subject_prefix}{}", event.data.event_type().as_str()),
                payload,
            }),
            Err(rejection) => errors.push(json!({
                "index": index,
                "reason": rejection.reason.code(),
                "message": rejection.message,
            })),
        }
    }
    if errors.is_empty() {
        Ok(ready)
    } else {
        Err(errors)
    }
}

/// What `POST /v1/events` makes of a body before it publishes anything, as one pure function:
/// the subjects of the events it would publish, or the status and JSON of its refusal (400 with
/// every invalid event by index, 413, 415). The handler takes the same steps (`shape_of`,
/// `split`, `validate`) with its awaits in between; tests and the fuzz target call this.
pub fn decode_body(
    headers: &HeaderMap,
    body: &Bytes,
    scheme: &premia_core::Scheme,
    subject_prefix: &str,
) -> Result<Vec<String>, (StatusCode, Value)> {
    let refused = |e: ApiError| (e.status, json!({ "error": e.message }));
    let events = split(body, shape_of(headers).map_err(refused)?).map_err(refused)?;
    match validate(events, scheme, subject_prefix) {
        Ok(ready) => Ok(ready.into_iter().map(|r| r.subject).collect()),
        Err(errors) => Err((StatusCode::BAD_REQUEST, json!({ "errors": errors }))),
    }
}

pub(crate) async fn post_events(State(api): State<ApiState>, headers: HeaderMap, body: Body) -> Answer {
    if !api.role(&headers)?.publishes() {
        return Err(forbidden("only the admin and publisher roles may post events"));
    }
    let shape = shape_of(&headers)?;
    // A body that never ends (or trickles in) holds a connection and its buffer: it has a
    // deadline for the whole of it, whatever the pace of its parts.
    let deadline = api.limits().body_timeout;
    let read = tokio::time::timeout(deadline, axum::body::to_bytes(body, MAX_BODY)).await.map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive in full within {} s ([http] body_timeout_secs); send the request again, \
                 whole, or split the batch",
                deadline.as_secs()
            ),
        )
    })?;
    let body = read.map_err(|e| {
        let too_big = e.into_inner().downcast_ref::<http_body_util::LengthLimitError>().is_some();
        if too_big {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over {} MiB; split the batch into smaller requests", MAX_BODY >> 20),
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "the body could not be read to its end; send the request again")
        }
    })?;
    let events = split(&body, shape)?;
    let client = api.nats("publish with")?;
    // The scheme the ledger folds with now: an event valid here is valid when serve takes it
    // in, unless a scheme.activated (from the command line) comes between.
    let scheme = api.ask(QUERY_TIMEOUT, |ledger, _| ledger.state().scheme_shared()).await?;
    let settings = api.stream().clone();
    let prefix = premia_nats::subject_prefix(&settings);
    // Validating ten thousand events takes milliseconds of CPU: off the runtime's threads.
    let validated =
        tokio::task::spawn_blocking(move || validate(events, &scheme, &prefix)).await.map_err(ApiError::internal)?;
    let ready = match validated {
        Ok(ready) => ready,
        Err(errors) => return Ok((StatusCode::BAD_REQUEST, Json(json!({ "errors": errors }))).into_response()),
    };
    let accepted = publish(client, &settings, &ready).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "accepted": accepted }))).into_response())
}

/// Publishes every event, pipelined, and answers each one's stream sequence once JetStream has
/// confirmed it.
async fn publish(
    client: async_nats::Client,
    settings: &StreamSettings,
    ready: &[Ready],
) -> Result<Vec<Value>, ApiError> {
    let js = jetstream::new(client);
    premia_nats::ensure_stream(&js, settings).await.map_err(unavailable)?;
    let mut accepted = Vec::with_capacity(ready.len());
    let mut acks = VecDeque::new();
    let mut ids = ready.iter().map(|r| (r.source.clone(), r.id.clone()));
    for (index, event) in ready.iter().enumerate() {
        let message = jetstream::message::PublishMessage::build()
            .payload(event.payload.clone())
            .message_id(premia_nats::message_id(&event.source, &event.id));
        let ack = js.send_publish(event.subject.clone(), message).await.map_err(|e| not_stored(index, e))?;
        acks.push_back(ack);
        while acks.len() >= IN_FLIGHT {
            settle(&mut acks, &mut ids, &mut accepted).await?;
        }
    }
    while !acks.is_empty() {
        settle(&mut acks, &mut ids, &mut accepted).await?;
    }
    Ok(accepted)
}

/// Awaits the oldest confirmation outstanding.
async fn settle(
    acks: &mut VecDeque<jetstream::context::PublishAckFuture>,
    ids: &mut impl Iterator<Item = (String, String)>,
    accepted: &mut Vec<Value>,
) -> Result<(), ApiError> {
    let index = accepted.len();
    let (Some(ack), Some((source, id))) = (acks.pop_front(), ids.next()) else { return Ok(()) };
    let ack = ack.await.map_err(|e| not_stored(index, e))?;
    accepted.push(json!({ "source": source, "id": id, "stream_sequence": ack.sequence, "duplicate": ack.duplicate }));
    Ok(())
}

fn not_stored(index: usize, error: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "JetStream did not confirm event {index} ({error}); the events before it may be stored: send the whole \
             request again, repeats are dropped by their source and id"
        ),
    )
}

fn unavailable(error: premia_nats::NatsError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("{error}; nothing was published, try again"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheme() -> premia_core::Scheme {
        premia_core::Scheme::default_scheme()
    }

    const PAYMENT: &str = r#"{"specversion": "1.0", "id": "e-1", "source": "crm/x", "type": "payment.received", "data": {"payment_id": "P-1", "deal_id": "D-1", "amount": "10.00", "currency": "RUB", "paid_on": "2026-11-09"}}"#;

    #[test]
    fn a_batch_is_split_into_each_events_own_bytes() {
        let body = Bytes::from(format!("[ {PAYMENT},\n{{\"a\": 1.50, \"a\": 2}} ]"));
        let events = split(&body, Shape::Either).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(&events[0][..], PAYMENT.as_bytes());
        // Kept as sent: the duplicate key and the number text are for the validation to judge.
        assert_eq!(&events[1][..], br#"{"a": 1.50, "a": 2}"#);
        assert_eq!(split(&Bytes::from(PAYMENT), Shape::Either).unwrap().len(), 1);
        assert!(split(&Bytes::from(PAYMENT), Shape::Batch).is_err());
        assert!(split(&body, Shape::One).is_err());
        assert_eq!(split(&Bytes::from_static(b" [] "), Shape::Batch).unwrap_err().status, StatusCode::BAD_REQUEST);
        let too_many = Bytes::from(format!("[{}]", vec!["{}"; MAX_BATCH + 1].join(",")));
        assert_eq!(split(&too_many, Shape::Batch).unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn every_invalid_event_is_named_by_index_and_reason() {
        let wrong_currency = PAYMENT.replace("RUB", "USD");
        let events =
            vec![Bytes::from(PAYMENT), Bytes::from(wrong_currency), Bytes::from_static(b"{\"specversion\": 1}")];
        let errors = validate(events, &scheme(), "crm.events.").err().unwrap();
        assert_eq!(errors.len(), 2);
        assert_eq!((errors[0]["index"].as_u64(), errors[0]["reason"].as_str()), (Some(1), Some("currency_mismatch")));
        assert_eq!(errors[1]["index"].as_u64(), Some(2));
        assert!(errors[1]["message"].as_str().is_some_and(|m| m.len() > 10));
        let ready = validate(vec![Bytes::from(PAYMENT)], &scheme(), "crm.events.").ok().unwrap();
        assert_eq!(ready[0].subject, "crm.events.payment.received");
        assert_eq!((ready[0].source.as_str(), ready[0].id.as_str()), ("crm/x", "e-1"));
    }
}
