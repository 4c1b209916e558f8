//! Process-wide counters and histograms, rendered in Prometheus's text format.
//!
//! Small on purpose: a map of series behind a mutex, touched a few times per request.
//! Gauges that are facts about the database (lag, outbox depth, horizon age) are not kept
//! here: `/metrics` reads them when it is scraped, so every replica reports the same truth.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Series {
    counters: BTreeMap<(&'static str, Labels), u64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

/// The registry.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<Series>,
}

/// The process's registry.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

impl Metrics {
    /// Adds one to counter `name` with `pairs` as labels.
    pub fn inc(&self, name: &'static str, pairs: &[(&'static str, &str)]) {
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        *series.counters.entry((name, labels(pairs))).or_default() += 1;
    }

    /// Records a duration in histogram `name`.
    pub fn observe(&self, name: &'static str, pairs: &[(&'static str, &str)], took: Duration) {
        let seconds = took.as_secs_f64();
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let histogram = series.histograms.entry((name, labels(pairs))).or_default();
        for (bucket, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// Every series, in the text exposition format, with `HELP` from `help`.
    pub fn render(&self, help: &dyn Fn(&str) -> &'static str) -> String {
        let series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        let mut last = "";
        for ((name, labels), value) in &series.counters {
            if *name != last {
                let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} counter", help(name));
                last = name;
            }
            let _ = writeln!(out, "{name}{} {value}", format_labels(labels, None));
        }
        for ((name, labels), histogram) in &series.histograms {
            if *name != last {
                let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} histogram", help(name));
                last = name;
            }
            for (count, bound) in histogram.counts.iter().zip(BUCKETS) {
                let le = bound.to_string();
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {count}",
                    format_labels(labels, Some(&le))
                );
            }
            let all = format_labels(labels, Some("+Inf"));
            let _ = writeln!(out, "{name}_bucket{all} {}", histogram.count);
            let plain = format_labels(labels, None);
            let _ = writeln!(out, "{name}_sum{plain} {}", histogram.sum);
            let _ = writeln!(out, "{name}_count{plain} {}", histogram.count);
        }
        out
    }
}

/// `{a="1",b="2"}`, with `le` added for histogram buckets; values escaped.
pub fn format_labels(labels: &[(&'static str, String)], le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The variant name of a command (`RegisterListing`), from its `Debug` form: a bounded
/// label value.
pub fn variant_name<T: std::fmt::Debug>(value: &T) -> String {
    let debug = format!("{value:?}");
    debug
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_the_text_format() {
        let metrics = Metrics::default();
        metrics.inc("x_total", &[("route", "/a\"b")]);
        metrics.inc("x_total", &[("route", "/a\"b")]);
        metrics.observe("y_seconds", &[], Duration::from_millis(3));
        let text = metrics.render(&|_| "help");
        assert!(text.contains("# TYPE x_total counter"));
        assert!(text.contains("x_total{route=\"/a\\\"b\"} 2"));
        assert!(text.contains("y_seconds_bucket{le=\"0.0025\"} 0"));
        assert!(text.contains("y_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("y_seconds_bucket{le=\"+Inf\"} 1"));
        assert!(text.contains("y_seconds_count 1"));
    }

    #[test]
    fn a_variant_name_is_the_first_word_of_its_debug_form() {
        #[derive(Debug)]
        #[allow(dead_code)]
        enum Command {
            RegisterListing { price: i64 },
            ExpireRequest,
        }
        assert_eq!(
            variant_name(&Command::RegisterListing { price: 1 }),
            "RegisterListing"
        );
        assert_eq!(variant_name(&Command::ExpireRequest), "ExpireRequest");
    }
}
