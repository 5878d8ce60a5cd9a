//! Tool discovery: the MCP client that authorizes a connector (spec AUTH-3, AUTH-8).
//!
//! `initialize`, `notifications/initialized`, then `tools/list` following `nextCursor`
//! to the end, over Streamable HTTP through the egress client, with the provider
//! plugin's injection written into every request. Answers may be JSON or an event
//! stream; session ids and the negotiated protocol version are carried along. A small
//! client of our own rather than rmcp's, because the injection plan may put the
//! credential in any header or query parameter.
//!
//! The upstream is not trusted. What it says is bounded by the `discovery_*` limits of
//! `[limits]` ([`Bounds`]: bytes per answer, pages, tools and bytes of snapshot, all
//! within one deadline; 422 `upstream_too_large` naming the limit), and the credential is redacted ([`crate::redact`]) from every
//! string of the snapshot (names, titles, descriptions, annotation keys and values)
//! before it leaves this module, so it is never stored or shown; upstream text quoted in
//! an error is redacted the same way.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Response, StatusCode, Url};
use serde_json::{Value, json};
use sse_stream::SseByteStream;

use crate::config::LimitsConfig;
use crate::egress::Egress;
use crate::injection::Injection;
use crate::store::DiscoveredTool;

/// The protocol revision we offer; servers answer with the one they speak.
const PROTOCOL_VERSION: &str = "2025-11-25";

/// What one discovery may take, from the `discovery_*` limits of `[limits]`.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// The whole discovery must finish within this time.
    pub deadline: Duration,
    /// The most `tools/list` pages followed.
    pub pages: usize,
    /// The largest answer read from the upstream (one page, or any other answer).
    pub page_bytes: usize,
    /// The most tools a snapshot holds.
    pub tools: usize,
    /// The largest snapshot, in bytes of the stored JSON: it is kept in the database and
    /// handed to every plugin call about the connector.
    pub snapshot_bytes: usize,
}

impl From<&LimitsConfig> for Bounds {
    fn from(limits: &LimitsConfig) -> Self {
        Self {
            deadline: Duration::from_millis(limits.discovery_timeout_ms),
            pages: limits.discovery_pages,
            page_bytes: limits.discovery_page_bytes,
            tools: limits.discovery_tools,
            snapshot_bytes: limits.discovery_snapshot_bytes,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("the upstream MCP server could not be reached: {0}")]
    Unreachable(String),
    #[error(
        "the upstream MCP server refused the credential (HTTP {0}); check the secret and \
         its permissions"
    )]
    Unauthorized(u16),
    #[error("the server URL does not answer like an MCP server: {0}")]
    NotMcp(String),
    #[error("the upstream MCP server failed: {0}")]
    Upstream(String),
    #[error("the upstream MCP server says too much: {0}")]
    TooLarge(String),
}

impl DiscoveryError {
    /// The admin API error code for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            DiscoveryError::Unreachable(_) => "upstream_unreachable",
            DiscoveryError::Unauthorized(_) => "upstream_unauthorized",
            DiscoveryError::NotMcp(_) => "upstream_not_mcp",
            DiscoveryError::Upstream(_) => "upstream_error",
            DiscoveryError::TooLarge(_) => "upstream_too_large",
        }
    }

    fn redact(self, secret: Option<&str>) -> Self {
        let clean = |text: String| crate::redact::redact_text(text, secret);
        match self {
            DiscoveryError::Unreachable(t) => DiscoveryError::Unreachable(clean(t)),
            DiscoveryError::NotMcp(t) => DiscoveryError::NotMcp(clean(t)),
            DiscoveryError::Upstream(t) => DiscoveryError::Upstream(clean(t)),
            DiscoveryError::TooLarge(t) => DiscoveryError::TooLarge(clean(t)),
            unauthorized => unauthorized,
        }
    }
}

