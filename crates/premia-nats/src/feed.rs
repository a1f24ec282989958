//! The accrual feed's message: what one ledger record changed for one manager, its JSON
//! Schema, and how a record's fold becomes one message per manager.
//!
//! A message is a function of the log alone (the record and the state after it), and its
//! `Nats-Msg-Id` is `<manager>:<ledger_seq>`: replicas of one stream publish the same messages,
//! and JetStream keeps one of each.

/// One feed message: what one ledger record changed for one manager.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
#[schemars(
    title = "premia accrual feed message",
    description = "Published on premia.accruals.<manager id> for every ledger record that booked entries for the manager or changed their plan, once the batch holding it is durable, with Nats-Msg-Id <manager id>:<ledger_seq>; kept in the PREMIA_FEED stream. Replicas of one stream publish the same messages, and JetStream keeps one of each."
)]
pub struct FeedMessage {
    pub manager_id: String,
    /// The record whose fold made these updates (the totals are as of right after it): a
    /// consumer can tell messages apart and order them.
    pub ledger_seq: u64,
    pub updates: Vec<premia_core::statement::AccrualUpdate>,
}

/// A feed message with when its record was stored in the events stream (ms since the epoch, the
/// stream's clock): what tells the announcer whether the feed stream's duplicate window still
/// covers a copy another replica may have published.
pub(crate) struct StampedFeed {
    pub(crate) message: FeedMessage,
    pub(crate) stored_ms: i64,
}

impl FeedMessage {
    /// The message's `Nats-Msg-Id`: the same for every ledger of one stream. The seq is last
    /// and numeric, so any manager id gives a distinct id.
    pub fn message_id(&self) -> String {
        format!("{}:{}", self.manager_id, self.ledger_seq)
    }
}

/// The JSON Schema (2020-12) of a feed message, as checked in under `schemas/feed/`.
pub fn feed_schema() -> serde_json::Value {
    let mut schema = schemars::SchemaGenerator::default().root_schema_for::<FeedMessage>().to_value();
    if let serde_json::Value::Object(map) = &mut schema {
        map.insert("$id".into(), "urn:premia:schema:feed:accrual".into());
    }
    schema
}

/// The feed messages of one record (`seq`), one per manager, in manager order, from the state
/// right after its fold: the entries it booked (its own and those of the parked records it
/// released) and the plan it assigned, which moves the projected bonus without an entry.
pub fn record_feed(
    state: &premia_core::LedgerState,
    seq: u64,
    booked: &[premia_core::Entry],
    plan_change: Option<(&str, premia_core::Period)>,
) -> Vec<FeedMessage> {
    let mut by_manager: std::collections::BTreeMap<
        &str,
        std::collections::BTreeMap<premia_core::Period, Vec<&premia_core::Entry>>,
    > = std::collections::BTreeMap::new();
    for entry in booked {
        by_manager.entry(&entry.manager_id).or_default().entry(entry.period).or_default().push(entry);
    }
    if let Some((manager_id, period)) = plan_change {
        by_manager.entry(manager_id).or_default().entry(period).or_default();
    }
    by_manager
        .into_iter()
        .map(|(manager_id, periods)| FeedMessage {
            manager_id: manager_id.to_string(),
            ledger_seq: seq,
            updates: periods
                .into_iter()
                .filter_map(|(period, entries)| state.accrual_update(period, manager_id, &entries))
                .collect(),
        })
        .collect()
}
