//! The OpenAPI 3 document of the API, served at `/openapi.json` and checked in as
//! `schemas/openapi.json` (`premia schemas DIR` writes it; a test fails when it drifts).
//!
//! It is built here as JSON rather than with `utoipa`: the handlers answer `serde_json::Value`s
//! assembled from premia-core's types, so the response schemas come from the same `schemars`
//! derives as the rest of `schemas/` (with schemars' OpenAPI 3.0 settings, definitions under
//! `#/components/schemas`), and every path is listed against [`crate::ROUTES`] by the tests.

use premia_core::explain::EntryExplanation;
use premia_core::statement::EntryView;
use premia_core::Statement;
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

/// The document. Deterministic: the same build gives the same bytes.
pub fn document() -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let statement = generator.subschema_for::<Statement>().to_value();
    let entry_view = generator.subschema_for::<EntryView>().to_value();
    let overdue_deal = generator.subschema_for::<premia_core::figures::OverdueDeal>().to_value();
    let entry_explanation = generator.subschema_for::<EntryExplanation>().to_value();
    let mut schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object",
            "description": "Every error answer: a sentence saying what went wrong and what to do.",
            "required": ["error"],
            "properties": { "error": { "type": "string" } }
        }),
    );
    schemas.insert(
        "Page".into(),
        json!({
            "type": "object",
            "required": ["total", "offset", "limit", "items"],
            "properties": {
                "total": { "type": "integer", "minimum": 0 },
                "offset": { "type": "integer", "minimum": 0 },
                "limit": { "type": "integer", "minimum": 1, "maximum": 1000 },
                "items": { "type": "array", "items": { "type": "object" } }
            }
        }),
    );
    schemas.insert(
        "Explanation".into(),
        json!({
            "type": "object",
            "required": ["seq", "entries", "outcome"],
            "properties": {
                "seq": { "type": "integer", "minimum": 1 },
                "entries": { "type": "array", "items": { "allOf": [entry_view.clone(), {
                    "type": "object",
                    "required": ["manager_id", "period"],
                    "properties": { "manager_id": { "type": "string" }, "period": { "type": "string" } }
                }] } },
                "outcome": { "type": "string", "enum": ["booked", "rejected", "parked", "nothing booked"] },
                "type": { "type": "string", "description": "The event type, when rejected or parked." },
                "reason": { "type": "string", "description": "The rejection reason code, when rejected." },
                "message": { "type": "string" },
                "waits_for": { "type": "string", "description": "What a parked event waits for." }
            }
        }),
    );
    schemas.insert(
        "EventName".into(),
        json!({
            "type": "object",
            "description": "A log record an explanation names: its seq, the event's source, id and type, and when it arrived.",
            "required": ["seq", "source", "id", "type", "arrived"],
            "properties": {
                "seq": { "type": "integer", "minimum": 1 },
                "source": { "type": "string" },
                "id": { "type": "string" },
                "type": { "type": "string" },
                "arrived": { "type": "string", "format": "date-time" }
            }
        }),
    );
    schemas.insert(
        "SubjectExplanation".into(),
        json!({
            "type": "object",
            "description": "Every entry of a payment or deal explained, as `premia explain --payment ID` / `--deal ID --format json` prints it.",
            "required": ["subject", "entries", "unbooked"],
            "properties": {
                "subject": { "type": "string", "description": "`payment ID` or `deal ID`." },
                "entries": { "type": "array", "description": "In the order the ledger booked them.", "items": { "allOf": [entry_explanation, {
                    "type": "object",
                    "required": ["events"],
                    "properties": {
                        "events": { "type": "array", "description": "The records the entry depends on, each with its role.",
                                    "items": { "allOf": [reference("EventName"), {
                                        "type": "object", "required": ["role"], "properties": { "role": { "type": "string" } }
                                    }] } },
                        "scheme": { "type": "object", "properties": {
                            "event": { "nullable": true, "description": "The scheme.activated record; null for the built-in scheme.",
                                       "allOf": [reference("EventName")] }
                        } }
                    }
                }] } },
                "unbooked": { "type": "array", "description": "The subject's records that booked nothing: here, those still waiting (parked); `premia explain` also lists those a rule refused (GET /v1/rejected lists every refusal).",
                              "items": {
                    "type": "object",
                    "required": ["seq", "type", "outcome"],
                    "properties": {
                        "seq": { "type": "integer", "minimum": 1 },
                        "type": { "type": "string" },
                        "outcome": { "type": "string", "enum": ["rejected", "parked"] },
                        "reason": { "type": "string" },
                        "message": { "type": "string" },
                        "waits_for": { "type": "string" }
                    }
                } }
            }
        }),
    );
    schemas.insert(
        "Entries".into(),
        json!({
            "type": "object",
            "required": ["manager_id", "from", "to", "entries"],
            "properties": {
                "manager_id": { "type": "string" },
                "from": { "type": "string" },
                "to": { "type": "string" },
                "entries": { "type": "array", "items": { "allOf": [entry_view, {
                    "type": "object", "required": ["period"], "properties": { "period": { "type": "string" } }
                }] } }
            }
        }),
    );

    let period = param(
        "period",
        "path",
        "A calendar month, YYYY-MM.",
        json!({ "type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$" }),
    );
    let manager = param("id", "path", "A manager id (case-sensitive).", json!({ "type": "string" }));
    let paging = vec![
        param("offset", "query", "Items to skip; 0 by default.", json!({ "type": "integer", "minimum": 0 })),
        param(
            "limit",
            "query",
            "Items in the page; 100 by default.",
            json!({ "type": "integer", "minimum": 1, "maximum": 1000 }),
        ),
    ];
    let reads_all = "Roles: admin, auditor.";
    let reads_manager = "Roles: admin, auditor, manager:<id> for that manager.";

    let mut paths = Map::new();
    let mut add = |path: &str, method: &str, operation: Value| {
        let item = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        item[method] = operation;
    };
    let asset = |id: &str, description: &str, media: &str| {
        open_op(
            id,
            description,
            json!({ "200": { "description": "The file, compiled into the binary.",
            "content": { media: { "schema": { "type": "string" } } } } }),
        )
    };
    add(
        "/",
        "get",
        asset("dashboard", "The managers' dashboard (HTML); it asks for a token and reads the API below.", "text/html"),
    );
    add("/dashboard/app.js", "get", asset("dashboardScript", "The dashboard's script.", "text/javascript"));
    add("/dashboard/app.css", "get", asset("dashboardStyle", "The dashboard's stylesheet.", "text/css"));
    add("/healthz", "get", open_op("healthz", "The process is alive.", json_ok("Alive.", json!({ "type": "object" }))));
    add(
        "/readyz",
        "get",
        open_op(
            "readyz",
            "Ready when NATS is connected and the serving loop (which holds the open store) answers; 503 otherwise.",
            json_ok("Ready.", json!({ "type": "object" })),
        ),
    );
    add(
        "/openapi.json",
        "get",
        open_op("openapi", "This document.", json_ok("The OpenAPI 3 document.", json!({ "type": "object" }))),
    );
    add(
        "/metrics",
        "get",
        op(
            "metrics",
            &format!("The serving loop's counters in the Prometheus text format. {reads_all}"),
            vec![],
            json!({ "200": { "description": "Prometheus text format 0.0.4.",
                              "content": { "text/plain": { "schema": { "type": "string" } } } } }),
        ),
    );
    add(
        "/v1/statements/{period}",
        "get",
        op(
            "statement",
            &format!("Every manager's statement of a period, as `premia statement` prints it. {reads_all}"),
            vec![period.clone()],
            json_ok("The statement.", statement.clone()),
        ),
    );
    add(
        "/v1/managers/{id}/statements/{period}",
        "get",
        op(
            "managerStatement",
            &format!("One manager's statement of a period. {reads_manager}"),
            vec![manager.clone(), period.clone()],
            json_ok("The statement.", statement.clone()),
        ),
    );
    add(
        "/v1/managers/{id}/entries",
        "get",
        op(
            "managerEntries",
            &format!("One manager's entries over the periods from..=to (at most 120). {reads_manager}"),
            vec![
                manager.clone(),
                param("from", "query", "The first period, YYYY-MM.", json!({ "type": "string" })).tap_required(),
                param("to", "query", "The last period, YYYY-MM; from by default.", json!({ "type": "string" })),
            ],
            json_ok("The entries, each with its period.", reference("Entries")),
        ),
    );
    add(
        "/v1/explain/{seq}",
        "get",
        op(
            "explain",
            "The entries a log record booked, with their one-line explanations, from the stored entries and the \
             current state (or, when it booked nothing, whether it was rejected or parked). Roles: admin, auditor; \
             manager:<id> only for a record that booked something for that manager, and only their entries.",
            vec![param(
                "seq",
                "path",
                "A log seq, as statements show beside each entry.",
                json!({ "type": "integer", "minimum": 1 }),
            )
            .tap_required()],
            json_ok("The explanation.", reference("Explanation")),
        ),
    );
    let explain_roles = "Roles: admin, auditor; manager:<id> only when it booked something for that manager, and \
                         only their entries.";
    let id = |what: &str| {
        param(
            "id",
            "path",
            &format!("A {what} id as the events carry it (case-sensitive; ids are shared by every source)."),
            json!({ "type": "string" }),
        )
    };
    add(
        "/v1/explain/payments/{id}",
        "get",
        op(
            "explainPayment",
            &format!(
                "Every entry of a payment (its commission and the clawbacks of its refunds), each with the arithmetic \
                 on the real numbers, the rule and scheme parameters, the scheme's activation and the events it \
                 depends on: `premia explain --payment ID --format json`, derived from the fold state and the \
                 stored entries. {explain_roles}"
            ),
            vec![id("payment")],
            json_ok("The explanation.", reference("SubjectExplanation")),
        ),
    );
    add(
        "/v1/explain/deals/{id}",
        "get",
        op(
            "explainDeal",
            &format!(
                "Every entry of a deal (its commissions, clawbacks and fine), explained as for a payment: \
                 `premia explain --deal ID --format json`. {explain_roles}"
            ),
            vec![id("deal")],
            json_ok("The explanation.", reference("SubjectExplanation")),
        ),
    );
    add(
        "/v1/rejected",
        "get",
        op(
            "rejected",
            &format!("Rejections as `premia rejected --format json` lists them, a page at a time. {reads_all}"),
            paging.clone(),
            json_ok("A page of rejections.", reference("Page")),
        ),
    );
    add(
        "/v1/pending",
        "get",
        op(
            "pending",
            &format!("Parked events as `premia pending --format json` lists them, a page at a time. {reads_all}"),
            paging,
            json_ok("A page of parked events.", reference("Page")),
        ),
    );
    add(
        "/v1/whoami",
        "get",
        op(
            "whoami",
            "The role of the token presented, and for a manager token the manager's id. Every role.",
            vec![],
            json_ok(
                "The role.",
                json!({ "type": "object", "required": ["role"], "properties": {
                    "role": { "type": "string", "enum": ["admin", "auditor", "manager", "publisher"] },
                    "manager_id": { "type": "string" } } }),
            ),
        ),
    );
    add(
        "/v1/periods",
        "get",
        op(
            "periods",
            "Every period with anything in it, in order, open or closed, and `current`: the latest open one (or \
             the latest, when all are closed). Roles: admin, auditor, manager:<id>.",
            vec![],
            json_ok(
                "The periods.",
                json!({ "type": "object", "required": ["current", "periods"], "properties": {
                    "current": { "type": "string", "nullable": true },
                    "periods": { "type": "array", "items": { "type": "object", "required": ["period", "status"],
                        "properties": { "period": { "type": "string" },
                                        "status": { "type": "string", "enum": ["open", "closed"] } } } } } }),
            ),
        ),
    );
    add(
        "/v1/managers",
        "get",
        op(
            "managers",
            &format!("Every manager the ledger has booked anything for, by id. {reads_all}"),
            vec![],
            json_ok(
                "The manager ids.",
                json!({ "type": "object", "required": ["managers"], "properties": {
                    "managers": { "type": "array", "items": { "type": "string" } } } }),
            ),
        ),
    );
    add(
        "/v1/managers/{id}/overdue/{period}",
        "get",
        op(
            "managerOverdue",
            &format!(
                "The manager's deals overdue at the end of the period, as `premia figures` counts them: due on or \
                 before it, not cancelled by then, with money outstanding. {reads_manager}"
            ),
            vec![manager.clone(), period.clone()],
            json_ok(
                "The overdue deals and their outstanding sum.",
                json!({ "type": "object", "required": ["manager_id", "period", "currency", "outstanding", "deals"],
                    "properties": {
                        "manager_id": { "type": "string" }, "period": { "type": "string" },
                        "currency": { "type": "string" }, "outstanding": { "type": "string" },
                        "deals": { "type": "array", "items": overdue_deal } } }),
            ),
        ),
    );
    add(
        "/v1/managers/{id}/feed",
        "get",
        op(
            "managerFeed",
            &format!(
                "The manager's accrual feed as Server-Sent Events (the messages of schemas/feed/accrual.json); \
                 the event id is the feed stream sequence and Last-Event-ID resumes after it. {reads_manager}"
            ),
            vec![
                manager,
                param(
                    "Last-Event-ID",
                    "header",
                    "Resume after this feed sequence.",
                    json!({ "type": "integer", "minimum": 0 }),
                ),
            ],
            json!({ "200": { "description": "An endless event stream.",
                              "content": { "text/event-stream": { "schema": { "type": "string" } } } } }),
        ),
    );
    let mut post = op(
        "postEvents",
        "One CloudEvent (structured mode) or a JSON array of them (batched mode), published to the events \
         stream only if every one is valid (schemas/events/); 202 once JetStream has each. At most 8 MiB and \
         10,000 events. Roles: admin, publisher.",
        vec![],
        json!({ "202": { "description": "Published, with the stream sequences.",
                          "content": { "application/json": { "schema": { "type": "object" } } } } }),
    );
    post["requestBody"] = json!({
        "required": true,
        "content": {
            "application/cloudevents+json": { "schema": { "type": "object" } },
            "application/cloudevents-batch+json": { "schema": { "type": "array", "items": { "type": "object" } } },
            "application/json": { "schema": { "oneOf": [ { "type": "object" }, { "type": "array", "items": { "type": "object" } } ] } }
        }
    });
    add("/v1/events", "post", post);

    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "premia",
            "description": "premia's HTTP API: statements, entries, explanations, rejections, parked events, the \
                            accrual feed, event intake, health and metrics. See docs/ARCHITECTURE.md.",
            "version": env!("CARGO_PKG_VERSION")
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer",
                "description": "A token from [[http.tokens]] (the config holds its SHA-256) with its role: admin, auditor, manager:<id> or publisher." } },
            "schemas": schemas
        }
    })
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn param(name: &str, location: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": location, "description": description, "required": location == "path", "schema": schema })
}

