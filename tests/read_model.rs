//! The statements' read model, which `premia serve --http` answers statements from without
//! going through the serving loop, gives byte for byte the JSON of `Ledger::statement` after
//! the same batch: for every (period, manager) and every whole period, over a generated year
//! of CRM traffic (payments, refunds, cancellations, payments ahead of their deal, late facts
//! booked into open periods as adjustments, plans, closes), a scheme activated midway that
//! changes the plan metric and bonus base, a snapshot and reopen, and a reopen without one.
//!
//! The ledger is driven as `serve` drives it: batches of random size, the next one folded while
//! the last one is in flight, each one's update published once it is durable; periods are
//! loaded and statements rendered between batches as HTTP reads would, with room for only a
//! few periods, so entries are appended to loaded periods, dropped and loaded again.

use std::path::Path;
use std::sync::Arc;

use premia::synth::{Synth, SynthOptions};
use premia_core::fold::scheme_activation_record;
use premia_core::scheme::PlanMetric;
use premia_core::{Admission, Period, Scheme};
use premia_ledger::read_model::{statement_json, Read};
use premia_ledger::{Ledger, LedgerOptions, Origin, ReadModel};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A ledger with its read model, fed as the serving loop feeds them.
struct Served {
    ledger: Ledger,
    model: Arc<ReadModel>,
    in_flight: Option<u64>,
}

impl Served {
    fn open(dir: &Path, capacity: usize) -> Served {
        let mut ledger = Ledger::open(dir, &LedgerOptions::default(), "test").unwrap();
        ledger.track_statements(true);
        let model = Arc::new(ReadModel::new(capacity));
        model.reset(&ledger);
        Served { ledger, model, in_flight: None }
    }

    /// Waits for the batch in flight and publishes what is durable.
    fn finish(&mut self) {
        if let Some(ticket) = self.in_flight.take() {
            self.ledger.wait_durable(ticket).unwrap();
        }
        for update in self.ledger.durable_statement_updates().unwrap() {
            self.model.publish(&self.ledger, update);
        }
    }

    /// Folds a batch while the last one is flushed, then hands it to the writer.
    fn batch(&mut self, lines: &[String], scheme_at: Option<usize>) {
        for (i, line) in lines.iter().enumerate() {
            self.ledger.offer(line.as_bytes(), Origin::Nats, Admission::Publisher, 0);
            if scheme_at == Some(i) {
                let mut scheme = Scheme::default_scheme();
                scheme.name = "booked metric".into();
                scheme.plan.metric = PlanMetric::Booked;
                scheme.plan.bonus_base += rust_decimal::Decimal::new(12_345, 2);
                let raw = scheme_activation_record(&scheme, self.ledger.state().next_seq());
                self.ledger.offer(&raw, Origin::Ledger, Admission::Operator, 0);
            }
        }
        self.finish();
        self.in_flight = Some(self.ledger.submit().unwrap());
    }

    /// A statement from the read model, loading its period when need be (as the serving loop
    /// does for a handler); `None` for an unknown manager.
    fn fast(&self, period: Period, manager: Option<&str>) -> Option<String> {
        let prepared = match self.model.prepare(period, manager) {
            Read::NotLoaded => {
                self.model.load(&self.ledger, period).unwrap();
                self.model.prepare(period, manager)
            }
            read => read,
        };
        match prepared {
            Read::Ready(p) => {
                let first = p.json().unwrap();
                // The second read is the rendering kept: the same bytes.
                assert_eq!(p.json().unwrap(), first);
                Some(String::from_utf8(first.to_vec()).unwrap())
            }
            Read::UnknownManager => None,
            Read::NotLoaded => panic!("{period} {manager:?} is not loaded right after loading it"),
            Read::NotReady => panic!("the read model was reset"),
        }
    }

