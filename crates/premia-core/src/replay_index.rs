//! Which log records a period's statement depends on, so that a replay of one period folds
//! those records only (docs/REPLAY.md).
//!
//! The fold couples records in three ways, and the index follows each:
//!
//! - **Global records**: `scheme.activated` (the rules, and validation, of everything after it)
//!   and `period.closed` (which period every later fact is booked in). Every replay folds all
//!   of them; there are a handful per month.
//! - **Plans**: `plan.assigned` for period P touches only P's book.
//! - **Components**: a deal, its payments, their refunds, its cancellation and late notices read
//!   and change each other's state (balance, the rate a refund claws back at, "id already used",
//!   parking). Records are joined by the ids they carry (`deal_id`, `payment_id`, `refund_id`)
//!   with a union-find, so a payment id reused on another deal joins both deals: the rule that
//!   rejects the second use then sees the first. No rule reads across components, so folding a
//!   component's records with all global records, in log order, gives each of them exactly the
//!   outcome it has in the full fold.
//!
//! A component is listed under every period it may book into. A record dated in period Q and
//! folded at sequence number t is booked in the first period >= Q not closed before t. It is
//! folded at its own seq, or (when it was parked) at the seq of the later record of its
//! component that released it. So, whenever a record joins a component, each member's booking
//! period as of that seq is added to the component's periods: a superset of where it can land,
//! exact for records that did not wait. The component is also listed under the periods its
//! facts are dated in, which `replay --diff-as-of` needs to find adjustments booked elsewhere.
//!
//! This module is pure: the ledger crate stores the index beside the log and reads records.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::calendar::{parse_date, Period};
use crate::stable_maps::StableMap;

/// What the index needs from one log record: read with a light parse of the envelope and
/// `data`. Records in the log passed validation, so the fields it reads are well formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKeys {
    Scheme,
    Close {
        period: Period,
    },
    Plan {
        period: Period,
        manager: String,
    },
    /// A fact about a deal: the ids it joins, the date that picks its period, its manager
    /// (`deal.created` only).
    Fact {
        keys: Vec<String>,
        dated: Option<Period>,
        manager: Option<String>,
    },
    /// Not understood by the light parse: folded in every replay, which is always safe.
    Unknown,
}

/// The envelope with only what the index reads; serde skips every other member without
/// building it (this parse runs once per log record when the index is built).
#[derive(Deserialize)]
struct LightEnvelope {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    data: Option<LightData>,
}

/// The `data` members the index reads. Each is kept only when it is a string: a publisher's own
/// extra member with one of these names in another type would make it `None`, and the record
/// then falls back to being folded in every replay, which is always safe.
#[derive(Deserialize, Default)]
#[serde(default)]
struct LightData {
    deal_id: Text,
    payment_id: Text,
    refund_id: Text,
    manager_id: Text,
    period: Text,
    created_on: Text,
    paid_on: Text,
    refunded_on: Text,
    cancelled_on: Text,
}

#[derive(Default)]
struct Text(Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        Ok(match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Text(Some(s)),
            _ => Text(None),
        })
    }
}

impl Text {
    fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }

    fn period(&self) -> Option<Period> {
        self.get().and_then(parse_date).map(Period::of)
    }
}

impl RecordKeys {
    pub fn of(raw: &[u8]) -> RecordKeys {
        let Ok(envelope) = serde_json::from_slice::<LightEnvelope>(raw) else { return RecordKeys::Unknown };
        if envelope.event_type == "scheme.activated" {
            return RecordKeys::Scheme;
        }
        let Some(data) = envelope.data else { return RecordKeys::Unknown };
        let key = |prefix: &str, field: &Text| field.get().map(|id| format!("{prefix}{id}"));
        let fact = |keys: Vec<Option<String>>, dated: Option<Period>, manager: Option<String>| match keys
            .into_iter()
            .collect::<Option<Vec<String>>>(
        ) {
            Some(keys) => RecordKeys::Fact { keys, dated, manager },
            None => RecordKeys::Unknown,
        };
        match envelope.event_type.as_str() {
            "period.closed" => match data.period.get().and_then(Period::parse) {
                Some(period) => RecordKeys::Close { period },
                None => RecordKeys::Unknown,
            },
            "plan.assigned" => match (data.period.get().and_then(Period::parse), data.manager_id.get()) {
                (Some(period), Some(manager)) => RecordKeys::Plan { period, manager: manager.to_string() },
                _ => RecordKeys::Unknown,
            },
            "deal.created" => fact(
                vec![key("d:", &data.deal_id)],
                data.created_on.period(),
                data.manager_id.get().map(str::to_string),
            ),
            "payment.received" => {
                fact(vec![key("d:", &data.deal_id), key("p:", &data.payment_id)], data.paid_on.period(), None)
            }
            "payment.refunded" => {
                fact(vec![key("p:", &data.payment_id), key("r:", &data.refund_id)], data.refunded_on.period(), None)
            }
            "deal.cancelled" => fact(vec![key("d:", &data.deal_id)], data.cancelled_on.period(), None),
            "payment.late" => fact(vec![key("d:", &data.deal_id)], None, None),
            _ => RecordKeys::Unknown,
        }
    }
}

