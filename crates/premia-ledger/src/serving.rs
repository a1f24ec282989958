//! What a serving loop shares with its readers: the queries it runs between fold steps, and the
//! report of its counters (with the histograms `/metrics` shows).
//!
//! `premia serve` (premia-nats) owns the `Ledger`; the HTTP API (premia-http) reads through it.
//! Both name these types, so they live here, beside the ledger they read, and neither of the two
//! edges depends on the other for them.

use crate::{Counts, Ledger};

/// A read of the ledger asked from outside the serving loop (the HTTP API). The loop owns the
/// ledger, so a reader hands it a closure, which the loop runs between batches with the ledger
/// and its own counters; the closure sends its answer back however it likes (a oneshot).
pub type Query = Box<dyn FnOnce(&Ledger, &ServeReport) + Send>;

/// What a serving loop has done since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ServeReport {
    pub counts: Counts,
    pub batches: u64,
    /// Feed messages JetStream did not confirm (the ledger is unaffected; see the logs).
    pub feed_failures: u64,
    /// Messages at or below the stored cursor: already in the ledger, redelivered after a
    /// crash between commit and ack. Acked again, not offered again.
    pub skipped: u64,
    /// Times the consumer was set up again after NATS went away or a fetch failed.
    pub resumes: u64,
    /// Deliveries that skipped stream sequences the ledger lacks (messages lost in flight when
    /// a node died, which JetStream would redeliver only later, after the cursor had passed
    /// them): each time, the consumer is set up again from the cursor (also counted in
    /// `resumes`).
    pub delivery_gaps: u64,
    pub timings: ServeTimings,
    /// Rejections since serve started, by reason (those `counts.rejected` counts).
    pub rejected_by_reason: ReasonCounts,
    /// Messages per committed batch (buckets: [`BATCH_SIZE_BOUNDS`]).
    pub batch_sizes: Histogram,
    /// Seconds each committed batch waited for its flush (buckets: [`COMMIT_SECONDS_BOUNDS`]).
    pub commit_seconds: Histogram,
    /// Messages the server still had for the consumer after the last one delivered (its
    /// `num_pending`, as each message's metadata carries it); `None` before the first message.
    pub consumer_pending: Option<u64>,
}

/// Upper bounds of the batch size histogram's buckets (messages per batch; +Inf follows).
pub const BATCH_SIZE_BOUNDS: &[f64] = &[1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0];
/// Upper bounds of the commit latency histogram's buckets (seconds; +Inf follows).
pub const COMMIT_SECONDS_BOUNDS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// A fixed-bucket histogram: `buckets[i]` counts the observations at or below bound i (and
/// above bound i - 1); `buckets[bounds.len()]` those above every bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Histogram {
    pub buckets: [u64; 16],
    /// Of the observed values (batch sizes, seconds): Prometheus' `_sum`. Never money.
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&mut self, bounds: &[f64], value: f64) {
        self.assert_fits(bounds);
        // Above every bound: the last bucket, the one +Inf counts alone.
        let slot = bounds.iter().position(|&b| value <= b).unwrap_or(bounds.len());
        self.buckets[slot] += 1;
        self.sum += value;
        self.count += 1;
    }

    /// `(bound, observations at or below it)` for each bound, then `(+Inf, count)`.
    pub fn cumulative(&self, bounds: &[f64]) -> Vec<(f64, u64)> {
        self.assert_fits(bounds);
        let mut total = 0;
        let mut out: Vec<(f64, u64)> = bounds
            .iter()
            .zip(self.buckets)
            .map(|(&b, n)| {
                total += n;
                (b, total)
            })
            .collect();
        out.push((f64::INFINITY, self.count));
        out
    }

    /// Every bound has its bucket and one is left for the observations above them all; the
    /// bounds rise. A histogram is always read with the bounds it was filled with.
    fn assert_fits(&self, bounds: &[f64]) {
        assert!(
            bounds.len() < self.buckets.len(),
            "{} bucket bounds leave no bucket for +Inf in a histogram of {} buckets",
            bounds.len(),
            self.buckets.len()
        );
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bucket bounds must rise: {bounds:?}");
    }
}

/// Counts per rejection reason, in the order of `Reason::ALL`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReasonCounts([u64; premia_core::Reason::ALL.len()]);

impl Default for ReasonCounts {
    fn default() -> ReasonCounts {
        ReasonCounts([0; premia_core::Reason::ALL.len()])
    }
}

impl ReasonCounts {
    pub fn add(&mut self, reason: premia_core::Reason) {
        let Some(i) = premia_core::Reason::ALL.iter().position(|&r| r == reason) else {
            panic!("Reason::ALL must list every reason, and lacks {}", reason.code());
        };
        self.0[i] += 1;
    }

    /// `(reason, count)` of every reason counted at least once.
    pub fn nonzero(&self) -> impl Iterator<Item = (premia_core::Reason, u64)> + '_ {
        premia_core::Reason::ALL.iter().zip(self.0.iter()).filter(|(_, &n)| n > 0).map(|(&r, &n)| (r, n))
    }
}

impl serde::Serialize for ReasonCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.nonzero().map(|(r, n)| (r.code(), n)))
    }
}

/// Where the serving loop's time went (milliseconds, summed over batches), for tuning.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ServeTimings {
    /// Waiting for the next parsed chunk from NATS.
    pub receive_wait_ms: f64,
    /// Offering messages to the ledger (admit, fold, hash chain) and computing the feed.
    pub fold_ms: f64,
    /// Waiting for the writer thread to flush a batch.
    pub durable_wait_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_value_in_the_first_bucket_that_holds_it() {
        let mut h = Histogram::default();
        for size in [1.0, 40.0, 40.0, 50.0, 9000.0] {
            h.observe(BATCH_SIZE_BOUNDS, size);
        }
        let cumulative = h.cumulative(BATCH_SIZE_BOUNDS);
        assert_eq!(cumulative.len(), BATCH_SIZE_BOUNDS.len() + 1);
        assert_eq!(&cumulative[..3], &[(1.0, 1), (10.0, 1), (50.0, 4)]);
        assert_eq!(cumulative[BATCH_SIZE_BOUNDS.len() - 1], (5000.0, 4), "9000 is above every bound");
        assert_eq!(cumulative.last(), Some(&(f64::INFINITY, 5)));
        assert_eq!((h.sum, h.count), (9131.0, 5));
    }

    #[test]
    #[should_panic(expected = "no bucket for +Inf")]
    fn bounds_that_leave_no_bucket_for_the_rest_are_refused() {
        let bounds: Vec<f64> = (1..=16).map(f64::from).collect();
        Histogram::default().observe(&bounds, 3.0);
    }

    #[test]
    fn reasons_are_counted_and_listed_in_the_order_of_reason_all() {
        let mut counts = ReasonCounts::default();
        assert_eq!(counts.nonzero().count(), 0);
        let last = *premia_core::Reason::ALL.last().unwrap();
        let first = premia_core::Reason::ALL[0];
        counts.add(last);
        counts.add(first);
        counts.add(last);
        assert_eq!(counts.nonzero().collect::<Vec<_>>(), [(first, 1), (last, 2)]);
    }
}
