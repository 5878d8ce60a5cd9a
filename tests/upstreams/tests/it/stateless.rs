//! `stateless()` and `echo_bench()`: no sessions, JSON answers, and the 2026-07-28 requests.

use portcullis_test_upstreams::{
    McpUpstream, ToolSet, catalogue,
    client::{arguments, connect, text},
    echo_bench, stateless,
    wire::{self, mcp_headers},
};
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

use crate::support::{content_type, post};

#[tokio::test]
async fn an_rmcp_client_lists_and_calls_without_a_session() {
    let upstream = stateless().await;
    let client = connect(&upstream.url(), None).await.unwrap();
    assert_eq!(client.list_all_tools().await.unwrap().len(), 6);
    let echoed = client
        .call_tool(
            CallToolRequestParams::new("echo").with_arguments(arguments(json!({"text": "x"}))),
        )
        .await
        .unwrap();
    assert_eq!(text(&echoed), "x");
    client.cancel().await.unwrap();
    assert!(
        upstream
            .requests()
            .iter()
            .all(|r| r.header("mcp-session-id").is_none()),
        "no session id was ever handed out, so none came back"
    );
}

#[tokio::test]
async fn answers_json_without_a_session_id() {
    let upstream = stateless().await;
    let http = reqwest::Client::new();

    let init = post(
        &http,
        &upstream.url(),
        mcp_headers(None),
        &wire::initialize(1),
    )
    .await;
    assert_eq!(init.status(), 200);
    assert_eq!(content_type(&init), "application/json");
    assert!(init.headers().get("mcp-session-id").is_none());

    // Every request stands alone: no handshake is needed before a call.
    let call = post(
        &http,
        &upstream.url(),
        mcp_headers(None),
        &wire::call_tool(2, "echo", json!({"text": "alone"})),
    )
    .await;
    assert_eq!(content_type(&call), "application/json");
    let body: Value = call.json().await.unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "alone");
}

#[tokio::test]
async fn falls_back_to_sse_when_a_tool_sends_progress() {
    let tools = ToolSet::new(vec![catalogue::slow_count()]);
    let upstream = McpUpstream::stateless().tools(tools).start().await;
    let call = post(
        &reqwest::Client::new(),
        &upstream.url(),
        mcp_headers(None),
        &wire::call_tool(1, "slow_count", json!({"count": 2, "delay_ms": 1})),
    )
    .await;
    assert_eq!(content_type(&call), "text/event-stream");
    let messages = wire::sse_messages(&call.text().await.unwrap());
    let methods: Vec<_> = messages.iter().map(|m| m["method"].as_str()).collect();
    assert_eq!(
        methods,
        [
            Some("notifications/progress"),
            Some("notifications/progress"),
            None
        ]
    );
    assert_eq!(messages[2]["result"]["content"][0]["text"], "counted 2");
}

#[tokio::test]
async fn serves_2026_07_28_discovery_and_calls() {
    let upstream = stateless().await;
    let http = reqwest::Client::new();

    let discover = post(
        &http,
        &upstream.url(),
        wire::stateless_headers("server/discover", None),
        &wire::stateless_request(1, "server/discover", json!({})),
    )
    .await;
    assert_eq!(discover.status(), 200);
    let body: Value = discover.json().await.unwrap();
    let versions = body["result"]["supportedVersions"].as_array().unwrap();
    assert!(
        versions.contains(&json!(wire::STATELESS_PROTOCOL_VERSION)),
        "{body}"
    );
    assert_eq!(body["result"]["capabilities"]["tools"], json!({}));

    let call = post(
        &http,
        &upstream.url(),
        wire::stateless_headers("tools/call", Some("echo")),
        &wire::stateless_request(
            2,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "new"}}),
        ),
    )
    .await;
    assert_eq!(call.status(), 200);
    let body: Value = call.json().await.unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "new");
    assert_eq!(body["result"]["resultType"], "complete");

    // rmcp checks Mcp-Name against the body, so a proxy must keep them consistent.
    let mismatch = post(
        &http,
        &upstream.url(),
        wire::stateless_headers("tools/call", Some("send_message")),
        &wire::stateless_request(
            3,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "x"}}),
        ),
    )
    .await;
    assert_eq!(mismatch.status(), 400);
    let body: Value = mismatch.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32020, "HeaderMismatch: {body}");
}

#[tokio::test]
async fn echo_bench_answers_json_and_records_nothing() {
    let upstream = echo_bench().await;
    let client = connect(&upstream.url(), None).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(
        tools.iter().map(|t| t.name.as_ref()).collect::<Vec<_>>(),
        ["echo"]
    );
    for i in 0..3 {
        let echoed = client
            .call_tool(
                CallToolRequestParams::new("echo")
                    .with_arguments(arguments(json!({"text": i.to_string()}))),
            )
            .await
            .unwrap();
        assert_eq!(text(&echoed), i.to_string());
    }
    client.cancel().await.unwrap();
    assert!(upstream.requests().is_empty());
}
