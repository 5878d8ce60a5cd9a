//! Discovery against hostile upstreams: what they say is bounded, and the credential
//! they echo never reaches the database (file, WAL or shared memory) or an API answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

/// A credential with characters JSON escapes, so that its escaped form differs.
const SECRET: &str = r#"sk-"echo\secret-7f3a9c41"#;

/// An upstream that answers `initialize` like any MCP server and every `tools/list`
/// with `page(request, credential received)`.
async fn hostile(page: impl Fn(&Value, &str) -> Response + Send + Sync + 'static) -> Upstream {
    let page = Arc::new(page);
    serve(axum::Router::new().route(
        "/mcp",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let page = page.clone();
            async move {
                let request: Value = serde_json::from_slice(&body).unwrap_or_default();
                let credential = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or("")
                    .to_owned();
                match request["method"].as_str() {
                    Some("initialize") => json_answer(
                        &request,
                        json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                               "serverInfo": {"name": "hostile", "version": "1"}}),
                    ),
                    Some("tools/list") => page(&request, &credential),
                    _ => StatusCode::ACCEPTED.into_response(),
                }
            }
        }),
    ))
    .await
}

fn json_answer(request: &Value, result: Value) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": request["id"], "result": result});
    ([("content-type", "application/json")], body.to_string()).into_response()
}

fn raw(content_type: &'static str, body: String) -> Response {
    ([("content-type", content_type)], body).into_response()
}

