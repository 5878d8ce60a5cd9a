//! Misbehaving upstreams, written on plain axum because rmcp cannot be made to misbehave.
//!
//! Except for [`not_mcp`], [`unauthorized`] and [`hangs`], which misbehave on every request,
//! each of them completes discovery like a well-behaved server with sessions (`initialize`
//! over JSON with an `Mcp-Session-Id`, `202` for notifications, `tools/list` over JSON) and
//! misbehaves only on `tools/call`, so a connector can be created against it first. None of
//! them checks the session id, `GET` gets `405` and `DELETE` gets `204`.

use std::{
    net::TcpListener,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Request, State},
    middleware,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    recording::record,
    server::{self, MCP_PATH, Upstream},
};

/// The cookie [`unauthorized`] and [`unauthorized_on_call`] set; it must never reach a client.
pub const UPSTREAM_COOKIE: &str = "upstream_session=upstream-cookie-value; Path=/; HttpOnly";

/// Answers everything with `200 text/html`: a URL that is a web page, not an MCP server.
pub async fn not_mcp() -> Upstream {
    start(|_| Fault::NotMcp)
}

/// Answers everything with `401`, a `Set-Cookie` ([`UPSTREAM_COOKIE`]) and
/// `WWW-Authenticate: Bearer resource_metadata="<base>/.well-known/oauth-protected-resource/mcp"`
/// (`<base>` being [`Upstream::base_url`]): a credential the upstream rejects outright.
pub async fn unauthorized() -> Upstream {
    start(|addr| Fault::Unauthorized {
        everything: true,
        challenge: challenge(&addr.to_string()),
    })
}

/// Completes discovery, then answers `tools/call` as [`unauthorized`] does: a credential
/// revoked after the connector was authorized.
pub async fn unauthorized_on_call() -> Upstream {
    start(|addr| Fault::Unauthorized {
        everything: false,
        challenge: challenge(&addr.to_string()),
    })
}

/// Completes discovery, then answers `tools/call` with `403` and
/// `WWW-Authenticate: Bearer error="insufficient_scope", scope="repo"` (a step-up challenge).
pub async fn insufficient_scope() -> Upstream {
    start(|_| Fault::InsufficientScope)
}

/// Accepts connections, reads each request and never answers any of them.
pub async fn hangs() -> Upstream {
    start(|_| Fault::Hangs { everything: true })
}

/// Completes discovery, then never answers `tools/call`.
pub async fn hangs_on_call() -> Upstream {
    start(|_| Fault::Hangs { everything: false })
}

/// Completes discovery, then answers `tools/call` with `200 text/event-stream`, sends one
/// `notifications/progress` event (with the request's progressToken, or "mid-stream"),
/// and after 50 ms drops the connection without a result or the end of the chunked body.
pub async fn closes_mid_stream() -> Upstream {
    start(|_| Fault::ClosesMidStream)
}

/// Completes discovery (tools `leak`, `leak_error`, `leak_sse`), then leaks the
/// `Authorization` header value it received, and `secret` beside it (so a test can check
/// that the bare secret is redacted whatever scheme the provider wrote before it):
/// - `leak`: a JSON result whose text content and `structuredContent` contain both;
/// - `leak_error`: a JSON-RPC error (`-32000`) whose message and `data` contain both;
/// - `leak_sse`: an SSE stream with a progress notification whose message contains both,
///   then the result of `leak`.
pub async fn leaky(secret: &str) -> Upstream {
    let secret = secret.to_owned();
    start(move |_| Fault::Leaky { secret })
}

/// The MCP URL of a loopback port that was bound and closed again, so nothing listens on it
/// (a connection is refused at once).
pub fn down() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    let addr = listener.local_addr().expect("read the bound address");
    drop(listener);
    format!("http://{addr}{MCP_PATH}")
}

fn challenge(authority: &str) -> String {
    let metadata = format!("http://{authority}/.well-known/oauth-protected-resource{MCP_PATH}");
    format!("Bearer resource_metadata=\"{metadata}\"")
}

enum Fault {
    NotMcp,
    Unauthorized { everything: bool, challenge: String },
    InsufficientScope,
    Hangs { everything: bool },
    ClosesMidStream,
    Leaky { secret: String },
}

struct Raw {
    fault: Fault,
    sessions: AtomicU64,
}

fn start(fault: impl FnOnce(std::net::SocketAddr) -> Fault) -> Upstream {
    let (listener, addr) = server::bind();
    let raw = Arc::new(Raw {
        fault: fault(addr),
        sessions: AtomicU64::new(0),
    });
    let log = server::new_log();
    let app = Router::new()
        .fallback(answer)
        .with_state(raw)
        .layer(middleware::from_fn_with_state(log.clone(), record));
    server::spawn(listener, addr, app, log, CancellationToken::new())
}

