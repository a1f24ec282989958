//! The JSON shapes of rejections and parked events, shared by the command line (`premia
//! rejected`, `premia pending`) and the HTTP API, so both say the same thing.

use base64::Engine;
use premia_core::reject::Stage;
use premia_ledger::{Ledger, LedgerError, Origin};
use serde_json::{json, Value};

/// Milliseconds since the epoch as RFC 3339 (UTC, milliseconds).
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// One rejected input, wherever it is kept: a line refused before the log (`rej:N`), or a
/// logged event a rule refused when it was applied (`seq:N`).
pub struct RejectionItem {
    pub reference: String,
    pub stage: Stage,
    pub reason: &'static str,
    pub message: String,
    pub arrived_ms: i64,
    pub origin: Origin,
    pub raw: Vec<u8>,
    /// Orders the listing by arrival: (log position, rejections before logged events at it).
    order: (u64, u8, u64),
}

impl RejectionItem {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "ref": self.reference,
            "stage": self.stage,
            "reason": self.reason,
            "message": self.message,
            "arrived": rfc3339(self.arrived_ms),
            "origin": self.origin.as_str(),
            "raw_len": self.raw.len(),
        });
        match std::str::from_utf8(&self.raw) {
            Ok(text) => v["raw"] = Value::String(text.to_string()),
            Err(_) => v["raw_base64"] = Value::String(base64::engine::general_purpose::STANDARD.encode(&self.raw)),
        }
        v
    }
}

/// Why the rejections cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(
        "the fold state says log record {0} was rejected by a rule, but the log has no record {0}; stop premia \
         serve and run `premia verify`"
    )]
    MissingRecord(u64),
}

/// Every rejection, in order of arrival.
pub fn rejections(ledger: &Ledger) -> Result<Vec<RejectionItem>, ViewError> {
    let mut items = Vec::new();
    for r in ledger.rejections()? {
        items.push(RejectionItem {
            reference: format!("rej:{}", r.id),
            stage: r.reason.stage(),
            reason: r.reason.code(),
            message: r.message,
            arrived_ms: r.arrived_ms,
            origin: r.origin,
            raw: r.raw,
            order: (r.after_seq, 1, r.id),
        });
    }
    for (seq, (_, rejection)) in ledger.state().rejected_by_rule() {
        let record = ledger.record(*seq)?.ok_or(ViewError::MissingRecord(*seq))?;
        items.push(RejectionItem {
            reference: format!("seq:{seq}"),
            stage: rejection.reason.stage(),
            reason: rejection.reason.code(),
            message: rejection.message.clone(),
            arrived_ms: record.arrived_ms,
            origin: record.origin,
            raw: record.raw,
            order: (*seq, 0, 0),
        });
    }
    items.sort_by_key(|i| i.order);
    Ok(items)
}

/// The parked events (waiting for the deal or payment they refer to), in log order.
pub fn pending_rows(ledger: &Ledger) -> Vec<Value> {
    ledger
        .state()
        .parked()
        .iter()
        .map(|(seq, p)| {
            json!({
                "seq": seq,
                "type": p.event.data.event_type().as_str(),
                "source": &*p.event.source,
                "id": &*p.event.id,
                "waits_for": p.waits_for.to_string(),
            })
        })
        .collect()
}
