//! The chaos soak of docs/RELIABILITY.md: a three-node JetStream cluster, a generated stream with
//! all of the generator's noise and a few hostile lines of our own (a payment whose deal never
//! comes, so something is still parked at the end; a line that is not JSON), published in chunks
//! while three `premia serve` replicas fold it. Meanwhile serves are SIGKILLed at random moments
//! and started again, NATS nodes (every other time the events stream's leader) are SIGKILLed and
//! restarted, and one replica's data dir is destroyed and rebuilt with `premia recover
//! --from-stream`. At the end every replica's statements equal a clean file ingest of the same
//! lines, all chain heads are equal, and no accrual is in the feed twice.
//!
//! `cargo test` runs a small soak; crates/premia-bench/scripts/chaos-soak.sh runs the big one
//! through the same code with PREMIA_SOAK_EVENTS, PREMIA_SOAK_SERVE_KILLS, PREMIA_SOAK_NODE_KILLS
//! and PREMIA_SOAK_SEED.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::Value;

mod support;
use support::nats_cluster::NatsCluster;
use support::soak::{
    booked_accruals, fed_accruals, logs_apart, periods_of, publish_until_taken, statements, stream_payloads, tally,
    Replica, StreamTally,
};
use support::{last_json_line, premia};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What the soak did, printed as one JSON line at the end (the figures of RELIABILITY.md).
#[derive(Default, serde::Serialize)]
struct Figures {
    lines: usize,
    chunks: usize,
    publish_attempts: u64,
    serve_kills: u64,
    node_kills: u64,
    leader_kills: u64,
    recover_seconds: f64,
    chaos_seconds: f64,
    drain_seconds: f64,
    total_seconds: f64,
    chain_seq: Value,
    chain_heads_equal: bool,
    /// Records (in the replica furthest from replica a) whose stream timestamp differs.
    records_with_other_arrival: usize,
    stream: StreamTally,
    equal_to_ingest_in_file_order: bool,
    feed_messages: usize,
    accruals_booked: usize,
    accruals_fed_twice: usize,
    accruals_never_fed: usize,
    replicas_equal_to_clean_ingest: bool,
}

