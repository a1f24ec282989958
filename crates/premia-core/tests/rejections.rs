//! RULES.md section 10: every rejection rule yields its reason code, with a sentence that says
//! what is wrong. Expected codes come from RULES.md and EVENTS.md, not from the code's output.
//! `every_reason_is_exercised` fails when a `Reason` is added without a case here.

use std::collections::HashSet;

use premia_core::fold::{Admitted, Folded};
use premia_core::reject::Stage;
use premia_core::{Admission, LedgerState, Outcome, Reason, Rejection, Scheme};
use serde_json::{json, Value};

const PUBLIC_TYPES: [&str; 7] = [
    "deal.created",
    "payment.received",
    "payment.late",
    "deal.cancelled",
    "payment.refunded",
    "plan.assigned",
    "period.closed",
];

/// A valid `data` per type, holding the required fields only (the optional ones are tested apart).
fn example(ty: &str) -> Value {
    match ty {
        "deal.created" => json!({"deal_id": "D-1", "manager_id": "M-7", "client_id": "C-55", "amount": "1000000.00",
            "margin": "100000.00", "currency": "RUB", "payment_terms": "prepayment", "due_date": "2026-11-10", "created_on": "2026-11-02"}),
        "payment.received" => {
            json!({"payment_id": "P-1", "deal_id": "D-1", "amount": "1000.00", "currency": "RUB", "paid_on": "2026-11-05"})
        }
        "payment.late" => json!({"deal_id": "D-1", "as_of": "2026-11-20"}),
        "deal.cancelled" => json!({"deal_id": "D-1", "cancelled_on": "2026-11-12", "fault": "client"}),
        "payment.refunded" => {
            json!({"refund_id": "R-1", "payment_id": "P-1", "amount": "100.00", "currency": "RUB", "refunded_on": "2026-11-15"})
        }
        "plan.assigned" => json!({"manager_id": "M-7", "period": "2026-11", "target": "500000.00"}),
        "period.closed" => json!({"period": "2026-10"}),
        other => panic!("no example for {other}"),
    }
}

/// The example of `ty` with some fields replaced (or added).
fn data(ty: &str, changes: &[(&str, Value)]) -> Value {
    let mut d = example(ty);
    for (key, value) in changes {
        d[*key] = value.clone();
    }
    d
}

fn envelope(ty: &str, data: Value) -> Value {
    json!({"specversion": "1.0", "id": "evt-1", "source": "crm/test", "type": ty, "time": "2026-11-02T09:15:00+03:00", "data": data})
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("a serde_json::Value always serializes")
}

/// A `ty` event whose data is the example with `key` set to `value`.
fn with(ty: &str, key: &str, value: Value) -> Vec<u8> {
    bytes(&envelope(ty, data(ty, &[(key, value)])))
}

/// A deal.created event whose envelope member `key` is replaced, or removed with `None`.
fn env_with(key: &str, value: Option<Value>) -> Vec<u8> {
    let mut e = envelope("deal.created", example("deal.created"));
    let map = e.as_object_mut().expect("an envelope is an object");
    match value {
        Some(v) => map.insert(key.to_owned(), v),
        None => map.remove(key),
    };
    bytes(&e)
}

/// A JSON number written exactly as `text` (serde_json keeps it with `arbitrary_precision`).
fn num(text: &str) -> Value {
    Value::Number(text.parse().expect("a valid JSON number literal"))
}

struct Case {
    name: String,
    raw: Vec<u8>,
    admission: Admission,
    reason: Reason,
    /// Text the message must contain, usually the offending field.
    mentions: Option<String>,
}

fn case(name: impl Into<String>, raw: Vec<u8>, reason: Reason) -> Case {
    Case { name: name.into(), raw, admission: Admission::Publisher, reason, mentions: None }
}

impl Case {
    fn mentions(self, text: impl Into<String>) -> Case {
        Case { mentions: Some(text.into()), ..self }
    }
    fn by_operator(self) -> Case {
        Case { admission: Admission::Operator, ..self }
    }
}

