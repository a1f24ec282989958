//! Auditor commands through the real binary: a generated stream over several closed months is
//! exported and ingested into an empty data dir, which must then hold the same log, statements,
//! entries and seals; verify passes on both and fails, naming the seq, on a damaged store.

use std::path::Path;

use premia_ledger::log::{HASH_LEN, RAW_LEN_AT, RECORD_HEADER_LEN};
use serde_json::Value;

mod support;
use support::{last_json_line, premia, premia_status};

fn statement_json(dir: &Path, period: &str) -> String {
    String::from_utf8(premia(dir, &["statement", "--period", period, "--format", "json"]).stdout).expect("UTF-8")
}

#[test]
fn an_export_reingested_into_an_empty_dir_gives_identical_statements_entries_and_seals() {
    let work = tempfile::tempdir().unwrap();
    let (a, b, c) = (work.path().join("a"), work.path().join("b"), work.path().join("c"));
    let events = work.path().join("events.jsonl");
    // 40,000 events at 300 a day: about four and a half months, each closed on the 5th of the
    // next, with late payments landing in closed months (adjustments), refunds and noise.
    let generated = premia(work.path(), &["generate", "--events", "40000", "--seed", "11", "--events-per-day", "300"]);
    std::fs::write(&events, &generated.stdout).unwrap();
    premia(&a, &["ingest", events.to_str().unwrap(), "--batch-lines", "3000"]);

    let verified_a = last_json_line(&premia(&a, &["verify", "--format", "json"]));
    assert_eq!(verified_a["intact"], true, "{verified_a}");
    let seals_a = verified_a["seals"].as_array().unwrap().clone();
    assert!(seals_a.len() >= 4, "several closed months: {seals_a:?}");
    let last_seq = verified_a["last_seq"].as_u64().unwrap();
    assert!(last_seq > 30_000);

    let export = work.path().join("all.jsonl");
    premia(&a, &["export", "--from-seq", "1", "--out", export.to_str().unwrap()]);
    let imported = last_json_line(&premia(&b, &["ingest", export.to_str().unwrap(), "--format", "json"]));
    assert_eq!(imported["imported"], last_seq);
    assert_eq!(imported["last_hash"], verified_a["last_hash"]);

    // Every period with anything in it, open or closed: the JSON statements (totals, plans,
    // every entry with its event and reason, and the seal) are the same bytes.
    let periods = ["2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"];
    let mut sealed = 0;
    for period in periods {
        let (from_a, from_b) = (statement_json(&a, period), statement_json(&b, period));
        assert_eq!(from_a, from_b, "statement {period}");
        let statement: Value = serde_json::from_str(&from_a).unwrap();
        match statement["status"].as_str() {
            Some("closed") => {
                sealed += 1;
                let seal = &statement["seal"];
                let verified = seals_a.iter().find(|s| s["period"] == period).expect("verify lists the seal");
                assert_eq!(seal["digest"], verified["digest"], "{period}: statement and verify agree");
                assert_eq!(seal["closed_seq"], verified["closed_seq"]);
                assert!(!statement["managers"].as_array().unwrap().is_empty());
            }
            _ => assert!(statement.get("seal").is_none(), "an open period has no seal: {period}"),
        }
    }
    assert_eq!(sealed, seals_a.len(), "every sealed period was compared");

    // A seal from paper: the one printed on the statement matches; one digit off does not.
    let march: Value = serde_json::from_str(&statement_json(&a, "2026-03")).unwrap();
    let digest = march["seal"]["digest"].as_str().unwrap().to_string();
    premia(&a, &["verify", "--seal", &format!("2026-03={digest}")]);
    let wrong = format!("{}{}", if digest.starts_with('0') { "1" } else { "0" }, &digest[1..]);
    let out = premia_status(&a, &["verify", "--format", "json", "--seal", &format!("2026-03={wrong}")]);
    assert_eq!(out.status.code(), Some(4));
    let report = last_json_line(&out);
    assert_eq!((report["intact"].as_bool(), report["problems"].as_array().map(Vec::len)), (Some(false), Some(0)));
    assert_eq!(report["paper_seals"][0]["ledger"], digest.as_str());
    assert_eq!(report["paper_seals"][0]["matches"], false);

    // The log itself is the same, record for record: an export of B is the export of A.
    let export_b = work.path().join("all-b.jsonl");
    premia(&b, &["export", "--from-seq", "1", "--out", export_b.to_str().unwrap()]);
    assert!(std::fs::read(&export).unwrap() == std::fs::read(&export_b).unwrap(), "the exports differ");

    let verified_b = last_json_line(&premia(&b, &["verify", "--format", "json"]));
    assert_eq!(verified_b["intact"], true, "{verified_b}");
    assert_eq!(verified_b["seals"], verified_a["seals"]);
    assert_eq!(verified_b["entries"], verified_a["entries"], "the same number of stored entries");

    // Ingesting the export again changes nothing.
    let again = last_json_line(&premia(&b, &["ingest", export.to_str().unwrap(), "--format", "json"]));
    assert_eq!((again["imported"].as_u64(), again["already_held"].as_u64()), (Some(0), Some(last_seq)));

    // A period's export: the log up to its close, which is enough for its statement and seal.
    let february = seals_a.iter().find(|s| s["period"] == "2026-02").expect("February is closed");
    let export_feb = work.path().join("feb.jsonl");
    premia(&a, &["export", "--period", "2026-02", "--out", export_feb.to_str().unwrap()]);
    let imported = last_json_line(&premia(&c, &["ingest", export_feb.to_str().unwrap(), "--format", "json"]));
    assert_eq!(imported["last_seq"], february["closed_seq"]);
    assert_eq!(statement_json(&c, "2026-02"), statement_json(&a, "2026-02"));
    assert_eq!(statement_json(&c, "2026-01"), statement_json(&a, "2026-01"));

    // The same export into a dir that has other events: refused with a sentence, nothing done.
    let d = work.path().join("d");
    premia(&d, &["ingest", concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/seed-month.jsonl")]);
    let refused = premia_status(&d, &["ingest", export_feb.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("does not line up") && message.contains("empty data dir"), "{message}");
    assert_eq!(last_json_line(&premia(&d, &["verify", "--format", "json"]))["last_seq"], 28);
}

#[test]
fn verify_fails_with_status_4_naming_the_first_changed_record() {
    let dir = tempfile::tempdir().unwrap();
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/seed-month.jsonl");
    premia(dir.path(), &["ingest", seed, "--batch-lines", "5"]);
    premia(dir.path(), &["verify"]);

    // Change one byte of logged event 9 in the store, with the ledger closed.
    let db = sled::Config::new().path(dir.path().join("sled")).open().unwrap();
    let mut changed = false;
    for item in db.scan_prefix(b"log") {
        let (key, value) = item.unwrap();
        let mut bytes = lz4_flex::decompress_size_prepended(&value).unwrap();
        // Records: seq 8 | time 8 | origin 1 | raw length 4 | raw | hash 32.
        let mut at = 0;
        while at < bytes.len() {
            let seq = u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
            let len = u32::from_be_bytes(bytes[at + RAW_LEN_AT..at + RECORD_HEADER_LEN].try_into().unwrap()) as usize;
            if seq == 9 {
                bytes[at + RECORD_HEADER_LEN + len / 2] ^= 0x01;
                changed = true;
            }
            at += RECORD_HEADER_LEN + len + HASH_LEN;
        }
        if changed {
            db.insert(key, lz4_flex::compress_prepend_size(&bytes)).unwrap();
            break;
        }
    }
    assert!(changed);
    db.flush().unwrap();
    drop(db);

    let out = premia_status(dir.path(), &["verify"]);
    assert_eq!(out.status.code(), Some(4));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("the first bad ledger sequence number is 9."), "{text}");
    let out = premia_status(dir.path(), &["verify", "--format", "json"]);
    assert_eq!(out.status.code(), Some(4));
    let report = last_json_line(&out);
    assert_eq!(report["intact"], false);
    assert_eq!(report["first_bad_seq"], 9);
    assert_eq!(report["problems"][0]["kind"], "chain");
}

/// Stored state is deterministic bytes: a snapshot written after a snapshot was loaded and the
/// log folded on, and two snapshots written by folding the whole log from nothing (`rebuild`),
/// are the same file. (Before, the fold state's hash maps had a per-process random seed.)
#[test]
fn a_snapshot_is_the_same_bytes_however_the_state_was_reached() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("ledger");
    let generated = premia(work.path(), &["generate", "--events", "20000", "--seed", "5", "--events-per-day", "400"]);
    let text = String::from_utf8(generated.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    for (name, part) in [("first.jsonl", first), ("second.jsonl", second)] {
        let path = work.path().join(name);
        std::fs::write(&path, part.join("\n")).unwrap();
        premia(&dir, &["ingest", path.to_str().unwrap()]);
    }
    let snapshot = dir.join("snapshot.bin");
    let folded_on = std::fs::read(&snapshot).unwrap();
    premia(&dir, &["rebuild"]);
    let rebuilt = std::fs::read(&snapshot).unwrap();
    premia(&dir, &["rebuild"]);
    let rebuilt_again = std::fs::read(&snapshot).unwrap();
    assert!(folded_on.len() > 100_000, "a snapshot of some size: {} bytes", folded_on.len());
    assert!(rebuilt == rebuilt_again, "two rebuilds of one log wrote different snapshots");
    assert!(folded_on == rebuilt, "a state loaded from a snapshot and folded on differs from one folded from nothing");
}