#[test]
fn replicas_survive_killed_serves_killed_nats_nodes_and_a_destroyed_data_dir() {
    let started = Instant::now();
    let events = setting("PREMIA_SOAK_EVENTS", 6000);
    let serve_kills = setting("PREMIA_SOAK_SERVE_KILLS", 4);
    let node_kills = setting("PREMIA_SOAK_NODE_KILLS", 2);
    let seed = setting("PREMIA_SOAK_SEED", 59);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut figures = Figures::default();

    let mut cluster = NatsCluster::start();
    let urls = cluster.urls();
    // PREMIA_SOAK_KEEP keeps the work dir (data dirs, chunks, the stream's messages) to look at.
    let scratch = tempfile::tempdir().unwrap();
    let (_scratch, root) = if std::env::var_os("PREMIA_SOAK_KEEP").is_some() {
        let root = scratch.keep();
        eprintln!("soak work dir (kept): {}", root.display());
        (None, root)
    } else {
        let root = scratch.path().to_path_buf();
        (Some(scratch), root)
    };
    let work = Work(root);
    let per_day = (events / 90).max(50).to_string();
    let generated = premia(
        work.path(),
        &["generate", "--events", &events.to_string(), "--seed", &seed.to_string(), "--events-per-day", &per_day],
    );
    let mut lines: Vec<String> = String::from_utf8(generated.stdout).unwrap().lines().map(String::from).collect();
    lines.extend(hostile_lines());
    figures.lines = lines.len();
    let all = work.path().join("all.jsonl");
    std::fs::write(&all, lines.join("\n") + "\n").unwrap();
    let chunks = chunk_files(work.path(), &lines, 20);
    figures.chunks = chunks.len();

    // The first chunk creates the R3 stream once the cluster has elected its JetStream leader.
    figures.publish_attempts += publish_until_taken(&urls, &chunks[0], Duration::from_secs(60));
    let mut replicas: Vec<Replica> = ["a", "b", "c"].iter().map(|n| Replica::new(work.path(), n, &urls)).collect();
    for replica in &mut replicas {
        replica.start();
    }
    let publisher = {
        let (urls, rest) = (urls.clone(), chunks[1..].to_vec());
        std::thread::spawn(move || {
            rest.iter().map(|c| publish_until_taken(&urls, c, Duration::from_secs(300))).sum::<u64>()
        })
    };

    let chaos = Instant::now();
    let (mut served_kills, mut nodes_killed, mut recovered) = (0, 0, false);
    while served_kills < serve_kills || nodes_killed < node_kills || !recovered || !publisher.is_finished() {
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..1200)));
        let kill_a_node = nodes_killed < node_kills && rng.gen_bool(0.25);
        if kill_a_node {
            let leader = if nodes_killed % 2 == 0 { cluster.stream_leader("PREMIA_EVENTS") } else { None };
            figures.leader_kills += u64::from(leader.is_some());
            let node = leader.unwrap_or_else(|| rng.gen_range(0..3));
            cluster.kill(node);
            std::thread::sleep(Duration::from_millis(rng.gen_range(500..3000)));
            cluster.restart(node);
            nodes_killed += 1;
        } else if !recovered && served_kills >= serve_kills / 2 {
            let seconds = Instant::now();
            replicas[2].destroy_and_recover(&urls);
            figures.recover_seconds = seconds.elapsed().as_secs_f64();
            recovered = true;
        } else if served_kills < serve_kills {
            let replica = &mut replicas[rng.gen_range(0..3)];
            replica.kill();
            replica.start();
            served_kills += 1;
        }
    }
    figures.publish_attempts += publisher.join().unwrap();
    figures.chaos_seconds = chaos.elapsed().as_secs_f64();
    (figures.serve_kills, figures.node_kills) = (served_kills, nodes_killed);

    let drain = Instant::now();
    for replica in &mut replicas {
        replica.stop_and_drain();
    }
    figures.drain_seconds = drain.elapsed().as_secs_f64();

    // The replicas fold the stream in its order; a publish that sends again what a dying node
    // did not acknowledge can store a line after one that follows it in the file. So the
    // reference is a clean ingest of the stream's messages in the stream's order, and the
    // soak also says whether that order, and the statements, equal the file's.
    let payloads = stream_payloads(&urls);
    figures.stream = tally(&lines, &payloads);
    let in_stream_order = work.path().join("in-stream-order.jsonl");
    std::fs::write(&in_stream_order, payloads.join(&b'\n')).unwrap();
    let clean = work.path().join("clean");
    premia(&clean, &["ingest", in_stream_order.to_str().unwrap()]);
    let periods = periods_of(&lines);
    let expected = statements(&clean, &periods);
    for replica in &replicas {
        let got = statements(&replica.dir, &periods);
        assert!(got == expected, "replica {} differs from a clean ingest of the stream's messages", replica.name);
    }
    figures.replicas_equal_to_clean_ingest = true;
    let clean_file_order = work.path().join("clean-file-order");
    premia(&clean_file_order, &["ingest", all.to_str().unwrap()]);
    figures.equal_to_ingest_in_file_order = statements(&clean_file_order, &periods) == expected;
    assert_eq!(figures.stream.lines_missing, 0, "lines never stored: {:?}", figures.stream);
    if figures.stream.lines_out_of_file_order == 0 {
        assert!(figures.equal_to_ingest_in_file_order, "in file order, yet the statements differ from a file ingest");
    }
    // The same records in every replica; the same chain head, unless the NATS nodes the
    // replicas read from stored some messages with other timestamps (docs/RELIABILITY.md:
    // nats-server 2.9 did so for messages stored around a stream leader's death). Then the
    // records differ in their arrival times only, and the soak counts them.
    for replica in &replicas[1..] {
        let (other, arrival_only) = logs_apart(&replicas[0].dir, &replica.dir);
        assert_eq!(other, 0, "replicas a and {} hold different records", replica.name);
        figures.records_with_other_arrival = figures.records_with_other_arrival.max(arrival_only);
    }
    let heads: Vec<(Value, Value)> = replicas.iter().map(|r| head(&r.dir)).collect();
    figures.chain_heads_equal = heads.iter().all(|h| *h == heads[0]);
    if figures.records_with_other_arrival == 0 {
        assert!(figures.chain_heads_equal, "the replicas' chain heads differ: {heads:?}");
    }
    figures.chain_seq = heads[0].0.clone();
    let parked = |dir: &Path| -> Value {
        serde_json::from_slice(&premia(dir, &["pending", "--format", "json"]).stdout).unwrap()
    };
    let pending: Vec<Value> = replicas.iter().map(|r| parked(&r.dir)).collect();
    assert!(pending.iter().all(|p| *p == pending[0]), "the replicas park different facts: {pending:?}");
    assert_ne!(pending[0].to_string(), "[]", "the orphan payment is still parked at the end");

    // The feed: each accrual at most once. One whose record was made durable by a replica
    // SIGKILLed before it published the feed, when every other replica was already past that
    // record, is never published: the soak counts those (RELIABILITY.md).
    let booked = booked_accruals(&expected);
    let (messages, mut fed) = fed_accruals(&urls);
    fed.retain(|(_, period, ..), _| periods.contains(period));
    figures.feed_messages = messages;
    figures.accruals_booked = booked.len();
    figures.accruals_fed_twice = fed.values().filter(|n| **n > 1).count();
    figures.accruals_never_fed = booked.keys().filter(|k| !fed.contains_key(*k)).count();
    let not_booked: Vec<_> = fed.keys().filter(|k| !booked.contains_key(*k)).take(5).collect();
    assert!(not_booked.is_empty(), "the feed carries accruals the ledger did not book: {not_booked:?}");
    assert_eq!(figures.accruals_fed_twice, 0, "accruals in the feed more than once");
    figures.total_seconds = started.elapsed().as_secs_f64();
    eprintln!("soak figures: {}", serde_json::to_string(&figures).unwrap());
}

