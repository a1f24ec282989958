//! Explanations: of every entry of a payment or a deal, the JSON `premia explain --payment ID`
//! / `--deal ID` (`--format json`) prints and `GET /v1/explain/payments/{id}` /
//! `GET /v1/explain/deals/{id}` answer, assembled by the same functions here; and of what one log
//! record booked, `GET /v1/explain/{seq}`.
//!
//! The two find the entries differently. The command line folds the subject's records again from
//! the raw log (the replay index picks them), an independent check that needs the data dir lock.
//! The API cannot take that lock (the serving loop holds it), so [`from_ledger`] reads the
//! subject's entries from the stored entries, finds their records in the fold state, and derives
//! when and under which scheme each was booked from that state (`premia_core::explain`: a property
//! test holds it to what the fold says). The arithmetic, the rule, the scheme and the events come
//! out the same; only what became of records a rule refused is left out here (the state keeps
//! no ids of those; GET /v1/rejected lists them).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use premia_core::explain::{self, EntryExplanation, Subject};
use premia_core::fold::LedgerState;
use premia_core::{Admission, EventData, Scheme};
use premia_ledger::{Ledger, LedgerError, LogRecord};
use serde_json::{json, Value};

use crate::auth::Role;
use crate::errors::{forbidden, to_json, Answer, ApiError};
use crate::state::{ApiState, QUERY_TIMEOUT};
use crate::views::rfc3339;

/// `seq`, `source`, `id`, `type` and arrival time of a log record: how an explanation names the
/// events an entry depends on and the scheme's activation.
pub fn event_names(record: &LogRecord) -> Value {
    let v: Value = serde_json::from_slice(&record.raw).unwrap_or(Value::Null);
    json!({
        "seq": record.seq,
        "source": v.get("source").cloned().unwrap_or(Value::Null),
        "id": v.get("id").cloned().unwrap_or(Value::Null),
        "type": v.get("type").cloned().unwrap_or(Value::Null),
        "arrived": rfc3339(record.arrived_ms),
    })
}

/// One explained entry as JSON: the explanation, the events it depends on (each with its part
/// in the arithmetic) and the event that activated its scheme. `names(seq)` gives
/// [`event_names`] of a log record.
pub fn item<E: From<serde_json::Error>>(
    x: &EntryExplanation,
    mut names: impl FnMut(u64) -> Result<Value, E>,
) -> Result<Value, E> {
    let mut events = Vec::with_capacity(x.depends_on.len());
    for link in &x.depends_on {
        let mut named = names(link.seq)?;
        named["role"] = json!(link.role);
        events.push(named);
    }
    let scheme_event = match x.scheme.seq {
        Some(seq) => names(seq)?,
        None => Value::Null,
    };
    let mut v = serde_json::to_value(x)?;
    v["events"] = Value::Array(events);
    v["scheme"]["event"] = scheme_event;
    Ok(v)
}

/// What became of a logged record that booked nothing: refused by a rule, or parked.
pub fn unbooked(state: &LedgerState, seq: u64) -> Option<Value> {
    if let Some((event_type, rejection)) = state.rejected_by_rule().get(&seq) {
        Some(json!({"seq": seq, "type": event_type.as_str(), "outcome": "rejected",
                    "reason": rejection.reason.code(), "message": rejection.message}))
    } else {
        state.parked().get(&seq).map(|parked| {
            json!({"seq": seq, "type": parked.event.data.event_type().as_str(), "outcome": "parked",
                   "waits_for": parked.waits_for.to_string()})
        })
    }
}

/// The whole answer: the subject, its explained entries in booking order, and what became of its
/// records that booked nothing.
pub fn document(subject: &str, entries: Vec<Value>, unbooked: Vec<Value>) -> Value {
    json!({ "subject": subject, "entries": entries, "unbooked": unbooked })
}

