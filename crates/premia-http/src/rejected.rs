//! Rejections and parked events (`/v1/rejected`, `/v1/pending`), a page at a time, in the JSON
//! of `premia rejected` and `premia pending` ([`crate::views`]).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use premia_ledger::Ledger;
use serde_json::{json, Value};

use crate::errors::{Answer, ApiError};
use crate::state::{ApiState, QUERY_TIMEOUT};
use crate::views;

/// Paging: the default and the largest page.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// `offset` and `limit` of a paged list.
fn paging(params: &HashMap<String, String>) -> Result<(usize, usize), ApiError> {
    let number = |name: &str, default: usize| match params.get(name) {
        None => Ok(default),
        Some(text) => text.parse::<usize>().map_err(|_| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("{name} must be a whole number of 0 or more, not {text:?}"))
        }),
    };
    let offset = number("offset", 0)?;
    let limit = number("limit", DEFAULT_LIMIT)?;
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    Ok((offset, limit))
}

fn page(items: Vec<Value>, offset: usize, limit: usize) -> Value {
    let total = items.len();
    let items: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    json!({ "total": total, "offset": offset, "limit": limit, "items": items })
}

/// Rejections as `premia rejected --format json` lists them, a page at a time.
pub(crate) async fn rejected(
    State(api): State<ApiState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Answer {
    listed(api, headers, params, |ledger| {
        let items = views::rejections(ledger).map_err(ApiError::internal)?;
        Ok(items.iter().map(views::RejectionItem::to_json).collect())
    })
    .await
}

/// Parked events as `premia pending --format json` lists them, a page at a time.
pub(crate) async fn pending(
    State(api): State<ApiState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Answer {
    listed(api, headers, params, |ledger| Ok(views::pending_rows(ledger))).await
}

/// A page of what `list` reads on the serving loop, for the admin and auditor roles.
async fn listed(
    api: ApiState,
    headers: HeaderMap,
    params: HashMap<String, String>,
    list: impl FnOnce(&Ledger) -> Result<Vec<Value>, ApiError> + Send + 'static,
) -> Answer {
    api.require_everything(&headers)?;
    let (offset, limit) = paging(&params)?;
    let items = api.ask(QUERY_TIMEOUT, move |ledger, _| list(ledger)).await??;
    Ok(Json(page(items, offset, limit)).into_response())
}
