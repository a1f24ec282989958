//! Garbage through the real binary and a real sled directory: `premia ingest` must read every
//! line, never panic, reject each bad line with the reason code RULES.md section 10 (and the
//! reason list of the public contract) gives it, count every non-blank line exactly once
//! (RULES.md section 11), and keep the exact bytes received, which `premia rejected --raw REF`
//! gives back byte for byte.

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;

use base64::Engine;
use serde_json::{json, Map, Value};

mod support;
use support::premia;

fn ingest(dir: &Path, file: &Path) -> Value {
    let out = premia(dir, &["ingest", file.to_str().unwrap(), "--format", "json"]);
    let text = String::from_utf8(out.stdout).expect("the ingest report is UTF-8");
    let last = text.lines().last().expect("ingest printed something");
    let counts: Value = serde_json::from_str(last).expect("the last line is one JSON object");
    let keys: Vec<&str> = counts.as_object().expect("an object").keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        ["applied", "duplicates", "parked", "rejected"],
        "the report has exactly the four counts: {last}"
    );
    counts
}

fn count(counts: &Value, key: &str) -> u64 {
    counts[key].as_u64().unwrap_or_else(|| panic!("{key} is not a count in {counts}"))
}

fn json_of(out: Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// What one non-blank line of the input must become.
#[derive(Debug, Clone)]
enum Want {
    /// Rejected with one of these reason codes (one, except where RULES.md leaves two possible).
    Rejected(&'static [&'static str]),
    Applied,
    Duplicate,
    Parked,
}

/// The input file being built: its bytes and, for each non-blank line, what it must become.
struct Input {
    bytes: Vec<u8>,
    lines: Vec<(Vec<u8>, Want)>,
    blank: usize,
}

impl Input {
    fn new() -> Input {
        Input { bytes: Vec::new(), lines: Vec::new(), blank: 0 }
    }

    fn line(&mut self, line: impl Into<Vec<u8>>, want: Want) {
        self.line_ending(line, want, b"\n");
    }

    fn line_ending(&mut self, line: impl Into<Vec<u8>>, want: Want, ending: &[u8]) {
        let line = line.into();
        self.bytes.extend_from_slice(&line);
        self.bytes.extend_from_slice(ending);
        self.lines.push((line, want));
    }

    fn reject(&mut self, line: impl Into<Vec<u8>>, reason: &'static str) {
        self.line(line, Want::Rejected(reason_set(reason)));
    }

    fn blank(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
        self.blank += bytes.iter().filter(|b| **b == b'\n').count();
    }

    fn rejected(&self) -> impl Iterator<Item = (&Vec<u8>, &'static [&'static str])> {
        self.lines.iter().filter_map(|(l, w)| match w {
            Want::Rejected(r) => Some((l, *r)),
            _ => None,
        })
    }

    fn wanted(&self, f: impl Fn(&Want) -> bool) -> u64 {
        self.lines.iter().filter(|(_, w)| f(w)).count() as u64
    }
}