fn describe(a: &Admitted) -> String {
    match a {
        Admitted::Rejected(r) => format!("rejected {r}"),
        Admitted::Duplicate => "a duplicate".into(),
        Admitted::Logged { folded, .. } => {
            format!("logged with outcomes {:?}", folded.iter().map(|f| &f.outcome).collect::<Vec<_>>())
        }
    }
}

/// Offers each case twice to a fresh ledger: validation rejects it every time it arrives and
/// logs nothing. Collects every failure before failing, so one run reports them all.
fn run(cases: &[Case], covered: &mut HashSet<Reason>) {
    let mut failures = Vec::new();
    for c in cases {
        let mut state = LedgerState::new();
        for attempt in 1..=2 {
            match state.admit(&c.raw, c.admission) {
                Admitted::Rejected(r) if r.reason == c.reason => {
                    if r.message.trim().is_empty() {
                        failures.push(format!("{}: empty message", c.name));
                    }
                    if let Some(m) = &c.mentions {
                        if !r.message.contains(m.as_str()) {
                            failures.push(format!("{}: message {:?} does not mention {m:?}", c.name, r.message));
                        }
                    }
                    covered.insert(r.reason);
                }
                other => failures.push(format!(
                    "{} (attempt {attempt}): expected {}, got {}",
                    c.name,
                    c.reason.code(),
                    describe(&other)
                )),
            }
        }
        if state.next_seq() != 1 {
            failures.push(format!("{}: a line rejected by validation was logged", c.name));
        }
    }
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

/// The line passes validation: it is logged and nothing in its fold is rejected.
fn accepted(name: &str, raw: &[u8], admission: Admission) {
    let mut state = LedgerState::new();
    match state.admit(raw, admission) {
        Admitted::Logged { folded, .. } => {
            assert!(!folded.iter().any(|f| matches!(f.outcome, Outcome::Rejected(_))), "{name}: {folded:?}")
        }
        other => panic!("{name}: expected it accepted, got {}", describe(&other)),
    }
}

fn structural_cases() -> Vec<Case> {
    let good =
        String::from_utf8(bytes(&envelope("deal.created", example("deal.created")))).expect("serde_json writes UTF-8");
    let mut bad_utf8 = good.clone().into_bytes();
    let at = bad_utf8.windows(3).position(|w| w == b"M-7").expect("the example names manager M-7");
    bad_utf8[at + 1] = 0xff;
    let nested = |arrays: usize| {
        let d = data("deal.created", &[("x", json!(null))]);
        let text = String::from_utf8(bytes(&envelope("deal.created", d))).expect("UTF-8");
        text.replace("\"x\":null", &format!("\"x\":{}{}", "[".repeat(arrays), "]".repeat(arrays)))
    };
    // The top object is level 1, data level 2: 63 arrays inside data reach level 65.
    accepted("nesting of exactly 64 levels", nested(62).as_bytes(), Admission::Publisher);
    let huge = bytes(&envelope("deal.created", data("deal.created", &[("pad", json!("a".repeat(1 << 20)))])));
    vec![
        case("truncated JSON", good.as_bytes()[..good.len() - 5].to_vec(), Reason::InvalidJson),
        case("two objects on one line", format!("{good}{good}").into_bytes(), Reason::InvalidJson),
        case("an array", b"[1,2]".to_vec(), Reason::NotAnObject),
        case("a string", b"\"deal.created\"".to_vec(), Reason::NotAnObject),
        case("null", b"null".to_vec(), Reason::NotAnObject),
        case(
            "envelope key twice",
            good.replacen("\"id\":\"evt-1\"", "\"id\":\"evt-1\",\"id\":\"evt-2\"", 1).into_bytes(),
            Reason::DuplicateKey,
        )
        .mentions("id"),
        case(
            "data key twice",
            good.replacen("\"deal_id\":\"D-1\"", "\"deal_id\":\"D-1\",\"deal_id\":\"D-1\"", 1).into_bytes(),
            Reason::DuplicateKey,
        )
        .mentions("deal_id"),
        case("nesting 65 deep", nested(63).into_bytes(), Reason::NestingTooDeep),
        case("invalid UTF-8", bad_utf8, Reason::InvalidUtf8),
        case("a line over 1 MiB", huge, Reason::LineTooLong),
    ]
}

fn envelope_cases() -> Vec<Case> {
    let long = "x".repeat(257);
    accepted(
        "id and source of 256 characters",
        &bytes(&json!({"specversion": "1.0", "id": "я".repeat(256),
        "source": "s".repeat(256), "type": "deal.created", "data": example("deal.created")})),
        Admission::Publisher,
    );
    accepted("no time at all", &env_with("time", None), Admission::Publisher);
    let scheme = Scheme::default_scheme().to_json();
    let mut bad_scheme = scheme.clone();
    bad_scheme["currency"] = json!("rubles");
    let activation = |s: Value| {
        bytes(
            &json!({"specversion": "1.0", "id": "s-1", "source": "premia/admin", "type": "scheme.activated", "data": s}),
        )
    };
    accepted("a valid scheme from the operator", &activation(scheme.clone()), Admission::Operator);
    vec![
        case("specversion missing", env_with("specversion", None), Reason::InvalidSpecversion).mentions("specversion"),
        case("specversion 1.1", env_with("specversion", Some(json!("1.1"))), Reason::InvalidSpecversion),
        case("specversion the number 1.0", env_with("specversion", Some(num("1.0"))), Reason::InvalidSpecversion),
        case("id empty", env_with("id", Some(json!(""))), Reason::InvalidId).mentions("\"id\""),
        case("id of 257 characters", env_with("id", Some(json!(long))), Reason::InvalidId),
        case("id a number", env_with("id", Some(json!(5))), Reason::InvalidId),
        case("id missing", env_with("id", None), Reason::InvalidId),
        case("source empty", env_with("source", Some(json!(""))), Reason::InvalidSource).mentions("source"),
        case("source of 257 characters", env_with("source", Some(json!(long))), Reason::InvalidSource),
        case("source an object", env_with("source", Some(json!({"name": "crm"}))), Reason::InvalidSource),
        case("source missing", env_with("source", None), Reason::InvalidSource),
        case("unknown type", env_with("type", Some(json!("deal.updated"))), Reason::UnknownType)
            .mentions("deal.updated"),
        case("type missing", env_with("type", None), Reason::UnknownType),
        case("type a number", env_with("type", Some(json!(1))), Reason::UnknownType),
        case("scheme.activated from a publisher", activation(scheme), Reason::TypeNotAccepted),
        case("time yesterday", env_with("time", Some(json!("yesterday"))), Reason::InvalidTime).mentions("time"),
        case("time a number", env_with("time", Some(json!(1_793_000_000))), Reason::InvalidTime),
        case("data missing", env_with("data", None), Reason::InvalidData).mentions("data"),
        case("data an array", env_with("data", Some(json!([example("deal.created")]))), Reason::InvalidData),
        case("data a string", env_with("data", Some(json!("D-1"))), Reason::InvalidData),
        case("an invalid scheme from the operator", activation(bad_scheme), Reason::InvalidScheme)
            .by_operator()
            .mentions("currency"),
    ]
}

/// Every required field of every public type, missing and then null.
fn missing_field_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for ty in PUBLIC_TYPES {
        let full = example(ty);
        for key in full.as_object().expect("examples are objects").keys() {
            let mut without = full.clone();
            without.as_object_mut().expect("object").remove(key);
            cases.push(
                case(format!("{ty} without {key}"), bytes(&envelope(ty, without)), Reason::MissingField)
                    .mentions(format!("data.{key}")),
            );
            cases.push(
                case(format!("{ty} with {key} null"), with(ty, key, Value::Null), Reason::MissingField)
                    .mentions(format!("data.{key}")),
            );
        }
    }
    assert_eq!(cases.len(), 2 * (9 + 5 + 2 + 3 + 5 + 3 + 1));
    cases
}

