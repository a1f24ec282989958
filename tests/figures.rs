//! `premia figures` and `premia plan suggest` on the worked month, with every figure worked out
//! by hand from tests/data/seed-month.jsonl (deal dates, payments, the refund, the close).

use std::path::Path;

use serde_json::{json, Value};

mod support;
use support::premia;

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/seed-month.jsonl");

fn figures(dir: &Path, period: &str) -> Value {
    serde_json::from_slice(&premia(dir, &["figures", "--period", period, "--format", "json"]).stdout).unwrap()
}

fn row(
    manager: &str,
    deals: (u64, &str, &str),
    clients: (u64, u64),
    received: (&str, &str),
    cancelled: u64,
    overdue: (u64, &str),
    achievement: Option<&str>,
) -> Value {
    json!({
        "manager_id": manager,
        "deals_won": deals.0, "deals_amount": deals.1, "average_deal_amount": deals.2,
        "distinct_clients": clients.0, "repeat_clients": clients.1,
        "money_received": received.0, "margin_received": received.1,
        "cancellations_by_fault": cancelled,
        "overdue_deals": overdue.0, "overdue_receivables": overdue.1,
        "plan_achievement": achievement,
    })
}

#[test]
fn the_worked_month_gives_the_figures_worked_out_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    premia(dir.path(), &["ingest", SEED]);
    let november = figures(dir.path(), "2026-11");
    assert_eq!(november["period"], "2026-11");
    assert_eq!(november["currency"], "RUB");
    let expected = json!([
        // D-101 (400 000, prepaid in full) and D-102 (250 000, cancelled on 12 Nov by M-1's fault).
        row("M-1", (2, "650000.00", "325000.00"), (2, 0), ("400000.00", "40000.00"), 1, (0, "0.00"), Some("0.4000")),
        // Both deals were created in October; both paid in November.
        row("M-2", (0, "0.00", "0.00"), (0, 0), ("600000.00", "60000.00"), 0, (0, "0.00"), Some("0.6000")),
        row("M-3", (1, "800000.00", "800000.00"), (1, 0), ("800000.00", "80000.00"), 0, (0, "0.00"), Some("0.8000")),
        // P-402 (dated 28 Nov) arrived after the close: booked in December, yet D-402 is paid as
        // of the end of November, so it is not overdue.
        row("M-4", (2, "1200000.00", "600000.00"), (2, 0), ("1000000.00", "100000.00"), 0, (0, "0.00"), Some("1.0000")),
        // 1 000 000 + 600 000 - refund 100 000; margin 250 000 + 60 000 - 60 000 x 100 000 / 600 000.
        row("M-5", (2, "1600000.00", "800000.00"), (2, 0), ("1500000.00", "300000.00"), 0, (0, "0.00"), Some("1.5000")),
    ]);
    assert_eq!(november["managers"], expected);

    // December holds only M-4's plan and the late P-402; D-402 was created in November.
    let december = figures(dir.path(), "2026-12");
    assert_eq!(
        december["managers"],
        json!([row("M-4", (0, "0.00", "0.00"), (0, 0), ("200000.00", "20000.00"), 0, (0, "0.00"), Some("0.4000"))])
    );
}

#[test]
fn overdue_deals_are_those_due_by_the_end_of_the_period_and_unpaid() {
    let dir = tempfile::tempdir().unwrap();
    // Up to evt-0012: M-2's two October deals (due 2 Nov) exist, neither is paid yet.
    let prefix: String = std::fs::read_to_string(SEED).unwrap().lines().take(12).map(|l| format!("{l}\n")).collect();
    let file = dir.path().join("prefix.jsonl");
    std::fs::write(&file, prefix).unwrap();
    let ledger = dir.path().join("ledger");
    premia(&ledger, &["ingest", file.to_str().unwrap()]);

    let october = figures(&ledger, "2026-10");
    // Won in October, not yet due at its end; no plan for October.
    assert_eq!(
        october["managers"],
        json!([row("M-2", (2, "600000.00", "300000.00"), (2, 0), ("0.00", "0.00"), 0, (0, "0.00"), None)])
    );
    let november = figures(&ledger, "2026-11");
    let m2 = november["managers"].as_array().unwrap().iter().find(|m| m["manager_id"] == "M-2").unwrap();
    assert_eq!((m2["overdue_deals"].as_u64(), m2["overdue_receivables"].as_str()), (Some(2), Some("600000.00")));
    // M-1's D-101 is paid (P-101) and D-102 is cancelled: nothing overdue.
    let m1 = november["managers"].as_array().unwrap().iter().find(|m| m["manager_id"] == "M-1").unwrap();
    assert_eq!(m1["overdue_deals"], 0);
}