trait Required {
    fn tap_required(self) -> Value;
}

impl Required for Value {
    fn tap_required(mut self) -> Value {
        self["required"] = Value::Bool(true);
        self
    }
}

fn json_ok(description: &str, schema: Value) -> Value {
    json!({ "200": { "description": description, "content": { "application/json": { "schema": schema } } } })
}

fn error(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": reference("Error") } } })
}

/// An operation behind a bearer token: 401 without a valid one, 403 outside its role.
fn op(id: &str, description: &str, parameters: Vec<Value>, mut responses: Value) -> Value {
    responses["400"] = error("A malformed parameter.");
    responses["401"] = error("No bearer token, or not a configured one.");
    responses["403"] = error("The token's role may not read (or post) this.");
    responses["404"] = error("Nothing of that name.");
    responses["503"] = error("The serving loop did not answer in time, or is not running.");
    json!({
        "operationId": id,
        "description": description,
        "parameters": parameters,
        "security": [ { "bearer": [] } ],
        "responses": responses
    })
}

/// An operation anyone may call.
fn open_op(id: &str, description: &str, responses: Value) -> Value {
    json!({ "operationId": id, "description": description, "security": [], "responses": responses })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_document_and_nothing_else() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        let mut documented: Vec<(String, String)> = paths
            .iter()
            .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |m| (m.clone(), path.clone())))
            .collect();
        documented.sort();
        let mut routes: Vec<(String, String)> =
            crate::ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        routes.sort();
        assert_eq!(documented, routes);
    }

    #[test]
    fn the_router_serves_exactly_the_listed_routes() {
        // The paths of the `.route(` calls in `router`'s source are exactly those of ROUTES, so
        // a route added without its line there (or listed but not routed) fails here.
        let source = include_str!("lib.rs");
        let body = source.split("pub fn router(").nth(1).unwrap().split("\n}\n").next().unwrap();
        let routed: Vec<&str> = body.split(".route(\"").skip(1).map(|s| s.split('"').next().unwrap()).collect();
        let mut listed: Vec<&str> = crate::ROUTES.iter().map(|(_, p)| *p).collect();
        let mut routed_sorted = routed.clone();
        routed_sorted.sort();
        listed.sort();
        assert_eq!(routed_sorted, listed);
    }

    #[test]
    fn bearer_auth_and_the_statement_schema_are_components() {
        let doc = document();
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        assert!(doc["components"]["schemas"]["Statement"]["properties"]["managers"].is_object(), "{doc}");
        assert_eq!(doc["paths"]["/v1/statements/{period}"]["get"]["security"][0]["bearer"], json!([]));
        assert_eq!(doc["paths"]["/healthz"]["get"]["security"], json!([]));
        // No reference points at a schema the document lacks.
        let text = doc.to_string();
        for piece in text.split("\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(doc["components"]["schemas"][name].is_object(), "dangling $ref to {name}");
        }
    }
}