fn field_cases() -> Vec<Case> {
    // Optional fields: absent or null is fine.
    for (ty, key) in [("payment.late", "days_overdue"), ("deal.cancelled", "reason"), ("plan.assigned", "bonus_base")] {
        accepted(&format!("{ty} with {key} null"), &with(ty, key, Value::Null), Admission::Publisher);
    }
    accepted("days_overdue 3", &with("payment.late", "days_overdue", json!(3)), Admission::Publisher);
    let long = "i".repeat(257);
    vec![
        case("amount true", with("deal.created", "amount", json!(true)), Reason::WrongType).mentions("data.amount"),
        case("payment amount an array", with("payment.received", "amount", json!(["1.00"])), Reason::WrongType)
            .mentions("data.amount"),
        case("deal_id 5", with("payment.received", "deal_id", json!(5)), Reason::WrongType).mentions("data.deal_id"),
        case("days_overdue \"3\"", with("payment.late", "days_overdue", json!("3")), Reason::WrongType)
            .mentions("data.days_overdue"),
        case("days_overdue -1", with("payment.late", "days_overdue", json!(-1)), Reason::WrongType)
            .mentions("data.days_overdue"),
        case("reason 5", with("deal.cancelled", "reason", json!(5)), Reason::WrongType).mentions("data.reason"),
        case("due_date a number", with("deal.created", "due_date", json!(20261110)), Reason::WrongType),
        case("deal_id empty", with("deal.created", "deal_id", json!("")), Reason::InvalidIdField)
            .mentions("data.deal_id"),
        case("manager_id empty", with("plan.assigned", "manager_id", json!("")), Reason::InvalidIdField),
        case(
            "payment_id of 257 characters",
            with("payment.refunded", "payment_id", json!(long)),
            Reason::InvalidIdField,
        ),
        case("refund_id empty", with("payment.refunded", "refund_id", json!("")), Reason::InvalidIdField),
        case("due_date 2026-02-30", with("deal.created", "due_date", json!("2026-02-30")), Reason::InvalidDate)
            .mentions("data.due_date"),
        case("paid_on 2026-11-4", with("payment.received", "paid_on", json!("2026-11-4")), Reason::InvalidDate)
            .mentions("data.paid_on"),
        case("as_of 2026/11/20", with("payment.late", "as_of", json!("2026/11/20")), Reason::InvalidDate),
        case("plan period 2026-13", with("plan.assigned", "period", json!("2026-13")), Reason::InvalidPeriod)
            .mentions("data.period"),
        case("close period 2026-13", with("period.closed", "period", json!("2026-13")), Reason::InvalidPeriod),
        case("close period 2026-00", with("period.closed", "period", json!("2026-00")), Reason::InvalidPeriod),
        case("close period 2026-1", with("period.closed", "period", json!("2026-1")), Reason::InvalidPeriod),
        case("currency USD", with("deal.created", "currency", json!("USD")), Reason::CurrencyMismatch)
            .mentions("data.currency"),
        case("payment in USD", with("payment.received", "currency", json!("USD")), Reason::CurrencyMismatch),
        case("refund in USD", with("payment.refunded", "currency", json!("USD")), Reason::CurrencyMismatch),
        case("payment_terms credit", with("deal.created", "payment_terms", json!("credit")), Reason::InvalidValue)
            .mentions("data.payment_terms"),
        case("fault boss", with("deal.cancelled", "fault", json!("boss")), Reason::InvalidValue).mentions("data.fault"),
    ]
}

