//! What a run measured: latencies per operation (percentiles from all samples, no
//! sampling), status counts, and throughput.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

/// Samples of one kind of operation.
#[derive(Debug, Default, Clone)]
struct Samples {
    micros: Vec<u64>,
    statuses: BTreeMap<u16, u64>,
}

/// Shared by every worker of a run.
#[derive(Debug, Default, Clone)]
pub struct Recorder(Arc<Mutex<BTreeMap<String, Samples>>>);

/// Latency percentiles of one operation, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The operation.
    pub name: String,
    /// How many were done.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// The slowest.
    pub max_ms: f64,
    /// Answers by HTTP status (0: no answer).
    pub statuses: BTreeMap<u16, u64>,
}

impl Recorder {
    /// Records one operation of `name` that took `took` and answered `status`.
    pub fn record(&self, name: &str, took: Duration, status: u16) {
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let samples = all.entry(name.to_owned()).or_default();
        samples.micros.push(took.as_micros() as u64);
        *samples.statuses.entry(status).or_default() += 1;
    }

    /// Every operation's summary.
    pub fn summaries(&self) -> Vec<Summary> {
        let all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        all.iter()
            .map(|(name, samples)| {
                let mut sorted = samples.micros.clone();
                sorted.sort_unstable();
                Summary {
                    name: name.clone(),
                    count: sorted.len() as u64,
                    p50_ms: percentile(&sorted, 0.50),
                    p99_ms: percentile(&sorted, 0.99),
                    max_ms: sorted.last().map(|m| *m as f64 / 1000.0).unwrap_or(0.0),
                    statuses: samples.statuses.clone(),
                }
            })
            .collect()
    }
}

/// The `q` quantile of sorted microseconds, in milliseconds (nearest rank).
pub fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<u64> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentile(&sorted, 0.50), 50.0);
        assert_eq!(percentile(&sorted, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[7000], 0.99), 7.0);
    }

    #[test]
    fn a_recorder_counts_statuses_per_operation() {
        let recorder = Recorder::default();
        recorder.record("register", Duration::from_millis(2), 201);
        recorder.record("register", Duration::from_millis(4), 503);
        let summary = &recorder.summaries()[0];
        assert_eq!(summary.count, 2);
        assert_eq!(summary.statuses[&201], 1);
        assert_eq!(summary.statuses[&503], 1);
        assert_eq!(summary.max_ms, 4.0);
    }
}
