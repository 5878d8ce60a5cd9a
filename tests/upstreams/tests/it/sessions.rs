//! `sessions()` and the `McpUpstream` builder, through rmcp's client and on the wire.

use portcullis_test_upstreams::{
    McpUpstream, ToolSet, catalogue,
    client::{arguments, connect, text},
    sessions,
    wire::{self, mcp_headers},
};
use rmcp::model::CallToolRequestParams;
use serde_json::json;

use crate::support::{content_type, post};

/// (readOnly, destructive, idempotent) as declared, `None` where the tool leaves the default.
type Hints = Option<(Option<bool>, Option<bool>, Option<bool>)>;

#[tokio::test]
async fn lists_the_channel_tools_with_their_annotations() {
    let upstream = sessions().await;
    let client = connect(&upstream.url(), None).await.unwrap();
    let tools = client.list_tools(None).await.unwrap();
    assert_eq!(tools.next_cursor, None);
    let hints: Vec<(String, Hints)> = tools
        .tools
        .iter()
        .map(|t| {
            let hints = t
                .annotations
                .as_ref()
                .map(|a| (a.read_only_hint, a.destructive_hint, a.idempotent_hint));
            (t.name.to_string(), hints)
        })
        .collect();
    assert_eq!(
        hints,
        vec![
            ("list_channels".into(), Some((Some(true), None, None))),
            ("get_channel".into(), Some((Some(true), None, None))),
            (
                "send_message".into(),
                Some((Some(false), Some(false), None))
            ),
            (
                "delete_channel".into(),
                Some((Some(false), Some(true), None))
            ),
            (
                "archive_channel".into(),
                Some((Some(false), Some(false), Some(true)))
            ),
            ("echo".into(), None),
        ]
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn answers_echo_other_tools_and_unknown_tools() {
    let upstream = sessions().await;
    let client = connect(&upstream.url(), None).await.unwrap();

    let echoed = client
        .call_tool(
            CallToolRequestParams::new("echo").with_arguments(arguments(json!({"text": "hello"}))),
        )
        .await
        .unwrap();
    assert_eq!(text(&echoed), "hello");
    assert_eq!(echoed.is_error, Some(false));

    let sent = client
        .call_tool(
            CallToolRequestParams::new("send_message")
                .with_arguments(arguments(json!({"channel": "general", "text": "hi"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        text(&sent),
        r#"send_message: {"channel":"general","text":"hi"}"#
    );

    let unknown = client
        .call_tool(CallToolRequestParams::new("no_such_tool"))
        .await
        .unwrap_err();
    assert!(
        unknown.to_string().contains("Unknown tool: no_such_tool"),
        "{unknown}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_tool_added_while_running_is_listed_and_answered_from_then_on() {
    let tools = ToolSet::channels();
    tools.remove("archive_channel");
    let upstream = McpUpstream::with_sessions()
        .tools(tools.clone())
        .start()
        .await;
    let client = connect(&upstream.url(), None).await.unwrap();

    let before = client.list_all_tools().await.unwrap();
    assert!(!before.iter().any(|t| t.name == "archive_channel"));
    let call = CallToolRequestParams::new("archive_channel")
        .with_arguments(arguments(json!({"channel": "c"})));
    assert!(client.call_tool(call.clone()).await.is_err());

    tools.add(catalogue::archive_channel());
    let after = client.list_all_tools().await.unwrap();
    assert!(after.iter().any(|t| t.name == "archive_channel"));
    assert_eq!(
        text(&client.call_tool(call).await.unwrap()),
        r#"archive_channel: {"channel":"c"}"#
    );
    client.cancel().await.unwrap();
}

/// The wire as a proxy sees it: SSE answers opened by rmcp's priming event, the session id,
/// and rmcp's status codes for requests outside a live session.
#[tokio::test]
async fn speaks_streamable_http_with_sessions() {
    let upstream = sessions().await;
    let url = upstream.url();
    let http = reqwest::Client::new();

    let init = post(&http, &url, mcp_headers(None), &wire::initialize(1)).await;
    assert_eq!(init.status(), 200);
    assert_eq!(content_type(&init), "text/event-stream");
    let session = init
        .headers()
        .get("mcp-session-id")
        .expect("initialize mints a session")
        .to_str()
        .unwrap()
        .to_owned();
    let body = init.text().await.unwrap();
    assert!(
        body.starts_with("data: \nid: 0\nretry: 3000\n\n"),
        "rmcp opens with an empty priming event: {body:?}"
    );
    let messages = wire::sse_messages(&body);
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0]["result"]["protocolVersion"],
        wire::PROTOCOL_VERSION
    );

    let initialized = post(
        &http,
        &url,
        mcp_headers(Some(&session)),
        &wire::notification("notifications/initialized"),
    )
    .await;
    assert_eq!(initialized.status(), 202);

    let list = post(
        &http,
        &url,
        mcp_headers(Some(&session)),
        &wire::request(2, "tools/list", json!({})),
    )
    .await;
    assert_eq!(content_type(&list), "text/event-stream");
    let messages = wire::sse_messages(&list.text().await.unwrap());
    assert_eq!(
        messages.last().unwrap()["result"]["tools"]
            .as_array()
            .unwrap()
            .len(),
        6
    );

    let no_session = post(
        &http,
        &url,
        mcp_headers(None),
        &wire::request(3, "tools/list", json!({})),
    )
    .await;
    assert_eq!(
        no_session.status(),
        400,
        "rmcp's answer to a request without a session id"
    );

    let unknown = post(
        &http,
        &url,
        mcp_headers(Some("not-a-session")),
        &wire::request(4, "tools/list", json!({})),
    )
    .await;
    assert_eq!(unknown.status(), 404);

    let get = http
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200, "rmcp offers the standalone GET stream");
    assert_eq!(content_type(&get), "text/event-stream");
    drop(get);

    let delete = http
        .delete(&url)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 202);
    let after_delete = post(
        &http,
        &url,
        mcp_headers(Some(&session)),
        &wire::request(5, "tools/list", json!({})),
    )
    .await;
    assert_eq!(after_delete.status(), 404);
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let upstream = sessions().await;
    let url = upstream.url();
    upstream.shutdown().await;
    let refused = reqwest::Client::new()
        .post(&url)
        .headers(mcp_headers(None))
        .body(wire::initialize(1).to_string())
        .send()
        .await
        .unwrap_err();
    assert!(refused.is_connect(), "{refused:?}");
}