fn amount_cases() -> Vec<Case> {
    let forty = "1234567890123456789012345678901234567890";
    accepted("margin 0", &with("deal.created", "margin", json!("0")), Admission::Publisher);
    accepted("margin equal to amount", &with("deal.created", "margin", json!("1000000.00")), Admission::Publisher);
    accepted("amount at the cap", &with("deal.created", "amount", json!("10000000000.00")), Admission::Publisher);
    accepted("amount as a JSON number", &with("deal.created", "amount", num("1000000.5")), Admission::Publisher);
    accepted("bonus_base 0", &with("plan.assigned", "bonus_base", json!("0")), Admission::Publisher);
    let deal_amount = |v: Value| with("deal.created", "amount", v);
    vec![
        case("amount 1e3", deal_amount(json!("1e3")), Reason::InvalidAmount).mentions("data.amount"),
        case("amount the number 1e3", deal_amount(num("1e3")), Reason::InvalidAmount),
        case("amount 1 000", deal_amount(json!("1 000")), Reason::InvalidAmount),
        case("amount 12.345", deal_amount(json!("12.345")), Reason::InvalidAmount).mentions("data.amount"),
        case("amount the number 12.345", deal_amount(num("12.345")), Reason::InvalidAmount),
        // Plain notation has no sign (EVENTS.md), so a negative amount is not plain: invalid_amount.
        case("payment amount -5", with("payment.received", "amount", json!("-5")), Reason::InvalidAmount)
            .mentions("data.amount"),
        case("margin -5", with("deal.created", "margin", json!("-5")), Reason::InvalidAmount).mentions("data.margin"),
        case("bonus_base -1", with("plan.assigned", "bonus_base", json!("-1")), Reason::InvalidAmount)
            .mentions("data.bonus_base"),
        case("amount 0", deal_amount(json!("0")), Reason::AmountOutOfRange).mentions("data.amount"),
        case("payment amount 0.00", with("payment.received", "amount", json!("0.00")), Reason::AmountOutOfRange),
        case("refund amount 0", with("payment.refunded", "amount", num("0")), Reason::AmountOutOfRange),
        case("target 0", with("plan.assigned", "target", json!("0")), Reason::AmountOutOfRange).mentions("data.target"),
        case("amount of 40 digits as a string", deal_amount(json!(forty)), Reason::AmountOutOfRange)
            .mentions("data.amount"),
        case("amount of 40 digits as a number", deal_amount(num(forty)), Reason::AmountOutOfRange),
        case("amount 10000000000.01", deal_amount(json!("10000000000.01")), Reason::AmountOutOfRange),
        case("margin above amount", with("deal.created", "margin", json!("1000000.01")), Reason::MarginExceedsAmount)
            .mentions("data.margin"),
    ]
}

