//! The raw upstreams misbehave exactly as documented, and only where documented.

use std::time::Duration;

use portcullis_test_upstreams::{
    UPSTREAM_COOKIE, Upstream, closes_mid_stream, down, hangs, hangs_on_call, insufficient_scope,
    leaky, not_mcp, unauthorized, unauthorized_on_call,
    wire::{self, mcp_headers},
};
use serde_json::{Value, json};

async fn post(upstream: &Upstream, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(upstream.url())
        .headers(mcp_headers(Some("raw-session-1")))
        .header("authorization", "Bearer s3cret")
        .body(body.to_string())
        .send()
        .await
        .expect("the upstream answers")
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers()[name].to_str().unwrap().to_owned()
}

/// Discovery works: initialize over JSON with a session id, 202 for the notification, a
/// JSON tools/list.
async fn assert_discovery_works(upstream: &Upstream) -> Vec<String> {
    let init = post(upstream, &wire::initialize(1)).await;
    assert_eq!(init.status(), 200);
    assert_eq!(header(&init, "content-type"), "application/json");
    assert!(header(&init, "mcp-session-id").starts_with("raw-session-"));
    let init: Value = init.json().await.unwrap();
    assert_eq!(init["result"]["protocolVersion"], wire::PROTOCOL_VERSION);
    assert_eq!(
        post(upstream, &wire::notification("notifications/initialized"))
            .await
            .status(),
        202
    );
    let list: Value = post(upstream, &wire::request(2, "tools/list", json!({})))
        .await
        .json()
        .await
        .unwrap();
    list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn not_mcp_serves_a_web_page_for_everything() {
    let upstream = not_mcp().await;
    let response = post(&upstream, &wire::initialize(1)).await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "content-type").starts_with("text/html"));
    assert!(response.text().await.unwrap().contains("<html>"));
    assert_eq!(upstream.requests().len(), 1);
}

#[tokio::test]
async fn unauthorized_challenges_every_request_and_sets_a_cookie() {
    let upstream = unauthorized().await;
    let response = post(&upstream, &wire::initialize(1)).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        header(&response, "www-authenticate"),
        format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
            upstream.base_url()
        )
    );
    assert_eq!(header(&response, "set-cookie"), UPSTREAM_COOKIE);
}

#[tokio::test]
async fn unauthorized_on_call_completes_discovery_first() {
    let upstream = unauthorized_on_call().await;
    assert_eq!(assert_discovery_works(&upstream).await, ["echo"]);
    let call = post(&upstream, &wire::call_tool(3, "echo", json!({"text": "x"}))).await;
    assert_eq!(call.status(), 401);
    assert!(header(&call, "www-authenticate").starts_with("Bearer resource_metadata="));
    assert_eq!(header(&call, "set-cookie"), UPSTREAM_COOKIE);
}

#[tokio::test]
async fn insufficient_scope_refuses_calls_with_a_step_up_challenge() {
    let upstream = insufficient_scope().await;
    assert_eq!(assert_discovery_works(&upstream).await, ["echo"]);
    let call = post(&upstream, &wire::call_tool(3, "echo", json!({"text": "x"}))).await;
    assert_eq!(call.status(), 403);
    assert_eq!(
        header(&call, "www-authenticate"),
        r#"Bearer error="insufficient_scope", scope="repo""#
    );
}

#[tokio::test]
async fn hangs_never_answers_but_records_and_stops_on_shutdown() {
    let upstream = hangs().await;
    let pending = tokio::time::timeout(
        Duration::from_millis(300),
        post(&upstream, &wire::initialize(1)),
    )
    .await;
    assert!(pending.is_err(), "no answer within the timeout");
    assert_eq!(
        upstream.requests().len(),
        1,
        "the request was read before the silence"
    );

    // A request in flight when the upstream stops sees its connection close.
    let in_flight = tokio::spawn({
        let request = reqwest::Client::new()
            .post(upstream.url())
            .headers(mcp_headers(None))
            .body(wire::initialize(2).to_string());
        async move { request.send().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    upstream.shutdown().await;
    let closed = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .unwrap()
        .unwrap();
    assert!(closed.is_err(), "the hanging request ended with the server");
}

#[tokio::test]
async fn hangs_on_call_completes_discovery_then_never_answers_a_call() {
    let upstream = hangs_on_call().await;
    assert_eq!(assert_discovery_works(&upstream).await, ["echo"]);
    let call = wire::call_tool(3, "echo", json!({"text": "x"}));
    let answer = tokio::time::timeout(Duration::from_millis(300), post(&upstream, &call)).await;
    assert!(answer.is_err());
}

#[tokio::test]
async fn closes_mid_stream_sends_one_progress_event_then_tears_the_connection() {
    let upstream = closes_mid_stream().await;
    assert_eq!(assert_discovery_works(&upstream).await, ["echo"]);
    let mut call = post(&upstream, &wire::call_tool(3, "echo", json!({"text": "x"}))).await;
    assert_eq!(call.status(), 200);
    assert_eq!(header(&call, "content-type"), "text/event-stream");

    let first = call
        .chunk()
        .await
        .unwrap()
        .expect("one event before the tear");
    let messages = wire::sse_messages(std::str::from_utf8(&first).unwrap());
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["method"], "notifications/progress");
    assert_eq!(messages[0]["params"]["progressToken"], "p-3");

    let torn = call.chunk().await;
    assert!(
        torn.is_err(),
        "the body ends in an error, not a clean end: {torn:?}"
    );
}

#[tokio::test]
async fn leaky_puts_the_credential_it_received_into_results_and_errors() {
    let upstream = leaky("s3cret").await;
    assert_eq!(
        assert_discovery_works(&upstream).await,
        ["leak", "leak_error", "leak_sse"]
    );
    let leaked = "Authorization was `Bearer s3cret`; secret is `s3cret`";

    let result: Value = post(&upstream, &wire::call_tool(3, "leak", json!({})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(result["result"]["content"][0]["text"], leaked);
    assert_eq!(
        result["result"]["structuredContent"]["authorization"],
        "Bearer s3cret"
    );

    let error: Value = post(&upstream, &wire::call_tool(4, "leak_error", json!({})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(error["error"]["code"], -32000);
    assert_eq!(error["error"]["message"], leaked);
    assert_eq!(error["error"]["data"]["secret"], "s3cret");

    let sse = post(&upstream, &wire::call_tool(5, "leak_sse", json!({}))).await;
    assert_eq!(header(&sse, "content-type"), "text/event-stream");
    let messages = wire::sse_messages(&sse.text().await.unwrap());
    assert_eq!(messages[0]["params"]["message"], leaked);
    assert_eq!(messages[1]["result"]["content"][0]["text"], leaked);
}

#[tokio::test]
async fn raw_upstreams_answer_the_rest_of_the_transport() {
    let upstream = leaky("s3cret").await;
    let http = reqwest::Client::new();
    let get = http
        .get(upstream.url())
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(
        http.delete(upstream.url()).send().await.unwrap().status(),
        204
    );
    let unknown: Value = post(&upstream, &wire::request(9, "resources/list", json!({})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unknown["error"]["code"], -32601);
    let ping: Value = post(&upstream, &wire::request(10, "ping", json!({})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ping["result"], json!({}));
}

#[tokio::test]
async fn down_names_a_port_that_refuses_connections() {
    let url = down();
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"));
    let refused = reqwest::Client::new()
        .post(&url)
        .body("{}")
        .send()
        .await
        .unwrap_err();
    assert!(refused.is_connect(), "{refused:?}");
}
