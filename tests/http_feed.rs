//! `POST /v1/events` and the SSE feed `GET /v1/managers/{id}/feed` of `premia serve --http`,
//! against a real nats-server and the real binary: the seed month posted as one batch gives the
//! statements of the worked example; an invalid event refuses the whole request and publishes
//! nothing; a manager's feed carries a payment posted while it is open, and a reconnection with
//! `Last-Event-ID` replays what came after that id.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod support;
use support::nats_server::NatsServer;

const SEED: &str = include_str!("data/seed-month.jsonl");
const EXPECTED: &str = include_str!("data/seed-month.expected.json");

const ADMIN: &str = "admin-3d9f-feed-token";
const AUDITOR: &str = "auditor-77a1-feed-token";
const MANAGER_4: &str = "manager-four-52c0-token";
const MANAGER_2: &str = "manager-two-a81e-token";
const PUBLISHER: &str = "publisher-e4b6-feed-token";

const BATCH: &str = "application/cloudevents-batch+json";
const ONE: &str = "application/cloudevents+json";

// `premia serve` with the HTTP API, killed if the test fails before it stops it.
use support::Reaped as Serve;

/// `premia serve --http` on a free port with one token per role, and the base URL.
fn start(work: &Path, server: &NatsServer) -> (Serve, String) {
    let tokens = [
        (ADMIN, "admin"),
        (AUDITOR, "auditor"),
        (MANAGER_4, "manager:M-4"),
        (MANAGER_2, "manager:M-2"),
        (PUBLISHER, "publisher"),
    ];
    support::serve_http(work, &server.url(), &tokens)
}

fn wait_until(work: &Path, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "waited a minute for {what}; serve's stderr:\n{}",
            std::fs::read_to_string(work.join("serve.stderr")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Status and body of a request; `body` is (content type, bytes).
fn call(
    method: &str,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> Result<(u16, String), String> {
    let mut request = ureq::request(method, &format!("{base}{path}")).timeout(Duration::from_secs(30));
    if let Some(token) = token {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    let result = match body {
        Some((content_type, bytes)) => request.set("Content-Type", content_type).send_bytes(bytes),
        None => request.call(),
    };
    match result {
        Ok(response) => Ok((response.status(), response.into_string().unwrap())),
        Err(ureq::Error::Status(status, response)) => Ok((status, response.into_string().unwrap())),
        Err(e) => Err(e.to_string()),
    }
}

fn post(base: &str, token: Option<&str>, content_type: &str, body: &str) -> (u16, Value) {
    let (status, text) = call("POST", base, "/v1/events", token, Some((content_type, body.as_bytes()))).unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST gave no JSON ({e}): {text}")))
}

fn get_json(base: &str, path: &str, token: &str) -> (u16, Value) {
    let (status, text) = call("GET", base, path, Some(token), None).unwrap();
    (status, serde_json::from_str(&text).unwrap())
}

/// Messages in a stream, as the server counts them.
fn stream_messages(url: &str, stream: &str) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let mut stream = async_nats::jetstream::new(client).get_stream(stream).await.unwrap();
        stream.info().await.unwrap().state.messages
    })
}

/// A JSON array of lines of JSON.
fn batch(lines: &[&str]) -> String {
    format!("[{}]", lines.join(",\n"))
}

/// An open SSE response, read event by event.
struct Feed {
    reader: BufReader<Box<dyn Read + Send + Sync>>,
}

/// One SSE event: its `id:` and its `data:` as JSON.
#[derive(Debug)]
struct FeedEvent {
    id: u64,
    data: Value,
}

fn open_feed(base: &str, manager: &str, token: Option<&str>, last_id: Option<&str>) -> Result<Feed, (u16, String)> {
    let mut request = ureq::get(&format!("{base}/v1/managers/{manager}/feed")).timeout(Duration::from_secs(60));
    if let Some(token) = token {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    if let Some(id) = last_id {
        request = request.set("Last-Event-ID", id);
    }
    match request.call() {
        Ok(response) => {
            assert_eq!(response.content_type(), "text/event-stream");
            Ok(Feed { reader: BufReader::new(response.into_reader()) })
        }
        Err(ureq::Error::Status(status, response)) => Err((status, response.into_string().unwrap())),
        Err(e) => panic!("GET feed: {e}"),
    }
}

impl Feed {
    /// The next event; comments (keep-alives) are skipped.
    fn next(&mut self) -> FeedEvent {
        let (mut id, mut data) = (None::<String>, String::new());
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("the feed stays open");
            assert!(n > 0, "the feed ended");
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if !data.is_empty() {
                    let id = id.expect("every feed event has an id").parse().expect("the id is a stream sequence");
                    return FeedEvent { id, data: serde_json::from_str(&data).expect("the data is JSON") };
                }
            } else if let Some(value) = line.strip_prefix("id:") {
                id = Some(value.trim().to_string());
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push_str(value.strip_prefix(' ').unwrap_or(value));
            }
        }
    }

    /// Events until one books an entry for `payment_id`; returns that one.
    fn until_payment(&mut self, payment_id: &str) -> FeedEvent {
        loop {
            let event = self.next();
            if payments(&event.data).iter().any(|p| p == payment_id) {
                return event;
            }
        }
    }
}