#[test]
fn structural_rejections() {
    run(&structural_cases(), &mut HashSet::new())
}
#[test]
fn envelope_rejections() {
    run(&envelope_cases(), &mut HashSet::new())
}
#[test]
fn every_required_field_missing_or_null() {
    run(&missing_field_cases(), &mut HashSet::new())
}
#[test]
fn field_type_id_date_period_currency_and_value_rejections() {
    run(&field_cases(), &mut HashSet::new())
}
#[test]
fn amount_rejections() {
    run(&amount_cases(), &mut HashSet::new())
}

/// A ledger fed by one publisher, each event with a fresh envelope id.
struct Ledger {
    state: LedgerState,
    next: u32,
}

impl Ledger {
    fn new() -> Ledger {
        Ledger { state: LedgerState::new(), next: 0 }
    }

    fn send(&mut self, ty: &str, changes: &[(&str, Value)]) -> Vec<Folded> {
        self.next += 1;
        let mut e = envelope(ty, data(ty, changes));
        e["id"] = json!(format!("evt-{}", self.next));
        match self.state.admit(&bytes(&e), Admission::Publisher) {
            Admitted::Logged { folded, .. } => folded,
            other => panic!("{ty} {changes:?}: expected it logged, got {}", describe(&other)),
        }
    }

    /// The event and whatever it released were applied.
    fn ok(&mut self, ty: &str, changes: &[(&str, Value)]) {
        let folded = self.send(ty, changes);
        assert!(folded.iter().all(|f| matches!(f.outcome, Outcome::Applied { .. })), "{ty} {changes:?}: {folded:?}");
    }

    /// The event itself was rejected by a rule when applied, and is listed as such.
    fn refused(&mut self, ty: &str, changes: &[(&str, Value)]) -> Rejection {
        let folded = self.send(ty, changes);
        match folded.as_slice() {
            [Folded { seq, outcome: Outcome::Rejected(r), released: false, .. }] => {
                assert!(self.state.rejected_by_rule().contains_key(seq), "a rule rejection is listed");
                r.clone()
            }
            other => panic!("{ty} {changes:?}: expected a rule rejection, got {other:?}"),
        }
    }
}

