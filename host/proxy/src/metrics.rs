//! The counters behind `/metrics`, in the Prometheus text format.
//!
//! Label values are the small fixed vocabularies of the proxy, never identifiers, tokens
//! or anything else a run chooses, so the number of series stays bounded whatever the
//! traffic: a method is its own label only when it is one of [`KNOWN_METHODS`] (any other
//! counts as `other`), and deny reasons (a plugin's words, which a plugin could derive
//! from what a run sent) are labels for the first [`MAX_REASONS`] distinct ones only.
//! Plugin names are labels too: the runtime limits them to `a-z0-9-`, and only loaded
//! plugins have series.

use std::collections::HashSet;
use std::sync::Mutex;

use portcullis_runtime::PluginMetrics;
use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

/// The MCP methods (and the proxy's own pseudo-methods) counted under their own name.
pub const KNOWN_METHODS: [&str; 31] = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "tasks/list",
    "tasks/get",
    "tasks/cancel",
    "tasks/result",
    "server/discover",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/message",
    "notifications/roots/list_changed",
    "notifications/tasks/status",
    "sampling/createMessage",
    "elicitation/create",
    "roots/list",
    // The proxy's own: an answer to a server request, the access decision, and a
    // refusal by a cap of `[limits]`.
    "response",
    "access",
    "limit",
    "other",
];

/// How many distinct deny reasons get a label of their own.
pub const MAX_REASONS: usize = 64;

/// Whether `method` is one of the MCP methods the proxy knows by name.
pub fn is_known_method(method: &str) -> bool {
    method_label(method) != "other"
}

/// `method` itself when it is a known MCP method, `other` otherwise.
pub fn method_label(method: &str) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|known| **known == method)
        .copied()
        .unwrap_or("other")
}

pub struct Metrics {
    registry: Registry,
    decisions: IntCounterVec,
    upstream_errors: IntCounterVec,
    admin_requests: IntCounterVec,
    /// The deny reasons seen so far, up to [`MAX_REASONS`].
    reasons: Mutex<HashSet<String>>,
    oauth_refreshes: IntCounterVec,
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
        let oauth_refreshes = counter(
            "portcullis_oauth_refreshes_total",
            "OAuth token refreshes, by outcome: ok, refused (the connector needs \
             re-authorization), failed (the authorization server was unavailable)",
            &["outcome"],
        );
        Self {
            registry,
            decisions,
            upstream_errors,
            admin_requests,
            reasons: Mutex::new(HashSet::new()),
            oauth_refreshes,
        }
    }

    /// Counts one data-plane decision; `method` and `reason` are bounded as the module
    /// says.
    pub fn decision(&self, method: &str, decision: &str, reason: &str) {
        let reason = self.reason_label(reason);
        self.decisions
            .with_label_values(&[method_label(method), decision, reason.as_str()])
            .inc();
    }

    fn reason_label(&self, reason: &str) -> String {
        let mut reasons = self.reasons.lock().unwrap_or_else(|p| p.into_inner());
        if reasons.contains(reason) {
            return reason.to_owned();
        }
        if reasons.len() < MAX_REASONS {
            reasons.insert(reason.to_owned());
            return reason.to_owned();
        }
        "other".to_owned()
    }

    /// Counts one failed upstream exchange (`connect`, `timeout`, `status`, ...).
    pub fn upstream_error(&self, kind: &str) {
        self.upstream_errors.with_label_values(&[kind]).inc();
    }

    /// Counts one OAuth token refresh (`ok`, `refused`, `failed`).
    pub fn oauth_refresh(&self, outcome: &str) {
        self.oauth_refreshes.with_label_values(&[outcome]).inc();
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

    #[test]
    fn labels_stay_bounded_whatever_the_methods_and_reasons() {
        let metrics = Metrics::new();
        metrics.decision("tools/list", "allow", "");
        let before = metrics.render().len();
        for i in 0..2_000 {
            let method = format!("x/{i}-{}", "m".repeat(1_000));
            metrics.decision(&method, "deny", &format!("reason_{i}"));
        }
        let text = metrics.render();
        assert!(text.len() < before + 16 * 1024, "{} bytes", text.len());
        assert!(text.contains("method=\"other\""), "{text}");
        assert!(text.contains("reason=\"other\""), "{text}");
        assert!(!text.contains("mmmm"));
        assert_eq!(method_label("tools/call"), "tools/call");
        assert_eq!(method_label("tools/call2"), "other");
        assert_eq!(method_label("limit"), "limit");
    }
}
