//! The counters behind `/metrics`, in the Prometheus text format.
//!
//! Label values are the small fixed vocabularies of the proxy (MCP method names,
//! decisions, deny reasons, error kinds), never identifiers or tokens, so the number
//! of series stays bounded.

use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    decisions: IntCounterVec,
    upstream_errors: IntCounterVec,
    admin_requests: IntCounterVec,
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
            oauth_refreshes,
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