/// Why an explanation could not be read from the ledger.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("an explanation cannot be written as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("log record {0} is missing from the store; stop premia serve and run `premia verify`")]
    MissingRecord(u64),
    #[error("log record {0}, which the fold state names as a scheme activation, is not one; stop premia serve and run `premia verify`")]
    NotAScheme(u64),
}

/// The explanation of `subject` from the serving loop's ledger, as `premia explain` prints it
/// (only `manager`'s entries when one is given), or `None` when the ledger has no such payment or
/// deal and nothing waits for one.
pub fn from_ledger(
    ledger: &Ledger,
    subject: Subject<'_>,
    manager: Option<&str>,
) -> Result<Option<Value>, ExplainError> {
    let state = ledger.state();
    let seqs = explain::subject_records(state, subject);
    let parked = explain::subject_parked(state, subject);
    if seqs.is_empty() && parked.is_empty() {
        return Ok(None);
    }
    let mut entries = Vec::new();
    for seq in seqs {
        entries.extend(ledger.entries_of_seq(seq)?.into_iter().filter(|e| subject.covers(e)));
    }
    // A handful of records and schemes, each read once.
    let mut records: BTreeMap<u64, Value> = BTreeMap::new();
    let mut names = |seq: u64| -> Result<Value, ExplainError> {
        if let Some(named) = records.get(&seq) {
            return Ok(named.clone());
        }
        let record = ledger.record(seq)?.ok_or(ExplainError::MissingRecord(seq))?;
        let named = event_names(&record);
        records.insert(seq, named.clone());
        Ok(named)
    };
    let mut schemes: BTreeMap<Option<u64>, Arc<Scheme>> = BTreeMap::new();
    let mut items = Vec::new();
    for (entry, applied_at) in explain::in_booking_order(state, entries) {
        if manager.is_some_and(|m| *entry.manager_id != *m) {
            continue;
        }
        let scheme_seq = explain::scheme_seq_at(state, applied_at);
        let scheme = match schemes.get(&scheme_seq) {
            Some(scheme) => scheme.clone(),
            None => {
                let scheme = scheme_logged_at(ledger, scheme_seq)?;
                schemes.insert(scheme_seq, scheme.clone());
                scheme
            }
        };
        let x = explain::explain_entry(state, &entry, applied_at, &scheme, scheme_seq);
        items.push(item(&x, &mut names)?);
    }
    let unbooked = parked.into_iter().filter_map(|seq| unbooked(state, seq)).collect();
    Ok(Some(document(&subject.name(), items, unbooked)))
}

