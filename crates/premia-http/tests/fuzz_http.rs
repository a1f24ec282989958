//! Fuzz target `http`: the body decoder of `POST /v1/events` (`events::decode_body`: the
//! Content-Type, the split of a batch into each event's own bytes, the validation of each) on
//! arbitrary bytes, on single events of the seed month damaged structure-aware and byte-wise,
//! and on batches of such events, under every Content-Type the route knows and some it does
//! not. Properties: never panics; a refusal is a 400, 413 or 415 whose JSON says what is wrong
//! (one sentence, or each invalid event by index with a reason code and a sentence); an
//! accepted body gives one subject per event, each a known event type under the prefix.
//!
//! `PREMIA_FUZZ_CASES` / `PREMIA_FUZZ_SECONDS`: see premia-core's tests/fuzz_support/mod.rs.

#[path = "../../premia-core/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use fuzz_support::mutate::{arbitrary_line, mutated_line, Line};
use premia_core::event::parse_event;
use premia_core::{Admission, EventType, Reason, Scheme};
use premia_http::events::decode_body;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::Value;

const SEED_MONTH: &str = include_str!("../../../tests/data/seed-month.jsonl");
const PREFIX: &str = "crm.events.";

const CONTENT_TYPES: &[&str] = &[
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
    "application/json",
    "application/json; charset=utf-8",
    "Application/CloudEvents+JSON ; charset=utf-8",
    "  application/cloudevents-batch+json",
    "application/cloudevents+json;",
    "text/plain",
    "application/x-www-form-urlencoded",
    "",
    ";",
];

fn seed_lines() -> &'static [&'static str] {
    static LINES: OnceLock<Vec<&'static str>> = OnceLock::new();
    LINES.get_or_init(|| SEED_MONTH.lines().collect())
}

fn scheme() -> &'static Scheme {
    static SCHEME: OnceLock<Scheme> = OnceLock::new();
    SCHEME.get_or_init(Scheme::default_scheme)
}

#[derive(Debug, Clone)]
struct Request {
    content_type: Option<usize>,
    body: Line,
}

fn event() -> impl Strategy<Value = Line> {
    prop_oneof![1 => arbitrary_line(), 6 => mutated_line(seed_lines(), 2, 2)]
}

/// A batch of events joined as a JSON array, with odd spacing, and sometimes cut or padded.
fn batch() -> impl Strategy<Value = Line> {
    (proptest::collection::vec(event(), 0..6), 0..4usize, any::<u8>()).prop_map(|(events, spacing, tail)| {
        let separator: &[u8] = [&b","[..], b", ", b",\n", b" ,\t"][spacing];
        let mut body = b"[".to_vec();
        for (i, e) in events.iter().enumerate() {
            if i > 0 {
                body.extend_from_slice(separator);
            }
            body.extend_from_slice(&e.0);
        }
        body.push(b']');
        match tail % 8 {
            0 => body.truncate(body.len() / 2),
            1 => body.extend_from_slice(b" \n"),
            2 => body.insert(0, b' '),
            _ => {}
        }
        Line(body)
    })
}

fn request() -> impl Strategy<Value = Request> {
    let content_type = prop_oneof![1 => Just(None), 12 => (0..CONTENT_TYPES.len()).prop_map(Some)];
    (content_type, prop_oneof![3 => event(), 3 => batch()])
        .prop_map(|(content_type, body)| Request { content_type, body })
}

fn headers(content_type: Option<usize>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(value) = content_type.and_then(|i| HeaderValue::from_str(CONTENT_TYPES[i]).ok()) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers
}

fn check_refusal(status: StatusCode, answer: &Value) -> Result<(), TestCaseError> {
    let allowed = [StatusCode::BAD_REQUEST, StatusCode::PAYLOAD_TOO_LARGE, StatusCode::UNSUPPORTED_MEDIA_TYPE];
    prop_assert!(allowed.contains(&status), "status {} for a bad body", status);
    if let Some(errors) = answer.get("errors") {
        let errors = errors.as_array().map(Vec::as_slice).unwrap_or_default();
        prop_assert!(!errors.is_empty(), "a 400 naming no invalid event: {}", answer);
        for error in errors {
            prop_assert!(error["index"].as_u64().is_some(), "an error without its event's index: {}", error);
            let code = error["reason"].as_str().and_then(Reason::from_code);
            prop_assert!(code.is_some(), "an error without a known reason code: {}", error);
            prop_assert!(error["message"].as_str().is_some_and(|m| m.len() >= 12), "no sentence: {}", error);
        }
    } else {
        let message = answer["error"].as_str().unwrap_or_default();
        prop_assert!(message.len() >= 20, "a refusal without a sentence: {}", answer);
    }
    Ok(())
}

fn property(request: Request) -> Result<(), TestCaseError> {
    let body = Bytes::from(request.body.0.clone());
    match decode_body(&headers(request.content_type), &body, scheme(), PREFIX) {
        Err((status, answer)) => check_refusal(status, &answer),
        Ok(subjects) => {
            fuzz_support::accepted();
            prop_assert!(!subjects.is_empty(), "a body accepted with no event in it");
            for subject in &subjects {
                let known = subject.strip_prefix(PREFIX).and_then(EventType::parse);
                prop_assert!(known.is_some_and(|t| t != EventType::SchemeActivated), "subject {}", subject);
            }
            let is_array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
            if !is_array {
                prop_assert_eq!(subjects.len(), 1);
                prop_assert!(parse_event(&body, scheme(), Admission::Publisher).is_ok());
            }
            Ok(())
        }
    }
}

#[test]
fn fuzz_event_bodies() {
    fuzz_support::run("http", file!(), 2_000, request(), property);
}

/// The generator reaches acceptance: a batch of two valid events of the seed month passes.
#[test]
fn a_batch_of_valid_seed_events_is_accepted() {
    let body = Bytes::from(format!("[{}, {}]", seed_lines()[0], seed_lines()[5]));
    let subjects = decode_body(&headers(Some(1)), &body, scheme(), PREFIX);
    assert_eq!(subjects, Ok(vec!["crm.events.plan.assigned".to_string(), "crm.events.deal.created".to_string()]));
}
