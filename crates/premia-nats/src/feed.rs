//! The accrual feed's message: what a committed batch changed for one manager, its JSON Schema,
//! and how a batch's entries become one message per manager.

/// One feed message: what a batch changed for one manager.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
#[schemars(
    title = "premia accrual feed message",
    description = "Published on premia.accruals.<manager id> after each committed batch, for every manager the batch booked entries for or whose plan it changed; kept in the PREMIA_FEED stream."
)]
pub struct FeedMessage {
    pub manager_id: String,
    /// The ledger position after the batch: a consumer can tell updates apart and order them.
    pub ledger_seq: u64,
    pub updates: Vec<premia_core::statement::AccrualUpdate>,
}

/// The JSON Schema (2020-12) of a feed message, as checked in under `schemas/feed/`.
pub fn feed_schema() -> serde_json::Value {
    let mut schema = schemars::SchemaGenerator::default().root_schema_for::<FeedMessage>().to_value();
    if let serde_json::Value::Object(map) = &mut schema {
        map.insert("$id".into(), "urn:premia:schema:feed:accrual".into());
    }
    schema
}

/// The feed messages for the entries a batch booked, one per manager, in manager order.
/// Plan changes (manager, period) without entries get an update of their own: the projected
/// bonus moved.
pub fn feed_messages(
    state: &premia_core::LedgerState,
    booked: &[premia_core::Entry],
    plan_changes: &[(String, premia_core::Period)],
) -> Vec<FeedMessage> {
    let mut by_manager: std::collections::BTreeMap<
        &str,
        std::collections::BTreeMap<premia_core::Period, Vec<&premia_core::Entry>>,
    > = std::collections::BTreeMap::new();
    for entry in booked {
        by_manager.entry(&entry.manager_id).or_default().entry(entry.period).or_default().push(entry);
    }
    for (manager_id, period) in plan_changes {
        by_manager.entry(manager_id).or_default().entry(*period).or_default();
    }
    by_manager
        .into_iter()
        .map(|(manager_id, periods)| FeedMessage {
            manager_id: manager_id.to_string(),
            ledger_seq: state.next_seq() - 1,
            updates: periods
                .into_iter()
                .filter_map(|(period, entries)| state.accrual_update(period, manager_id, &entries))
                .collect(),
        })
        .collect()
}
