//! The NATS path against a real nats-server (started per test on a free loopback port):
//! what is published and served must give the statements a file ingest gives.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

mod support;
use support::nats_server::NatsServer;
use support::{last_json_line, premia, premia_status, PREMIA};

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/seed-month.jsonl");
const EXPECTED: &str = include_str!("data/seed-month.expected.json");

fn statements(dir: &Path, periods: &[String]) -> Vec<Value> {
    periods
        .iter()
        .map(|p| {
            let mut statement: Value =
                serde_json::from_slice(&premia(dir, &["statement", "--period", p, "--format", "json"]).stdout).unwrap();
            // A closed period's seal chains to each record's arrival time and origin (nats or
            // file), which differ between the ledgers compared here: the figures are compared.
            if let Some(object) = statement.as_object_mut() {
                object.remove("seal");
            }
            statement
        })
        .collect()
}

fn months(from_year: i32, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{}-{:02}", from_year + (i / 12) as i32, i % 12 + 1)).collect()
}

#[test]
fn a_generated_stream_through_nats_gives_the_statements_of_a_file_ingest() {
    let server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("events.jsonl");
    let generated = Command::new(PREMIA).args(["generate", "--events", "100000", "--seed", "7"]).output().unwrap();
    std::fs::write(&file, &generated.stdout).unwrap();
    let file = file.to_str().unwrap();

    let published =
        last_json_line(&premia(work.path(), &["publish", file, "--nats-url", &server.url(), "--format", "json"]));
    assert_eq!(published["published"], 100_000);
    let served = work.path().join("served");
    let counts = last_json_line(&premia(
        &served,
        &["serve", "--drain", "--http", "off", "--nats-url", &server.url(), "--format", "json"],
    ));
    // JetStream drops redeliveries (same source and id) inside its duplicate window, so the
    // ledger sees fewer lines; every line it sees is accounted for.
    let seen = 100_000 - published["duplicates"].as_u64().unwrap();
    let total: u64 = ["applied", "duplicates", "rejected", "parked"].iter().map(|k| counts[k].as_u64().unwrap()).sum();
    assert_eq!(total, seen);

    let ingested = work.path().join("ingested");
    premia(&ingested, &["ingest", file]);
    let periods = months(2026, 3);
    assert_eq!(statements(&served, &periods), statements(&ingested, &periods));
    let pending = |dir: &Path| premia(dir, &["pending", "--format", "json"]).stdout;
    assert_eq!(pending(&served), pending(&ingested));
}

#[test]
fn publishing_everything_twice_changes_nothing() {
    let server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    let first =
        last_json_line(&premia(work.path(), &["publish", SEED, "--nats-url", &server.url(), "--format", "json"]));
    // The seed month carries one redelivered event.
    assert_eq!((first["published"].as_u64(), first["duplicates"].as_u64()), (Some(29), Some(1)));
    let second =
        last_json_line(&premia(work.path(), &["publish", SEED, "--nats-url", &server.url(), "--format", "json"]));
    assert_eq!((second["published"].as_u64(), second["duplicates"].as_u64()), (Some(29), Some(29)));

    let dir = work.path().join("ledger");
    let counts = last_json_line(&premia(
        &dir,
        &["serve", "--drain", "--http", "off", "--nats-url", &server.url(), "--format", "json"],
    ));
    assert_eq!(counts, serde_json::json!({"applied": 27, "duplicates": 0, "rejected": 1, "parked": 0}));
    let expected: Value = serde_json::from_str(EXPECTED).unwrap();
    for (period, managers) in expected["statements"].as_object().unwrap() {
        let s: Value =
            serde_json::from_slice(&premia(&dir, &["statement", "--period", period, "--format", "json"]).stdout)
                .unwrap();
        for m in s["managers"].as_array().unwrap() {
            assert_eq!(m["total"], managers[m["manager_id"].as_str().unwrap()]["total"], "{period}");
        }
    }
    // Serving again finds nothing new.
    let again = last_json_line(&premia(
        &dir,
        &["serve", "--drain", "--http", "off", "--nats-url", &server.url(), "--format", "json"],
    ));
    assert_eq!(again, serde_json::json!({"applied": 0, "duplicates": 0, "rejected": 0, "parked": 0}));
}