/// Discovers the tools of the MCP server at `server_url`, the credential redacted from
/// what it says.
pub async fn discover(
    egress: &Egress,
    injection: &Injection,
    server_url: &Url,
    bounds: Bounds,
) -> Result<Vec<DiscoveredTool>, DiscoveryError> {
    let mut headers = HeaderMap::new();
    let url = injection.apply(server_url, &mut headers);
    let http = egress
        .client_for(&url)
        .map_err(|e| DiscoveryError::Unreachable(e.to_string()))?;
    headers.insert(
        ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut client = Client {
        http,
        url,
        headers,
        next_id: 1,
        bounds,
    };
    let outcome = tokio::time::timeout(bounds.deadline, client.run()).await;
    let result = match outcome {
        Ok(result) => result,
        Err(_) => Err(DiscoveryError::Unreachable(format!(
            "no complete answer within {} ms (limits.discovery_timeout_ms)",
            bounds.deadline.as_millis()
        ))),
    };
    let secret = injection.secret();
    match result {
        Ok(tools) => Ok(tools
            .into_iter()
            .map(|tool| redact_tool(tool, secret))
            .collect()),
        Err(e) => Err(e.redact(secret)),
    }
}

/// `tool` with the credential masked in every string it holds.
fn redact_tool(tool: DiscoveredTool, secret: Option<&str>) -> DiscoveredTool {
    let text = |t: String| crate::redact::redact_text(t, secret);
    DiscoveredTool {
        name: text(tool.name),
        title: tool.title.map(text),
        description: tool.description.map(text),
        annotations: tool.annotations.map(|a| redact_value(a, secret)),
    }
}

fn redact_value(value: Value, secret: Option<&str>) -> Value {
    let text = |t: String| crate::redact::redact_text(t, secret);
    match value {
        Value::String(t) => Value::String(text(t)),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| redact_value(v, secret)).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (text(k), redact_value(v, secret)))
                .collect(),
        ),
        other => other,
    }
}

struct Client<'a> {
    http: &'a reqwest::Client,
    url: Url,
    headers: HeaderMap,
    next_id: u64,
    bounds: Bounds,
}

impl Client<'_> {
    async fn run(&mut self) -> Result<Vec<DiscoveredTool>, DiscoveryError> {
        let init = self
            .call(
                "initialize",
                json!({
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "portcullis", "version": env!("CARGO_PKG_VERSION")},
                }),
            )
            .await?;
        let version = init
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                DiscoveryError::NotMcp("the initialize result has no protocolVersion".to_owned())
            })?;
        if let Ok(value) = HeaderValue::from_str(version) {
            self.headers.insert("mcp-protocol-version", value);
        }
        self.notify("notifications/initialized").await?;
        let tools = self.list_tools().await;
        self.end_session().await;
        tools
    }

    async fn list_tools(&mut self) -> Result<Vec<DiscoveredTool>, DiscoveryError> {
        let mut tools = Vec::new();
        let mut snapshot_bytes = 0usize;
        let mut cursor: Option<String> = None;
        let bounds = self.bounds;
        for _ in 0..bounds.pages {
            let params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            let page = self.call("tools/list", params).await?;
            let items = page.get("tools").and_then(Value::as_array).ok_or_else(|| {
                DiscoveryError::NotMcp("a tools/list result has no tools array".to_owned())
            })?;
            if tools.len() + items.len() > bounds.tools {
                return Err(DiscoveryError::TooLarge(format!(
                    "tools/list lists more than {} tools (limits.discovery_tools)",
                    bounds.tools
                )));
            }
            for item in items {
                let tool = parse_tool(item)?;
                snapshot_bytes += serde_json::to_vec(&tool).map_or(usize::MAX, |v| v.len());
                if snapshot_bytes > bounds.snapshot_bytes {
                    return Err(DiscoveryError::TooLarge(format!(
                        "the tools listed take more than {} bytes \
                         (limits.discovery_snapshot_bytes)",
                        bounds.snapshot_bytes
                    )));
                }
                tools.push(tool);
            }
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(next) if Some(next) == cursor.as_deref() => {
                    return Err(DiscoveryError::Upstream(
                        "tools/list returned the same cursor twice".to_owned(),
                    ));
                }
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(tools),
            }
        }
        Err(DiscoveryError::TooLarge(format!(
            "tools/list did not end within {} pages (limits.discovery_pages)",
            bounds.pages
        )))
    }

    /// Sends one request and returns its `result`.
    async fn call(&mut self, method: &str, params: Value) -> Result<Value, DiscoveryError> {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = self.post(&body, method).await?;
        if let Some(session) = response.headers().get("mcp-session-id") {
            self.headers.insert("mcp-session-id", session.clone());
        }
        let message = read_response(response, id, method, self.bounds.page_bytes).await?;
        if let Some(error) = message.get("error") {
            let text = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            return Err(DiscoveryError::Upstream(format!(
                "{method} answered with an error: {text}"
            )));
        }
        message.get("result").cloned().ok_or_else(|| {
            DiscoveryError::NotMcp(format!("the {method} answer has neither result nor error"))
        })
    }

    async fn notify(&mut self, method: &str) -> Result<(), DiscoveryError> {
        let body = json!({"jsonrpc": "2.0", "method": method});
        self.post(&body, method).await.map(drop)
    }

    async fn post(&self, body: &Value, method: &str) -> Result<Response, DiscoveryError> {
        let response = self
            .http
            .post(self.url.clone())
            .headers(self.headers.clone())
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| DiscoveryError::Unreachable(describe(e)))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(DiscoveryError::Unauthorized(status.as_u16()));
        }
        if status.is_server_error() {
            return Err(DiscoveryError::Upstream(format!(
                "{method} answered HTTP {status}"
            )));
        }
        if !status.is_success() {
            return Err(DiscoveryError::NotMcp(format!(
                "{method} answered HTTP {status}; check that the URL is the server's MCP endpoint"
            )));
        }
        Ok(response)
    }

    /// Ends the upstream session, if the server opened one. Best effort: discovery has
    /// its answer already.
    async fn end_session(&self) {
        if !self.headers.contains_key("mcp-session-id") {
            return;
        }
        let _ = self
            .http
            .delete(self.url.clone())
            .headers(self.headers.clone())
            .send()
            .await;
    }
}

