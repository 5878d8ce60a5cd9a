//! Upstreams the tests need beyond those of `portcullis-test-upstreams`: the proxy's own
//! demo server, and small axum servers that misbehave, script their tool list, or ask
//! the client for sampling. Each stops when its handle is dropped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use portcullis::demo_upstream::{DemoOptions, DemoUpstream, spawn_demo_upstream};
use serde_json::{Value, json};

pub async fn demo() -> DemoUpstream {
    spawn_demo_upstream(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        DemoOptions::default(),
    )
    .await
    .unwrap()
}

pub async fn demo_requiring(token: &str) -> DemoUpstream {
    spawn_demo_upstream(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        DemoOptions {
            require_token: Some(token.to_owned()),
        },
    )
    .await
    .unwrap()
}

/// A background HTTP server; stops when dropped.
pub struct Upstream {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on a loopback port; its MCP endpoint is `/mcp`.
pub async fn serve(router: axum::Router) -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Upstream {
        url: format!("http://{addr}/mcp"),
        task,
    }
}

/// A web page, not an MCP server.
pub async fn html_upstream() -> Upstream {
    serve(axum::Router::new().route(
        "/mcp",
        post(|| async { axum::response::Html("<html><body>Welcome</body></html>") }),
    ))
    .await
}

/// An address nothing listens on.
pub async fn closed_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/mcp")
}

/// What the scripted upstream lists and has seen.
#[derive(Default)]
pub struct Script {
    pub tools: Vec<String>,
    /// Each `Authorization` header received.
    pub seen_auth: Vec<String>,
    pub page_size: usize,
}

/// A minimal JSON-answering MCP server whose tool list a test can change; it pages
/// `tools/list` `page_size` tools at a time.
pub async fn scripted_upstream(script: Arc<Mutex<Script>>) -> Upstream {
    async fn handle(
        State(script): State<Arc<Mutex<Script>>>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> Response {
        let mut script = script.lock().unwrap();
        if let Some(auth) = headers.get("authorization") {
            script.seen_auth.push(auth.to_str().unwrap().to_owned());
        }
        let id = body["id"].clone();
        let result = match body["method"].as_str().unwrap_or("") {
            "initialize" => {
                json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}}, "serverInfo": {"name": "scripted", "version": "1"}})
            }
            "tools/list" => {
                let start: usize = body["params"]["cursor"]
                    .as_str()
                    .map_or(0, |c| c.parse().unwrap());
                let size = script.page_size.max(1);
                let page: Vec<Value> = script.tools.iter().skip(start).take(size)
                    .map(|name| json!({"name": name, "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true}}))
                    .collect();
                let mut result = json!({"tools": page});
                if start + size < script.tools.len() {
                    result["nextCursor"] = json!((start + size).to_string());
                }
                result
            }
            _ => return StatusCode::ACCEPTED.into_response(),
        };
        Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
    }
    serve(
        axum::Router::new()
            .route("/mcp", post(handle))
            .with_state(script),
    )
    .await
}

/// An upstream whose every `tools/call` first asks the client for sampling; it keeps
/// every message it was posted.
pub struct SamplingUpstream {
    pub upstream: Upstream,
    pub posts: Arc<Mutex<Vec<Value>>>,
}

pub async fn sampling_upstream() -> SamplingUpstream {
    let posts = Arc::new(Mutex::new(Vec::<Value>::new()));
    let seen = posts.clone();
    let app = axum::Router::new().route(
        "/mcp",
        post(move |body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let message: Value = serde_json::from_slice(&body).unwrap_or_default();
                seen.lock().unwrap().push(message.clone());
                let id = message["id"].clone();
                match message["method"].as_str() {
                    Some("initialize") => (
                        [("content-type", "application/json"), ("mcp-session-id", "upstream-session")],
                        json!({"jsonrpc": "2.0", "id": id, "result": {
                            "protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                            "serverInfo": {"name": "sampling", "version": "1"}}})
                        .to_string(),
                    )
                        .into_response(),
                    Some("tools/list") => (
                        [("content-type", "application/json")],
                        json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [
                            {"name": "echo", "inputSchema": {"type": "object"}}]}})
                        .to_string(),
                    )
                        .into_response(),
                    Some("tools/call") => {
                        let ask = json!({"jsonrpc": "2.0", "id": "s-1", "method": "sampling/createMessage", "params": {}});
                        let result = json!({"jsonrpc": "2.0", "id": id, "result": {"content": []}});
                        let body = format!("data: {ask}\n\ndata: {result}\n\n");
                        ([("content-type", "text/event-stream")], body).into_response()
                    }
                    _ => StatusCode::ACCEPTED.into_response(),
                }
            }
        }),
    );
    SamplingUpstream {
        upstream: serve(app).await,
        posts,
    }
}
