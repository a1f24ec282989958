//! The HTTP API of `premia serve --http` against a real nats-server and the real binary: the
//! statement it serves is the one `premia statement` prints, every route answers each role as
//! the access rules say, paging and metrics count what the seed month holds, and no token is
//! ever written to the logs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

mod support;
use support::nats_server::NatsServer;
use support::{last_json_line, premia, PREMIA};

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/seed-month.jsonl");
const EXPECTED: &str = include_str!("data/seed-month.expected.json");

const ADMIN: &str = "admin-7f3c9a1e-token";
const AUDITOR: &str = "auditor-51b2d8-token";
const MANAGER_2: &str = "manager-two-0c4e6d-token";
const PUBLISHER: &str = "publisher-9a8b7c-token";
const WRONG: &str = "not-a-configured-token";

fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Status and body of a GET, with an optional bearer token.
fn get(base: &str, path: &str, token: Option<&str>) -> (u16, String) {
    try_get(base, path, token).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// The same, or the transport error (nothing listening yet).
fn try_get(base: &str, path: &str, token: Option<&str>) -> Result<(u16, String), String> {
    let mut request = ureq::get(&format!("{base}{path}")).timeout(Duration::from_secs(15));
    if let Some(token) = token {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    match request.call() {
        Ok(response) => Ok((response.status(), response.into_string().unwrap())),
        Err(ureq::Error::Status(status, response)) => Ok((status, response.into_string().unwrap())),
        Err(e) => Err(e.to_string()),
    }
}

fn get_json(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let (status, body) = get(base, path, token);
    let value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path} gave no JSON ({e}): {body}"));
    (status, value)
}

fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

// `premia serve` with the HTTP API, killed if the test fails before it stops it.
use support::Reaped as Serve;

fn start_serve(dir: &Path, config: &Path, nats_url: &str, http: &str, stderr: &Path) -> Serve {
    let child = Command::new(PREMIA)
        .arg("--data-dir")
        .arg(dir)
        .arg("--config")
        .arg(config)
        .args(["serve", "--nats-url", nats_url, "--http", http, "--format", "json"])
        // The most verbose logging premia has, so a token written anywhere would show.
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .expect("start premia serve");
    Serve { child }
}

#[test]
fn the_http_api_serves_the_ledger_to_each_role_as_allowed() {
    let server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("ledger");
    let config = work.path().join("premia.toml");
    let mut text = String::new();
    for (token, role) in [(ADMIN, "admin"), (AUDITOR, "auditor"), (MANAGER_2, "manager:M-2"), (PUBLISHER, "publisher")]
    {
        text.push_str(&format!("[[http.tokens]]\nsha256 = \"{}\"\nrole = \"{role}\"\n\n", sha256_hex(token)));
    }
    std::fs::write(&config, text).unwrap();

    let published =
        last_json_line(&premia(work.path(), &["publish", SEED, "--nats-url", &server.url(), "--format", "json"]));
    assert_eq!(published["published"], 29);

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let base = format!("http://{address}");
    let stderr_path = work.path().join("serve.stderr");
    let mut serve = start_serve(&dir, &config, &server.url(), &address, &stderr_path);

    // Wait until the month is in: every line the stream holds (29 published, one a redelivery
    // JetStream dropped: 28) in a committed batch, which the statements are read from once it
    // is durable, and five managers in November.
    let deadline = Instant::now() + Duration::from_secs(60);
    let november = loop {
        assert!(
            Instant::now() < deadline,
            "serve did not take the month in; its stderr:\n{}",
            std::fs::read_to_string(&stderr_path).unwrap_or_default()
        );
        if let Ok((200, metrics)) = try_get(&base, "/metrics", Some(ADMIN)) {
            if metric(&metrics, "premia_batch_size_sum") == Some(28) {
                let (status, body) = get(&base, "/v1/statements/2026-11", Some(ADMIN));
                assert_eq!(status, 200, "{body}");
                let statement: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(statement["managers"].as_array().map(Vec::len), Some(5), "{statement}");
                break statement;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };

    // The figures of the worked example.
    let expected: Value = serde_json::from_str(EXPECTED).unwrap();
    for m in november["managers"].as_array().unwrap() {
        let id = m["manager_id"].as_str().unwrap();
        assert_eq!(m["total"], expected["statements"]["2026-11"][id]["total"], "{id}");
        assert_eq!(m["commission"], expected["statements"]["2026-11"][id]["commission"], "{id}");
    }

    // Health and readiness need no token.
    for token in [None, Some(WRONG), Some(PUBLISHER)] {
        assert_eq!(get(&base, "/healthz", token).0, 200);
        let (status, ready) = get_json(&base, "/readyz", token);
        assert_eq!(status, 200, "{ready}");
        assert_eq!(ready["status"], "ready");
    }

    // Every route for every role.
    const OK: u16 = 200;
    const NO: u16 = 403;
    const WHO: u16 = 401;
    let routes: [(&str, [u16; 4]); 18] = [
        // [admin, auditor, manager:M-2, publisher]
        ("/v1/statements/2026-11", [OK, OK, NO, NO]),
        ("/v1/managers/M-2/statements/2026-11", [OK, OK, OK, NO]),
        ("/v1/managers/M-3/statements/2026-11", [OK, OK, NO, NO]),
        ("/v1/managers/M-2/entries?from=2026-11&to=2026-12", [OK, OK, OK, NO]),
        ("/v1/managers/M-3/entries?from=2026-11", [OK, OK, NO, NO]),
        ("/v1/rejected", [OK, OK, NO, NO]),
        ("/v1/pending", [OK, OK, NO, NO]),
        ("/metrics", [OK, OK, NO, NO]),
        ("/v1/rejected?offset=0&limit=1", [OK, OK, NO, NO]),
        ("/v1/whoami", [OK, OK, OK, OK]),
        ("/v1/periods", [OK, OK, OK, NO]),
        ("/v1/managers", [OK, OK, NO, NO]),
        ("/v1/managers/M-2/overdue/2026-11", [OK, OK, OK, NO]),
        ("/v1/managers/M-3/overdue/2026-12", [OK, OK, NO, NO]),
        // M-2's payment and deal; M-3's payment, M-1's cancelled deal (a manager reads only
        // what booked something for them).
        ("/v1/explain/payments/P-201", [OK, OK, OK, NO]),
        ("/v1/explain/deals/D-202", [OK, OK, OK, NO]),
        ("/v1/explain/payments/P-301", [OK, OK, NO, NO]),
        ("/v1/explain/deals/D-102", [OK, OK, NO, NO]),
    ];
    for (route, statuses) in routes {
        for (token, status) in [ADMIN, AUDITOR, MANAGER_2, PUBLISHER].into_iter().zip(statuses) {
            let (got, body) = get(&base, route, Some(token));
            assert_eq!(got, status, "{route} as {token}: {body}");
            if got != 200 {
                let error: Value = serde_json::from_str(&body).unwrap();
                assert!(error["error"].as_str().is_some_and(|e| e.len() > 20), "{route}: {body}");
            }
        }
        for token in [None, Some(WRONG), Some("")] {
            let (got, body) = get_json(&base, route, token);
            assert_eq!(got, WHO, "{route} with {token:?}: {body}");
            assert!(body["error"].as_str().is_some_and(|e| e.contains("token")), "{route}: {body}");
        }
    }

    // Bad input: 400 for a bad period, 404 for a manager the ledger never heard of.
    for (route, status) in [
        ("/v1/statements/2026-13", 400),
        ("/v1/managers/M-2/statements/november", 400),
        ("/v1/managers/M-2/entries", 400),
        ("/v1/managers/M-2/entries?from=2026-12&to=2026-11", 400),
        ("/v1/managers/M-99/statements/2026-11", 404),
        ("/v1/managers/M-99/entries?from=2026-11", 404),
        ("/v1/managers/M-2/overdue/2026-13", 400),
        ("/v1/managers/M-99/overdue/2026-11", 404),
        ("/v1/rejected?limit=0", 400),
        ("/v1/rejected?offset=-1", 400),
        ("/v1/nothing-here", 404),
        // P-999 was refused (USD) before the log; ids are case-sensitive.
        ("/v1/explain/payments/P-999", 404),
        ("/v1/explain/payments/p-201", 404),
        ("/v1/explain/deals/D-999", 404),
        ("/v1/explain/payments/", 404),
    ] {
        let (got, body) = get_json(&base, route, Some(ADMIN));
        assert_eq!(got, status, "{route}: {body}");
        assert!(body["error"].is_string(), "{route}: {body}");
    }

    // What the dashboard asks first: who the token is, the periods, and (for those who read
    // everything) the managers. November is closed by the month's period.closed; December,
    // where M-4's plan and the late payment went, is open and so current.
    for (token, who) in [
        (ADMIN, serde_json::json!({"role": "admin"})),
        (AUDITOR, serde_json::json!({"role": "auditor"})),
        (MANAGER_2, serde_json::json!({"role": "manager", "manager_id": "M-2"})),
        (PUBLISHER, serde_json::json!({"role": "publisher"})),
    ] {
        assert_eq!(get_json(&base, "/v1/whoami", Some(token)).1, who);
    }
    let (_, periods) = get_json(&base, "/v1/periods", Some(MANAGER_2));
    assert_eq!(
        periods,
        serde_json::json!({"current": "2026-12", "periods": [
            {"period": "2026-11", "status": "closed"}, {"period": "2026-12", "status": "open"}]})
    );
    let (_, managers) = get_json(&base, "/v1/managers", Some(AUDITOR));
    assert_eq!(managers, serde_json::json!({"managers": ["M-1", "M-2", "M-3", "M-4", "M-5"]}));
    // M-2's two deals were due on 2026-11-02 and paid in full on the 17th and 18th: nothing is
    // overdue at the end of November (the unpaid case is in the core's tests and the browser test).
    let (_, overdue) = get_json(&base, "/v1/managers/M-2/overdue/2026-11", Some(MANAGER_2));
    assert_eq!(
        overdue,
        serde_json::json!({"manager_id": "M-2", "period": "2026-11", "currency": "RUB", "outstanding": "0.00", "deals": []})
    );

    // The dashboard's files need no token, and may only run this origin's script.
    for (path, content_type, marker) in [
        ("/", "text/html; charset=utf-8", "<script src=\"/dashboard/app.js\""),
        ("/dashboard/app.js", "text/javascript; charset=utf-8", "Last-Event-ID"),
        ("/dashboard/app.css", "text/css; charset=utf-8", ".progress"),
    ] {
        let response = ureq::get(&format!("{base}{path}")).call().unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.header("content-type"), Some(content_type), "{path}");
        assert!(response.header("content-security-policy").is_some_and(|p| p.contains("script-src 'self'")));
        assert!(response.into_string().unwrap().contains(marker), "{path}");
    }

    // The seed month has exactly one rejection: the payment in USD.
    let (_, rejected) = get_json(&base, "/v1/rejected", Some(AUDITOR));
    assert_eq!(rejected["total"], 1);
    assert_eq!(rejected["items"].as_array().unwrap().len(), 1);
    assert_eq!(rejected["items"][0]["reason"], "currency_mismatch");
    assert!(rejected["items"][0]["raw"].as_str().unwrap().contains("USD"));
    let (_, past_the_end) = get_json(&base, "/v1/rejected?offset=1&limit=10", Some(AUDITOR));
    assert_eq!((past_the_end["total"].as_u64(), past_the_end["items"].as_array().map(Vec::len)), (Some(1), Some(0)));
    let (_, limited) = get_json(&base, "/v1/rejected?offset=0&limit=1", Some(AUDITOR));
    assert_eq!(limited["items"], rejected["items"]);
    // Nothing stays parked: M-3's early payment found its deal.
    let (_, pending) = get_json(&base, "/v1/pending", Some(ADMIN));
    assert_eq!((pending["total"].as_u64(), pending["items"].as_array().map(Vec::len)), (Some(0), Some(0)));

    // The counters of this serve: 27 applied, the USD payment rejected, nothing parked.
    let (_, metrics) = get(&base, "/metrics", Some(AUDITOR));
    assert_eq!(metric(&metrics, "premia_events_applied_total"), Some(27), "{metrics}");
    assert_eq!(metric(&metrics, "premia_events_rejected_total"), Some(1), "{metrics}");
    assert_eq!(metric(&metrics, "premia_events_parked"), Some(0), "{metrics}");
    assert!(metric(&metrics, "premia_batches_total").is_some_and(|b| b >= 1), "{metrics}");
    assert!(metrics.contains("# TYPE premia_events_applied_total counter"), "{metrics}");
    // By reason, the histograms of the batches (28 messages in all), and no lag left.
    assert_eq!(metric(&metrics, "premia_events_rejected_by_reason_total{reason=\"currency_mismatch\"}"), Some(1));
    assert_eq!(metrics.matches("premia_events_rejected_by_reason_total{").count(), 1, "{metrics}");
    let batches = metric(&metrics, "premia_batches_total");
    assert_eq!(metric(&metrics, "premia_batch_size_count"), batches, "{metrics}");
    assert_eq!(metric(&metrics, "premia_batch_size_bucket{le=\"+Inf\"}"), batches, "{metrics}");
    assert_eq!(metric(&metrics, "premia_batch_size_sum"), Some(28), "{metrics}");
    assert_eq!(metric(&metrics, "premia_commit_seconds_count"), batches, "{metrics}");
    assert_eq!(metric(&metrics, "premia_consumer_pending"), Some(0), "{metrics}");

    // What the API says now, to compare with the command line once serve has stopped: every
    // manager's statement of both months, as bytes (and one of them twice: the second time
    // from what the first rendered).
    let mut bodies = Vec::new();
    for period in ["2026-11", "2026-12", "2026-10"] {
        for manager in ["M-1", "M-2", "M-3", "M-4", "M-5"] {
            let route = format!("/v1/managers/{manager}/statements/{period}");
            let (status, body) = get(&base, &route, Some(AUDITOR));
            assert_eq!(status, 200, "{route}: {body}");
            assert_eq!(get(&base, &route, Some(ADMIN)), (status, body.clone()), "{route} read again");
            bodies.push((period, manager, body));
        }
    }
    let (_, m2_november) = get_json(&base, "/v1/managers/M-2/statements/2026-11", Some(MANAGER_2));
    let (_, m2_entries) = get_json(&base, "/v1/managers/M-2/entries?from=2026-11&to=2026-12", Some(MANAGER_2));
    let (_, december) = get_json(&base, "/v1/statements/2026-12", Some(AUDITOR));

    // The OpenAPI document needs no token and is the checked-in one.
    for token in [None, Some(WRONG), Some(PUBLISHER)] {
        let (status, document) = get_json(&base, "/openapi.json", token);
        assert_eq!(status, 200, "{document}");
        let checked_in = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/openapi.json");
        let checked_in: Value = serde_json::from_str(&std::fs::read_to_string(checked_in).unwrap()).unwrap();
        assert_eq!(document, checked_in);
    }

    // Explain: every entry of a statement, asked for by its seq, comes back with the same view
    // and one-line explanation, its manager and period; a manager reads only their own.
    let seq_of = |e: &Value| e["event"]["seq"].as_u64().unwrap();
    let m2_entry = m2_november["managers"][0]["entries"][0].clone();
    assert!(m2_entry.is_object(), "{m2_november}");
    let (_, m3_november) = get_json(&base, "/v1/managers/M-3/statements/2026-11", Some(ADMIN));
    let m3_entry = m3_november["managers"][0]["entries"][0].clone();
    for (entry, manager) in [(&m2_entry, "M-2"), (&m3_entry, "M-3")] {
        let route = format!("/v1/explain/{}", seq_of(entry));
        for token in [ADMIN, AUDITOR] {
            let (status, explained) = get_json(&base, &route, Some(token));
            assert_eq!(status, 200, "{route}: {explained}");
            assert_eq!(explained["seq"].as_u64(), Some(seq_of(entry)));
            assert_eq!(explained["outcome"], "booked");
            let found = explained["entries"].as_array().unwrap().iter().find(|e| e["manager_id"] == manager).unwrap();
            let mut expected = entry.clone();
            expected["manager_id"] = Value::String(manager.into());
            expected["period"] = Value::String("2026-11".into());
            assert_eq!(found, &expected, "{route}");
            assert!(found["explanation"].as_str().is_some_and(|line| line.len() > 20));
        }
        let (status, body) = get_json(&base, &route, Some(MANAGER_2));
        assert_eq!(status, if manager == "M-2" { 200 } else { 403 }, "{route}: {body}");
        if status == 200 {
            assert!(body["entries"].as_array().unwrap().iter().all(|e| e["manager_id"] == "M-2"), "{body}");
        } else {
            assert!(body["error"].as_str().is_some_and(|e| e.contains("M-2")), "{body}");
        }
        assert_eq!(get(&base, &route, Some(PUBLISHER)).0, 403);
        for token in [None, Some(WRONG)] {
            assert_eq!(get(&base, &route, token).0, 401);
        }
    }
    // Asked for every seq of the log, explain finds each entry of the statements exactly once;
    // a record that booked nothing (a deal.created) says so, and no manager may read it.
    let (_, ready) = get_json(&base, "/readyz", None);
    let last = ready["ledger_seq"].as_u64().unwrap();
    let (mut explained_entries, mut booked_nothing) = (0, Vec::new());
    for seq in 1..=last {
        let (status, explained) = get_json(&base, &format!("/v1/explain/{seq}"), Some(AUDITOR));
        assert_eq!(status, 200, "{seq}: {explained}");
        let n = explained["entries"].as_array().unwrap().len();
        explained_entries += n;
        if n == 0 {
            assert_ne!(explained["outcome"], "booked", "{explained}");
            booked_nothing.push(seq);
        }
    }
    let mut statement_entries = 0;
    for period in ["2026-11", "2026-12"] {
        let (_, s) = get_json(&base, &format!("/v1/statements/{period}"), Some(AUDITOR));
        for m in s["managers"].as_array().unwrap() {
            statement_entries += m["entries"].as_array().unwrap().len();
        }
    }
    assert!(statement_entries > 0);
    assert_eq!(explained_entries, statement_entries);
    assert!(!booked_nothing.is_empty());
    assert_eq!(get(&base, &format!("/v1/explain/{}", booked_nothing[0]), Some(MANAGER_2)).0, 403);
    for (route, status) in [("/v1/explain/0", 404), ("/v1/explain/100000", 404), ("/v1/explain/abc", 400)] {
        let (got, body) = get_json(&base, route, Some(ADMIN));
        assert_eq!(got, status, "{route}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| e.len() > 20), "{route}: {body}");
    }

    // Explain by payment and by deal: every payment and deal of the month as the auditor reads
    // it, to compare with `premia explain` once serve has stopped.
    const PAYMENTS: [&str; 8] = ["P-101", "P-201", "P-202", "P-301", "P-401", "P-402", "P-501", "P-502"];
    const DEALS: [&str; 9] = ["D-101", "D-102", "D-201", "D-202", "D-301", "D-401", "D-402", "D-501", "D-502"];
    let mut by_subject = Vec::new();
    for (kind, ids) in [("payment", &PAYMENTS[..]), ("deal", &DEALS[..])] {
        for id in ids {
            let (status, explained) = get_json(&base, &format!("/v1/explain/{kind}s/{id}"), Some(AUDITOR));
            assert_eq!(status, 200, "{kind} {id}: {explained}");
            assert_eq!(explained["subject"], format!("{kind} {id}"));
            by_subject.push((kind, *id, explained));
        }
    }
    let explained =
        |kind: &str, id: &str| by_subject.iter().find(|(k, i, _)| *k == kind && *i == id).unwrap().2.clone();
    // Figures checked by hand. P-502 (M-5): 600 000 paid on its due date, on time at 0.8 % of the
    // margin 60 000: 480.00; R-501 takes 100 000 back at the same rate: -80.00.
    let p502 = explained("payment", "P-502");
    let amounts: Vec<&str> =
        p502["entries"].as_array().unwrap().iter().map(|e| e["entry"]["amount"].as_str().unwrap()).collect();
    assert_eq!(amounts, ["480.00", "-80.00"], "{p502}");
    // D-102 was cancelled through M-1's fault: only the fine, -2 000.00.
    let d102 = explained("deal", "D-102");
    assert_eq!(d102["entries"].as_array().map(Vec::len), Some(1), "{d102}");
    assert_eq!(d102["entries"][0]["entry"]["kind"], "fine");
    assert_eq!(d102["entries"][0]["entry"]["amount"], "-2000.00");
    // P-301 arrived before D-301: booked when the deal arrived, a later seq than its own.
    let p301 = &explained("payment", "P-301")["entries"][0];
    assert!(p301["applied_at_seq"].as_u64() > p301["entry"]["event"]["seq"].as_u64(), "{p301}");
    // P-402, dated 28 November, came after November closed: booked in December.
    let p402 = &explained("payment", "P-402")["entries"][0];
    assert_eq!((p402["period"].as_str(), p402["entry"]["adjustment_of"].as_str()), (Some("2026-12"), Some("2026-11")));
    // D-201 and D-202 have no refund or fine: one commission each.
    for id in ["D-201", "D-202"] {
        assert_eq!(explained("deal", id)["entries"].as_array().map(Vec::len), Some(1), "{id}");
    }
    // A manager reads the same explanation of their own deal.
    let (_, m2_d202) = get_json(&base, "/v1/explain/deals/D-202", Some(MANAGER_2));
    assert_eq!(m2_d202, explained("deal", "D-202"));
    let (status, body) = get_json(&base, "/v1/explain/payments/P-301", Some(MANAGER_2));
    assert!(status == 403 && body["error"].as_str().is_some_and(|e| e.contains("M-2")), "{body}");
    assert_eq!(get(&base, "/v1/explain/deals/D-999", Some(MANAGER_2)).0, 404);

    // SIGTERM: serve finishes the batch in hand and releases the data dir.
    let pid = serve.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = serve.child.wait().unwrap();
    assert!(status.success(), "serve exited with {status}");
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(stderr.contains("HTTP API listening"), "the trace-level log shows the API started:\n{stderr}");
    for token in [ADMIN, AUDITOR, MANAGER_2, PUBLISHER, WRONG] {
        assert!(!stderr.contains(token), "a token is in serve's stderr");
    }

    // The same JSON as `premia statement --format json`, seal included (the same ledger).
    let cli = |args: &[&str]| -> Value { serde_json::from_slice(&premia(&dir, args).stdout).unwrap() };
    assert_eq!(november, cli(&["statement", "--period", "2026-11", "--format", "json"]));
    assert_eq!(december, cli(&["statement", "--period", "2026-12", "--format", "json"]));
    let m2_cli = cli(&["statement", "--period", "2026-11", "--manager", "M-2", "--format", "json"]);
    assert_eq!(m2_november, m2_cli);
    // Byte for byte: the API answers the compact JSON of the statement's JSON value.
    for (period, manager, body) in &bodies {
        let expected = cli(&["statement", "--period", period, "--manager", manager, "--format", "json"]);
        assert_eq!(body, &serde_json::to_string(&expected).unwrap(), "{manager} {period}");
    }
    assert!(bodies.iter().any(|(_, _, b)| b.contains("\"seal\"")), "November is closed, with its seal");
    // The entries route lists the statements' entries of M-2 over both months, each with its
    // period.
    let mut expected_entries = Vec::new();
    for period in ["2026-11", "2026-12"] {
        let s = cli(&["statement", "--period", period, "--manager", "M-2", "--format", "json"]);
        for m in s["managers"].as_array().unwrap() {
            for e in m["entries"].as_array().unwrap() {
                let mut e = e.clone();
                e["period"] = Value::String(period.into());
                expected_entries.push(e);
            }
        }
    }
    assert!(!expected_entries.is_empty());
    assert_eq!(m2_entries["entries"], Value::Array(expected_entries));
    assert_eq!(cli(&["rejected", "--format", "json"]), rejected["items"]);
    // Explain by payment and deal: the same JSON as `premia explain --payment/--deal`, which
    // folds each one's records again from the raw log (entries, amounts, arithmetic, rules,
    // schemes, events and when each was booked).
    for (kind, id, explained) in &by_subject {
        let flag = format!("--{kind}");
        assert_eq!(explained, &cli(&["explain", &flag, id, "--format", "json"]), "{kind} {id}");
    }
    assert_eq!(m2_d202, cli(&["explain", "--deal", "D-202", "--manager", "M-2", "--format", "json"]));
}

#[test]
fn readyz_is_503_while_nats_is_away_and_200_once_it_is_back() {
    let mut server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("premia.toml");
    std::fs::write(&config, format!("[[http.tokens]]\nsha256 = \"{}\"\nrole = \"admin\"\n", sha256_hex(ADMIN)))
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let base = format!("http://{address}");
    let stderr_path = work.path().join("serve.stderr");
    let _serve = start_serve(&work.path().join("ledger"), &config, &server.url(), &address, &stderr_path);

    let wait_for = |want: u16, what: &str| -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((status, body)) = try_get(&base, "/readyz", None) {
                if status == want {
                    return serde_json::from_str(&body).unwrap();
                }
            }
            assert!(Instant::now() < deadline, "/readyz never answered {want} {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for(200, "at the start");
    server.kill();
    let not_ready = wait_for(503, "with NATS killed");
    assert_eq!(not_ready["status"], "not ready");
    assert!(not_ready["error"].as_str().is_some_and(|e| e.contains("NATS")), "{not_ready}");
    // Alive all the same: nothing for a liveness probe to restart.
    assert_eq!(get(&base, "/healthz", None).0, 200);
    server.restart();
    wait_for(200, "after NATS came back");
}

#[test]
fn premia_token_makes_a_fresh_token_and_the_config_lines_of_its_hash() {
    let work = tempfile::tempdir().unwrap();
    let made = |role: &str| last_json_line(&premia(work.path(), &["token", "--role", role, "--format", "json"]));
    let first = made("manager:M-4");
    let second = made("manager:M-4");
    let token = first["token"].as_str().unwrap();
    assert_eq!(token.len(), 64, "32 random bytes in hex: {first}");
    assert_ne!(first["token"], second["token"], "each token is new");
    assert_eq!(first["sha256"].as_str().unwrap(), sha256_hex(token));
    assert_eq!(first["role"], "manager:M-4");

    // The text form is the TOML to paste, with the hash and never the token inside it.
    let text = String::from_utf8(premia(work.path(), &["token", "--role", "auditor"]).stdout).unwrap();
    let token = text.lines().next().and_then(|l| l.strip_prefix("token: ")).unwrap();
    let toml_part: String =
        text.lines().filter(|l| l.starts_with("[[") || l.contains(" = ")).collect::<Vec<_>>().join("\n");
    assert_eq!(toml_part, format!("[[http.tokens]]\nsha256 = \"{}\"\nrole = \"auditor\"", sha256_hex(token)));

    let refused = support::premia_status(work.path(), &["token", "--role", "manager:"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("manager:<id>"));
}
