//! `/metrics`: the serving loop's counters in the Prometheus text format (version 0.0.4),
//! written here from the `ServeReport` the loop keeps (docs/HTTP.md says why not with the
//! prometheus-client crate).

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use premia_ledger::serving::{Histogram, ServeReport, BATCH_SIZE_BOUNDS, COMMIT_SECONDS_BOUNDS};

use crate::errors::Answer;
use crate::state::{ApiState, QUERY_TIMEOUT};

/// The serving loop's counters in the Prometheus text format (version 0.0.4).
pub(crate) async fn metrics(State(api): State<ApiState>, headers: HeaderMap) -> Answer {
    api.require_everything(&headers)?;
    let text = api
        .ask(QUERY_TIMEOUT, |ledger, report| {
            let mut text = prometheus_text(report, ledger.state().parked().len() as u64, ledger.state().next_seq());
            head_text(&ledger.committed_head(), &mut text);
            text
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

/// The committed head, for monitoring to compare replicas of one stream: at the same seq, the
/// same chain hash.
fn head_text(head: &premia_ledger::head::CommittedHead, text: &mut String) {
    let mut out = Exposition::default();
    out.gauge("premia_ledger_committed_seq", "The last log record made durable (the committed head).", head.last_seq);
    let name = "premia_ledger_chain_head_info";
    out.family(name, "gauge", "The committed head's seq and chain hash, as labels (the value is 1).");
    out.sample(&format!("{name}{{seq=\"{}\",hash=\"{}\"}}", head.last_seq, hex::encode(head.chain_hash)), 1);
    text.push_str(&out.0);
}

/// The text format of the counters. Counters count since this `premia serve` started.
pub fn prometheus_text(report: &ServeReport, parked: u64, next_seq: u64) -> String {
    let mut out = Exposition::default();
    let counts = &report.counts;
    out.counter("premia_events_applied_total", "Events applied since serve started.", counts.applied);
    out.counter(
        "premia_events_duplicate_total",
        "Events already in the ledger (same source, id and content) since serve started.",
        counts.duplicates,
    );
    out.counter("premia_events_rejected_total", "Lines rejected since serve started.", counts.rejected);
    out.gauge("premia_events_parked", "Events parked now, waiting for their deal or payment.", parked);
    out.counter("premia_batches_total", "Batches committed and acked since serve started.", report.batches);
    out.counter(
        "premia_redelivered_skipped_total",
        "Redelivered messages already in the ledger, acked without being offered again.",
        report.skipped,
    );
    out.counter("premia_consumer_resumes_total", "Times the consumer was set up again.", report.resumes);
    out.counter("premia_feed_failures_total", "Feed messages JetStream did not confirm.", report.feed_failures);
    out.gauge("premia_ledger_records", "Records in the ledger's log.", next_seq.saturating_sub(1));
    if let Some(pending) = report.consumer_pending {
        out.gauge(
            "premia_consumer_pending",
            "Messages the stream still had for the consumer after the last one delivered (consumer lag).",
            pending,
        );
    }
    let by_reason = "premia_events_rejected_by_reason_total";
    out.family(by_reason, "counter", "Lines rejected since serve started, by reason.");
    for (reason, n) in report.rejected_by_reason.nonzero() {
        out.sample(&format!("{by_reason}{{reason=\"{}\"}}", reason.code()), n);
    }
    out.histogram("premia_batch_size", "Messages per committed batch.", &report.batch_sizes, BATCH_SIZE_BOUNDS);
    out.histogram(
        "premia_commit_seconds",
        "Seconds each committed batch waited for its flush to disk.",
        &report.commit_seconds,
        COMMIT_SECONDS_BOUNDS,
    );
    out.0
}

/// The text being written: each metric family is its `# HELP` and `# TYPE` lines, then its
/// samples, one `name{labels} value` a line.
#[derive(Default)]
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        self.0 += &format!("# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }

    fn sample(&mut self, series: &str, value: impl std::fmt::Display) {
        self.0 += &format!("{series} {value}\n");
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "counter", help);
        self.sample(name, value);
    }

    fn gauge(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "gauge", help);
        self.sample(name, value);
    }

    /// Cumulative buckets by upper bound (`le`), then `_sum` and `_count`. Bounds and the sum
    /// are written as Rust writes an f64 (`1`, `0.0025`, `28`), as they always were here.
    fn histogram(&mut self, name: &str, help: &str, h: &Histogram, bounds: &[f64]) {
        self.family(name, "histogram", help);
        for (bound, n) in h.cumulative(bounds) {
            let le = if bound.is_infinite() { "+Inf".to_string() } else { bound.to_string() };
            self.sample(&format!("{name}_bucket{{le=\"{le}\"}}"), n);
        }
        self.sample(&format!("{name}_sum"), h.sum);
        self.sample(&format!("{name}_count"), h.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_in_the_prometheus_text_format() {
        let mut report = ServeReport::default();
        report.counts.applied = 27;
        report.batches = 3;
        let text = prometheus_text(&report, 2, 30);
        assert!(text.contains("# TYPE premia_events_applied_total counter\npremia_events_applied_total 27\n"));
        assert!(text.contains("premia_events_parked 2\n"));
        assert!(text.contains("premia_batches_total 3\n"));
        assert!(text.contains("premia_ledger_records 29\n"));
        // Every sample line is `name value` after its HELP and TYPE lines.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("premia_") && value.parse::<f64>().is_ok(), "{line}");
        }
        assert!(!text.contains("premia_consumer_pending"), "lag is left out until a message says it");
        report.consumer_pending = Some(12);
        report.rejected_by_reason.add(premia_core::Reason::from_code("currency_mismatch").unwrap());
        report.rejected_by_reason.add(premia_core::Reason::from_code("currency_mismatch").unwrap());
        for size in [1.0, 40.0, 40.0, 9000.0] {
            report.batch_sizes.observe(BATCH_SIZE_BOUNDS, size);
        }
        report.commit_seconds.observe(COMMIT_SECONDS_BOUNDS, 0.003);
        let text = prometheus_text(&report, 2, 30);
        assert!(text.contains("premia_consumer_pending 12\n"), "{text}");
        assert!(text.contains("premia_events_rejected_by_reason_total{reason=\"currency_mismatch\"} 2\n"), "{text}");
        assert!(text.contains("premia_batch_size_bucket{le=\"1\"} 1\n"), "{text}");
        assert!(text.contains("premia_batch_size_bucket{le=\"10\"} 1\n"), "{text}");
        assert!(text.contains("premia_batch_size_bucket{le=\"50\"} 3\n"), "{text}");
        assert!(text.contains("premia_batch_size_bucket{le=\"5000\"} 3\n"), "{text}");
        assert!(text.contains("premia_batch_size_bucket{le=\"+Inf\"} 4\n"), "{text}");
        assert!(text.contains("premia_batch_size_sum 9081\npremia_batch_size_count 4\n"), "{text}");
        assert!(text.contains("premia_commit_seconds_bucket{le=\"0.0025\"} 0\n"), "{text}");
        assert!(text.contains("premia_commit_seconds_bucket{le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("# TYPE premia_commit_seconds histogram\n"), "{text}");
    }

    /// Every line a scraper reads, byte for byte as premia has always written it: names, labels,
    /// HELP texts, and numbers as Rust writes them (`le="1"`, `_sum 9081`; prometheus-client
    /// would write `9081.0`).
    #[test]
    fn the_exposition_is_byte_for_byte_the_one_scrapers_read() {
        let mut report = ServeReport::default();
        (report.counts.applied, report.counts.duplicates, report.counts.rejected) = (27, 4, 3);
        (report.batches, report.skipped, report.resumes, report.feed_failures) = (3, 2, 1, 5);
        report.consumer_pending = Some(12);
        for code in ["currency_mismatch", "invalid_utf8"] {
            report.rejected_by_reason.add(premia_core::Reason::from_code(code).unwrap());
        }
        for size in [1.0, 40.0, 40.0, 9000.0] {
            report.batch_sizes.observe(BATCH_SIZE_BOUNDS, size);
        }
        for seconds in [0.003, 0.25] {
            report.commit_seconds.observe(COMMIT_SECONDS_BOUNDS, seconds);
        }
        assert_eq!(prometheus_text(&report, 2, 30), EXPOSITION);
    }

    const EXPOSITION: &str = "\
# HELP premia_events_applied_total Events applied since serve started.
# TYPE premia_events_applied_total counter
premia_events_applied_total 27
# HELP premia_events_duplicate_total Events already in the ledger (same source, id and content) since serve started.
# TYPE premia_events_duplicate_total counter
premia_events_duplicate_total 4
# HELP premia_events_rejected_total Lines rejected since serve started.
# TYPE premia_events_rejected_total counter
premia_events_rejected_total 3
# HELP premia_events_parked Events parked now, waiting for their deal or payment.
# TYPE premia_events_parked gauge
premia_events_parked 2
# HELP premia_batches_total Batches committed and acked since serve started.
# TYPE premia_batches_total counter
premia_batches_total 3
# HELP premia_redelivered_skipped_total Redelivered messages already in the ledger, acked without being offered again.
# TYPE premia_redelivered_skipped_total counter
premia_redelivered_skipped_total 2
# HELP premia_consumer_resumes_total Times the consumer was set up again.
# TYPE premia_consumer_resumes_total counter
premia_consumer_resumes_total 1
# HELP premia_feed_failures_total Feed messages JetStream did not confirm.
# TYPE premia_feed_failures_total counter
premia_feed_failures_total 5
# HELP premia_ledger_records Records in the ledger's log.
# TYPE premia_ledger_records gauge
premia_ledger_records 29
# HELP premia_consumer_pending Messages the stream still had for the consumer after the last one delivered (consumer lag).
# TYPE premia_consumer_pending gauge
premia_consumer_pending 12
# HELP premia_events_rejected_by_reason_total Lines rejected since serve started, by reason.
# TYPE premia_events_rejected_by_reason_total counter
premia_events_rejected_by_reason_total{reason=\"invalid_utf8\"} 1
premia_events_rejected_by_reason_total{reason=\"currency_mismatch\"} 1
# HELP premia_batch_size Messages per committed batch.
# TYPE premia_batch_size histogram
premia_batch_size_bucket{le=\"1\"} 1
premia_batch_size_bucket{le=\"10\"} 1
premia_batch_size_bucket{le=\"50\"} 3
premia_batch_size_bucket{le=\"100\"} 3
premia_batch_size_bucket{le=\"250\"} 3
premia_batch_size_bucket{le=\"500\"} 3
premia_batch_size_bucket{le=\"1000\"} 3
premia_batch_size_bucket{le=\"2500\"} 3
premia_batch_size_bucket{le=\"5000\"} 3
premia_batch_size_bucket{le=\"+Inf\"} 4
premia_batch_size_sum 9081
premia_batch_size_count 4
# HELP premia_commit_seconds Seconds each committed batch waited for its flush to disk.
# TYPE premia_commit_seconds histogram
premia_commit_seconds_bucket{le=\"0.001\"} 0
premia_commit_seconds_bucket{le=\"0.0025\"} 0
premia_commit_seconds_bucket{le=\"0.005\"} 1
premia_commit_seconds_bucket{le=\"0.01\"} 1
premia_commit_seconds_bucket{le=\"0.025\"} 1
premia_commit_seconds_bucket{le=\"0.05\"} 1
premia_commit_seconds_bucket{le=\"0.1\"} 1
premia_commit_seconds_bucket{le=\"0.25\"} 2
premia_commit_seconds_bucket{le=\"0.5\"} 2
premia_commit_seconds_bucket{le=\"1\"} 2
premia_commit_seconds_bucket{le=\"2.5\"} 2
premia_commit_seconds_bucket{le=\"+Inf\"} 2
premia_commit_seconds_sum 0.253
premia_commit_seconds_count 2
";
}
