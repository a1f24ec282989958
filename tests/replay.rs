//! `premia replay` and `premia explain` through the real binary and real sled dirs: a replay
//! from the raw log equals the stored statements, an `--as-of` replay equals a ledger built
//! from the prefix of the input, and a what-if scheme moves exactly the entries it should.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;
use time::{Date, Duration, Month, Weekday};

mod support;
use support::{last_json_line, premia, premia_status};

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/seed-month.jsonl");

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

fn stats(out: &std::process::Output) -> Value {
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text.lines().rev().find(|l| l.starts_with('{')).expect("a --stats line on stderr");
    serde_json::from_str(line).expect("--stats prints JSON")
}

/// Every month from `first` to `last`, as YYYY-MM.
fn months(first: (i32, u8), last: (i32, u8)) -> Vec<String> {
    let mut out = Vec::new();
    let (mut y, mut m) = first;
    while (y, m) <= last {
        out.push(format!("{y}-{m:02}"));
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    out
}

fn generate(dir: &Path, events: u64, seed: u64, per_day: u64) -> String {
    let out = premia(
        dir,
        &[
            "generate",
            "--events",
            &events.to_string(),
            "--seed",
            &seed.to_string(),
            "--events-per-day",
            &per_day.to_string(),
        ],
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn replay_equals_the_statements_of_a_200k_event_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    let input = tmp.path().join("events.jsonl");
    std::fs::write(&input, generate(tmp.path(), 200_000, 7, 3000)).unwrap();
    let counts = last_json_line(&premia(&dir, &["ingest", input.to_str().unwrap(), "--format", "json"]));
    assert!(counts["applied"].as_u64().unwrap() > 150_000, "{counts}");

    // The synthetic CRM starts on 2026-01-01; late payments are dated back up to 20 days.
    let periods = months((2025, 12), (2026, 4));
    let replayed = premia(&dir, &["replay", "--from", "2025-12-01", "--to", "2026-04-30", "--format", "json"]);
    let replayed = json(&replayed);
    let replayed = replayed.as_array().unwrap();
    assert_eq!(replayed.len(), periods.len());
    let (mut closed, mut adjustments, mut clawbacks, mut entries) = (0, 0, 0, 0);
    for (period, replay) in periods.iter().zip(replayed) {
        let stored = json(&premia(&dir, &["statement", "--period", period, "--format", "json"]));
        assert_eq!(replay, &stored, "replay --period {period} differs from statement --period {period}");
        closed += usize::from(stored["status"] == "closed");
        for m in stored["managers"].as_array().unwrap() {
            for e in m["entries"].as_array().unwrap() {
                entries += 1;
                adjustments += usize::from(!e["adjustment_of"].is_null());
                clawbacks += usize::from(e["kind"] == "clawback");
            }
        }
    }
    // The stream has what the replay must get right: closes, late facts booked as prior-period
    // adjustments, and refunds.
    assert!(closed >= 3, "closed periods: {closed}");
    assert!(adjustments > 50, "adjustments: {adjustments}");
    assert!(clawbacks > 1000, "clawbacks: {clawbacks}");
    assert!(entries > 50_000, "entries: {entries}");

    // The index folds what a period depends on, not the log: December 2025 holds only a few
    // back-dated payments.
    let out = premia(&dir, &["replay", "--period", "2025-12", "--format", "json", "--stats"]);
    let s = stats(&out);
    assert!(s["records_folded"].as_u64().unwrap() * 20 < s["log_records"].as_u64().unwrap(), "{s}");
    // Folding every record gives the same statement.
    let full = premia(&dir, &["replay", "--period", "2025-12", "--format", "json", "--full", "--stats"]);
    assert_eq!(stats(&full)["records_folded"], s["log_records"]);
    assert_eq!(json(&full), json(&out));
    assert_eq!(json(&out), replayed[0]);

    // One manager: fewer records, the same figures as the statement of that manager. (An open
    // period: a closed one's seal digests every manager's entries, so its replay folds them all.)
    let (open, busy) = periods
        .iter()
        .zip(replayed)
        .rev()
        .find(|(_, r)| r["status"] == "open" && !r["managers"].as_array().unwrap().is_empty())
        .expect("an open period with bookings");
    let manager = busy["managers"][0]["manager_id"].as_str().unwrap();
    let one = premia(&dir, &["replay", "--period", open, "--manager", manager, "--format", "json", "--stats"]);
    let folded = stats(&one)["records_folded"].as_u64().unwrap();
    assert!(folded * 20 < s["log_records"].as_u64().unwrap(), "{folded}");
    let stored = json(&premia(&dir, &["statement", "--period", open, "--manager", manager, "--format", "json"]));
    assert_eq!(json(&one), stored);
    assert_eq!(stored["managers"].as_array().unwrap().len(), 1);
    // A closed period for one manager carries the period's seal, as the statement does.
    let one = json(&premia(&dir, &["replay", "--period", "2026-02", "--manager", "M-7", "--format", "json"]));
    let stored = json(&premia(&dir, &["statement", "--period", "2026-02", "--manager", "M-7", "--format", "json"]));
    assert!(stored["seal"].is_object(), "2026-02 is closed");
    assert_eq!(one, stored);
}

/// The number of log records an ingest of these lines added to an empty ledger: the scheme
/// record premia logs first, plus every line that was neither a duplicate nor refused before
/// the log (validation, conflict). Rule rejections and parked events are logged.
fn logged_records(dir: &Path, lines: usize, counts: &Value) -> u64 {
    let rejected = json(&premia(dir, &["rejected", "--format", "json"]));
    let refused =
        rejected.as_array().unwrap().iter().filter(|r| r["ref"].as_str().unwrap().starts_with("rej:")).count();
    1 + lines as u64 - counts["duplicates"].as_u64().unwrap() - refused as u64
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap()
}

#[test]
fn as_of_equals_a_ledger_built_from_the_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let text = generate(tmp.path(), 15_000, 11, 150);
    let lines: Vec<&str> = text.lines().collect();
    // Twelve cuts: spread over the stream, one right after each of the first two closes (the
    // statement of the closed month changes status there) and one right before a close.
    let closes: Vec<usize> =
        lines.iter().enumerate().filter(|(_, l)| l.contains("period.closed")).map(|(i, _)| i).collect();
    assert!(closes.len() >= 3, "the stream closes months");
    let mut cuts: BTreeSet<usize> = [500, 2_000, 3_700, 5_500, 7_200, 9_000, 11_000, 13_000, 14_500].into();
    cuts.extend([closes[0] + 1, closes[1] + 1, closes[2]]);
    let cuts: Vec<usize> = cuts.into_iter().collect();
    assert_eq!(cuts.len(), 12);

    // The full ledger, ingested part by part, noting the time between parts.
    let full = tmp.path().join("full");
    let mut times = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&lines.len())) {
        let part = tmp.path().join(format!("part-{start}.jsonl"));
        std::fs::write(&part, lines[start..cut].join("\n") + "\n").unwrap();
        premia(&full, &["ingest", part.to_str().unwrap()]);
        std::thread::sleep(std::time::Duration::from_millis(15));
        times.push(now_rfc3339());
        std::thread::sleep(std::time::Duration::from_millis(15));
        start = cut;
    }

    let periods = months((2025, 12), (2026, 4));
    for (i, &cut) in cuts.iter().enumerate() {
        let prefix = tmp.path().join(format!("prefix-{cut}"));
        let input = tmp.path().join(format!("prefix-{cut}.jsonl"));
        std::fs::write(&input, lines[..cut].join("\n") + "\n").unwrap();
        let counts = last_json_line(&premia(&prefix, &["ingest", input.to_str().unwrap(), "--format", "json"]));
        let seq = logged_records(&prefix, cut, &counts).to_string();
        let replay_args = |as_of: &str| {
            let args = ["replay", "--from", "2025-12-01", "--to", "2026-04-30", "--as-of", as_of, "--format", "json"];
            json(&premia(&full, &args))
        };
        let replayed = replay_args(&seq);
        for (period, replay) in periods.iter().zip(replayed.as_array().unwrap()) {
            let stored = json(&premia(&prefix, &["statement", "--period", period, "--format", "json"]));
            // The prefix ledger received the same events at other times, so its hash chain,
            // and with it a closed period's seal, differs (docs/AUDIT.md); everything else
            // must be equal, and the seal must be there exactly when the period is closed.
            assert_eq!(replay.get("seal").is_some(), stored.get("seal").is_some(), "cut {cut}, period {period}");
            assert_eq!(
                without_seal(replay),
                without_seal(&stored),
                "cut after line {cut} (seq {seq}), period {period}"
            );
        }
        // The same moment given as a time: the records that had arrived by then.
        if i % 4 == 1 {
            assert_eq!(replay_args(&times[i]), replayed, "--as-of {} (after line {cut})", times[i]);
        }
    }
    // Before the first record nothing is known; past the end is refused with the last seq.
    let out = premia_status(&full, &["replay", "--period", "2026-01", "--as-of", "99999999"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("past the end of the log"));
}

