//! The upstreams set TCP_NODELAY: without it, an SSE answer (written as several pieces: the
//! priming event, then the result) waits on the client's delayed ACK, ~40 ms on Linux, and
//! every latency a benchmark measures against these upstreams would be that timer.
//! (A JSON answer goes out in one write, so only an SSE answer can show the difference.)

use std::time::{Duration, Instant};

use portcullis_test_upstreams::{
    sessions,
    wire::{self, mcp_headers},
};
use serde_json::json;

use crate::support::{open_session, post};

#[tokio::test]
async fn sse_answers_are_not_held_back_by_nagle() {
    let upstream = sessions().await;
    let http = reqwest::Client::new();
    let session = open_session(&http, &upstream.url()).await;

    let mut durations = Vec::new();
    for id in 1..=21 {
        let started = Instant::now();
        let call = wire::call_tool(id, "echo", json!({"text": "ping"}));
        let response = post(&http, &upstream.url(), mcp_headers(Some(&session)), &call).await;
        assert!(response.text().await.unwrap().contains("ping"));
        durations.push(started.elapsed());
    }
    durations.sort();
    // The median, so that one call slowed by a busy machine does not fail the test; with
    // Nagle on, every call takes 40 ms or more.
    let median = durations[durations.len() / 2];
    assert!(
        median < Duration::from_millis(20),
        "median call took {median:?}"
    );
}