fn conflict_keeps_the_first_copy() -> Rejection {
    let mut state = LedgerState::new();
    let first = with("deal.created", "amount", json!("1000000.00"));
    assert!(matches!(state.admit(&first, Admission::Publisher), Admitted::Logged { .. }));
    let next = state.next_seq();
    let r = match state.admit(&with("deal.created", "amount", json!("2000000.00")), Admission::Publisher) {
        Admitted::Rejected(r) => r,
        other => panic!("other content under the same source and id must conflict, got {}", describe(&other)),
    };
    assert_eq!(state.next_seq(), next, "a conflicting copy is not logged");
    let deal = state.deal("D-1").expect("the first copy stands");
    assert_eq!(deal.amount.to_string(), "1000000.00", "the first copy stands");
    assert!(r.message.contains("evt-1"), "the message names the id: {}", r.message);
    r
}

fn deal_id_used() -> Rejection {
    let mut l = Ledger::new();
    l.ok("deal.created", &[]);
    let r = l.refused("deal.created", &[("amount", json!("5.00")), ("margin", json!("1.00"))]);
    assert!(r.message.contains("D-1"), "{}", r.message);
    r
}

fn payment_id_used() -> Rejection {
    let mut l = Ledger::new();
    l.ok("deal.created", &[]);
    l.ok("payment.received", &[]);
    l.refused("payment.received", &[("paid_on", json!("2026-11-06"))])
}

fn refund_id_used() -> Rejection {
    let mut l = Ledger::new();
    l.ok("deal.created", &[]);
    l.ok("payment.received", &[]);
    l.ok("payment.refunded", &[]);
    l.refused("payment.refunded", &[("amount", json!("1.00"))])
}

fn payment_on_cancelled_deal() -> Rejection {
    // RULES.md section 9: a payment dated 3 November arriving after the cancellation dated
    // 12 November is rejected: state checks follow the order of arrival, not the dates.
    let mut l = Ledger::new();
    l.ok("deal.created", &[]);
    l.ok("deal.cancelled", &[("cancelled_on", json!("2026-11-12"))]);
    l.refused("payment.received", &[("paid_on", json!("2026-11-03"))])
}

fn payment_above_balance() -> Rejection {
    let mut l = Ledger::new();
    l.ok("deal.created", &[]);
    l.ok("payment.received", &[("payment_id", json!("P-1")), ("amount", json!("600000.00"))]);
    let r = l.refused("payment.received", &[("payment_id", json!("P-2")), ("amount", json!("400000.01"))]);
    l.ok("payment.received", &[("payment_id", json!("P-3")), ("amount", json!("400000.00"))]);
    // Refunds do not restore the balance: the deal stays fully paid.
    l.ok("payment.refunded", &[("payment_id", json!("P-3")), ("amount", json!("100.00"))]);
    let again = l.refused("payment.received", &[("payment_id", json!("P-4")), ("amount", json!("100.00"))]);
    assert_eq!(again.reason, Reason::PaymentExceedsBalance, "{again}");
    r
}

fn refund_above_payment() -> Rejection {
    let mut l = Ledger::new();
    l.ok("deal.created", &[]);
    l.ok("payment.received", &[("amount", json!("1000.00"))]);
    let whole = l.refused("payment.refunded", &[("refund_id", json!("R-1")), ("amount", json!("1000.01"))]);
    assert_eq!(whole.reason, Reason::RefundExceedsPayment, "{whole}");
    l.ok("payment.refunded", &[("refund_id", json!("R-2")), ("amount", json!("600.00"))]);
    // After a partial refund, only what is left of the payment may go back.
    let r = l.refused("payment.refunded", &[("refund_id", json!("R-3")), ("amount", json!("400.01"))]);
    l.ok("payment.refunded", &[("refund_id", json!("R-4")), ("amount", json!("400.00"))]);
    let after_all = l.refused("payment.refunded", &[("refund_id", json!("R-5")), ("amount", json!("0.01"))]);
    assert_eq!(after_all.reason, Reason::RefundExceedsPayment, "{after_all}");
    r
}

fn late_notice_on_cancelled_deal() -> Rejection {
    let mut l = Ledger::new();
    l.ok("deal.created", &[]);
    l.ok("deal.cancelled", &[]);
    l.refused("payment.late", &[])
}

