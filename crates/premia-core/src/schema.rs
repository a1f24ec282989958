//! JSON Schemas (draft 2020-12) of the event contract, generated from the types in `event`.
//! `premia schema write DIR` writes them; a test fails when the checked-in copies drift.

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Value};

use crate::event::{
    DealCancelled, DealCreated, EventType, PaymentLate, PaymentReceived, PaymentRefunded, PeriodClosed, PlanAssigned,
    MAX_ID_CHARS,
};

/// The pattern every amount string must match (EVENTS.md: plain notation, at most 2 decimals).
pub const AMOUNT_PATTERN: &str = r"^[0-9]+(\.[0-9]{1,2})?$";

pub(crate) fn id(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS })
}

pub(crate) fn amount(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "An exact amount: a decimal string in plain notation with at most 2 decimals (preferred), or a JSON number written the same way. At most 10000000000.00.",
        "anyOf": [
            { "type": "string", "pattern": AMOUNT_PATTERN },
            { "type": "number", "minimum": 0, "maximum": 10_000_000_000u64 }
        ]
    })
}

pub(crate) fn optional_amount(generator: &mut SchemaGenerator) -> Schema {
    let amount = amount(generator);
    json_schema!({ "anyOf": [ amount, { "type": "null" } ] })
}

pub(crate) fn currency(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": "^[A-Z]{3}$", "description": "Must equal the ledger currency (RUB by default)." })
}

pub(crate) fn date(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "date", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$" })
}

pub(crate) fn period(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": r"^[0-9]{4}-(0[1-9]|1[0-2])$" })
}

fn data_schema<T: JsonSchema>() -> Value {
    let mut generator = SchemaGenerator::default();
    let mut schema = generator.root_schema_for::<T>().to_value();
    if let Value::Object(map) = &mut schema {
        // The envelope carries the $schema; the data is one of its properties.
        map.remove("$schema");
    }
    schema
}

/// The schema of one event type, envelope included. `None` for `scheme.activated`, which is
/// written by premia itself and documented by `premia scheme show`.
pub fn event_schema(event_type: EventType) -> Option<Value> {
    let data = match event_type {
        EventType::DealCreated => data_schema::<DealCreated>(),
        EventType::PaymentReceived => data_schema::<PaymentReceived>(),
        EventType::PaymentLate => data_schema::<PaymentLate>(),
        EventType::DealCancelled => data_schema::<DealCancelled>(),
        EventType::PaymentRefunded => data_schema::<PaymentRefunded>(),
        EventType::PlanAssigned => data_schema::<PlanAssigned>(),
        EventType::PeriodClosed => data_schema::<PeriodClosed>(),
        EventType::SchemeActivated => return None,
    };
    let name = event_type.as_str();
    Some(json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("urn:premia:schema:event:{name}"),
        "title": name,
        "description": format!("A {name} event: a CloudEvents 1.0 structured-mode envelope whose data is described below. Unknown members are accepted and kept."),
        "type": "object",
        "required": ["specversion", "id", "source", "type", "data"],
        "properties": {
            "specversion": { "const": "1.0" },
            "id": { "type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS, "description": "With source, the idempotency key." },
            "source": { "type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS, "description": "Names the publisher, e.g. crm/acme." },
            "type": { "const": name },
            "time": { "type": ["string", "null"], "format": "date-time" },
            "subject": { "type": "string" },
            "datacontenttype": { "type": "string" },
            "dataschema": { "type": "string" },
            "data": data
        }
    }))
}

/// Every schema premia publishes, as `(file name, pretty JSON text)`.
pub fn all_schema_files() -> Vec<(String, String)> {
    EventType::ALL
        .into_iter()
        .filter_map(|t| event_schema(t).map(|s| (format!("events/{}.json", t.as_str()), pretty(&s))))
        .collect()
}

pub fn pretty(value: &Value) -> String {
    let mut text = match serde_json::to_string_pretty(value) {
        Ok(text) => text,
        Err(e) => unreachable!("a JSON value, whose keys are strings, always serializes: {e}"),
    };
    text.push('\n');
    text
}