/// Lines no generator of ours writes: a payment for a deal that never comes (parked to the end)
/// and a line that is not JSON at all.
fn hostile_lines() -> Vec<String> {
    let orphan = serde_json::json!({
        "specversion": "1.0", "id": "soak-orphan-payment", "source": "crm://soak",
        "type": "payment.received", "time": "2026-01-20T10:00:00Z",
        "data": {"payment_id": "soak-orphan-payment", "deal_id": "soak-deal-never-created",
                 "amount": "1000.00", "currency": "RUB", "paid_on": "2026-01-20"}
    });
    vec![orphan.to_string(), "{\"specversion\": \"1.0\", this is not JSON".to_string()]
}

/// The lines cut into `count` files, in order.
fn chunk_files(dir: &Path, lines: &[String], count: usize) -> Vec<PathBuf> {
    let size = lines.len().div_ceil(count);
    lines
        .chunks(size)
        .enumerate()
        .map(|(i, chunk)| {
            let path = dir.join(format!("chunk-{i:02}.jsonl"));
            std::fs::write(&path, chunk.join("\n") + "\n").unwrap();
            path
        })
        .collect()
}

fn head(dir: &Path) -> (Value, Value) {
    let verified = last_json_line(&premia(dir, &["verify", "--format", "json"]));
    assert_eq!(verified["intact"], true, "{verified}");
    (verified["last_seq"].clone(), verified["last_hash"].clone())
}

/// The soak's work dir, temporary or kept.
struct Work(PathBuf);

impl Work {
    fn path(&self) -> &Path {
        &self.0
    }
}