    /// Everything durable and published; every statement the same both ways.
    fn compare_all(&mut self, checked: &mut usize) {
        self.finish();
        assert_eq!(self.ledger.pending_writes(), 0);
        let state = self.ledger.state();
        let mut periods = state.periods();
        let Some(&last) = periods.last() else { return };
        // And periods nothing is booked in.
        periods.extend([Period::parse("2024-02").unwrap(), last.next()]);
        let mut managers: Vec<String> = state.books().values().flat_map(|m| m.keys().map(|k| k.to_string())).collect();
        managers.sort();
        managers.dedup();
        let known = managers.len();
        managers.push("M-nobody".into());
        for &period in &periods {
            let whole = statement_json(&self.ledger.statement(period, None).unwrap()).unwrap();
            assert_eq!(self.fast(period, None), Some(String::from_utf8(whole).unwrap()), "{period}, every manager");
            for (i, manager) in managers.iter().enumerate() {
                let fast = self.fast(period, Some(manager));
                if i >= known {
                    assert_eq!(fast, None, "{manager} has no book anywhere");
                    continue;
                }
                let slow = statement_json(&self.ledger.statement(period, Some(manager)).unwrap()).unwrap();
                assert_eq!(fast, Some(String::from_utf8(slow).unwrap()), "{period} {manager}");
                *checked += 1;
            }
        }
    }
}

fn run(seed: u64, capacity: usize) {
    let dir = tempfile::tempdir().unwrap();
    let options = SynthOptions { managers: 12, events_per_day: 60, ..SynthOptions::default() };
    let lines: Vec<String> = Synth::new(seed, options).take(20_000).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut served = Served::open(dir.path(), capacity);
    let mut checked = 0;
    let mut at = 0;
    let mut batches = 0;
    let (scheme_line, snapshot_line, reopen_line) = (8_500, 11_500, 15_000);
    let (mut snapshotted, mut reopened) = (false, false);
    while at < lines.len() {
        let size = if rng.gen_bool(0.1) { 1 } else { rng.gen_range(1..400) };
        let end = (at + size).min(lines.len());
        let scheme_at = (at..end).contains(&scheme_line).then(|| scheme_line - at);
        served.batch(&lines[at..end], scheme_at);
        at = end;
        batches += 1;
        // Between batches, reads as HTTP would make them: a period loaded (mostly a recent
        // one), a few statements rendered and kept, to be found stale if a batch changed them.
        let periods = served.ledger.state().periods();
        if !periods.is_empty() && rng.gen_bool(0.3) {
            let back = rng.gen_range(0..periods.len().min(4));
            let period = periods[periods.len() - 1 - back];
            served.model.load(&served.ledger, period).unwrap();
            for _ in 0..3 {
                let manager = format!("M-{}", rng.gen_range(1..=12));
                if let Read::Ready(p) = served.model.prepare(period, Some(&manager)) {
                    p.json().unwrap();
                }
            }
            if let Read::Ready(p) = served.model.prepare(period, None) {
                p.json().unwrap();
            }
        }
        if rng.gen_bool(0.04) || at == lines.len() {
            served.compare_all(&mut checked);
        }
        if at >= snapshot_line && !snapshotted {
            served.compare_all(&mut checked);
            served.ledger.snapshot().unwrap();
            drop(served);
            served = Served::open(dir.path(), capacity);
            served.compare_all(&mut checked);
            snapshotted = true;
        }
        if at >= reopen_line && !reopened {
            served.finish();
            served.ledger.commit().unwrap();
            drop(served);
            // No snapshot since the last one: the records after it are folded again.
            served = Served::open(dir.path(), capacity);
            assert!(served.ledger.events_since_snapshot() > 0);
            served.compare_all(&mut checked);
            reopened = true;
        }
    }
    let state = served.ledger.state();
    // The stream did what this test is about.
    assert!(state.closed_periods().len() >= 8, "closes: {:?}", state.closed_periods());
    assert_eq!(state.scheme().plan.metric, PlanMetric::Booked);
    let adjustments = state.books().keys().filter_map(|p| served.ledger.entries_of(*p).ok()).flatten();
    assert!(adjustments.filter(|e| e.adjustment_of.is_some()).count() > 20, "late facts booked as adjustments");
    assert!(served.model.loaded_periods().len() <= capacity);
    assert_eq!(served.model.repairs(), 0, "published entries always agreed with the books");
    assert!(checked > 1000, "{checked} statements compared over {batches} batches");
}

#[test]
fn the_read_model_gives_ledger_statements_byte_for_byte_with_room_for_two_periods() {
    run(3, 2);
}

#[test]
fn the_read_model_gives_ledger_statements_byte_for_byte_with_every_period_held() {
    run(11, 1000);
}
