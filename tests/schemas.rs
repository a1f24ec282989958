//! The JSON Schemas in `schemas/` are generated from premia-core's types. This test fails when
//! the checked-in copies drift from the types; regenerate them with
//! `cargo run -p premia -- schemas schemas` and commit the result.

use std::path::Path;

#[test]
fn checked_in_schemas_match_the_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let generated = premia_core::schema::all_schema_files();
    assert_eq!(generated.len(), 7, "one schema per public event type");
    for (name, text) in &generated {
        let path = root.join(name);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{} is missing ({e}); run `cargo run -p premia -- schemas schemas`", path.display())
        });
        assert_eq!(
            &on_disk,
            text,
            "{} drifted from the types; run `cargo run -p premia -- schemas schemas`",
            path.display()
        );
    }
    let on_disk: Vec<_> = std::fs::read_dir(root.join("events")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(on_disk.len(), generated.len(), "schemas/events holds a file no type generates: {on_disk:?}");
    let feed = premia_core::schema::pretty(&premia_nats::feed_schema());
    let feed_on_disk = std::fs::read_to_string(root.join("feed/accrual.json")).unwrap_or_default();
    assert_eq!(feed_on_disk, feed, "schemas/feed/accrual.json drifted; run `cargo run -p premia -- schemas schemas`");
    let export = premia_core::schema::pretty(&premia_ledger::export::export_schema());
    let export_on_disk = std::fs::read_to_string(root.join("export/record.json")).unwrap_or_default();
    assert_eq!(
        export_on_disk, export,
        "schemas/export/record.json drifted; run `cargo run -p premia -- schemas schemas`"
    );
}

/// The OpenAPI document `/openapi.json` serves, checked in as schemas/openapi.json.
#[test]
fn checked_in_openapi_matches_the_api() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/openapi.json");
    let generated = premia_core::schema::pretty(&premia_http::openapi::document());
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(on_disk, generated, "schemas/openapi.json drifted; run `cargo run -p premia -- schemas schemas`");
    let document: serde_json::Value = serde_json::from_str(&on_disk).unwrap();
    assert_eq!(document["openapi"], "3.0.3");
    let paths = document["paths"].as_object().unwrap();
    for (method, route) in premia_http::ROUTES {
        assert!(paths.get(*route).and_then(|item| item.get(*method)).is_some(), "{method} {route} is not documented");
    }
    assert_eq!(paths.values().map(|item| item.as_object().unwrap().len()).sum::<usize>(), premia_http::ROUTES.len());
}

#[test]
fn the_feed_schema_describes_the_message_shape() {
    let schema = premia_nats::feed_schema();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let required: Vec<&str> = schema["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(required, ["manager_id", "ledger_seq", "updates"]);
    // Amounts are strings with two decimals, never numbers.
    let text = schema.to_string();
    assert!(text.contains("\"commission\":{\"type\":\"string\"}"), "{text}");
}

#[test]
fn schemas_are_2020_12_and_describe_the_contract() {
    for (name, text) in premia_core::schema::all_schema_files() {
        let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema", "{name}");
        let required = schema["properties"]["data"]["required"].as_array().unwrap();
        assert!(!required.is_empty(), "{name}: data has required fields");
    }
    let deal: serde_json::Value = serde_json::from_str(&premia_core::schema::all_schema_files()[0].1).unwrap();
    let required: Vec<&str> =
        deal["properties"]["data"]["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(
        required,
        [
            "deal_id",
            "manager_id",
            "client_id",
            "amount",
            "margin",
            "currency",
            "payment_terms",
            "due_date",
            "created_on"
        ]
    );
    assert_eq!(
        deal["properties"]["data"]["properties"]["payment_terms"]["enum"],
        serde_json::json!(["prepayment", "postpayment"])
    );
}