/// The period and the entry a feed message books for a payment.
fn entry_of(message: &Value, payment_id: &str) -> (String, Value) {
    for update in message["updates"].as_array().unwrap() {
        for entry in update["entries"].as_array().unwrap() {
            if entry["payment_id"] == payment_id {
                return (update["period"].as_str().unwrap().to_string(), entry.clone());
            }
        }
    }
    panic!("no entry for {payment_id} in {message}")
}

/// The payment ids of the entries a feed message carries.
fn payments(message: &Value) -> Vec<String> {
    let mut found = Vec::new();
    for update in message["updates"].as_array().unwrap() {
        for entry in update["entries"].as_array().unwrap() {
            if let Some(p) = entry["payment_id"].as_str() {
                found.push(p.to_string());
            }
        }
    }
    found
}

#[test]
fn events_posted_over_http_are_published_only_when_all_are_valid() {
    let server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    let (_serve, base) = start(work.path(), &server);
    let lines: Vec<&str> = SEED.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 29);

    // Only admin and publisher post; the others are refused before the body is looked at.
    let whole_month = batch(&lines);
    for (token, status) in [(Some(MANAGER_4), 403), (Some(AUDITOR), 403), (None, 401), (Some("nobody"), 401)] {
        let (got, body) = post(&base, token, BATCH, &whole_month);
        assert_eq!(got, status, "{token:?}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| e.len() > 20), "{body}");
    }
    let (got, body) = post(&base, Some(PUBLISHER), "text/plain", &whole_month);
    assert_eq!(got, 415, "{body}");
    let (got, body) = post(&base, Some(PUBLISHER), ONE, &whole_month);
    assert_eq!(got, 400, "an array is not one event: {body}");

    // The month as it stands holds the USD payment (evt-0024, line 25: evt-0018 comes twice
    // before it), which this ledger refuses as it keeps RUB: the whole batch is refused,
    // naming it, and nothing is published.
    assert!(lines[24].contains("\"evt-0024\"") && lines[24].contains("\"USD\""));
    let (got, body) = post(&base, Some(PUBLISHER), BATCH, &whole_month);
    assert_eq!(got, 400, "{body}");
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!((errors[0]["index"].as_u64(), errors[0]["reason"].as_str()), (Some(24), Some("currency_mismatch")));
    assert!(errors[0]["message"].as_str().is_some_and(|m| m.contains("RUB")), "{body}");
    assert_eq!(stream_messages(&server.url(), "PREMIA_EVENTS"), 0);

    // Without it: 28 events, of which evt-0018 twice (a CRM's retry). JetStream stores 27 and
    // answers the repeat as a duplicate of the first; sequences follow the order of the batch.
    let valid: Vec<&str> = lines.iter().copied().filter(|l| !l.contains("\"USD\"")).collect();
    assert_eq!(valid.len(), 28);
    let (got, body) = post(&base, Some(PUBLISHER), "application/json", &batch(&valid));
    assert_eq!(got, 202, "{body}");
    let accepted = body["accepted"].as_array().unwrap();
    assert_eq!(accepted.len(), 28);
    let mut next = 1;
    let mut first_0018 = None;
    for (item, line) in accepted.iter().zip(&valid) {
        let event: Value = serde_json::from_str(line).unwrap();
        assert_eq!(item["id"], event["id"]);
        assert_eq!(item["source"], event["source"]);
        let sequence = item["stream_sequence"].as_u64().unwrap();
        if item["duplicate"] == true {
            assert_eq!(item["id"], "evt-0018", "{body}");
            assert_eq!(Some(sequence), first_0018, "a duplicate is answered with the original's sequence");
        } else {
            assert_eq!(sequence, next, "{body}");
            next += 1;
            if item["id"] == "evt-0018" {
                first_0018 = Some(sequence);
            }
        }
    }
    assert_eq!(accepted.iter().filter(|a| a["duplicate"] == true).count(), 1);
    assert_eq!(stream_messages(&server.url(), "PREMIA_EVENTS"), 27);

    // Serve takes them in: the statements of the worked example (the USD payment changed
    // nothing there either, being rejected).
    let expected: Value = serde_json::from_str(EXPECTED).unwrap();
    let expected_november = expected["statements"]["2026-11"].as_object().unwrap();
    let mut november = Value::Null;
    wait_until(work.path(), "the posted month to be folded", || {
        // Statements are read from what is durable: once the 27 messages are in committed
        // batches, the statement shows them.
        let (_, metrics) = call("GET", &base, "/metrics", Some(AUDITOR), None).unwrap();
        if !metrics.contains("\npremia_batch_size_sum 27\n") {
            return false;
        }
        assert!(metrics.contains("\npremia_events_applied_total 27\n"), "{metrics}");
        let (status, statement) = get_json(&base, "/v1/statements/2026-11", AUDITOR);
        november = statement;
        status == 200
    });
    let managers = november["managers"].as_array().unwrap();
    assert_eq!(managers.len(), expected_november.len());
    for m in managers {
        let id = m["manager_id"].as_str().unwrap();
        for figure in ["commission", "clawback", "fines", "plan_bonus", "total"] {
            assert_eq!(m[figure], expected_november[id][figure], "{id} {figure}");
        }
    }

    // One invalid event on its own: 400 with its reason; the stream is as it was.
    let old_spec = lines[0].replace("\"1.0\"", "\"0.3\"").replace("evt-0001", "evt-x-1");
    let (got, body) = post(&base, Some(ADMIN), ONE, &old_spec);
    assert_eq!(got, 400, "{body}");
    assert_eq!(
        body["errors"],
        json!([{"index": 0, "reason": "invalid_specversion", "message": body["errors"][0]["message"]}])
    );
    assert!(body["errors"][0]["message"].as_str().is_some_and(|m| m.len() > 10));
    let (got, body) = post(&base, Some(ADMIN), "application/json", "[{\"specversion\": ");
    assert_eq!(got, 400, "not JSON: {body}");
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(stream_messages(&server.url(), "PREMIA_EVENTS"), 27);

    // A body over 8 MiB is refused as such.
    let huge = format!("[{}]", vec![lines[0]; 8 * 1024 * 1024 / lines[0].len() + 1].join(","));
    let (got, body) = post(&base, Some(ADMIN), BATCH, &huge);
    assert_eq!(got, 413, "{body}");
    assert_eq!(stream_messages(&server.url(), "PREMIA_EVENTS"), 27);
}