fn reason_set(reason: &'static str) -> &'static [&'static str] {
    match reason {
        "invalid_utf8" => &["invalid_utf8"],
        "line_too_long" => &["line_too_long"],
        "invalid_json" => &["invalid_json"],
        "not_an_object" => &["not_an_object"],
        "duplicate_key" => &["duplicate_key"],
        "nesting_too_deep" => &["nesting_too_deep"],
        "missing_field" => &["missing_field"],
        "amount_out_of_range" => &["amount_out_of_range"],
        other => panic!("no reason set for {other}"),
    }
}

fn envelope(id: &str, event_type: &str, data: Value) -> Value {
    json!({"specversion": "1.0", "id": id, "source": "crm/bad-input", "type": event_type,
           "time": "2026-03-02T10:00:00Z", "data": data})
}

fn line_of(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// A valid `data` for each of the seven public types, and its required fields (EVENTS.md).
fn valid_data() -> Vec<(&'static str, Value, &'static [&'static str])> {
    vec![
        (
            "deal.created",
            json!({"deal_id": "D-X", "manager_id": "M-X", "client_id": "C-X", "amount": "1000.00", "margin": "100.00",
                   "currency": "RUB", "payment_terms": "prepayment", "due_date": "2026-03-10", "created_on": "2026-03-02"}),
            &[
                "deal_id",
                "manager_id",
                "client_id",
                "amount",
                "margin",
                "currency",
                "payment_terms",
                "due_date",
                "created_on",
            ],
        ),
        (
            "payment.received",
            json!({"payment_id": "P-X", "deal_id": "D-X", "amount": "100.00", "currency": "RUB", "paid_on": "2026-03-03"}),
            &["payment_id", "deal_id", "amount", "currency", "paid_on"],
        ),
        ("payment.late", json!({"deal_id": "D-X", "as_of": "2026-03-20", "days_overdue": 3}), &["deal_id", "as_of"]),
        (
            "deal.cancelled",
            json!({"deal_id": "D-X", "cancelled_on": "2026-03-21", "fault": "manager", "reason": "lost"}),
            &["deal_id", "cancelled_on", "fault"],
        ),
        (
            "payment.refunded",
            json!({"refund_id": "R-X", "payment_id": "P-X", "amount": "10.00", "currency": "RUB", "refunded_on": "2026-03-22"}),
            &["refund_id", "payment_id", "amount", "currency", "refunded_on"],
        ),
        (
            "plan.assigned",
            json!({"manager_id": "M-X", "period": "2026-03", "target": "5000.00", "bonus_base": "20000.00"}),
            &["manager_id", "period", "target"],
        ),
        ("period.closed", json!({"period": "2026-02"}), &["period"]),
    ]
}

/// Each public type's valid data with one required field removed (or set to null), in turn.
fn missing_fields(prefix: &str, null: bool) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    for (event_type, data, required) in valid_data() {
        for field in required {
            let mut data: Map<String, Value> = data.as_object().unwrap().clone();
            let was = if null { data.insert(field.to_string(), Value::Null) } else { data.remove(*field) };
            assert!(was.is_some(), "test bug: {field} is not in the valid data of {event_type}");
            lines.push(line_of(&envelope(&format!("{prefix}-{event_type}-{field}"), event_type, Value::Object(data))));
        }
    }
    assert_eq!(lines.len(), 9 + 5 + 2 + 3 + 5 + 3 + 1);
    lines
}

const TEN_MB: usize = 10 * 1024 * 1024 + 17;
const DEEP: usize = 100_000;
const FORTY_DIGITS: &str = "1234567890123456789012345678901234567890";

/// The garbage file, with a few valid events among it so that statements exist.
fn bad_input() -> Input {
    let mut input = Input::new();
    let mut n = 0;
    let mut id = || {
        n += 1;
        format!("bad-{n:04}")
    };

    // A few valid events: applied, applied after \r\n, a duplicate, one parked for a deal that never comes.
    let deal = envelope(
        &id(),
        "deal.created",
        json!({"deal_id": "D-OK", "manager_id": "M-OK", "client_id": "C-OK",
        "amount": "10000.00", "margin": "2000.00", "currency": "RUB", "payment_terms": "prepayment",
        "due_date": "2026-03-10", "created_on": "2026-03-02"}),
    );
    input.line(line_of(&deal), Want::Applied);
    input.blank(b"\n");
    input.blank(b"   \n");
    input.blank(b"\t \t\r\n");
    input.blank(b"\r\n");
    let plan =
        envelope(&id(), "plan.assigned", json!({"manager_id": "M-OK", "period": "2026-03", "target": "8000.00"}));
    input.line_ending(line_of(&plan), Want::Applied, b"\r\n");
    let payment = envelope(
        &id(),
        "payment.received",
        json!({"payment_id": "P-OK", "deal_id": "D-OK", "amount": "4000.00",
        "currency": "RUB", "paid_on": "2026-03-05"}),
    );
    input.line_ending(line_of(&payment), Want::Applied, b"\r\n");
    input.line(line_of(&deal), Want::Duplicate);
    let at_cap = envelope(
        &id(),
        "deal.created",
        json!({"deal_id": "D-CAP", "manager_id": "M-OK", "client_id": "C-OK",
        "amount": "10000000000.00", "margin": "0", "currency": "RUB", "payment_terms": "postpayment",
        "due_date": "2026-04-10", "created_on": "2026-03-02"}),
    );
    input.line(line_of(&at_cap), Want::Applied);
    let orphan = envelope(
        "ok-orphan",
        "payment.received",
        json!({"payment_id": "P-ORPHAN", "deal_id": "D-NEVER", "amount": "1.00",
        "currency": "RUB", "paid_on": "2026-03-05"}),
    );
    input.line(line_of(&orphan), Want::Parked);

    // Invalid UTF-8: raw garbage, a bad byte inside an otherwise valid event, an overlong
    // encoding, a UTF-16 surrogate encoded as UTF-8, and one with a \r\n ending.
    input.reject(b"\xff\xfe\xfd\x00garbage\x80".to_vec(), "invalid_utf8");
    let mut bad_byte = line_of(&envelope(
        &id(),
        "deal.created",
        json!({"deal_id": "D-U", "manager_id": "M-Q", "client_id": "C-U",
        "amount": "1.00", "margin": "0", "currency": "RUB", "payment_terms": "prepayment", "due_date": "2026-03-10", "created_on": "2026-03-02"}),
    ));
    let at = bad_byte.windows(3).position(|w| w == b"M-Q").unwrap() + 2;
    bad_byte[at] = 0xc3; // followed by `"`: a truncated two-byte sequence
    input.reject(bad_byte, "invalid_utf8");
    input.reject(
        format!("{{\"specversion\":\"1.0\",\"id\":\"{}\",\"x\":\"", id())
            .into_bytes()
            .into_iter()
            .chain(*b"\xc0\xaf\"}")
            .collect::<Vec<u8>>(),
        "invalid_utf8",
    );
    input.reject(b"{\"surrogate\":\"\xed\xa0\x80\"}".to_vec(), "invalid_utf8");
    input.line_ending(b"\xf5\x80\x80\x80 not utf-8, crlf".to_vec(), Want::Rejected(&["invalid_utf8"]), b"\r\n");

    // A 10 MB line: an otherwise valid event with a huge unknown field.
    let mut huge = line_of(&envelope(
        &id(),
        "plan.assigned",
        json!({"manager_id": "M-HUGE", "period": "2026-03", "target": "1.00", "note": ""}),
    ));
    let quote = huge.windows(9).position(|w| w == b"\"note\":\"\"").unwrap() + 8;
    let filler: Vec<u8> = (0..TEN_MB).map(|i| b'a' + (i % 26) as u8).collect();
    huge.splice(quote..quote, filler);
    assert!(huge.len() > 10 * 1024 * 1024);
    input.reject(huge, "line_too_long");

    // JSON nested 100 000 deep: objects at the top, arrays inside an event's data.
    let mut deep_objects = Vec::with_capacity(DEEP * 6 + 1);
    for _ in 0..DEEP {
        deep_objects.extend_from_slice(b"{\"a\":");
    }
    deep_objects.push(b'1');
    deep_objects.extend(vec![b'}'; DEEP]);
    input.reject(deep_objects.clone(), "nesting_too_deep");
    let mut deep_event =
        line_of(&envelope(&id(), "payment.late", json!({"deal_id": "D-OK", "as_of": "2026-03-20", "extra": 0})));
    let zero = deep_event.windows(9).position(|w| w == b"\"extra\":0").unwrap() + 8;
    let nested: Vec<u8> = [vec![b'['; DEEP], vec![b']'; DEEP]].concat();
    deep_event.splice(zero..zero + 1, nested);
    input.reject(deep_event, "nesting_too_deep");
    // Deep and never closed: both "not one JSON object" and "deeper than 64"; RULES.md does not
    // say which is found first, so either code is right. It must not crash.
    input.line(deep_objects[..DEEP * 5].to_vec(), Want::Rejected(&["nesting_too_deep", "invalid_json"]));

    // Amounts of 40 digits (and just above the cap): above 10 000 000 000.00.
    let deal_with = |id: String, deal: &str, amount: Value| {
        line_of(&envelope(
            &id,
            "deal.created",
            json!({"deal_id": deal, "manager_id": "M-BIG", "client_id": "C-BIG",
            "amount": amount, "margin": "0", "currency": "RUB", "payment_terms": "prepayment",
            "due_date": "2026-03-10", "created_on": "2026-03-02"}),
        ))
    };
    input.reject(deal_with(id(), "D-BIG1", json!(FORTY_DIGITS)), "amount_out_of_range");
    input
        .reject(deal_with(id(), "D-BIG2", serde_json::from_str::<Value>(FORTY_DIGITS).unwrap()), "amount_out_of_range");
    input.reject(deal_with(id(), "D-BIG3", json!(format!("{FORTY_DIGITS}.00"))), "amount_out_of_range");
    input.reject(deal_with(id(), "D-BIG4", json!("10000000000.01")), "amount_out_of_range");
    // The raw text, so that the number is certainly 40 digits on the line.
    input.reject(
        format!(
            "{{\"specversion\":\"1.0\",\"id\":\"{}\",\"source\":\"crm/bad-input\",\"type\":\"payment.received\",\"data\":{{\"payment_id\":\"P-BIG\",\"deal_id\":\"D-OK\",\"amount\":{FORTY_DIGITS},\"currency\":\"RUB\",\"paid_on\":\"2026-03-06\"}}}}",
            id()
        ),
        "amount_out_of_range",
    );
    input.reject(
        format!(
            "{{\"specversion\":\"1.0\",\"id\":\"{}\",\"source\":\"crm/bad-input\",\"type\":\"payment.refunded\",\"data\":{{\"refund_id\":\"R-BIG\",\"payment_id\":\"P-OK\",\"amount\":9{},\"currency\":\"RUB\",\"refunded_on\":\"2026-03-07\"}}}}",
            id(),
            "9".repeat(39)
        ),
        "amount_out_of_range",
    );
    input.reject(
        line_of(&envelope(
            &id(),
            "plan.assigned",
            json!({"manager_id": "M-BIG", "period": "2026-03", "target": "100.00", "bonus_base": FORTY_DIGITS}),
        )),
        "amount_out_of_range",
    );

    // Not one JSON object.
    input.reject(b"[1,2,3]".to_vec(), "not_an_object");
    input.reject(format!("[{}]", String::from_utf8(line_of(&deal)).unwrap()), "not_an_object");
    input.reject(b"42".to_vec(), "not_an_object");
    input.reject(b"\"a string\"".to_vec(), "not_an_object");
    input.reject(b"null".to_vec(), "not_an_object");
    // Truncated and otherwise broken JSON.
    let whole = line_of(&envelope(
        &id(),
        "deal.created",
        json!({"deal_id": "D-T", "manager_id": "M-T", "client_id": "C-T",
        "amount": "1.00", "margin": "0", "currency": "RUB", "payment_terms": "prepayment", "due_date": "2026-03-10", "created_on": "2026-03-02"}),
    ));
    input.reject(whole[..whole.len() / 2].to_vec(), "invalid_json");
    input.reject(whole[..whole.len() - 1].to_vec(), "invalid_json");
    input.reject(b"{".to_vec(), "invalid_json");
    input.reject(b"{\"specversion\":\"1.0\",\"id\":".to_vec(), "invalid_json");
    input.reject(b"{}{}".to_vec(), "invalid_json");
    input.reject(b"{\"a\":1} trailing".to_vec(), "invalid_json");
    input.reject(b"not json at all".to_vec(), "invalid_json");
    input.reject(b"\x00\x00\x00".to_vec(), "invalid_json");
    input.reject(
        format!("{{\"specversion\":\"1.0\",\"specversion\":\"1.0\",\"id\":\"{}\",\"source\":\"crm/bad-input\",\"type\":\"period.closed\",\"data\":{{\"period\":\"2026-01\"}}}}", id()),
        "duplicate_key",
    );

    // Every required data field of every public type missing in turn.
    for line in missing_fields("gone", false) {
        input.reject(line, "missing_field");
    }

    // Whitespace-only lines between garbage, and a last line with no line ending at all.
    input.blank(b" \t \n");
    input.blank(b"\n\n");
    input.bytes.extend_from_slice(b"{\"specversion\":\"1.0\",\"id\":\"last\",\"type\":\"deal.cre");
    input.lines.push((
        b"{\"specversion\":\"1.0\",\"id\":\"last\",\"type\":\"deal.cre".to_vec(),
        Want::Rejected(&["invalid_json"]),
    ));

    // Every rejected line is distinct, so that a rejection's bytes name its line.
    let mut seen = std::collections::HashSet::new();
    for (line, _) in input.rejected() {
        assert!(seen.insert(line.clone()), "test bug: two rejected lines are equal");
    }
    input
}

fn write_input(dir: &Path) -> (Input, std::path::PathBuf) {
    let input = bad_input();
    let path = dir.join("bad.jsonl");
    std::fs::write(&path, &input.bytes).unwrap();
    (input, path)
}

fn statements(dir: &Path) -> Vec<Value> {
    ["2026-02", "2026-03", "2026-04"]
        .iter()
        .map(|p| json_of(premia(dir, &["statement", "--period", p, "--format", "json"])))
        .collect()
}

/// The raw bytes of a listed rejection as `premia rejected --format json` shows them.
fn listed_raw(item: &Value) -> Vec<u8> {
    match (item.get("raw"), item.get("raw_base64")) {
        (Some(Value::String(text)), None) => text.as_bytes().to_vec(),
        (None, Some(Value::String(b64))) => {
            base64::engine::general_purpose::STANDARD.decode(b64).expect("raw_base64 is base64")
        }
        _ => panic!("a rejection has exactly one of raw and raw_base64: {}", short(item)),
    }
}

fn short(item: &Value) -> String {
    let mut text = item.to_string();
    text.truncate(400);
    text
}

/// Every listed rejection is one of `expected` (told apart by its bytes) with one of its reasons,
/// every expected line is listed exactly once, and `premia rejected --raw REF` gives back exactly
/// the bytes received.
fn check_rejections(data: &Path, mut expected: HashMap<&[u8], &'static [&'static str]>) {
    let want = expected.len();
    let listed = json_of(premia(data, &["rejected", "--format", "json"]));
    let listed = listed.as_array().expect("an array of rejections");
    let raws = raw_of_each(data, listed);
    let mut problems = Vec::new();
    for (item, raw) in listed.iter().zip(raws) {
        let reference = item["ref"].as_str().expect("a ref");
        assert_eq!(item["raw_len"].as_u64(), Some(raw.len() as u64), "{reference}: raw_len");
        assert!(listed_raw(item) == raw, "{reference}: the listing's raw differs from `rejected --raw`");
        let reason = item["reason"].as_str().expect("a reason");
        assert!(!item["message"].as_str().unwrap_or("").is_empty(), "{reference}: no message");
        match expected.remove(raw.as_slice()) {
            Some(want) if want.contains(&reason) => {}
            Some(want) => {
                problems.push(format!("{reference}: reason {reason}, want {want:?}, line {:?}", preview(&raw)))
            }
            None => problems.push(format!(
                "{reference} ({reason}): its {} bytes are not one of the rejected lines: {:?}",
                raw.len(),
                preview(&raw)
            )),
        }
    }
    for (line, want) in &expected {
        problems.push(format!("not listed as rejected ({want:?}): {:?} ({} bytes)", preview(line), line.len()));
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    assert_eq!(listed.len(), want, "one listing per rejected line");
}

/// `premia rejected --raw REF` for every listed rejection, in listing order. One process holds a
/// data dir at a time, and each call reads every stored rejection (slow with a 10 MB one in a
/// dev build), so the calls run in parallel on copies of the closed data dir.
fn raw_of_each(data: &Path, listed: &[Value]) -> Vec<Vec<u8>> {
    let refs: Vec<&str> = listed.iter().map(|i| i["ref"].as_str().expect("a ref")).collect();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4).min(refs.len().max(1));
    let copies = tempfile::tempdir().unwrap();
    let dirs: Vec<std::path::PathBuf> = (0..workers)
        .map(|w| {
            if w == 0 {
                return data.to_path_buf();
            }
            let copy = copies.path().join(format!("copy-{w}"));
            copy_dir(data, &copy);
            copy
        })
        .collect();
    let chunk = refs.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = refs
            .chunks(chunk)
            .zip(&dirs)
            .map(|(refs, dir)| {
                scope.spawn(move || {
                    refs.iter().map(|r| premia(dir, &["rejected", "--raw", r]).stdout).collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a --raw worker")).collect()
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn garbage_is_counted_rejected_with_its_reason_and_kept_byte_for_byte() {
    let scratch = tempfile::tempdir().unwrap();
    let (input, file) = write_input(scratch.path());
    let data = scratch.path().join("data");

    let counts = ingest(&data, &file);
    let non_blank = input.lines.len() as u64;
    let sum = count(&counts, "applied")
        + count(&counts, "duplicates")
        + count(&counts, "rejected")
        + count(&counts, "parked");
    assert_eq!(
        sum, non_blank,
        "every non-blank line is counted exactly once ({} blank lines are not): {counts}",
        input.blank
    );
    let want_rejected = input.wanted(|w| matches!(w, Want::Rejected(_)));
    assert_eq!(count(&counts, "rejected"), want_rejected, "rejected: {counts}");
    assert_eq!(count(&counts, "applied"), input.wanted(|w| matches!(w, Want::Applied)), "applied: {counts}");
    assert_eq!(count(&counts, "duplicates"), input.wanted(|w| matches!(w, Want::Duplicate)), "duplicates: {counts}");
    assert_eq!(count(&counts, "parked"), input.wanted(|w| matches!(w, Want::Parked)), "parked: {counts}");

    // Every rejection is listed once, with the expected reason, and its exact bytes come back.
    check_rejections(&data, input.rejected().map(|(l, r)| (l.as_slice(), r)).collect());

    // The valid events around the garbage were booked: the payment's commission, 1 % of
    // margin 2000 x paid 4000 / amount 10000 = 8.00, prepaid.
    let march = json_of(premia(&data, &["statement", "--period", "2026-03", "--format", "json"]));
    let manager =
        march["managers"].as_array().unwrap().iter().find(|m| m["manager_id"] == "M-OK").expect("M-OK in March");
    assert_eq!(manager["commission"], "8.00");
    let pending = json_of(premia(&data, &["pending", "--format", "json"]));
    assert_eq!(pending.as_array().map(Vec::len), Some(1), "{pending}");
    assert_eq!(pending[0]["id"], "ok-orphan");
}

fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned();
    if bytes.len() > 120 {
        format!("{text}... ({} bytes)", bytes.len())
    } else {
        text
    }
}

#[test]
fn ingesting_the_same_garbage_again_rejects_it_again_and_changes_no_statement() {
    let scratch = tempfile::tempdir().unwrap();
    let (input, file) = write_input(scratch.path());
    let data = scratch.path().join("data");

    let first = ingest(&data, &file);
    let before = statements(&data);
    let pending_before = json_of(premia(&data, &["pending", "--format", "json"]));
    let rejected_before = json_of(premia(&data, &["rejected", "--format", "json"]));

    let second = ingest(&data, &file);
    let valid = input.wanted(|w| !matches!(w, Want::Rejected(_)));
    assert_eq!(
        count(&second, "rejected"),
        count(&first, "rejected"),
        "validation rejects every time: first {first}, second {second}"
    );
    assert_eq!(count(&second, "applied"), 0, "{second}");
    assert_eq!(count(&second, "parked"), 0, "a line parked by the first ingest is a duplicate now: {second}");
    assert_eq!(count(&second, "duplicates"), valid, "{second}");
    assert_eq!(
        count(&second, "applied")
            + count(&second, "duplicates")
            + count(&second, "rejected")
            + count(&second, "parked"),
        input.lines.len() as u64
    );

    assert_eq!(statements(&data), before, "a second ingest of the same file changed a statement");
    assert_eq!(json_of(premia(&data, &["pending", "--format", "json"])), pending_before);

    // The second ingest's rejections are listed too, each line with the same reason as before.
    let rejected_after = json_of(premia(&data, &["rejected", "--format", "json"]));
    let (before, after) = (rejected_before.as_array().unwrap(), rejected_after.as_array().unwrap());
    assert_eq!(after.len(), 2 * before.len(), "every rejected line is kept again");
    let tally = |items: &[Value]| {
        let mut t: HashMap<(Vec<u8>, String), usize> = HashMap::new();
        for i in items {
            *t.entry((listed_raw(i), i["reason"].as_str().unwrap().to_string())).or_default() += 1;
        }
        t
    };
    let (once, twice) = (tally(before), tally(after));
    assert_eq!(once.len(), twice.len());
    for (key, n) in &once {
        assert_eq!(twice.get(key), Some(&(2 * n)), "{} ({}) is not rejected again", preview(&key.0), key.1);
    }
}

#[test]
fn a_line_of_exactly_one_mib_is_read_and_one_byte_more_is_too_long() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    const MIB: usize = 1024 * 1024;
    let sized = |id: &str, manager: &str, len: usize| {
        let mut line = line_of(&envelope(
            id,
            "plan.assigned",
            json!({"manager_id": manager, "period": "2026-03", "target": "100.00", "note": ""}),
        ));
        let at = line.windows(9).position(|w| w == b"\"note\":\"\"").unwrap() + 8;
        let pad = len - line.len();
        line.splice(at..at, vec![b'x'; pad]);
        assert_eq!(line.len(), len);
        line
    };
    let fits = sized("mib-1", "M-FITS", MIB);
    let over = sized("mib-2", "M-OVER", MIB + 1);
    let mut bytes = fits.clone();
    bytes.push(b'\n');
    bytes.extend_from_slice(&over);
    bytes.extend_from_slice(b"\r\n");
    let file = scratch.path().join("mib.jsonl");
    std::fs::write(&file, &bytes).unwrap();

    let counts = ingest(&data, &file);
    assert_eq!(
        counts,
        json!({"applied": 1, "duplicates": 0, "rejected": 1, "parked": 0}),
        "a line of 1 MiB is not over 1 MiB"
    );
    let listed = json_of(premia(&data, &["rejected", "--format", "json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["reason"], "line_too_long");
    let raw = premia(&data, &["rejected", "--raw", listed[0]["ref"].as_str().unwrap()]).stdout;
    assert!(raw == over, "the bytes of the long line came back different ({} bytes, want {})", raw.len(), over.len());
    let march = json_of(premia(&data, &["statement", "--period", "2026-03", "--format", "json"]));
    assert!(
        march["managers"].as_array().unwrap().iter().any(|m| m["manager_id"] == "M-FITS"),
        "the 1 MiB plan was applied"
    );
}

#[test]
fn a_null_required_field_is_missing_and_the_same_data_with_it_is_accepted() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    // The control: the valid data of each type, in an order in which every one applies.
    let mut bytes = Vec::new();
    for (event_type, valid, _) in valid_data() {
        bytes.extend(line_of(&envelope(&format!("ok-{event_type}"), event_type, valid)));
        bytes.push(b'\n');
    }
    let nulls = missing_fields("null", true);
    for line in &nulls {
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
    }
    let file = scratch.path().join("nulls.jsonl");
    std::fs::write(&file, &bytes).unwrap();
    let counts = ingest(&data, &file);
    assert_eq!(counts, json!({"applied": 7, "duplicates": 0, "rejected": nulls.len(), "parked": 0}));
    check_rejections(&data, nulls.iter().map(|l| (l.as_slice(), reason_set("missing_field"))).collect());
}