const NO_NODE: u32 = u32::MAX;

/// FNV-1a, 64 bits: stable across runs and versions, unlike the std hasher, since the index
/// is stored.
fn key_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Inserts into a sorted vector of few elements; true when it was not there.
fn insert_sorted<T: Ord>(v: &mut Vec<T>, x: T) -> bool {
    match v.binary_search(&x) {
        Ok(_) => false,
        Err(at) => {
            v.insert(at, x);
            true
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Component {
    /// The seqs of its records.
    members: Vec<u64>,
    /// Its deals' managers (indexes into `manager_names`), sorted.
    managers: Vec<u32>,
    /// Periods its records may be booked in, and periods its facts are dated in, sorted.
    periods: Vec<Period>,
    /// The distinct periods its facts are dated in, sorted: where a member lands depends only
    /// on that and the seq it is folded at, so a new member costs a few months, not every member.
    dated: Vec<Period>,
}

/// The records one period depends on, as the index lists them (see [`ReplayIndex::period_file`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodRecords {
    /// (seq, managers of the record's component; empty when it has no deal yet), in seq order.
    pub records: Vec<(u64, Vec<String>)>,
}

impl PeriodRecords {
    /// The seqs to fold for one manager (or all), up to `until` inclusive.
    pub fn seqs(&self, manager: Option<&str>, until: u64) -> impl Iterator<Item = u64> + '_ {
        let manager = manager.map(str::to_string);
        self.records
            .iter()
            .filter(move |(seq, managers)| {
                *seq <= until
                    && match &manager {
                        Some(m) => managers.is_empty() || managers.contains(m),
                        None => true,
                    }
            })
            .map(|(seq, _)| *seq)
    }
}

/// The index, built by adding log records in order. Its state is kept between runs (it is a
/// cache: deleting it only costs a rebuild) and extended with the records written since. Its
/// hash maps are written in key order (stable_maps.rs): the same log gives the same bytes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplayIndex {
    /// Records `1..next_seq` are indexed.
    next_seq: u64,
    /// Arrival time (Unix ms) of record `i + 1`.
    arrivals: Vec<i64>,
    /// Scheme activations, closes and unknown records: folded in every replay.
    globals: Vec<u64>,
    schemes: Vec<u64>,
    /// The first close of each period (a later one is rejected by the rule and changes nothing).
    closes: BTreeMap<Period, u64>,
    plans: BTreeMap<Period, Vec<(u64, String)>>,
    /// Union-find nodes by a 64-bit hash of `d:`/`p:`/`r:` + id. Two ids with one hash would
    /// join their components: a replay would fold more records than needed, never fewer.
    nodes: StableMap<u64, u32>,
    manager_names: Vec<String>,
    manager_ids: StableMap<String, u32>,
    parent: Vec<u32>,
    components: StableMap<u32, Component>,
    /// The node of record `i + 1` (`NO_NODE` for global records and plans).
    record_node: Vec<u32>,
    /// Component roots by the periods they may book into or are dated in.
    by_period: BTreeMap<Period, BTreeSet<u32>>,
    /// Periods whose record list changed since the last [`take_dirty`](Self::take_dirty).
    #[serde(skip)]
    dirty: BTreeSet<Period>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the replay index covers records up to {covered} and was given record {seq}")]
pub struct IndexGap {
    pub covered: u64,
    pub seq: u64,
}

impl ReplayIndex {
    pub fn new() -> ReplayIndex {
        ReplayIndex { next_seq: 1, ..ReplayIndex::default() }
    }

    /// The next log record the index expects.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn globals(&self) -> &[u64] {
        &self.globals
    }

    pub fn schemes(&self) -> &[u64] {
        &self.schemes
    }

    pub fn arrivals(&self) -> &[i64] {
        &self.arrivals
    }

    pub fn closes(&self) -> &BTreeMap<Period, u64> {
        &self.closes
    }

    /// Every period the index lists records for.
    pub fn periods(&self) -> BTreeSet<Period> {
        self.by_period.keys().chain(self.plans.keys()).copied().collect()
    }

    /// Periods whose record list changed since the last call.
    pub fn take_dirty(&mut self) -> BTreeSet<Period> {
        std::mem::take(&mut self.dirty)
    }

    fn find(&mut self, mut node: u32) -> u32 {
        while self.parent[node as usize] != node {
            let up = self.parent[self.parent[node as usize] as usize];
            self.parent[node as usize] = up;
            node = up;
        }
        node
    }

    fn node(&mut self, key: &str) -> u32 {
        let key = key_hash(key);
        if let Some(&n) = self.nodes.get(&key) {
            return self.find(n);
        }
        let n = self.parent.len() as u32;
        self.parent.push(n);
        self.nodes.insert(key, n);
        self.components.insert(n, Component::default());
        n
    }

    fn manager_id(&mut self, name: String) -> u32 {
        if let Some(&id) = self.manager_ids.get(&name) {
            return id;
        }
        let id = self.manager_names.len() as u32;
        self.manager_names.push(name.clone());
        self.manager_ids.insert(name, id);
        id
    }

    fn union(&mut self, a: u32, b: u32) -> u32 {
        let (a, b) = (self.find(a), self.find(b));
        if a == b {
            return a;
        }
        let size = |i: &ReplayIndex, n: u32| i.component(n).members.len();
        let (keep, gone) = if size(self, a) >= size(self, b) { (a, b) } else { (b, a) };
        self.parent[gone as usize] = keep;
        let absorbed = self.take_component(gone);
        for period in &absorbed.periods {
            if let Some(roots) = self.by_period.get_mut(period) {
                roots.remove(&gone);
                roots.insert(keep);
            }
            self.dirty.insert(*period);
        }
        let target = self.components.entry(keep).or_default();
        // Members are put in seq order where they are read, not at every union.
        target.members.extend(absorbed.members);
        for m in absorbed.managers {
            insert_sorted(&mut target.managers, m);
        }
        for p in absorbed.periods {
            insert_sorted(&mut target.periods, p);
        }
        for p in absorbed.dated {
            insert_sorted(&mut target.dated, p);
        }
        keep
    }

    /// The period a fact dated in `dated` is booked in when folded at `seq`: its own, or the
    /// first after it not closed by a record before `seq` (RULES.md section 8, fold/rules.rs).
    fn booking(&self, dated: Period, seq: u64) -> Period {
        let mut period = dated;
        while self.closes.get(&period).is_some_and(|&closed_at| closed_at < seq) {
            period = period.next();
        }
        period
    }

    /// Adds the next log record.
    pub fn add(&mut self, seq: u64, arrived_ms: i64, raw: &[u8]) -> Result<(), IndexGap> {
        if seq != self.next_seq {
            return Err(IndexGap { covered: self.next_seq.saturating_sub(1), seq });
        }
        let mut record_node = NO_NODE;
        match RecordKeys::of(raw) {
            RecordKeys::Scheme => {
                self.globals.push(seq);
                self.schemes.push(seq);
            }
            RecordKeys::Close { period } => {
                self.globals.push(seq);
                self.closes.entry(period).or_insert(seq);
            }
            RecordKeys::Unknown => self.globals.push(seq),
            RecordKeys::Plan { period, manager } => {
                self.plans.entry(period).or_default().push((seq, manager));
                self.dirty.insert(period);
            }
            RecordKeys::Fact { keys, dated, manager } => record_node = self.add_fact(seq, &keys, dated, manager),
        }
        self.arrivals.push(arrived_ms);
        self.record_node.push(record_node);
        self.next_seq += 1;
        Ok(())
    }

    /// Adds fact `seq` to the component its ids join; the component's root, or `NO_NODE` when
    /// it carries no id (then it is folded in every replay).
    fn add_fact(&mut self, seq: u64, keys: &[String], dated: Option<Period>, manager: Option<String>) -> u32 {
        let mut root = NO_NODE;
        for key in keys {
            let n = self.node(key);
            root = if root == NO_NODE { n } else { self.union(root, n) };
        }
        if root == NO_NODE {
            self.globals.push(seq);
            return NO_NODE;
        }
        // Where each member would be booked if folded now (a parked one is folded at the seq
        // of a later record of its component: this one, maybe).
        let mut component = self.take_component(root);
        component.members.push(seq);
        if let Some(q) = dated {
            insert_sorted(&mut component.dated, q);
        }
        let mut periods = BTreeSet::new();
        for q in &component.dated {
            periods.insert(*q);
            periods.insert(self.booking(*q, seq));
        }
        if let Some(m) = manager {
            let id = self.manager_id(m);
            insert_sorted(&mut component.managers, id);
        }
        for period in &periods {
            if insert_sorted(&mut component.periods, *period) {
                self.by_period.entry(*period).or_default().insert(root);
            }
        }
        self.dirty.extend(component.periods.iter().copied());
        self.components.insert(root, component);
        root
    }

    /// The records period `period` depends on, besides the global ones: its plans and the
    /// records of every component that may book into it or has facts dated in it.
    pub fn period_file(&mut self, period: Period) -> PeriodRecords {
        let mut records: Vec<(u64, Vec<String>)> = Vec::new();
        for (seq, manager) in self.plans.get(&period).map(Vec::as_slice).unwrap_or_default() {
            records.push((*seq, vec![manager.clone()]));
        }
        // A union moves the absorbed root's periods to the root that stays: only roots are listed.
        for root in self.by_period.get(&period).into_iter().flatten() {
            let component = self.component(*root);
            let managers: Vec<String> =
                component.managers.iter().map(|&m| self.manager_names[m as usize].clone()).collect();
            records.extend(component.members.iter().map(|seq| (*seq, managers.clone())));
        }
        records.sort_unstable_by_key(|(seq, _)| *seq);
        PeriodRecords { records }
    }

    /// The records of the component log record `seq` belongs to (empty for global records and
    /// plans), in seq order.
    pub fn component_of_record(&mut self, seq: u64) -> Vec<u64> {
        let Some(&node) = seq.checked_sub(1).and_then(|i| self.record_node.get(i as usize)) else {
            return Vec::new();
        };
        if node == NO_NODE {
            return Vec::new();
        }
        let root = self.find(node);
        self.members(root)
    }

    /// The records of the component holding deal `d:ID`, payment `p:ID` or refund `r:ID`.
    pub fn component_of_key(&mut self, key: &str) -> Vec<u64> {
        let Some(&node) = self.nodes.get(&key_hash(key)) else { return Vec::new() };
        let root = self.find(node);
        self.members(root)
    }

    fn members(&self, root: u32) -> Vec<u64> {
        let mut seqs: Vec<u64> = self.component(root).members.clone();
        seqs.sort_unstable();
        seqs
    }

    /// The component of root `root`. Every node gets one when it is made, and a root keeps it
    /// until a union makes it a child.
    fn component(&self, root: u32) -> &Component {
        match self.components.get(&root) {
            Some(component) => component,
            None => unreachable!("node {root} is a root, so it has a component"),
        }
    }

    /// [`component`](Self::component), taken out of the index.
    fn take_component(&mut self, root: u32) -> Component {
        match self.components.remove(&root) {
            Some(component) => component,
            None => unreachable!("node {root} is a root, so it has a component"),
        }
    }

    /// The last record received at or before `ms` (Unix milliseconds): records are numbered in
    /// the order received, so this is the end of the prefix of records that arrived by then. A
    /// record stamped earlier than one before it (a clock set back) does not extend the prefix.
    pub fn seq_received_by(&self, ms: i64) -> u64 {
        self.arrivals.iter().take_while(|&&a| a <= ms).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(t: &str, data: &str) -> Vec<u8> {
        format!(r#"{{"specversion":"1.0","id":"x","source":"s","type":"{t}","data":{data}}}"#).into_bytes()
    }

    fn p(text: &str) -> Period {
        Period::parse(text).unwrap()
    }

    /// An index of the records `(type, data)`, numbered from 1 and all received at time 0.
    fn indexed(records: &[(&str, &str)]) -> ReplayIndex {
        let mut index = ReplayIndex::new();
        for (i, (t, data)) in records.iter().enumerate() {
            index.add(i as u64 + 1, 0, &line(t, data)).unwrap();
        }
        index
    }

    #[test]
    fn keys_of_each_type() {
        assert_eq!(RecordKeys::of(&line("scheme.activated", r#"{"name":"x"}"#)), RecordKeys::Scheme);
        assert_eq!(
            RecordKeys::of(&line("period.closed", r#"{"period":"2026-01"}"#)),
            RecordKeys::Close { period: p("2026-01") }
        );
        assert_eq!(
            RecordKeys::of(&line(
                "payment.refunded",
                r#"{"refund_id":"R","payment_id":"P","refunded_on":"2026-02-03"}"#
            )),
            RecordKeys::Fact { keys: vec!["p:P".into(), "r:R".into()], dated: Some(p("2026-02")), manager: None }
        );
        // A publisher's extra member of another type with a name the index reads elsewhere.
        assert_eq!(
            RecordKeys::of(&line(
                "deal.created",
                r#"{"deal_id":"D","manager_id":"M","created_on":"2026-02-03","period":{"x":1}}"#
            )),
            RecordKeys::Fact { keys: vec!["d:D".into()], dated: Some(p("2026-02")), manager: Some("M".into()) }
        );
        assert_eq!(RecordKeys::of(b"not json"), RecordKeys::Unknown);
    }

    #[test]
    fn a_late_fact_is_listed_where_it_lands_and_where_it_is_dated() {
        let mut index = indexed(&[
            ("scheme.activated", "{}"),
            ("deal.created", r#"{"deal_id":"D","manager_id":"M","created_on":"2026-01-10"}"#),
            ("period.closed", r#"{"period":"2026-01"}"#),
            ("payment.received", r#"{"deal_id":"D","payment_id":"P","paid_on":"2026-01-20"}"#),
            ("deal.created", r#"{"deal_id":"E","manager_id":"N","created_on":"2026-03-01"}"#),
        ]);
        let feb = index.period_file(p("2026-02"));
        assert_eq!(feb.seqs(None, u64::MAX).collect::<Vec<_>>(), vec![2, 4]);
        assert_eq!(feb.seqs(Some("N"), u64::MAX).count(), 0);
        assert_eq!(index.period_file(p("2026-01")).seqs(Some("M"), 3).collect::<Vec<_>>(), vec![2]);
        assert_eq!(index.period_file(p("2026-03")).seqs(None, u64::MAX).collect::<Vec<_>>(), vec![5]);
        assert_eq!(index.globals(), &[1, 3]);
        assert!(index.add(7, 0, b"{}").is_err());
    }

    #[test]
    fn a_payment_id_reused_on_another_deal_joins_the_deals() {
        let mut index = indexed(&[
            ("deal.created", r#"{"deal_id":"A","manager_id":"M","created_on":"2026-01-10"}"#),
            ("deal.created", r#"{"deal_id":"B","manager_id":"N","created_on":"2026-05-10"}"#),
            ("payment.received", r#"{"deal_id":"A","payment_id":"P","paid_on":"2026-01-20"}"#),
            ("payment.received", r#"{"deal_id":"B","payment_id":"P","paid_on":"2026-05-20"}"#),
        ]);
        // May's replay must see that P was used in January, or it would accept the second P.
        assert_eq!(index.period_file(p("2026-05")).seqs(Some("N"), u64::MAX).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert_eq!(index.component_of_key("p:P"), vec![1, 2, 3, 4]);
    }

    #[test]
    fn a_parked_fact_may_land_where_its_release_puts_it() {
        // The payment (dated January) waits for its deal; January is closed before the deal
        // arrives, so the payment is booked in February when released.
        let mut index = indexed(&[
            ("payment.received", r#"{"deal_id":"D","payment_id":"P","paid_on":"2026-01-20"}"#),
            ("period.closed", r#"{"period":"2026-01"}"#),
            ("deal.created", r#"{"deal_id":"D","manager_id":"M","created_on":"2025-12-30"}"#),
        ]);
        assert_eq!(index.period_file(p("2026-02")).seqs(None, u64::MAX).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(index.seq_received_by(5), 3);
    }

    #[test]
    fn a_parked_fact_lands_by_its_own_date_when_released_not_by_the_releasing_record() {
        // P (dated March) waits for D; March closes; D arrives, dated January: P is booked in
        // April, which neither D's date nor P's seq alone would say.
        let mut index = indexed(&[
            ("payment.received", r#"{"deal_id":"D","payment_id":"P","paid_on":"2026-03-20"}"#),
            ("period.closed", r#"{"period":"2026-03"}"#),
            ("deal.created", r#"{"deal_id":"D","manager_id":"M","created_on":"2026-01-30"}"#),
        ]);
        assert_eq!(index.period_file(p("2026-04")).seqs(None, u64::MAX).collect::<Vec<_>>(), vec![1, 3]);
    }
}