fn tools(n: usize, description: &str) -> Value {
    (0..n)
        .map(|i| json!({"name": format!("t{i}"), "description": description, "inputSchema": {"type": "object"}}))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_echoed_credential_is_redacted_before_it_is_stored_or_shown() {
    let h = Proxy::start().await;
    let escaped = serde_json::to_string(SECRET).unwrap();
    let escaped = escaped[1..escaped.len() - 1].to_owned();
    let upstream = hostile(move |request, credential| {
        // Every string of a tool carries the credential it was sent, as sent and in
        // its JSON-escaped form.
        let url = credential
            .bytes()
            .map(|b| format!("%{b:02X}"))
            .collect::<String>();
        let b64 = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("user:{credential}"),
        );
        let both = format!("{credential} and {escaped} and {url} and Basic {b64}");
        json_answer(
            request,
            json!({"tools": [{
                "name": format!("echo_{credential}"),
                "title": both,
                "description": format!("key: {both}"),
                "inputSchema": {"type": "object"},
                "annotations": {
                    "readOnlyHint": true,
                    credential: both,
                    "nested": [{"deeper": both}, both],
                },
            }]}),
        )
    })
    .await;
    let created = h.add_connector("alice", &upstream.url, Some(SECRET)).await;
    let id = created["id"].as_str().unwrap();
    let (status, shown) = h.api(Method::GET, &format!("/connectors/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    let listed = h.connectors().await;
    let escaped = serde_json::to_string(SECRET).unwrap();
    let url = SECRET
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect::<String>();
    let b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("user:{SECRET}"),
    );
    let forms = [SECRET, &escaped[1..escaped.len() - 1], &url, &b64[8..30]];
    for answer in [&created, &shown, &listed] {
        let text = answer.to_string();
        assert!(text.contains("[REDACTED]"), "{text}");
        for form in forms {
            assert!(!text.contains(form), "an answer shows {form}: {text}");
        }
    }
    let tool = &shown["tools"][0];
    assert_eq!(tool["name"], "echo_[REDACTED]");
    assert_eq!(tool["annotations"]["readOnlyHint"], true);
    assert!(tool["annotations"]["[REDACTED]"].is_string(), "{tool}");

    let dir = h.dir.path().to_path_buf();
    h.server.shutdown().await;
    let bytes = database_bytes(&dir);
    assert!(contains(&bytes, id), "the database files were read");
    assert!(
        contains(&bytes, "echo_[REDACTED]"),
        "the snapshot was stored"
    );
    for form in forms {
        assert!(!contains(&bytes, form), "the database holds {form}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_echoed_credential_in_an_error_is_redacted() {
    let h = Proxy::start().await;
    let upstream = hostile(|request, credential| {
        let body = json!({"jsonrpc": "2.0", "id": request["id"],
                          "error": {"code": -32000, "message": format!("bad key {credential}")}});
        raw("application/json", body.to_string())
    })
    .await;
    let answer = h
        .api(
            Method::POST,
            "/connectors",
            Some(json!({"owner": "a", "server_url": upstream.url, "auth": {"method": "api_key", "secret": SECRET}})),
        )
        .await;
    assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "upstream_error");
    assert!(!answer.1.to_string().contains(SECRET), "{}", answer.1);
}

/// Endless pages, huge pages, an event that never ends its line, more tools or more
/// snapshot than a connector may keep, and answers that are not MCP at all.
#[tokio::test(flavor = "multi_thread")]
async fn discovery_is_bounded_and_refuses_what_is_not_mcp() {
    let h = Proxy::start().await;
    let big = "x".repeat(5 << 20);
    let pages = Arc::new(AtomicUsize::new(0));
    let counted = pages.clone();
    let cases: Vec<(&str, Upstream, &str)> = vec![
        (
            "endless cursor",
            hostile(move |request, _| {
                let n = counted.fetch_add(1, Ordering::Relaxed);
                json_answer(request, json!({"tools": [], "nextCursor": format!("c{n}")}))
            })
            .await,
            "upstream_too_large",
        ),
        (
            "a page over the size limit",
            hostile({
                let big = big.clone();
                move |request, _| json_answer(request, json!({"tools": tools(1, &big)}))
            })
            .await,
            "upstream_too_large",
        ),
        (
            "an event that never ends its line",
            hostile({
                let big = big.clone();
                move |_, _| raw("text/event-stream", format!("data: {big}"))
            })
            .await,
            "upstream_too_large",
        ),
        (
            "an event stream of nothing but comments",
            hostile(|_, _| raw("text/event-stream", ": ping\n\n".repeat(700_000))).await,
            "upstream_too_large",
        ),
        (
            "too many tools",
            hostile(|request, _| json_answer(request, json!({"tools": tools(2_001, "")}))).await,
            "upstream_too_large",
        ),
        (
            "a snapshot over the size limit, page by page",
            hostile(|request, _| {
                let page: usize = request["params"]["cursor"]
                    .as_str()
                    .map_or(0, |c| c.parse().unwrap());
                let tools: Vec<Value> = (0..300)
                    .map(|i| json!({"name": format!("p{page}_{i}"), "description": "d".repeat(2048)}))
                    .collect();
                json_answer(
                    request,
                    json!({"tools": tools, "nextCursor": (page + 1).to_string()}),
                )
            })
            .await,
            "upstream_too_large",
        ),
        (
            "not JSON",
            hostile(|_, _| raw("application/json", "{\"jsonrpc\": \"2.0\", ".to_owned())).await,
            "upstream_not_mcp",
        ),
        (
            "tools not an array",
            hostile(|request, _| json_answer(request, json!({"tools": {"a": 1}}))).await,
            "upstream_not_mcp",
        ),
        (
            "a tool without a name",
            hostile(|request, _| json_answer(request, json!({"tools": [{"title": "t"}]}))).await,
            "upstream_not_mcp",
        ),
        (
            "the same cursor twice",
            hostile(|request, _| json_answer(request, json!({"tools": [], "nextCursor": "same"})))
                .await,
            "upstream_error",
        ),
        (
            "a JSON-RPC answer to another id",
            hostile(|_, _| {
                raw(
                    "application/json",
                    json!({"jsonrpc": "2.0", "id": 999, "result": {"tools": []}}).to_string(),
                )
            })
            .await,
            "upstream_not_mcp",
        ),
    ];
    for (name, upstream, code) in &cases {
        let answer = h
            .api(
                Method::POST,
                "/connectors",
                Some(json!({"owner": "a", "server_url": upstream.url, "auth": {"method": "none"}})),
            )
            .await;
        assert_eq!(
            answer.0,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {}",
            answer.1
        );
        assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, code);
        let message = answer.1["error"]["message"].as_str().unwrap();
        assert!(
            message.len() < 1_000,
            "{name}: the message quotes the upstream: {message}"
        );
    }
    assert_eq!(
        pages.load(Ordering::Relaxed),
        portcullis::config::LimitsConfig::default().discovery_pages,
        "the endless cursor was followed to the limit and no further"
    );
    assert_eq!(h.count("connectors").await, 0);
}

/// Issue 10, limits as configuration: the discovery bounds come from `[limits]`; a
/// connector over a lowered one is refused naming the limit, one within it is created.
#[tokio::test(flavor = "multi_thread")]
async fn discovery_bounds_are_configured() {
    let h = Proxy::start_with(|c| {
        c.limits.discovery_tools = 3;
        c.limits.discovery_pages = 2;
        c.limits.discovery_page_bytes = 4_096;
    })
    .await;
    let create = |url: String| {
        let h = &h;
        async move {
            h.api(
                Method::POST,
                "/connectors",
                Some(json!({"owner": "a", "server_url": url, "auth": {"method": "none"}})),
            )
            .await
        }
    };
    let paged = |pages: usize| {
        move |request: &Value, _: &str| {
            let page: usize = request["params"]["cursor"]
                .as_str()
                .map_or(0, |c| c.parse().unwrap());
            let next = (page + 1 < pages).then(|| (page + 1).to_string());
            json_answer(
                request,
                json!({"tools": [{"name": format!("p{page}")}], "nextCursor": next}),
            )
        }
    };
    let cases: Vec<(&str, Upstream, &str)> = vec![
        (
            "4 tools",
            hostile(|request, _| json_answer(request, json!({"tools": tools(4, "")}))).await,
            "limits.discovery_tools",
        ),
        ("3 pages", hostile(paged(3)).await, "limits.discovery_pages"),
        (
            "a 5 KiB page",
            hostile(|request, _| {
                json_answer(request, json!({"tools": tools(1, &"d".repeat(5_000))}))
            })
            .await,
            "limits.discovery_page_bytes",
        ),
    ];
    for (name, upstream, limit) in &cases {
        let answer = create(upstream.url.clone()).await;
        assert_error(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "upstream_too_large",
        );
        let message = answer.1["error"]["message"].as_str().unwrap();
        assert!(message.contains(limit), "{name}: {message}");
    }
    assert_eq!(h.count("connectors").await, 0);

    for within in [
        hostile(|request, _| json_answer(request, json!({"tools": tools(3, "")}))).await,
        hostile(paged(2)).await,
    ] {
        let (status, body) = create(within.url.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}