fn late_notice_on_fully_paid_deal() -> Rejection {
    let mut l = Ledger::new();
    l.ok("deal.created", &[]);
    l.ok("payment.late", &[]);
    l.ok("payment.received", &[("amount", json!("1000000.00"))]);
    l.refused("payment.late", &[("as_of", json!("2026-11-25"))])
}

fn second_cancellation() -> Rejection {
    let mut l = Ledger::new();
    l.ok("deal.created", &[]);
    l.ok("deal.cancelled", &[("fault", json!("manager"))]);
    l.refused("deal.cancelled", &[("fault", json!("client")), ("cancelled_on", json!("2026-11-13"))])
}

fn plan_for_closed_period() -> Rejection {
    let mut l = Ledger::new();
    l.ok("plan.assigned", &[("period", json!("2026-10"))]);
    l.ok("period.closed", &[("period", json!("2026-10"))]);
    let r = l.refused("plan.assigned", &[("period", json!("2026-10")), ("target", json!("1.00"))]);
    assert!(r.message.contains("2026-10"), "{}", r.message);
    l.ok("plan.assigned", &[("period", json!("2026-11"))]);
    r
}

fn closing_a_closed_period() -> Rejection {
    let mut l = Ledger::new();
    l.ok("period.closed", &[]);
    l.refused("period.closed", &[])
}

type Scenario = fn() -> Rejection;

/// Reasons that need the ledger's state, each with a scenario that ends in it.
const STATEFUL: &[(Reason, &str, Scenario)] = &[
    (Reason::Conflict, "same source and id, other data", conflict_keeps_the_first_copy),
    (Reason::DealIdUsed, "deal id used", deal_id_used),
    (Reason::PaymentIdUsed, "payment id used", payment_id_used),
    (Reason::RefundIdUsed, "refund id used", refund_id_used),
    (Reason::DealCancelled, "payment on a cancelled deal", payment_on_cancelled_deal),
    (Reason::DealCancelled, "late notice on a cancelled deal", late_notice_on_cancelled_deal),
    (Reason::PaymentExceedsBalance, "payment above the outstanding balance", payment_above_balance),
    (Reason::RefundExceedsPayment, "refund above what is left of the payment", refund_above_payment),
    (Reason::DealFullyPaid, "late notice on a fully paid deal", late_notice_on_fully_paid_deal),
    (Reason::DealAlreadyCancelled, "second cancellation", second_cancellation),
    (Reason::PeriodClosed, "plan for a closed period", plan_for_closed_period),
    (Reason::PeriodAlreadyClosed, "closing a closed period", closing_a_closed_period),
];

fn run_stateful(covered: &mut HashSet<Reason>) {
    for (reason, name, scenario) in STATEFUL {
        let r = scenario();
        assert_eq!(r.reason, *reason, "{name}: {r}");
        assert!(!r.message.trim().is_empty(), "{name}: empty message");
        let stage = if *reason == Reason::Conflict { Stage::Conflict } else { Stage::Rule };
        assert_eq!(r.reason.stage(), stage, "{name}");
        covered.insert(r.reason);
    }
}

#[test]
fn rules_and_conflicts_yield_their_reasons() {
    run_stateful(&mut HashSet::new());
}