fn d(y: i32, m: u8, day: u8) -> Date {
    Date::from_calendar_date(y, Month::try_from(m).unwrap(), day).unwrap()
}

/// The 2026 working-day calendar of RULES.md section 7, written out by hand: weekends, 1-8
/// January, and the holidays (8 March, a Sunday, moves to Monday 9 March; 9 May, a Saturday,
/// to Monday 11 May).
fn is_working_day_2026(date: Date) -> bool {
    let off = [d(2026, 2, 23), d(2026, 3, 9), d(2026, 5, 1), d(2026, 5, 11), d(2026, 6, 12), d(2026, 11, 4)];
    let weekend = matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday);
    let new_year = date.month() == Month::January && date.day() <= 8;
    !(weekend || new_year || off.contains(&date))
}

fn working_days_late(due: Date, paid: Date) -> u32 {
    let mut n = 0;
    let mut day = due + Duration::days(1);
    while day <= paid {
        n += u32::from(is_working_day_2026(day));
        day += Duration::days(1);
    }
    n
}

fn round2(x: Decimal) -> Decimal {
    x.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn money(kopecks: i64) -> String {
    format!("{}.{:02}", kopecks / 100, kopecks % 100)
}

fn dec(kopecks: i64) -> Decimal {
    Decimal::new(kopecks, 2)
}

struct Paid {
    id: String,
    manager: String,
    margin: i64,
    amount: i64,
    paid: i64,
    late: u32,
    prepaid: bool,
    refund: Option<(String, i64)>,
}

#[test]
fn what_if_grace_8_moves_exactly_the_payments_9_or_10_working_days_late() {
    let mut events = Vec::new();
    let mut n = 0;
    let mut line = |t: &str, data: String| {
        n += 1;
        format!(r#"{{"specversion":"1.0","id":"w-{n}","source":"crm/test","type":"{t}","data":{data}}}"#)
    };
    for m in 0..5 {
        for month in 1..=12 {
            events.push(line(
                "plan.assigned",
                format!(r#"{{"manager_id":"M-{m}","period":"2026-{month:02}","target":"3000000.00"}}"#),
            ));
        }
    }
    let mut payments = Vec::new();
    let mut later = Vec::new();
    for i in 0..360i64 {
        // Due dates all through 2026 (past every holiday), paid from 3 days early to 24 late.
        let due = d(2026, 1, 9) + Duration::days(i * 23 % 330);
        let paid_on = due + Duration::days(i % 28 - 3);
        if paid_on.year() != 2026 {
            continue;
        }
        let prepayment = i % 3 == 0;
        let manager = format!("M-{}", i % 5);
        let amount = 10_000_000 + i * 37_100;
        let margin = amount * (8 + i % 25) / 100;
        events.push(line(
            "deal.created",
            format!(
                r#"{{"deal_id":"D-{i}","manager_id":"{manager}","client_id":"C-{i}","amount":"{}","margin":"{}","currency":"RUB","payment_terms":"{}","due_date":"{due}","created_on":"{}"}}"#,
                money(amount),
                money(margin),
                if prepayment { "prepayment" } else { "postpayment" },
                due - Duration::days(12)
            ),
        ));
        let paid = if i % 4 == 0 { amount / 2 } else { amount };
        events.push(line(
            "payment.received",
            format!(
                r#"{{"payment_id":"P-{i}","deal_id":"D-{i}","amount":"{}","currency":"RUB","paid_on":"{paid_on}"}}"#,
                money(paid)
            ),
        ));
        let refund = (i % 5 == 0).then(|| (format!("R-{i}"), paid / 4));
        if let Some((id, refunded)) = &refund {
            later.push(line(
                "payment.refunded",
                format!(
                    r#"{{"refund_id":"{id}","payment_id":"P-{i}","amount":"{}","currency":"RUB","refunded_on":"{}"}}"#,
                    money(*refunded),
                    paid_on + Duration::days(2)
                ),
            ));
        }
        if i % 17 == 0 {
            later.push(line(
                "deal.cancelled",
                format!(r#"{{"deal_id":"D-{i}","cancelled_on":"{}","fault":"manager"}}"#, paid_on + Duration::days(5)),
            ));
        }
        let late = working_days_late(due, paid_on);
        payments.push(Paid {
            id: format!("P-{i}"),
            manager,
            margin,
            amount,
            paid,
            late,
            prepaid: prepayment && paid_on <= due,
            refund,
        });
    }
    events.extend(later);
    for month in 1..=6 {
        events.push(line("period.closed", format!(r#"{{"period":"2026-{month:02}"}}"#)));
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    let input = tmp.path().join("events.jsonl");
    std::fs::write(&input, events.join("\n") + "\n").unwrap();
    let counts = last_json_line(&premia(&dir, &["ingest", input.to_str().unwrap(), "--format", "json"]));
    assert_eq!(counts["rejected"], 0, "{counts}");
    assert!(payments.iter().filter(|p| !p.prepaid && (p.late == 9 || p.late == 10)).count() >= 10);
    assert!(payments.iter().filter(|p| !p.prepaid && p.late == 8).count() >= 3);
    assert!(payments.iter().filter(|p| !p.prepaid && p.late == 11).count() >= 3);

    let rate = |p: &Paid, grace: u32| match (p.prepaid, p.late <= grace) {
        (true, _) => Decimal::new(10, 3),
        (false, true) => Decimal::new(8, 3),
        (false, false) => Decimal::new(5, 3),
    };
    let commission = |p: &Paid, grace: u32| round2(dec(p.margin) * dec(p.paid) * rate(p, grace) / dec(p.amount));
    let clawback =
        |p: &Paid, refunded: i64, grace: u32| -round2(dec(p.margin) * dec(refunded) * rate(p, grace) / dec(p.amount));

    // The log's own figures agree with this test's calendar and arithmetic.
    let range = ["--from", "2026-01-01", "--to", "2026-12-31", "--format", "json"];
    let actual = json(&premia(&dir, &[&["replay"][..], &range[..]].concat()));
    let by_id: BTreeMap<&str, &Paid> = payments.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut commissions = 0;
    for s in actual.as_array().unwrap() {
        for m in s["managers"].as_array().unwrap() {
            for e in m["entries"].as_array().unwrap().iter().filter(|e| e["kind"] == "commission") {
                let p = by_id[e["payment_id"].as_str().unwrap()];
                assert_eq!(e["working_days_late"], p.late, "{}", p.id);
                assert_eq!(e["amount"].as_str().unwrap(), commission(p, 10).to_string(), "{}", p.id);
                commissions += 1;
            }
        }
    }
    assert_eq!(commissions, payments.len());

    // What-if: grace 8 instead of 10.
    let scheme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../premia-core/src/default-scheme.toml"))
            .unwrap()
            .replace("grace_working_days = 10", "grace_working_days = 8");
    let scheme_file = tmp.path().join("grace8.toml");
    std::fs::write(&scheme_file, scheme).unwrap();
    let compare_args = [&["replay", "--scheme", scheme_file.to_str().unwrap(), "--compare"][..], &range[..]].concat();
    let compared = json(&premia(&dir, &compare_args));

    // What should move: every payment 9 or 10 working days late that is not prepaid, and the
    // refunds of those payments (they claw back at the rate of the payment).
    let mut expected: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    let mut expected_difference: BTreeMap<String, Decimal> = BTreeMap::new();
    for p in payments.iter().filter(|p| !p.prepaid && (p.late == 9 || p.late == 10)) {
        let (before, after) = (commission(p, 10), commission(p, 8));
        assert_eq!(before, round2(dec(p.margin) * dec(p.paid) * Decimal::new(8, 3) / dec(p.amount)));
        expected.insert(format!("commission {}", p.id), (before, after));
        *expected_difference.entry(p.manager.clone()).or_default() += after - before;
        if let Some((id, refunded)) = &p.refund {
            let (before, after) = (clawback(p, *refunded, 10), clawback(p, *refunded, 8));
            expected.insert(format!("clawback {id}"), (before, after));
            *expected_difference.entry(p.manager.clone()).or_default() += after - before;
        }
    }
    let mut moved: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    let mut difference: BTreeMap<String, Decimal> = BTreeMap::new();
    for c in compared.as_array().unwrap() {
        for m in c["managers"].as_array().unwrap() {
            let diff: Decimal = m["difference"]["total"].as_str().unwrap().parse().unwrap();
            *difference.entry(m["manager_id"].as_str().unwrap().to_string()).or_default() += diff;
            for key in ["commission", "clawback", "fines", "plan_bonus"] {
                if key != "commission" && key != "clawback" {
                    assert_eq!(m["difference"][key], "0.00", "{key} must not move");
                }
            }
        }
        for m in c["changes"].as_array().unwrap() {
            let key = |e: &Value| {
                let id = e["refund_id"].as_str().or(e["payment_id"].as_str()).unwrap_or_default();
                format!("{} {id}", e["kind"].as_str().unwrap())
            };
            let amount = |e: &Value| e["amount"].as_str().unwrap().parse::<Decimal>().unwrap();
            let removed: BTreeMap<String, Decimal> =
                m["entries_removed"].as_array().unwrap().iter().map(|e| (key(e), amount(e))).collect();
            let added: BTreeMap<String, Decimal> =
                m["entries_added"].as_array().unwrap().iter().map(|e| (key(e), amount(e))).collect();
            assert_eq!(
                removed.keys().collect::<Vec<_>>(),
                added.keys().collect::<Vec<_>>(),
                "entries replaced one for one"
            );
            for (k, before) in removed {
                moved.insert(k.clone(), (before, added[&k]));
            }
        }
    }
    assert_eq!(moved, expected);
    difference.retain(|_, d| !d.is_zero());
    expected_difference.retain(|_, d| !d.is_zero());
    assert_eq!(difference, expected_difference);
    // Nothing was written: the stored statements are those of the log's scheme.
    let stored = json(&premia(&dir, &["statement", "--period", "2026-07", "--format", "json"]));
    assert_eq!(stored, actual[6]);
}

#[test]
fn explain_diff_and_what_if_on_the_seed_month() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    premia(&dir, &["ingest", SEED]);

    // P-201: margin 30 000 of 300 000, paid in full on 17 November, due 2 November: 10 working
    // days late across the 4 November holiday, still on time (grace 10) at 0.8 %.
    let x = json(&premia(&dir, &["explain", "--payment", "P-201", "--format", "json"]));
    let entries = x["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(
        e["formula"],
        "margin 30 000.00 x paid 300 000.00 / amount 300 000.00 x rate 0.008 (on time: 10 working days after due date 2026-11-02, grace 10) = 240.00"
    );
    assert_eq!(e["scheme"]["name"], "default");
    assert_eq!(e["scheme"]["seq"], 1);
    assert_eq!(e["scheme"]["event"]["type"], "scheme.activated");
    let seed = std::fs::read_to_string(SEED).unwrap();
    // The events as the CRM sent them, found by type and id field.
    let line_of = |event_type: &str, field: &str, id: &str| -> Value {
        seed.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["type"] == event_type && v["data"][field] == id)
            .unwrap()
    };
    let payment_line = line_of("payment.received", "payment_id", "P-201");
    let deal_line = line_of("deal.created", "deal_id", "D-201");
    let events = e["events"].as_array().unwrap();
    let role = |r: &str| events.iter().find(|v| v["role"] == r).unwrap().clone();
    assert_eq!(role("payment")["id"], payment_line["id"]);
    assert_eq!(role("deal")["id"], deal_line["id"]);
    assert_eq!(role("payment")["seq"], e["entry"]["event"]["seq"]);
    assert!(role("deal")["seq"].as_u64() < role("payment")["seq"].as_u64());

    // The same entry by the seq its statement shows.
    let statement = json(&premia(&dir, &["statement", "--period", "2026-11", "--format", "json"]));
    let seq = role("payment")["seq"].to_string();
    let by_seq = json(&premia(&dir, &["explain", &seq, "--format", "json"]));
    assert_eq!(by_seq["entries"][0]["formula"], e["formula"]);

    // A refund: 0.8 % of 60 000 x 100 000 / 600 000 = 80.00 taken back.
    let x = json(&premia(&dir, &["explain", "--deal", "D-502", "--format", "json"]));
    let claw = x["entries"].as_array().unwrap().iter().find(|e| e["entry"]["kind"] == "clawback").unwrap().clone();
    assert_eq!(
        claw["formula"],
        "-(margin 60 000.00 x refunded 100 000.00 / amount 600 000.00 x rate 0.008 (the rate payment P-502 was booked at)) = -80.00"
    );

    // The close: M-2 reached 600 000 of 1 000 000, tier 0.85 of 20 000.
    let close_seq = statement["managers"][1]["entries"].as_array().unwrap().last().unwrap()["event"]["seq"].to_string();
    let x = json(&premia(&dir, &["explain", &close_seq, "--manager", "M-2", "--format", "json"]));
    assert_eq!(
        x["entries"][0]["formula"],
        "bonus base 20 000.00 x coefficient 0.85 (achievement 600 000.00 / target 1 000 000.00 = 0.6000) = 17 000.00"
    );

    // CSV and text come from the same renderers: equal, but for the line naming the replay.
    for p in ["2026-11", "2026-12"] {
        let csv = |cmd: &str| premia(&dir, &[cmd, "--period", p, "--format", "csv"]).stdout;
        assert_eq!(csv("replay"), csv("statement"), "{p} csv");
        let text = |cmd: &str| String::from_utf8(premia(&dir, &[cmd, "--period", p]).stdout).unwrap();
        let replayed = text("replay");
        let (first, rest) = replayed.split_once("\n\n").unwrap();
        assert!(first.starts_with("Replayed from the raw log up to seq 28"), "{first}");
        assert_eq!(rest, text("statement"), "{p} text");
    }

    // Text statements carry each entry's one-line reason.
    let text = String::from_utf8(premia(&dir, &["statement", "--period", "2026-11"]).stdout).unwrap();
    for m in statement["managers"].as_array().unwrap() {
        for e in m["entries"].as_array().unwrap() {
            assert!(text.contains(e["explanation"].as_str().unwrap()), "{}", e["explanation"]);
        }
    }

    // November just before its close, and after: the plan bonuses were added, and P-402 (dated
    // 28 November, arriving after the close) was booked in December.
    let close: u64 = close_seq.parse().unwrap();
    let before = (close - 1).to_string();
    let diff = json(&premia(&dir, &["replay", "--period", "2026-11", "--diff-as-of", &before, "--format", "json"]));
    assert_eq!(diff["status_before"], "open");
    assert_eq!(diff["status_after"], "closed");
    let bonus = |id: &str| {
        let m = diff["managers"].as_array().unwrap().iter().find(|m| m["manager_id"] == id).unwrap().clone();
        m["change"]["plan_bonus"].as_str().unwrap().to_string()
    };
    assert_eq!(bonus("M-2"), "17000.00");
    assert_eq!(bonus("M-5"), "30000.00");
    let elsewhere = diff["booked_elsewhere"].as_array().unwrap();
    assert_eq!(elsewhere.len(), 1);
    assert_eq!(elsewhere[0]["payment_id"], "P-402");
    assert_eq!(elsewhere[0]["period"], "2026-12");
    assert_eq!(elsewhere[0]["amount"], "160.00");
    let diff = json(&premia(&dir, &["replay", "--period", "2026-11", "--diff-as-of", &close_seq, "--format", "json"]));
    assert!(diff["managers"].as_array().unwrap().is_empty(), "nothing changes in a closed period");

    // What-if grace 8: only P-201 (10 working days late) moves, 240.00 -> 150.00.
    let scheme = tmp.path().join("grace8.toml");
    std::fs::write(
        &scheme,
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../premia-core/src/default-scheme.toml"))
            .unwrap()
            .replace("grace_working_days = 10", "grace_working_days = 8"),
    )
    .unwrap();
    let c = json(&premia(
        &dir,
        &["replay", "--period", "2026-11", "--scheme", scheme.to_str().unwrap(), "--compare", "--format", "json"],
    ));
    let changes = c["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["manager_id"], "M-2");
    assert_eq!(changes[0]["entries_removed"][0]["amount"], "240.00");
    assert_eq!(changes[0]["entries_added"][0]["amount"], "150.00");
    assert_eq!(changes[0]["entries_added"][0]["payment_id"], "P-201");
}

/// Orderings where a replay of one period must fold records dated elsewhere: a payment that
/// waits for its deal while its month is closed, a payment id reused on a later deal, a scheme
/// activated between two ingests. Every period, every manager and every moment of the log is
/// checked against the stored statements and against folding the whole log.
#[test]
fn replay_follows_parking_closes_reused_ids_and_scheme_changes() {
    let events = [
        r#"{"type":"plan.assigned","data":{"manager_id":"M-2","period":"2026-05","target":"100000.00"}}"#,
        // P-1, dated in January, arrives before its deal; January is closed before D-1 arrives,
        // so P-1 is booked in February as an adjustment when D-1 releases it.
        r#"{"type":"payment.received","data":{"payment_id":"P-1","deal_id":"D-1","amount":"1000.00","currency":"RUB","paid_on":"2026-01-20"}}"#,
        r#"{"type":"period.closed","data":{"period":"2026-01"}}"#,
        r#"{"type":"deal.created","data":{"deal_id":"D-1","manager_id":"M-1","client_id":"C-1","amount":"1000.00","margin":"500.00","currency":"RUB","payment_terms":"postpayment","due_date":"2026-01-15","created_on":"2026-01-10"}}"#,
        // P-2 is used on D-2 in January and again on D-3 in May: the second use is rejected,
        // which a replay of May sees only if it folds January's payment too.
        r#"{"type":"deal.created","data":{"deal_id":"D-2","manager_id":"M-1","client_id":"C-1","amount":"2000.00","margin":"200.00","currency":"RUB","payment_terms":"prepayment","due_date":"2026-01-30","created_on":"2026-01-12"}}"#,
        r#"{"type":"payment.received","data":{"payment_id":"P-2","deal_id":"D-2","amount":"2000.00","currency":"RUB","paid_on":"2026-01-28"}}"#,
        r#"{"type":"deal.created","data":{"deal_id":"D-3","manager_id":"M-2","client_id":"C-2","amount":"5000.00","margin":"1000.00","currency":"RUB","payment_terms":"postpayment","due_date":"2026-05-20","created_on":"2026-05-02"}}"#,
        r#"{"type":"payment.received","data":{"payment_id":"P-2","deal_id":"D-3","amount":"5000.00","currency":"RUB","paid_on":"2026-05-21"}}"#,
        r#"{"type":"payment.received","data":{"payment_id":"P-3","deal_id":"D-3","amount":"2500.00","currency":"RUB","paid_on":"2026-05-22"}}"#,
        // A refund of P-3 dated in May that waits for nothing, and a late notice.
        r#"{"type":"payment.refunded","data":{"refund_id":"R-1","payment_id":"P-3","amount":"500.00","currency":"RUB","refunded_on":"2026-06-02"}}"#,
        r#"{"type":"payment.late","data":{"deal_id":"D-3","as_of":"2026-06-01","days_overdue":3}}"#,
    ];
    let later = [
        // After the scheme change: the on-time rate is 0.9 %.
        r#"{"type":"payment.received","data":{"payment_id":"P-4","deal_id":"D-3","amount":"2500.00","currency":"RUB","paid_on":"2026-06-03"}}"#,
        r#"{"type":"deal.cancelled","data":{"deal_id":"D-2","cancelled_on":"2026-06-05","fault":"manager"}}"#,
        r#"{"type":"period.closed","data":{"period":"2026-05"}}"#,
    ];
    let envelope = |i: usize, e: &str| format!(r#"{{"specversion":"1.0","id":"t-{i}","source":"crm/test",{}"#, &e[1..]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    let first = tmp.path().join("first.jsonl");
    let second = tmp.path().join("second.jsonl");
    std::fs::write(&first, events.iter().enumerate().map(|(i, e)| envelope(i, e) + "\n").collect::<String>()).unwrap();
    std::fs::write(&second, later.iter().enumerate().map(|(i, e)| envelope(100 + i, e) + "\n").collect::<String>())
        .unwrap();
    premia(&dir, &["ingest", first.to_str().unwrap()]);
    let scheme = tmp.path().join("rate9.toml");
    std::fs::write(
        &scheme,
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../premia-core/src/default-scheme.toml"))
            .unwrap()
            .replace("on_time_rate = \"0.008\"", "on_time_rate = \"0.009\"")
            .replace("name = \"default\"", "name = \"rate9\""),
    )
    .unwrap();
    premia(&dir, &["scheme", "activate", scheme.to_str().unwrap()]);
    premia(&dir, &["ingest", second.to_str().unwrap()]);

    let periods = months((2026, 1), (2026, 7));
    let statements: Vec<Value> =
        periods.iter().map(|p| json(&premia(&dir, &["statement", "--period", p, "--format", "json"]))).collect();
    // The cases happened as described.
    let feb = &statements[1]["managers"][0]["entries"][0];
    assert_eq!((feb["payment_id"].as_str(), feb["adjustment_of"].as_str()), (Some("P-1"), Some("2026-01")));
    let may = &statements[4]["managers"][0];
    assert_eq!(may["manager_id"], "M-2");
    assert_eq!(may["commission"], "4.00", "P-3 only (1 000 x 2 500 / 5 000 x 0.008); the reused P-2 is rejected");
    let june = &statements[5]["managers"].as_array().unwrap();
    assert!(june.iter().any(|m| m["entries"].as_array().unwrap().iter().any(|e| e["rate"] == "0.009")));

    let range = ["--from", "2026-01-01", "--to", "2026-07-31", "--format", "json"];
    let replayed = json(&premia(&dir, &[&["replay"][..], &range[..]].concat()));
    assert_eq!(replayed.as_array().unwrap(), &statements);
    for manager in ["M-1", "M-2"] {
        for (p, stored) in periods.iter().zip(&statements) {
            let one = json(&premia(&dir, &["replay", "--period", p, "--manager", manager, "--format", "json"]));
            let mut want = stored.clone();
            want["managers"].as_array_mut().unwrap().retain(|m| m["manager_id"] == manager);
            assert_eq!(one, want, "{p} {manager}");
        }
    }
    // Every moment: the indexed replay equals folding every record up to it.
    let last = events.len() + later.len() + 2; // the scheme records premia logged
    for seq in 1..=last {
        let seq = seq.to_string();
        let indexed = json(&premia(&dir, &[&["replay", "--as-of", &seq][..], &range[..]].concat()));
        let full = json(&premia(&dir, &[&["replay", "--full", "--as-of", &seq][..], &range[..]].concat()));
        assert_eq!(indexed, full, "as of seq {seq}");
    }
}

/// A statement without its seal, for comparing ledgers whose chains differ.
fn without_seal(statement: &Value) -> Value {
    let mut statement = statement.clone();
    if let Some(map) = statement.as_object_mut() {
        map.remove("seal");
    }
    statement
}