/// The scheme activated by log record `seq` (the one in force, kept by the state, needs no read;
/// an earlier one is read back from the log as the fold read it), or the built-in one for `None`.
fn scheme_logged_at(ledger: &Ledger, seq: Option<u64>) -> Result<Arc<Scheme>, ExplainError> {
    let state = ledger.state();
    let Some(seq) = seq else { return Ok(Arc::new(Scheme::default_scheme())) };
    if state.scheme_seq() == Some(seq) {
        return Ok(state.scheme_shared());
    }
    let record = ledger.record(seq)?.ok_or(ExplainError::MissingRecord(seq))?;
    match premia_core::event::parse_event(&record.raw, state.scheme(), Admission::Operator) {
        Ok(event) => match event.data {
            EventData::SchemeActivated(scheme) => Ok(Arc::new(*scheme)),
            _ => Err(ExplainError::NotAScheme(seq)),
        },
        Err(_) => Err(ExplainError::NotAScheme(seq)),
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Payment,
    Deal,
}

/// `GET /v1/explain/payments/{id}`: every entry of a payment, its commission and the clawbacks
/// of its refunds.
pub(crate) async fn payment(State(api): State<ApiState>, headers: HeaderMap, Path(id): Path<String>) -> Answer {
    answer(api, headers, id, Kind::Payment).await
}

/// `GET /v1/explain/deals/{id}`: every entry of a deal, its commissions, clawbacks and fine.
pub(crate) async fn deal(State(api): State<ApiState>, headers: HeaderMap, Path(id): Path<String>) -> Answer {
    answer(api, headers, id, Kind::Deal).await
}

/// Admin and auditor read every subject; a manager reads one that booked something for them,
/// and only their own entries (as `GET /v1/explain/{seq}`); the publisher reads nothing.
async fn answer(api: ApiState, headers: HeaderMap, id: String, kind: Kind) -> Answer {
    let role = api.reader(&headers)?;
    let answer = api
        .ask(QUERY_TIMEOUT, move |ledger, _| {
            let subject = match kind {
                Kind::Payment => Subject::Payment(&id),
                Kind::Deal => Subject::Deal(&id),
            };
            let own = match &role {
                Role::Manager(own) => Some(own.as_str()),
                _ => None,
            };
            let Some(explained) = from_ledger(ledger, subject, own).map_err(ApiError::internal)? else {
                return Err(unknown(kind, &id));
            };
            if let Some(own) = own {
                if explained["entries"].as_array().is_none_or(Vec::is_empty) {
                    return Err(forbidden(&format!(
                        "{} booked nothing for manager {own}; this token reads only that manager's entries",
                        subject.name()
                    )));
                }
            }
            Ok(explained)
        })
        .await??;
    Ok(Json(answer).into_response())
}

fn unknown(kind: Kind, id: &str) -> ApiError {
    let message = match kind {
        Kind::Payment => format!(
            "the ledger has no payment {id:?}: no payment.received with this payment_id was applied, and none waits \
             for its deal. Check the id (ids are case-sensitive and shared by every source); a payment a rule \
             refused is listed by GET /v1/rejected"
        ),
        Kind::Deal => format!(
            "the ledger has no deal {id:?}: no deal.created with this deal_id was applied, and nothing waits for \
             it. Check the id (ids are case-sensitive and shared by every source)"
        ),
    };
    ApiError::new(StatusCode::NOT_FOUND, message)
}

/// The entries log record `seq` booked, each as the statements show it (with its one-line
/// explanation and its period), from the stored entries and the current state; and, when it
/// booked nothing, what became of it (rejected by a rule, or parked). A manager reads only a
/// record that booked something for them, and sees only their own entries.
pub(crate) async fn record(State(api): State<ApiState>, headers: HeaderMap, Path(seq): Path<String>) -> Answer {
    let role = api.reader(&headers)?;
    let seq: u64 = seq.trim_start_matches("seq:").parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{seq:?} is not a log seq; give the seq a statement shows beside the entry, such as 123"),
        )
    })?;
    let answer = api.ask(QUERY_TIMEOUT, move |ledger, _| record_answer(ledger, seq, &role)).await??;
    Ok(Json(answer).into_response())
}

