//! What the dashboard finds its way by: whose token this is (`/v1/whoami`), the periods
//! (`/v1/periods`), the managers (`/v1/managers`) and a manager's overdue deals
//! (`/v1/managers/{id}/overdue/{period}`).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::Json;
use premia_ledger::Ledger;
use serde_json::json;

use crate::auth::Role;
use crate::errors::{to_json, unknown_manager, Answer};
use crate::state::{ApiState, QUERY_TIMEOUT};
use crate::statements::manager_period;

/// The role of the token presented: what the dashboard needs to know whose page to show.
pub(crate) async fn whoami(State(api): State<ApiState>, headers: HeaderMap) -> Answer {
    let answer = match api.role(&headers)? {
        Role::Admin => json!({ "role": "admin" }),
        Role::Auditor => json!({ "role": "auditor" }),
        Role::Publisher => json!({ "role": "publisher" }),
        Role::Manager(id) => json!({ "role": "manager", "manager_id": id }),
    };
    Ok(Json(answer).into_response())
}

/// Every period with anything in it, open or closed, and the one a dashboard opens on: the
/// latest open period (the ledger has no clock; the CRM's dates say what is current).
pub(crate) async fn periods(State(api): State<ApiState>, headers: HeaderMap) -> Answer {
    api.reader(&headers)?;
    let answer = api
        .ask(QUERY_TIMEOUT, |ledger, _| {
            let state = ledger.state();
            let periods = state.periods();
            let current = periods.iter().rev().find(|p| !state.is_closed(**p)).or(periods.last());
            json!({
                "current": current.map(|p| p.to_string()),
                "periods": periods.iter().map(|p| json!({
                    "period": p.to_string(),
                    "status": if state.is_closed(*p) { "closed" } else { "open" },
                })).collect::<Vec<_>>(),
            })
        })
        .await?;
    Ok(Json(answer).into_response())
}

/// Every manager the ledger has booked anything for, by id.
pub(crate) async fn managers(State(api): State<ApiState>, headers: HeaderMap) -> Answer {
    api.require_everything(&headers)?;
    let answer = api
        .ask(QUERY_TIMEOUT, |ledger, _| {
            let mut ids: Vec<&str> =
                ledger.state().books().values().flat_map(|managers| managers.keys().map(|id| &**id)).collect();
            ids.sort_unstable();
            ids.dedup();
            json!({ "managers": ids })
        })
        .await?;
    Ok(Json(answer).into_response())
}

/// Whether the ledger has booked anything for this manager in any period.
fn known_manager(ledger: &Ledger, manager: &str) -> bool {
    ledger.state().books().values().any(|managers| managers.contains_key(manager))
}

/// A manager's deals overdue at the end of a period (as `premia figures` counts them), each
/// with what is still outstanding.
pub(crate) async fn overdue(
    State(api): State<ApiState>,
    headers: HeaderMap,
    Path((manager, period)): Path<(String, String)>,
) -> Answer {
    let period = manager_period(&api, &headers, &manager, &period)?;
    let answer = api
        .ask(QUERY_TIMEOUT, move |ledger, _| {
            if !known_manager(ledger, &manager) {
                return Err(unknown_manager(&manager));
            }
            let state = ledger.state();
            let deals = state.overdue_deals(period, &manager);
            let outstanding: rust_decimal::Decimal = deals.iter().map(|d| d.outstanding).sum();
            Ok(json!({
                "manager_id": manager,
                "period": period.to_string(),
                "currency": state.scheme().currency,
                "outstanding": premia_core::money::money_text(outstanding),
                "deals": to_json(&deals)?,
            }))
        })
        .await??;
    Ok(Json(answer).into_response())
}