#[test]
fn plan_suggestions_raise_each_actual_and_are_events_the_ledger_accepts() {
    let dir = tempfile::tempdir().unwrap();
    premia(dir.path(), &["ingest", SEED]);
    let out = premia(dir.path(), &["plan", "suggest", "--period", "2026-11", "--growth", "12.5%"]);
    let events: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let targets: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            assert_eq!(e["type"], "plan.assigned");
            assert_eq!(e["data"]["period"], "2026-12");
            (
                e["id"].as_str().unwrap().into(),
                e["data"]["manager_id"].as_str().unwrap().into(),
                e["data"]["target"].as_str().unwrap().into(),
            )
        })
        .collect();
    // November actuals 400 000, 600 000, 800 000, 1 000 000, 1 500 000, each x 1.125.
    let expected = [
        ("M-1", "450000.00"),
        ("M-2", "675000.00"),
        ("M-3", "900000.00"),
        ("M-4", "1125000.00"),
        ("M-5", "1687500.00"),
    ];
    assert_eq!(
        targets,
        expected
            .iter()
            .map(|(m, t)| (format!("plan-suggest-2026-12-{m}"), m.to_string(), t.to_string()))
            .collect::<Vec<_>>()
    );

    // They are valid events: a fresh ledger applies all five.
    let file = dir.path().join("plans.jsonl");
    std::fs::write(&file, events.iter().map(|e| format!("{e}\n")).collect::<String>()).unwrap();
    let fresh = dir.path().join("fresh");
    let counts = support::last_json_line(&premia(&fresh, &["ingest", file.to_str().unwrap(), "--format", "json"]));
    assert_eq!(counts, json!({"applied": 5, "duplicates": 0, "rejected": 0, "parked": 0}));

    // A growth outside 0-100 % is refused with a sentence.
    let refused = support::premia_status(dir.path(), &["plan", "suggest", "--period", "2026-11", "--growth", "150%"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("outside 0-100 %"));
}

#[test]
fn repeat_clients_and_the_average_deal_amount_rounded_half_away_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let deal = |id: &str, client: &str, amount: &str, created: &str| {
        format!(
            r#"{{"specversion": "1.0", "id": "evt-{id}", "source": "crm/acme", "type": "deal.created", "time": "{created}T09:00:00+03:00", "data": {{"deal_id": "{id}", "manager_id": "M-9", "client_id": "{client}", "amount": "{amount}", "margin": "1000.00", "currency": "RUB", "payment_terms": "prepayment", "due_date": "2027-01-29", "created_on": "{created}"}}}}"#
        ) + "\n"
    };
    let file = dir.path().join("deals.jsonl");
    std::fs::write(
        &file,
        [
            deal("D-1", "C-1", "70000.00", "2026-10-15"),
            deal("D-2", "C-1", "100000.00", "2026-11-03"),
            deal("D-3", "C-2", "50000.01", "2026-11-04"),
        ]
        .concat(),
    )
    .unwrap();
    let ledger = dir.path().join("ledger");
    premia(&ledger, &["ingest", file.to_str().unwrap()]);
    // C-1 bought in October too, so it is a repeat client; (100 000.00 + 50 000.01) / 2 =
    // 75 000.005, rounded half away from zero.
    assert_eq!(
        figures(&ledger, "2026-11")["managers"],
        json!([row("M-9", (2, "150000.01", "75000.01"), (2, 1), ("0.00", "0.00"), 0, (0, "0.00"), None)])
    );
}
