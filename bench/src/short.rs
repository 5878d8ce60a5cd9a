//! The `short runs` workload: what a batch agent's run costs, end to end. Each run opens
//! a connection and sends `initialize`, `notifications/initialized`, `tools/list` and
//! five `tools/call`s of `echo`, one after another (one client, runs back to back), then
//! finishes. Through Portcullis every run is a new run (created through the admin API
//! before its messages, finished after them, neither timed), so its first `tools/call`
//! finds nothing memoized for the run: it is reported apart from the four warm ones.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::http::{Conn, McpTarget};
use crate::load::Stats;
use crate::proxy::{self, Proxy, Setup};

/// What the runs of one path took.
#[derive(Clone, Debug, Default)]
pub struct ShortRuns {
    /// The eight exchanges of a run, together.
    pub whole: Stats,
    /// `initialize` + `notifications/initialized`.
    pub session: Stats,
    pub list: Stats,
    /// The first `tools/call` of each run.
    pub first_call: Stats,
    /// The other four `tools/call`s of each run.
    pub warm_calls: Stats,
}

/// Where the runs go.
pub enum Path<'a> {
    /// The upstream itself, or the floor forwarder: no runs, the same target each time.
    Fixed(McpTarget),
    /// Portcullis: a new run each time, finished after its messages.
    Proxied { proxy: &'a Proxy, setup: &'a Setup },
}

impl Path<'_> {
    /// The target of a new run, and the id to finish it by (Portcullis).
    async fn start(&self) -> anyhow::Result<(McpTarget, Option<String>)> {
        match self {
            Path::Fixed(target) => Ok((target.clone(), None)),
            Path::Proxied { proxy, setup } => {
                let (id, token) = proxy::new_run(proxy, setup).await?;
                let target = McpTarget {
                    addr: proxy.addr,
                    path: format!("/mcp/{}", setup.echo_connector),
                    token: Some(token),
                };
                Ok((target, Some(id)))
            }
        }
    }

    async fn finish(&self, run: Option<String>) -> anyhow::Result<()> {
        match (self, run) {
            (Path::Proxied { proxy, .. }, Some(id)) => proxy::finish_run(proxy, &id).await,
            _ => Ok(()),
        }
    }
}

/// `runs` runs along `path`; the latency of every exchange is kept.
pub async fn measure(path: &Path<'_>, runs: usize) -> anyhow::Result<ShortRuns> {
    let list = portcullis_test_upstreams::wire::request(2, "tools/list", json!({}));
    let call = |id| {
        portcullis_test_upstreams::wire::request(
            id,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "hello"}}),
        )
    };
    let mut samples: [Vec<u64>; 5] = Default::default();
    let started = Instant::now();
    for _ in 0..runs {
        let (target, run) = path.start().await?;
        let mut conn = Conn::open(target.addr).await?;
        let begun = Instant::now();
        let session = target.open_session(&mut conn).await?;
        let opened = begun.elapsed();
        let with_session = |body: &serde_json::Value| {
            let prepared = target.prepared(body);
            match &session {
                Some(id) => prepared.with_header("mcp-session-id", id),
                None => prepared,
            }
        };
        let listed = timed(&mut conn, with_session(&list).request()).await?;
        let mut calls = Vec::with_capacity(5);
        for id in 3..8 {
            calls.push(timed(&mut conn, with_session(&call(id)).request()).await?);
        }
        let whole = begun.elapsed();
        path.finish(run).await?;
        let ns = |d: Duration| d.as_nanos() as u64;
        samples[0].push(ns(whole));
        samples[1].push(ns(opened));
        samples[2].push(ns(listed));
        samples[3].push(ns(calls[0]));
        samples[4].extend(calls[1..].iter().map(|d| ns(*d)));
    }
    let window = started.elapsed();
    let [whole, session, list, first_call, warm_calls] =
        samples.map(|s| Stats::from_samples(1, s, 0, window));
    Ok(ShortRuns {
        whole,
        session,
        list,
        first_call,
        warm_calls,
    })
}

/// One exchange that must succeed; how long it took.
async fn timed(
    conn: &mut Conn,
    request: http::Request<http_body_util::Full<bytes::Bytes>>,
) -> anyhow::Result<Duration> {
    let sent = Instant::now();
    let answer = conn.send(request).await?;
    let took = sent.elapsed();
    anyhow::ensure!(
        answer.is_rpc_success(),
        "a short run's exchange answered {}: {}",
        answer.status,
        String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)])
    );
    Ok(took)
}