#[test]
fn a_killed_server_restarted_again_and_again_ends_with_the_clean_statements() {
    let server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("events.jsonl");
    let generated = Command::new(PREMIA).args(["generate", "--events", "30000", "--seed", "11"]).output().unwrap();
    std::fs::write(&file, &generated.stdout).unwrap();
    let file = file.to_str().unwrap();
    premia(work.path(), &["publish", file, "--nats-url", &server.url()]);

    let crashed = work.path().join("crashed");
    let mut interrupted = 0;
    for delay_ms in [150u64, 300, 450, 600] {
        let mut child = Command::new(PREMIA)
            .arg("--data-dir")
            .arg(&crashed)
            .args(["serve", "--batch", "200", "--no-http", "--nats-url", &server.url()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            interrupted += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    assert!(interrupted > 0, "no kill interrupted a running serve");
    premia(&crashed, &["serve", "--drain", "--http", "off", "--nats-url", &server.url()]);

    let clean = work.path().join("clean");
    premia(&clean, &["ingest", file]);
    let periods = months(2026, 2);
    assert_eq!(statements(&crashed, &periods), statements(&clean, &periods));
    assert_eq!(last_json_line(&premia(&crashed, &["rebuild", "--format", "json"]))["identical"], true);
}

#[test]
fn a_nats_server_killed_and_restarted_mid_stream_loses_nothing() {
    let mut server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("events.jsonl");
    let generated = Command::new(PREMIA).args(["generate", "--events", "40000", "--seed", "13"]).output().unwrap();
    std::fs::write(&file, &generated.stdout).unwrap();
    let file = file.to_str().unwrap();
    let published =
        last_json_line(&premia(work.path(), &["publish", file, "--nats-url", &server.url(), "--format", "json"]));

    // serve --drain must ride out the server's deaths on its own and exit once all is taken in.
    let served = work.path().join("served");
    let child = Command::new(PREMIA)
        .arg("--data-dir")
        .arg(&served)
        .args(["serve", "--drain", "--batch", "200", "--http", "off", "--nats-url", &server.url(), "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = support::Reaped { child };
    let mut interrupted = 0;
    for delay_ms in [200u64, 400, 400] {
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        if child.child.try_wait().unwrap().is_none() {
            interrupted += 1;
        }
        server.kill(); // SIGKILL
        std::thread::sleep(std::time::Duration::from_millis(300));
        server.restart();
    }
    assert!(interrupted > 0, "no restart of nats-server happened while serve was consuming");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "serve --drain did not finish after nats-server came back");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "serve --drain failed");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.child.stdout.take().unwrap(), &mut out).unwrap();
    let counts: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    // Every stored message was taken in exactly once: nothing lost, no redelivery counted.
    let seen = published["published"].as_u64().unwrap() - published["duplicates"].as_u64().unwrap();
    let total: u64 = ["applied", "duplicates", "rejected", "parked"].iter().map(|k| counts[k].as_u64().unwrap()).sum();
    assert_eq!(total, seen);

    let clean = work.path().join("clean");
    premia(&clean, &["ingest", file]);
    let periods = months(2026, 2);
    assert_eq!(statements(&served, &periods), statements(&clean, &periods));
    assert_eq!(last_json_line(&premia(&served, &["rebuild", "--format", "json"]))["identical"], true);
}

#[test]
fn sigterm_stops_serve_after_the_batch_in_hand_with_status_0() {
    use std::io::BufRead;

    let server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    premia(work.path(), &["publish", SEED, "--nats-url", &server.url()]);
    let dir = work.path().join("ledger");
    let child = Command::new(PREMIA)
        .arg("--data-dir")
        .arg(&dir)
        .args(["serve", "--no-http", "--nats-url", &server.url()])
        .env("RUST_LOG", "premia_nats=debug,premia=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = support::Reaped { child };
    // Wait for the log line of the first committed batch, then ask serve to stop.
    let stderr = std::io::BufReader::new(child.child.stderr.take().unwrap());
    let mut lines = stderr.lines();
    let committed = lines.by_ref().map_while(Result::ok).any(|l| l.contains("batch committed and acked"));
    assert!(committed, "serve logged no committed batch");
    let killed = Command::new("kill").args(["-TERM", &child.child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.child.wait().unwrap();
    assert!(status.success(), "serve exited with {status} after SIGTERM:\n{}", rest.join("\n"));
    assert!(rest.iter().any(|l| l.contains("shutting down after the batch in hand")), "{rest:?}");

    // Everything it took in is stored: the month's statements are the expected ones.
    let expected: Value = serde_json::from_str(EXPECTED).unwrap();
    let november: Value =
        serde_json::from_slice(&premia(&dir, &["statement", "--period", "2026-11", "--format", "json"]).stdout)
            .unwrap();
    for m in november["managers"].as_array().unwrap() {
        assert_eq!(m["total"], expected["statements"]["2026-11"][m["manager_id"].as_str().unwrap()]["total"]);
    }
    assert_eq!(november["managers"].as_array().unwrap().len(), 5);
}

#[test]
fn the_feed_and_the_rejection_notices_say_what_happened() {
    use futures::StreamExt;

    let server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = runtime.block_on(async_nats::connect(server.url())).unwrap();
    // Rejection notices are plain NATS messages: subscribe before anything is served.
    let mut notices = runtime.block_on(client.subscribe("premia.rejected.>")).unwrap();
    runtime.block_on(client.flush()).unwrap();

    premia(work.path(), &["publish", SEED, "--nats-url", &server.url()]);
    premia(&work.path().join("ledger"), &["serve", "--drain", "--http", "off", "--nats-url", &server.url()]);

    // The payment in USD was refused: the notice names the reason and carries the raw event.
    let notice = runtime
        .block_on(async { tokio::time::timeout(std::time::Duration::from_secs(10), notices.next()).await })
        .expect("a rejection notice")
        .unwrap();
    assert_eq!(notice.subject.as_str(), "premia.rejected.currency_mismatch");
    let headers = notice.headers.expect("headers");
    assert_eq!(headers.get("Premia-Reason").map(|v| v.as_str()), Some("currency_mismatch"));
    assert!(headers.get("Premia-Message").unwrap().as_str().contains("USD"));
    assert!(String::from_utf8_lossy(&notice.payload).contains("\"P-999\""));

    // The feed is kept in a stream: read M-4's messages back from it.
    let feed: Vec<Value> = runtime.block_on(async {
        let js = async_nats::jetstream::new(client.clone());
        let stream = js.get_stream("PREMIA_FEED").await.unwrap();
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                filter_subject: "premia.accruals.M-4".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages =
            consumer.fetch().max_messages(100).expires(std::time::Duration::from_secs(2)).messages().await.unwrap();
        let mut feed = Vec::new();
        while let Some(message) = messages.next().await {
            feed.push(serde_json::from_slice(&message.unwrap().payload).unwrap());
        }
        feed
    });
    assert!(!feed.is_empty(), "M-4 got feed messages");
    // The late payment P-402 (dated in closed November) shows up as an update of December, in
    // the message of its own record (December's plan assignment came before it, in another).
    let december = feed
        .iter()
        .flat_map(|m| m["updates"].as_array().unwrap().iter())
        .find(|u| u["period"] == "2026-12" && u["entries"].as_array().is_some_and(|e| !e.is_empty()))
        .expect("an update for 2026-12 with entries");
    assert_eq!(december["manager_id"], "M-4");
    assert_eq!(december["total"], "160.00");
    assert_eq!(december["plan"]["status"], "projected");
    assert_eq!(december["plan"]["target"], "500000.00");
    let entry = &december["entries"][0];
    assert_eq!(entry["payment_id"], "P-402");
    assert_eq!(entry["amount"], "160.00");
    let why = entry["explanation"].as_str().unwrap();
    assert!(why.starts_with("+160.00: 0.8 % of margin 20 000.00 x paid 200 000.00"), "{why}");

    // A plan assignment books nothing, yet it moves the projected bonus: it gets an update too.
    let plan = work.path().join("plan.jsonl");
    std::fs::write(
        &plan,
        r#"{"specversion": "1.0", "id": "evt-plan-m4-2027-01", "source": "crm/acme", "type": "plan.assigned", "time": "2026-12-20T09:00:00+03:00", "data": {"manager_id": "M-4", "period": "2027-01", "target": "300000.00"}}"#,
    )
    .unwrap();
    premia(work.path(), &["publish", plan.to_str().unwrap(), "--nats-url", &server.url()]);
    premia(&work.path().join("ledger"), &["serve", "--drain", "--http", "off", "--nats-url", &server.url()]);
    let last: Value = runtime.block_on(async {
        let js = async_nats::jetstream::new(client.clone());
        let stream = js.get_stream("PREMIA_FEED").await.unwrap();
        let message = stream.get_last_raw_message_by_subject("premia.accruals.M-4").await.unwrap();
        serde_json::from_slice(&message.payload).unwrap()
    });
    assert_eq!(last["updates"].as_array().unwrap().len(), 1, "{last}");
    let update = &last["updates"][0];
    assert_eq!(update["period"], "2027-01");
    assert_eq!(update["entries"], serde_json::json!([]));
    assert_eq!(update["total"], "0.00");
    assert_eq!(update["plan"]["target"], "300000.00");
    assert_eq!(update["plan"]["status"], "projected");
    // Nothing received yet: below 50 % of the plan, so no bonus is projected.
    assert_eq!(update["plan"]["bonus"], "0.00");
}

#[test]
fn the_demo_runs_the_example_month_through_nats() {
    let server = NatsServer::start();
    let out = Command::new(PREMIA).args(["demo", "--format", "json", "--nats-url", &server.url()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let demo: Value = serde_json::from_slice(&out.stdout).unwrap();
    // JetStream drops the redelivered copy, so the ledger never sees it as a duplicate.
    assert_eq!(demo["counts"], serde_json::json!({"applied": 27, "duplicates": 0, "rejected": 1, "parked": 0}));
    let expected: Value = serde_json::from_str(EXPECTED).unwrap();
    for statement in demo["statements"].as_array().unwrap() {
        let period = statement["period"].as_str().unwrap();
        for m in statement["managers"].as_array().unwrap() {
            assert_eq!(m["total"], expected["statements"][period][m["manager_id"].as_str().unwrap()]["total"]);
        }
    }
    // The demo's stream was its own, and it is gone.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let names: Vec<String> = runtime.block_on(async {
        use futures::StreamExt;
        let client = async_nats::connect(server.url()).await.unwrap();
        async_nats::jetstream::new(client).stream_names().map(|n| n.unwrap()).collect().await
    });
    assert!(names.iter().all(|n| !n.starts_with("PREMIA_DEMO_")), "{names:?}");
}

/// A loopback port nobody listens on now (the OS's choice, so parallel tests do not collide).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `premia serve --drain` on an empty stream with the given extra arguments, environment and
/// config file; its stderr at info level, where serve says where the HTTP API listens.
fn drain_with(server: &NatsServer, work: &Path, args: &[&str], env: &[(&str, String)], config: &str) -> String {
    let config_path = work.join("premia.toml");
    std::fs::write(&config_path, config).unwrap();
    let out = Command::new(PREMIA)
        .arg("--data-dir")
        .arg(work.join("ledger"))
        .arg("--config")
        .arg(&config_path)
        .args(["serve", "--drain", "--nats-url", &server.url()])
        .args(args)
        .env_remove("PREMIA_HTTP")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "serve {args:?} with {env:?} failed:\n{stderr}");
    stderr
}

/// Where the HTTP API listened, from serve's log line, if it did.
fn listened(stderr: &str) -> Option<u16> {
    let line = stderr.lines().find(|l| l.contains("HTTP API listening"))?;
    line.rsplit(':').next()?.trim().trim_end_matches('"').parse().ok()
}

/// The address comes from --http, then PREMIA_HTTP, then the config file's [http] listen; `off`
/// (or --no-http) turns the API off wherever it is said. Every address here is a free port the
/// test picked: the default 127.0.0.1:8080 is left to the unit test of the resolution
/// (config.rs), since binding it here would race anything else on this machine using it.
#[test]
fn serve_takes_its_http_address_from_the_flag_then_the_environment_then_the_file() {
    let server = NatsServer::start();
    let work = tempfile::tempdir().unwrap();
    // Three distinct ports: each is held until all are picked.
    let held: Vec<_> = (0..3).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let ports: Vec<u16> = held.iter().map(|l| l.local_addr().unwrap().port()).collect();
    drop(held);
    let (file_port, env_port, flag_port) = (ports[0], ports[1], ports[2]);
    let file = format!("[http]\nlisten = \"127.0.0.1:{file_port}\"\n");
    let env = [("PREMIA_HTTP", format!("127.0.0.1:{env_port}"))];
    let flag = format!("127.0.0.1:{flag_port}");

    assert_eq!(listened(&drain_with(&server, work.path(), &[], &[], &file)), Some(file_port));
    assert_eq!(listened(&drain_with(&server, work.path(), &[], &env, &file)), Some(env_port));
    assert_eq!(listened(&drain_with(&server, work.path(), &["--http", &flag], &env, &file)), Some(flag_port));
    // Off: by flag over the environment, by --no-http over a flag, by the file alone.
    for (args, env, config) in [
        (&["--http", "off"][..], &env[..], file.as_str()),
        (&["--no-http", "--http", flag.as_str()][..], &env[..], file.as_str()),
        (&[][..], &[][..], "[http]\nlisten = \"off\"\n"),
        (&[][..], &[("PREMIA_HTTP", "off".to_string())][..], file.as_str()),
    ] {
        let stderr = drain_with(&server, work.path(), args, env, config);
        assert_eq!(listened(&stderr), None, "{args:?} {env:?} {config:?}:\n{stderr}");
        assert!(stderr.contains("serving stopped"), "serve ran to the end:\n{stderr}");
    }
}

/// A taken address stops serve at once, before it opens the ledger or dials NATS (none answers
/// here), with a sentence saying what to do.
#[test]
fn serve_stops_at_once_when_its_http_address_is_taken() {
    let work = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = work.path().join("ledger");
    let dead_nats = format!("nats://127.0.0.1:{}", free_port());
    let started = std::time::Instant::now();
    let out = premia_status(&dir, &["serve", "--http", &address, "--nats-url", &dead_nats]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "it took {:?}", started.elapsed());
    assert!(stderr.contains(&format!("cannot serve HTTP on {address}")), "{stderr}");
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(stderr.contains("--http HOST:PORT") && stderr.contains("--http off"), "{stderr}");
    assert!(!dir.exists(), "the ledger was not opened");
    // Not an address at all: said before anything else, too.
    let out = premia_status(&dir, &["serve", "--http", "8080", "--nats-url", &dead_nats]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("HOST:PORT") && stderr.contains("\"off\""), "{stderr}");
    drop(taken);
}