/// The answer's media type, lower-cased (`""` when absent or unreadable).
pub(crate) fn content_type(response: &Response) -> String {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The JSON-RPC response with `id` from a JSON or event-stream answer of at most
/// `max` bytes.
async fn read_response(
    response: Response,
    id: u64,
    method: &str,
    max: usize,
) -> Result<Value, DiscoveryError> {
    let content_type = content_type(&response);
    let read = AtomicUsize::new(0);
    // Counted as it arrives, before any parsing: an event that never ends its line
    // cannot grow past the limit either.
    let body = response.bytes_stream().map(|chunk| {
        let chunk = chunk.map_err(|e| std::io::Error::other(describe(e)))?;
        if read.fetch_add(chunk.len(), Ordering::Relaxed) + chunk.len() > max {
            return Err(std::io::Error::other("over the size limit"));
        }
        Ok(chunk)
    });
    let broke = |detail: String| {
        if read.load(Ordering::Relaxed) > max {
            DiscoveryError::TooLarge(format!(
                "the {method} answer is over {max} bytes (limits.discovery_page_bytes)"
            ))
        } else {
            DiscoveryError::Unreachable(format!("the {method} answer broke off: {detail}"))
        }
    };
    if content_type.starts_with("application/json") {
        let mut bytes = Vec::new();
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| broke(e.to_string()))?);
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            DiscoveryError::NotMcp(format!("the {method} answer is not valid JSON: {e}"))
        })?;
        return find_response(value, id).ok_or_else(|| {
            DiscoveryError::NotMcp(format!("the {method} answer is not a JSON-RPC response"))
        });
    }
    if content_type.starts_with("text/event-stream") {
        let mut events = std::pin::pin!(SseByteStream::new(body));
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| broke(e.to_string()))?;
            let Some(data) = event.data.filter(|d| !d.trim().is_empty()) else {
                continue;
            };
            let value: Value = serde_json::from_str(&data).map_err(|e| {
                DiscoveryError::NotMcp(format!("a {method} event is not valid JSON: {e}"))
            })?;
            if let Some(message) = find_response(value, id) {
                return Ok(message);
            }
        }
        return Err(DiscoveryError::Upstream(format!(
            "the {method} event stream ended without an answer"
        )));
    }
    let shown = if content_type.is_empty() {
        "no content type".to_owned()
    } else {
        format!("content type {content_type}")
    };
    Err(DiscoveryError::NotMcp(format!(
        "{method} answered with {shown}, not JSON or an event stream"
    )))
}

/// The response to `id` in a message or a batch; server requests and notifications
/// sent on the same stream are skipped.
fn find_response(value: Value, id: u64) -> Option<Value> {
    match value {
        Value::Array(items) => items.into_iter().find_map(|item| find_response(item, id)),
        Value::Object(ref map)
            if map.get("jsonrpc").and_then(Value::as_str) == Some("2.0")
                && map.get("id").and_then(Value::as_u64) == Some(id)
                && (map.contains_key("result") || map.contains_key("error")) =>
        {
            Some(value)
        }
        _ => None,
    }
}

fn parse_tool(item: &Value) -> Result<DiscoveredTool, DiscoveryError> {
    let name = item
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| DiscoveryError::NotMcp("a listed tool has no name".to_owned()))?;
    let text = |key: &str| item.get(key).and_then(Value::as_str).map(str::to_owned);
    Ok(DiscoveredTool {
        name: name.to_owned(),
        title: text("title"),
        description: text("description"),
        annotations: item.get("annotations").filter(|a| a.is_object()).cloned(),
    })
}

/// A transport error in words, without the URL (which may carry an injected query
/// credential).
fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
