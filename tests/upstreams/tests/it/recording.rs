//! `recording()`: what the upstream logs is what arrived on the wire, and `whoami` tells.

use portcullis_test_upstreams::{
    client::{connect, text},
    recording,
    wire::{self, mcp_headers},
};
use rmcp::model::CallToolRequestParams;

#[tokio::test]
async fn whoami_answers_the_authorization_header_received() {
    let upstream = recording().await;
    let client = connect(&upstream.url(), Some("upstream-secret"))
        .await
        .unwrap();
    let me = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .unwrap();
    assert_eq!(text(&me), "Bearer upstream-secret");
    client.cancel().await.unwrap();

    let anonymous = connect(&upstream.url(), None).await.unwrap();
    let nobody = anonymous
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .unwrap();
    assert_eq!(nobody.is_error, Some(true));
    assert_eq!(text(&nobody), "no Authorization header");
    anonymous.cancel().await.unwrap();
}

#[tokio::test]
async fn records_every_request_with_all_headers_and_the_body() {
    let upstream = recording().await;
    let client = connect(&upstream.url(), Some("upstream-secret"))
        .await
        .unwrap();
    client.list_tools(None).await.unwrap();
    client.cancel().await.unwrap();

    let requests = upstream.requests();
    let methods: Vec<_> = requests.iter().filter_map(|r| r.rpc_method()).collect();
    assert_eq!(
        methods[..3],
        ["initialize", "notifications/initialized", "tools/list"]
    );
    for request in &requests {
        assert_eq!(
            request.header("authorization"),
            Some("Bearer upstream-secret")
        );
        assert_eq!(request.path_and_query, "/mcp");
        assert!(request.contains("upstream-secret"));
        assert!(!request.contains("run-token"));
    }
    let init = &requests[0];
    assert_eq!(init.method, http::Method::POST);
    assert_eq!(init.json().unwrap()["params"]["clientInfo"]["name"], "rmcp");
    assert!(init.header("mcp-session-id").is_none());
    assert!(requests[1].header("mcp-session-id").is_some());
}

#[tokio::test]
async fn records_what_a_proxy_must_never_forward_and_requests_to_other_paths() {
    let upstream = recording().await;
    let http = reqwest::Client::new();
    let mut headers = mcp_headers(None);
    headers.insert("cookie", "actor_session=c00kie".parse().unwrap());
    headers.insert("x-forwarded-for", "203.0.113.7".parse().unwrap());
    headers.append("x-repeated", "one".parse().unwrap());
    headers.append("x-repeated", "two".parse().unwrap());
    let init = http
        .post(format!("{}?api_key=q-secret", upstream.url()))
        .headers(headers)
        .body(wire::initialize(7).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    let missing = http
        .get(format!(
            "{}/.well-known/oauth-protected-resource",
            upstream.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    let init = &requests[0];
    assert_eq!(init.path_and_query, "/mcp?api_key=q-secret");
    assert_eq!(init.header("cookie"), Some("actor_session=c00kie"));
    assert_eq!(init.header("x-forwarded-for"), Some("203.0.113.7"));
    let repeated: Vec<_> = init.headers.get_all("x-repeated").iter().collect();
    assert_eq!(repeated, ["one", "two"]);
    assert!(init.contains("c00kie") && init.contains("203.0.113.7") && init.contains("q-secret"));
    assert!(
        init.contains("x-forwarded-for"),
        "header names are searched too"
    );
    assert_eq!(init.json().unwrap(), wire::initialize(7));
    assert_eq!(
        requests[1].path_and_query,
        "/.well-known/oauth-protected-resource"
    );

    upstream.recorded().lock().unwrap().clear();
    assert!(upstream.requests().is_empty());
}
