//! Statements and a manager's entries, read from the statements' read model: a whole period's
//! (`/v1/statements/{period}`), one manager's (`/v1/managers/{id}/statements/{period}`), and a
//! manager's entries over a range of periods (`/v1/managers/{id}/entries`).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use premia_core::Period;
use premia_ledger::read_model::Prepared;
use serde_json::{json, Value};

use crate::errors::{to_json, Answer, ApiError};
use crate::state::ApiState;

/// The most periods one entries request may span (ten years).
const MAX_PERIODS: usize = 120;

pub(crate) fn parse_period(text: &str) -> Result<Period, ApiError> {
    Period::parse(text).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{text:?} is not a period; write a calendar month as YYYY-MM, such as 2026-11"),
        )
    })
}

/// The period of a `/v1/managers/{id}/.../{period}` route, once the token may read the manager.
pub(crate) fn manager_period(
    api: &ApiState,
    headers: &HeaderMap,
    manager: &str,
    period: &str,
) -> Result<Period, ApiError> {
    api.require_manager(headers, manager)?;
    parse_period(period)
}

pub(crate) async fn statement_all(
    State(api): State<ApiState>,
    headers: HeaderMap,
    Path(period): Path<String>,
) -> Answer {
    api.require_everything(&headers)?;
    let period = parse_period(&period)?;
    let prepared = api.prepared(period, None).await?;
    json_response(prepared).await
}

pub(crate) async fn statement_manager(
    State(api): State<ApiState>,
    headers: HeaderMap,
    Path((manager, period)): Path<(String, String)>,
) -> Answer {
    let period = manager_period(&api, &headers, &manager, &period)?;
    let prepared = api.prepared(period, Some(manager)).await?;
    json_response(prepared).await
}

/// The statement's JSON: the bytes rendered already, or rendered now on a blocking thread (a
/// whole period's runs to megabytes).
async fn json_response(prepared: Prepared) -> Answer {
    let bytes = match prepared.cached() {
        Some(bytes) => bytes,
        None => tokio::task::spawn_blocking(move || prepared.json())
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?,
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// `from..=to` of an entries request (`to` defaults to `from`), every period in it.
fn period_range(params: &HashMap<String, String>) -> Result<(Period, Period, Vec<Period>), ApiError> {
    let bad = |m: &str| ApiError::new(StatusCode::BAD_REQUEST, m);
    let from = parse_period(params.get("from").ok_or_else(|| bad("give the first period as from=YYYY-MM"))?)?;
    let to = match params.get("to") {
        Some(to) => parse_period(to)?,
        None => from,
    };
    if to < from {
        return Err(bad("to comes before from; give from=YYYY-MM&to=YYYY-MM with from <= to"));
    }
    let mut periods = vec![from];
    while let Some(&last) = periods.last() {
        if last >= to {
            break;
        }
        if periods.len() >= MAX_PERIODS {
            return Err(bad(&format!("ask for at most {MAX_PERIODS} periods at once")));
        }
        periods.push(last.next());
    }
    Ok((from, to, periods))
}

/// A manager's entries over `from..=to` (periods), as the statements show them, each with its
/// period.
pub(crate) async fn entries(
    State(api): State<ApiState>,
    headers: HeaderMap,
    Path(manager): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Answer {
    api.require_manager(&headers, &manager)?;
    let (from, to, periods) = period_range(&params)?;
    let mut entries = Vec::new();
    for period in periods {
        let prepared = api.prepared(period, Some(manager.clone())).await?;
        let statement = tokio::task::spawn_blocking(move || prepared.statement()).await.map_err(ApiError::internal)?;
        for m in statement.managers.iter().filter(|m| m.manager_id == manager) {
            for entry in &m.entries {
                let mut value = to_json(entry)?;
                value["period"] = Value::String(period.to_string());
                entries.push(value);
            }
        }
    }
    let answer = json!({ "manager_id": manager, "from": from.to_string(), "to": to.to_string(), "entries": entries });
    Ok(Json(answer).into_response())
}