#[test]
fn duplicates_and_other_sources_are_not_conflicts() {
    let mut state = LedgerState::new();
    let first = r#"{"specversion":"1.0","id":"evt-1","source":"crm/test","type":"deal.created","time":"2026-11-02T09:15:00+03:00","data":{"deal_id":"D-1","manager_id":"M-7","client_id":"C-55","amount":"1000000.00","margin":100000,"currency":"RUB","payment_terms":"prepayment","due_date":"2026-11-10","created_on":"2026-11-02"}}"#;
    assert!(matches!(state.admit(first.as_bytes(), Admission::Publisher), Admitted::Logged { .. }));
    // Members reordered, `time` changed, margin written as another number of equal value.
    let again = r#"{"data":{"created_on":"2026-11-02","due_date":"2026-11-10","payment_terms":"prepayment","currency":"RUB","margin":100000.00,"amount":"1000000.00","client_id":"C-55","manager_id":"M-7","deal_id":"D-1"},"time":"2026-12-01T00:00:00Z","type":"deal.created","source":"crm/test","id":"evt-1","specversion":"1.0"}"#;
    let next = state.next_seq();
    assert_eq!(state.admit(again.as_bytes(), Admission::Publisher), Admitted::Duplicate);
    assert_eq!(state.next_seq(), next, "a duplicate is not logged");
    // The same id from another source is another event (here a second deal id, so rule-checked).
    let other_source = first.replace("crm/test", "crm/other");
    match state.admit(other_source.as_bytes(), Admission::Publisher) {
        Admitted::Logged { folded, .. } => match &folded[0].outcome {
            Outcome::Rejected(r) => assert_eq!(r.reason, Reason::DealIdUsed, "{r}"),
            other => panic!("a second deal D-1 must break the deal id rule, got {other:?}"),
        },
        other => panic!("same id, other source must be a new event, got {}", describe(&other)),
    }
    // ...and a duplicate of it is a duplicate whatever became of the first copy.
    assert_eq!(state.admit(other_source.as_bytes(), Admission::Publisher), Admitted::Duplicate);
    let new_deal = other_source.replace("\"deal_id\":\"D-1\"", "\"deal_id\":\"D-2\"").replace("evt-1", "evt-2");
    match state.admit(new_deal.as_bytes(), Admission::Publisher) {
        Admitted::Logged { folded, .. } => assert!(matches!(folded[0].outcome, Outcome::Applied { .. }), "{folded:?}"),
        other => panic!("a new event must be applied, got {}", describe(&other)),
    }
}

#[test]
fn parked_events_rejected_on_release() {
    let mut l = Ledger::new();
    // A payment above the deal amount arrives before its deal: parked, not rejected.
    let parked = l.send("payment.received", &[("deal_id", json!("D-9")), ("amount", json!("2000000.00"))]);
    let parked_seq = parked[0].seq;
    assert!(matches!(parked[0].outcome, Outcome::Parked { .. }), "{parked:?}");
    let folded = l.send("deal.created", &[("deal_id", json!("D-9"))]);
    assert!(matches!(folded[0].outcome, Outcome::Applied { .. }), "{folded:?}");
    match &folded[1..] {
        [Folded { seq, outcome: Outcome::Rejected(r), released: true, .. }] => {
            assert_eq!(*seq, parked_seq);
            assert_eq!(r.reason, Reason::PaymentExceedsBalance, "{r}");
            assert!(!r.message.is_empty());
        }
        other => panic!("the parked payment must be released and rejected, got {other:?}"),
    }
    assert!(l.state.rejected_by_rule().contains_key(&parked_seq));
    assert!(l.state.parked().is_empty(), "a released event is no longer parked");
    // A refund above its payment, waiting for that payment, likewise.
    let refund = l.send("payment.refunded", &[("payment_id", json!("P-9")), ("amount", json!("500.00"))]);
    assert!(matches!(refund[0].outcome, Outcome::Parked { .. }), "{refund:?}");
    let folded = l.send(
        "payment.received",
        &[("payment_id", json!("P-9")), ("deal_id", json!("D-9")), ("amount", json!("400.00"))],
    );
    match folded.as_slice() {
        [Folded { outcome: Outcome::Applied { .. }, .. }, Folded { outcome: Outcome::Rejected(r), released: true, .. }] =>
        {
            assert_eq!(r.reason, Reason::RefundExceedsPayment, "{r}")
        }
        other => panic!("the parked refund must be released and rejected, got {other:?}"),
    }
}

#[test]
fn every_reason_is_exercised() {
    let mut covered = HashSet::new();
    for cases in [structural_cases(), envelope_cases(), missing_field_cases(), field_cases(), amount_cases()] {
        run(&cases, &mut covered);
    }
    assert!(covered.iter().all(|r| r.stage() == Stage::Validation), "validation tables hold validation reasons only");
    run_stateful(&mut covered);
    let missing: Vec<&str> = Reason::ALL.iter().filter(|r| !covered.contains(*r)).map(|r| r.code()).collect();
    assert!(missing.is_empty(), "reasons without a passing case in tests/rejections.rs: {missing:?}");
    assert_eq!(covered.len(), Reason::ALL.len());
}
