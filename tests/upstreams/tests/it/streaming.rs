//! `paging()` and `progress()`: answers that arrive as SSE streams of several events.

use std::time::{Duration, Instant};

use portcullis_test_upstreams::{
    client::{arguments, connect, text},
    paging, progress,
    wire::{self, mcp_headers},
};
use rmcp::model::{CallToolRequestParams, PaginatedRequestParams};
use serde_json::{Value, json};

use crate::support::open_session;

#[tokio::test]
async fn pages_chain_by_next_cursor_over_sse_to_all_100_tools() {
    let upstream = paging(100, 30).await;
    let url = upstream.url();
    let http = reqwest::Client::new();
    let session = open_session(&http, &url).await;

    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let params = match &cursor {
            Some(c) => json!({"cursor": c, "_meta": {"progressToken": pages}}),
            None => json!({"_meta": {"progressToken": pages}}),
        };
        let response = http
            .post(&url)
            .headers(mcp_headers(Some(&session)))
            .body(wire::request(pages + 1, "tools/list", params).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let messages = wire::sse_messages(&response.text().await.unwrap());
        assert_eq!(messages.len(), 2, "a progress notification, then the page");
        assert_eq!(messages[0]["method"], "notifications/progress");
        assert_eq!(messages[0]["params"]["progressToken"], pages);
        let result = &messages[1]["result"];
        names.extend(
            result["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        match result.get("nextCursor").and_then(Value::as_str) {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    let expected: Vec<String> = (0..100).map(|i| format!("tool_{i:03}")).collect();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn an_rmcp_client_walks_every_page_and_a_bad_cursor_is_invalid_params() {
    let upstream = paging(100, 7).await;
    let client = connect(&upstream.url(), None).await.unwrap();
    assert_eq!(client.list_all_tools().await.unwrap().len(), 100);
    let first = client.list_tools(None).await.unwrap();
    assert_eq!(first.tools.len(), 7);
    assert!(first.next_cursor.is_some());

    let bad = client
        .list_tools(Some(
            PaginatedRequestParams::default().with_cursor(Some("bogus".into())),
        ))
        .await
        .unwrap_err();
    assert!(
        bad.to_string().contains("-32602") || bad.to_string().contains("Invalid cursor"),
        "{bad}"
    );
    client.cancel().await.unwrap();
    // 15 pages for the walk, one for the first page, one for the bad cursor.
    let lists = upstream
        .requests()
        .iter()
        .filter(|r| r.rpc_method().as_deref() == Some("tools/list"))
        .count();
    assert_eq!(lists, 17);
}

/// Reads the SSE body chunk by chunk, noting when each JSON message arrived.
async fn timed_messages(mut response: reqwest::Response) -> Vec<(Instant, Value)> {
    let mut buffer = String::new();
    let mut timed = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        let now = Instant::now();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        // Only whole events (ending in a blank line) are parsed.
        if let Some(end) = buffer.rfind("\n\n") {
            let complete: String = buffer.drain(..end + 2).collect();
            timed.extend(wire::sse_messages(&complete).into_iter().map(|m| (now, m)));
        }
    }
    timed
}

#[tokio::test]
async fn slow_count_streams_progress_events_before_its_result() {
    let upstream = progress().await;
    let url = upstream.url();
    let http = reqwest::Client::new();
    let session = open_session(&http, &url).await;

    let response = http
        .post(&url)
        .headers(mcp_headers(Some(&session)))
        .body(wire::call_tool(5, "slow_count", json!({"count": 4, "delay_ms": 40})).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let timed = timed_messages(response).await;

    assert_eq!(timed.len(), 5);
    for (step, (_, message)) in timed[..4].iter().enumerate() {
        assert_eq!(message["method"], "notifications/progress");
        assert_eq!(message["params"]["progressToken"], "p-5");
        assert_eq!(message["params"]["progress"], (step + 1) as f64);
        assert_eq!(message["params"]["total"], 4.0);
    }
    let (result_at, result) = &timed[4];
    assert_eq!(result["id"], 5);
    assert_eq!(result["result"]["content"][0]["text"], "counted 4");
    // The first event was read off the socket well before the result was written.
    let (first_at, _) = &timed[0];
    assert!(
        *result_at - *first_at >= Duration::from_millis(100),
        "events were not streamed"
    );
}

#[tokio::test]
async fn an_rmcp_client_receives_progress_before_the_result() {
    let upstream = progress().await;
    let client = connect(&upstream.url(), None).await.unwrap();
    let call = CallToolRequestParams::new("slow_count")
        .with_arguments(arguments(json!({"count": 3, "delay_ms": 30})));
    let result = client.call_tool(call).await.unwrap();
    let returned_at = Instant::now();
    assert_eq!(text(&result), "counted 3");

    let events = client.service().progress();
    let steps: Vec<f64> = events.iter().map(|e| e.params.progress).collect();
    assert_eq!(steps, [1.0, 2.0, 3.0]);
    assert!(returned_at - events[0].at >= Duration::from_millis(60));
    client.cancel().await.unwrap();
}
