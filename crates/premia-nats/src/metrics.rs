//! The serving loop's counters, as `/metrics` and the command line report them.

use premia_ledger::Counts;

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
        let slot = bounds.iter().position(|&b| value <= b).unwrap_or(bounds.len()).min(self.buckets.len() - 1);
        self.buckets[slot] += 1;
        self.sum += value;
        self.count += 1;
    }

    /// `(bound, observations at or below it)` for each bound, then `(+Inf, count)`.
    pub fn cumulative(&self, bounds: &[f64]) -> Vec<(f64, u64)> {
        let mut total = 0;
        let mut out: Vec<(f64, u64)> = bounds
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                total += self.buckets.get(i).copied().unwrap_or(0);
                (b, total)
            })
            .collect();
        out.push((f64::INFINITY, self.count));
        out
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
        if let Some(i) = premia_core::Reason::ALL.iter().position(|&r| r == reason) {
            self.0[i] += 1;
        }
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