#[test]
fn a_managers_feed_over_sse_carries_new_payments_and_resumes_after_last_event_id() {
    let server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    let (_serve, base) = start(work.path(), &server);
    let lines: Vec<&str> = SEED.lines().filter(|l| !l.trim().is_empty() && !l.contains("\"USD\"")).collect();
    let (got, body) = post(&base, Some(ADMIN), BATCH, &batch(&lines));
    assert_eq!(got, 202, "{body}");

    // Only M-4 (and those who read everything) read M-4's feed.
    for (token, status) in [(Some(MANAGER_2), 403), (Some(PUBLISHER), 403), (None, 401)] {
        let (got, body) = open_feed(&base, "M-4", token, None).err().expect("refused");
        assert_eq!(got, status, "{token:?}: {body}");
    }
    let (got, _) = open_feed(&base, "M-4", Some(MANAGER_4), Some("yesterday")).err().expect("refused");
    assert_eq!(got, 400);

    // Wait until the month is in, so the feed opened next sees only what is posted after.
    wait_until(work.path(), "the month to be folded", || {
        let (_, metrics) = call("GET", &base, "/metrics", Some(ADMIN), None).unwrap();
        metrics.contains("\npremia_events_applied_total 27\n")
    });
    let mut feed = open_feed(&base, "M-4", Some(MANAGER_4), None).unwrap();

    // A new deal of M-4 and a first payment on it.
    let event = |id: &str, kind: &str, data: Value| {
        json!({"specversion": "1.0", "id": id, "source": "crm/webhook", "type": kind, "data": data}).to_string()
    };
    let deal = event(
        "wh-1",
        "deal.created",
        json!({"deal_id": "D-403", "manager_id": "M-4", "client_id": "C-43", "amount": "100000.00",
               "margin": "10000.00", "currency": "RUB", "payment_terms": "prepayment",
               "due_date": "2026-11-30", "created_on": "2026-11-15"}),
    );
    let payment = |id: &str, payment_id: &str, amount: &str| {
        event(
            id,
            "payment.received",
            json!({"payment_id": payment_id, "deal_id": "D-403", "amount": amount, "currency": "RUB",
                   "paid_on": "2026-11-20"}),
        )
    };
    let (got, body) = post(&base, Some(PUBLISHER), BATCH, &batch(&[&deal, &payment("wh-2", "P-403", "40000.00")]));
    assert_eq!(got, 202, "{body}");
    let first = feed.until_payment("P-403");
    assert_eq!(first.data["manager_id"], "M-4");
    // 1.0 % of the margin 10 000.00 times the share paid, 40 000.00 / 100 000.00: 40.00. The
    // month is closed by then, so it is booked in the first open period as an adjustment.
    let (period, entry) = entry_of(&first.data, "P-403");
    assert_eq!((entry["amount"].as_str(), entry["adjustment_of"].as_str()), (Some("40.00"), Some("2026-11")));
    // The feed message carries the period's figures after its batch; nothing else has been
    // posted since, so they are M-4's statement of that period now.
    // The statement is published before the feed goes out, so it shows the payment already.
    let (_, statement) = get_json(&base, &format!("/v1/managers/M-4/statements/{period}"), MANAGER_4);
    let update = first.data["updates"].as_array().unwrap().iter().find(|u| u["period"] == period).unwrap();
    assert_eq!(update["total"], statement["managers"][0]["total"], "{}", first.data);
    let entries = statement["managers"][0]["entries"].as_array().unwrap();
    assert_eq!(entries.iter().filter(|e| e["payment_id"] == "P-403").collect::<Vec<_>>(), [&entry], "{statement}");

    // The rest of the deal, in a batch of its own after the first was fed.
    let (got, body) = post(&base, Some(PUBLISHER), ONE, &payment("wh-3", "P-404", "60000.00"));
    assert_eq!(got, 202, "{body}");
    let second = feed.until_payment("P-404");
    assert_eq!(entry_of(&second.data, "P-404").1["amount"], "60.00", "1.0 % of 10 000.00 x 60 000 / 100 000");
    // Read right after: both payments, and a total that is the sum of the entries.
    let (_, statement) = get_json(&base, &format!("/v1/managers/M-4/statements/{period}"), MANAGER_4);
    let figures = &statement["managers"][0];
    let entries = figures["entries"].as_array().unwrap();
    for p in ["P-403", "P-404"] {
        assert_eq!(entries.iter().filter(|e| e["payment_id"] == p).count(), 1, "{p}: {statement}");
    }
    let cents = |v: &Value| -> i64 { v.as_str().unwrap().replace('.', "").parse().unwrap() };
    assert_eq!(cents(&figures["total"]), entries.iter().map(|e| cents(&e["amount"])).sum::<i64>(), "{statement}");
    assert!(second.id > first.id, "{} then {}", first.id, second.id);
    drop(feed);

    // Reconnecting after the first: the second comes again, and not the first.
    let mut resumed = open_feed(&base, "M-4", Some(MANAGER_4), Some(&first.id.to_string())).unwrap();
    let replayed = resumed.next();
    assert_eq!(replayed.id, second.id);
    assert_eq!(replayed.data, second.data);
    drop(resumed);

    // From the start (Last-Event-ID 0): M-4's messages of the month first, in stream order,
    // then the two above; never another manager's.
    let mut from_start = open_feed(&base, "M-4", Some(ADMIN), Some("0")).unwrap();
    let mut ids = Vec::new();
    loop {
        let event = from_start.next();
        assert_eq!(event.data["manager_id"], "M-4");
        ids.push(event.id);
        if event.id == second.id {
            break;
        }
    }
    assert!(ids.len() >= 3 && ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(ids.contains(&first.id) && ids[0] < first.id, "{ids:?}");
}