/// `GET /v1/explain/{seq}`'s answer, on the serving loop.
fn record_answer(ledger: &Ledger, seq: u64, role: &Role) -> Result<Value, ApiError> {
    let state = ledger.state();
    let last = state.next_seq().saturating_sub(1);
    if seq == 0 || seq > last {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("there is no log record {seq}; the log runs from seq 1 to {last}"),
        ));
    }
    let mut entries = ledger.entries_of_seq(seq).map_err(ApiError::internal)?;
    if let Role::Manager(own) = role {
        entries.retain(|e| *e.manager_id == **own);
        if entries.is_empty() {
            return Err(forbidden(&format!(
                "log record {seq} booked nothing for manager {own}; this token reads only that manager's entries"
            )));
        }
    }
    let mut views = Vec::with_capacity(entries.len());
    for entry in &entries {
        let mut view = to_json(state.entry_view(entry))?;
        view["manager_id"] = Value::String(entry.manager_id.to_string());
        view["period"] = Value::String(entry.period.to_string());
        views.push(view);
    }
    // What became of it, as an explanation by payment or deal lists its unbooked records.
    let outcome = if !entries.is_empty() {
        json!({ "outcome": "booked" })
    } else {
        unbooked(state, seq).unwrap_or_else(|| json!({ "outcome": "nothing booked" }))
    };
    let mut answer = json!({ "seq": seq, "entries": views });
    if let (Value::Object(answer), Value::Object(outcome)) = (&mut answer, outcome) {
        answer.extend(outcome);
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use premia_ledger::ingest::{ingest_reader, IngestOptions};
    use premia_ledger::{LedgerOptions, Origin};

    const SEED: &str = include_str!("../../../tests/data/seed-month.jsonl");

    /// The seed month in small batches, then a scheme with 8 grace days, a deal and payment
    /// under it, and a payment and its refund that wait for a deal that never came.
    fn ledger(dir: &std::path::Path) -> Ledger {
        let mut ledger = Ledger::open(dir, &LedgerOptions::default(), "test").expect("open");
        let options = IngestOptions { batch_lines: 3, ..IngestOptions::default() };
        ingest_reader(&mut ledger, SEED.as_bytes(), &options, |_| {}).expect("ingest");
        let mut grace8 = Scheme::default_scheme();
        grace8.name = "grace 8".into();
        grace8.commission.grace_working_days = 8;
        let more = [
            json!({"specversion": "1.0", "id": "s-8", "source": "premia/admin", "type": "scheme.activated",
                   "data": grace8.to_json()}),
            json!({"specversion": "1.0", "id": "x-1", "source": "crm/acme", "type": "deal.created",
                   "data": {"deal_id": "D-601", "manager_id": "M-2", "client_id": "C-61", "amount": "100000.00",
                            "margin": "10000.00", "currency": "RUB", "payment_terms": "postpayment",
                            "due_date": "2026-12-01", "created_on": "2026-12-01"}}),
            json!({"specversion": "1.0", "id": "x-2", "source": "crm/acme", "type": "payment.received",
                   "data": {"payment_id": "P-601", "deal_id": "D-601", "amount": "50000.00", "currency": "RUB",
                            "paid_on": "2026-12-11"}}),
            json!({"specversion": "1.0", "id": "x-3", "source": "crm/acme", "type": "payment.received",
                   "data": {"payment_id": "P-900", "deal_id": "D-900", "amount": "10.00", "currency": "RUB",
                            "paid_on": "2026-12-11"}}),
            json!({"specversion": "1.0", "id": "x-4", "source": "crm/acme", "type": "payment.refunded",
                   "data": {"refund_id": "R-900", "payment_id": "P-900", "amount": "5.00", "currency": "RUB",
                            "refunded_on": "2026-12-12"}}),
        ];
        for (i, event) in more.iter().enumerate() {
            let raw = serde_json::to_vec(event).expect("json");
            let admitted = ledger.offer(&raw, Origin::File, Admission::Operator, 5_000 + i as i64);
            assert!(matches!(admitted, premia_core::Admitted::Logged { .. }), "{event}: {admitted:?}");
        }
        // The last three stay in the batch in hand: a read through the serving loop may see that.
        ledger
    }

    fn explained(ledger: &Ledger, subject: Subject<'_>, manager: Option<&str>) -> Value {
        from_ledger(ledger, subject, manager).expect("read").expect("known")
    }

    #[test]
    fn each_entry_of_a_payment_or_deal_is_explained_with_its_numbers_events_and_scheme() {
        let dir = tempfile::tempdir().expect("dir");
        let ledger = ledger(dir.path());

        // P-502 (M-5): 600 000 of a 600 000 deal with margin 60 000, paid on its due date, so on
        // time at 0.8 %: 480.00; 100 000 refunded claws back 60 000 x 100 000 / 600 000 x 0.008.
        let p502 = explained(&ledger, Subject::Payment("P-502"), None);
        assert_eq!(p502["subject"], "payment P-502");
        let entries = p502["entries"].as_array().expect("entries");
        assert_eq!(entries.len(), 2, "{p502}");
        assert_eq!(
            entries[0]["formula"],
            "margin 60 000.00 x paid 600 000.00 / amount 600 000.00 x rate 0.008 (on time: paid 2026-11-20, not after due date 2026-11-20) = 480.00"
        );
        assert_eq!(
            entries[1]["formula"],
            "-(margin 60 000.00 x refunded 100 000.00 / amount 600 000.00 x rate 0.008 (the rate payment P-502 was booked at)) = -80.00"
        );
        let roles: Vec<&str> =
            entries[1]["events"].as_array().unwrap().iter().map(|e| e["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["deal", "payment", "refund"]);
        assert_eq!(entries[1]["events"][2]["id"], "evt-0023");
        assert_eq!(entries[1]["events"][2]["type"], "payment.refunded");
        assert_eq!(p502["unbooked"], json!([]));

        // P-301 arrived before its deal D-301: booked when the deal came, under scheme seq 1.
        let p301 = explained(&ledger, Subject::Payment("P-301"), None);
        let e = &p301["entries"][0];
        let (payment_seq, deal_seq) = (e["entry"]["event"]["seq"].as_u64().unwrap(), e["events"][1]["seq"].as_u64());
        assert_eq!(e["events"][1]["role"], "deal");
        assert!(Some(payment_seq) < deal_seq, "{e}");
        assert_eq!(e["applied_at_seq"].as_u64(), deal_seq);
        // Booked under the built-in scheme the ledger logged first, since replaced: read back
        // from the log, with its 10 grace days and the event that activated it.
        assert_eq!(e["scheme"]["seq"], 1);
        assert_eq!(e["scheme"]["name"], "default");
        assert_eq!(e["scheme"]["event"]["type"], "scheme.activated");
        assert!(e["rule"].as_str().unwrap().ends_with("grace 10 working days"), "{e}");

        // D-601's payment, 8 working days late (1 December to 11 December), is on time under the
        // scheme in force (grace 8), which is the state's own.
        let d601 = explained(&ledger, Subject::Deal("D-601"), None);
        let e = &d601["entries"][0];
        assert_eq!(e["scheme"]["name"], "grace 8");
        assert_eq!(e["scheme"]["event"]["id"], "s-8");
        assert!(
            e["formula"]
                .as_str()
                .unwrap()
                .ends_with("(on time: 8 working days after due date 2026-12-01, grace 8) = 40.00"),
            "{e}"
        );

        // D-102 was cancelled through M-1's fault: the fine, and nothing else.
        let d102 = explained(&ledger, Subject::Deal("D-102"), None);
        assert_eq!(d102["entries"].as_array().map(Vec::len), Some(1));
        assert_eq!(d102["entries"][0]["entry"]["amount"], "-2000.00");
        assert_eq!(d102["entries"][0]["events"][1]["role"], "cancellation");

        // A manager's own entries only.
        assert_eq!(
            explained(&ledger, Subject::Payment("P-502"), Some("M-5"))["entries"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(explained(&ledger, Subject::Payment("P-502"), Some("M-2"))["entries"], json!([]));

        // Waiting for a deal that never came: nothing booked, both records said to wait.
        for subject in [Subject::Deal("D-900"), Subject::Payment("P-900")] {
            let x = explained(&ledger, subject, None);
            assert_eq!(x["entries"], json!([]), "{x}");
            let outcomes: Vec<(&str, &str)> = x["unbooked"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| (o["type"].as_str().unwrap(), o["waits_for"].as_str().unwrap()))
                .collect();
            assert_eq!(outcomes, [("payment.received", "deal D-900"), ("payment.refunded", "payment P-900")]);
        }
        for subject in [Subject::Deal("D-999"), Subject::Payment("P-999"), Subject::Payment("p-502")] {
            assert!(from_ledger(&ledger, subject, None).expect("read").is_none(), "{subject:?}");
        }
    }
}