async fn answer(State(raw): State<Arc<Raw>>, request: Request) -> Response {
    match &raw.fault {
        Fault::NotMcp => return web_page(),
        Fault::Unauthorized {
            everything: true,
            challenge,
        } => return unauthorized_response(challenge),
        Fault::Hangs { everything: true } => return std::future::pending().await,
        _ => {}
    }
    match *request.method() {
        Method::POST => {}
        Method::DELETE => return StatusCode::NO_CONTENT.into_response(),
        _ => {
            return (
                StatusCode::METHOD_NOT_ALLOWED,
                [(header::ALLOW, "POST, DELETE")],
            )
                .into_response();
        }
    }
    let headers = request.headers().clone();
    let Ok(body) = axum::body::to_bytes(request.into_body(), usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return json_response(&error(Value::Null, -32700, "Parse error", None));
    };
    let (Some(id), Some(method)) = (
        message.get("id"),
        message.get("method").and_then(Value::as_str),
    ) else {
        // A notification, or a client's answer to a server request.
        return StatusCode::ACCEPTED.into_response();
    };
    let id = id.clone();
    match method {
        "initialize" => initialize(&raw, id, &message),
        "ping" => json_response(&result(id, json!({}))),
        "tools/list" => json_response(&result(id, json!({"tools": raw.tools()}))),
        "tools/call" => {
            let authorization = headers
                .get(header::AUTHORIZATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            raw.call(id, &message, &authorization).await
        }
        _ => json_response(&error(id, -32601, "Method not found", None)),
    }
}

impl Raw {
    fn tools(&self) -> Value {
        let schema = json!({"type": "object", "properties": {"text": {"type": "string"}}});
        let names: &[&str] = match self.fault {
            Fault::Leaky { .. } => &["leak", "leak_error", "leak_sse"],
            _ => &["echo"],
        };
        names
            .iter()
            .map(|name| {
                json!({"name": name, "description": "a tool that misbehaves", "inputSchema": schema})
            })
            .collect()
    }

    async fn call(&self, id: Value, message: &Value, authorization: &str) -> Response {
        let progress_token = message
            .pointer("/params/_meta/progressToken")
            .cloned()
            .unwrap_or_else(|| json!("mid-stream"));
        match &self.fault {
            Fault::Unauthorized { challenge, .. } => unauthorized_response(challenge),
            Fault::InsufficientScope => (
                StatusCode::FORBIDDEN,
                [(
                    header::WWW_AUTHENTICATE,
                    r#"Bearer error="insufficient_scope", scope="repo""#,
                )],
                "insufficient_scope",
            )
                .into_response(),
            Fault::Hangs { .. } => std::future::pending().await,
            Fault::ClosesMidStream => {
                let first = sse_event(&progress(progress_token, "working"));
                let stream = futures::stream::unfold(Some(first), |state| async move {
                    match state {
                        Some(first) => Some((Ok(first), None)),
                        None => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            // An error from the body makes hyper abort the connection instead
                            // of ending the chunked body: the client sees a torn stream.
                            Some((Err(std::io::Error::other("upstream went away")), None))
                        }
                    }
                });
                sse_response(Body::from_stream(stream))
            }
            Fault::Leaky { secret } => {
                let leaked = format!("Authorization was `{authorization}`; secret is `{secret}`");
                let tool = message.pointer("/params/name").and_then(Value::as_str);
                let leaky_result = || {
                    result(
                        id.clone(),
                        json!({
                            "content": [{"type": "text", "text": leaked}],
                            "structuredContent": {"authorization": authorization, "secret": secret},
                            "isError": false
                        }),
                    )
                };
                match tool {
                    Some("leak_error") => json_response(&error(
                        id.clone(),
                        -32000,
                        &leaked,
                        Some(json!({"authorization": authorization, "secret": secret})),
                    )),
                    Some("leak_sse") => {
                        let mut events = sse_event(&progress(progress_token, &leaked)).to_vec();
                        events.extend_from_slice(&sse_event(&leaky_result()));
                        sse_response(Body::from(events))
                    }
                    _ => json_response(&leaky_result()),
                }
            }
            Fault::NotMcp => web_page(),
        }
    }
}

fn initialize(raw: &Raw, id: Value, message: &Value) -> Response {
    const KNOWN: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];
    let requested = message
        .pointer("/params/protocolVersion")
        .and_then(Value::as_str)
        .filter(|v| KNOWN.contains(v))
        .unwrap_or("2025-11-25");
    let session = raw.sessions.fetch_add(1, Ordering::Relaxed) + 1;
    let mut response = json_response(&result(
        id,
        json!({
            "protocolVersion": requested,
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "portcullis-raw-upstream", "version": env!("CARGO_PKG_VERSION")}
        }),
    ));
    response.headers_mut().insert(
        "mcp-session-id",
        HeaderValue::from_str(&format!("raw-session-{session}")).expect("visible ASCII"),
    );
    response
}

fn web_page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!doctype html><html><body><h1>Welcome</h1></body></html>",
    )
        .into_response()
}

fn unauthorized_response(challenge: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, challenge),
            (header::SET_COOKIE, UPSTREAM_COOKIE),
        ],
        "unauthorized",
    )
        .into_response()
}

fn result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn error(id: Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

fn progress(token: Value, message: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {"progressToken": token, "progress": 1, "message": message}
    })
}

fn json_response(message: &Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        message.to_string(),
    )
        .into_response()
}

fn sse_response(body: Body) -> Response {
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

fn sse_event(message: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
}
