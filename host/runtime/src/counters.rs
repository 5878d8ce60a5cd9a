//! The counters of one plugin name: calls, faults by kind, a latency histogram. Kept
//! apart from `metering`, which decides what is counted, so that a loaded [`Plugin`]
//! (which holds its counters) depends on nothing that calls plugins.
//!
//! [`Plugin`]: crate::Plugin

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use portcullis_model::Fault;

/// Upper bounds of the latency histogram's buckets, in seconds (one call of one plugin).
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
];

/// The fault kinds counted, as `Fault::reason` names them.
pub const FAULT_KINDS: [&str; 5] = [
    "plugin_cpu_deadline",
    "plugin_memory_limit",
    "plugin_trap",
    "plugin_timeout",
    "plugin_malformed_answer",
];

/// The counters of one plugin name.
#[derive(Default)]
pub(crate) struct PluginStats {
    calls: AtomicU64,
    faults: [AtomicU64; FAULT_KINDS.len()],
    /// Non-cumulative: `buckets[i]` counts calls in `(LATENCY_BUCKETS[i-1], LATENCY_BUCKETS[i]]`;
    /// the last one counts calls over every bound.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    nanos: AtomicU64,
}

impl PluginStats {
    pub fn call(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn fault(&self, fault: &Fault) {
        if let Some(kind) = FAULT_KINDS.iter().position(|k| *k == fault.reason()) {
            self.faults[kind].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self, name: &str) -> PluginMetrics {
        let mut cumulative = 0;
        let buckets = LATENCY_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(bound, count)| {
                cumulative += count.load(Ordering::Relaxed);
                (*bound, cumulative)
            })
            .collect();
        PluginMetrics {
            plugin: name.to_owned(),
            calls: self.calls.load(Ordering::Relaxed),
            faults: FAULT_KINDS
                .iter()
                .zip(&self.faults)
                .map(|(kind, count)| (*kind, count.load(Ordering::Relaxed)))
                .collect(),
            latency_buckets: buckets,
            latency_sum_seconds: self.nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// One plugin's counters as `/metrics` shows them.
#[derive(Clone, Debug, PartialEq)]
pub struct PluginMetrics {
    pub plugin: String,
    pub calls: u64,
    /// Every kind of [`FAULT_KINDS`], zero or not.
    pub faults: Vec<(&'static str, u64)>,
    /// Cumulative counts per upper bound (seconds), as Prometheus histograms want them;
    /// the `+Inf` bucket is `calls`.
    pub latency_buckets: Vec<(f64, u64)>,
    pub latency_sum_seconds: f64,
}
