//! The counters behind `/metrics`, in the Prometheus text format.
//!
//! Label values are the small fixed vocabularies of the proxy (MCP method names,
//! decisions, deny reasons, error kinds) and the names of the loaded plugins (plugin
//! names are limited to `a-z0-9-` by the runtime), never identifiers or tokens, so the
//! number of series stays bounded.

use portcullis_runtime::PluginMetrics;
use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    decisions: IntCounterVec,
    upstream_errors: IntCounterVec,
    admin_requests: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let vec = IntCounterVec::new(Opts::new(name, help), labels)
                .expect("metric definitions are valid");
            registry
                .register(Box::new(vec.clone()))
                .expect("metric names are unique");
            vec
        };
        let decisions = counter(
            "portcullis_requests_total",
            "MCP requests on the data plane, by method, decision and reason",
            &["method", "decision", "reason"],
        );
        let upstream_errors = counter(
            "portcullis_upstream_errors_total",
            "Failed upstream exchanges, by kind",
            &["kind"],
        );
        let admin_requests = counter(
            "portcullis_admin_requests_total",
            "Admin API requests, by HTTP status code",
            &["status"],
        );
        Self {
            registry,
            decisions,
            upstream_errors,
            admin_requests,
        }
    }

    /// Counts one data-plane decision.
    pub fn decision(&self, method: &str, decision: &str, reason: &str) {
        self.decisions
            .with_label_values(&[method, decision, reason])
            .inc();
    }

    /// Counts one failed upstream exchange (`connect`, `timeout`, `status`, ...).
    pub fn upstream_error(&self, kind: &str) {
        self.upstream_errors.with_label_values(&[kind]).inc();
    }

    /// Counts one admin API answer.
    pub fn admin_request(&self, status: u16) {
        self.admin_requests
            .with_label_values(&[status.to_string().as_str()])
            .inc();
    }

    /// Every metric in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding into memory does not fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// The per-plugin series, in the same text format: calls, faults by kind and a latency
/// histogram per loaded plugin (label sets bounded by the number of plugins loaded).
pub fn render_plugins(plugins: &[PluginMetrics]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    out.push_str("# HELP portcullis_plugin_calls_total Calls of each loaded plugin\n");
    out.push_str("# TYPE portcullis_plugin_calls_total counter\n");
    for p in plugins {
        let _ = writeln!(
            out,
            "portcullis_plugin_calls_total{{plugin=\"{}\"}} {}",
            p.plugin, p.calls
        );
    }
    out.push_str("# HELP portcullis_plugin_faults_total Calls of each plugin that gave no usable answer, by kind\n");
    out.push_str("# TYPE portcullis_plugin_faults_total counter\n");
    for p in plugins {
        for (kind, count) in &p.faults {
            let _ = writeln!(
                out,
                "portcullis_plugin_faults_total{{kind=\"{kind}\",plugin=\"{}\"}} {count}",
                p.plugin
            );
        }
    }
    out.push_str("# HELP portcullis_plugin_call_seconds Duration of one call of each plugin\n");
    out.push_str("# TYPE portcullis_plugin_call_seconds histogram\n");
    for p in plugins {
        for (bound, count) in &p.latency_buckets {
            let _ = writeln!(
                out,
                "portcullis_plugin_call_seconds_bucket{{plugin=\"{}\",le=\"{bound}\"}} {count}",
                p.plugin
            );
        }
        let name = &p.plugin;
        let _ = writeln!(
            out,
            "portcullis_plugin_call_seconds_bucket{{plugin=\"{name}\",le=\"+Inf\"}} {}",
            p.calls
        );
        let _ = writeln!(
            out,
            "portcullis_plugin_call_seconds_sum{{plugin=\"{name}\"}} {}",
            p.latency_sum_seconds
        );
        let _ = writeln!(
            out,
            "portcullis_plugin_call_seconds_count{{plugin=\"{name}\"}} {}",
            p.calls
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let metrics = Metrics::new();
        metrics.decision("tools/call", "deny", "not_declared");
        metrics.decision("tools/call", "deny", "not_declared");
        metrics.upstream_error("connect");
        let text = metrics.render();
        assert!(
            text.contains(
                "portcullis_requests_total{decision=\"deny\",method=\"tools/call\",reason=\"not_declared\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("portcullis_upstream_errors_total{kind=\"connect\"} 1"));
    }
}
