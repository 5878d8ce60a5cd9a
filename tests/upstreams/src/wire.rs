//! Helpers for tests that speak Streamable HTTP by hand (reqwest) instead of through an MCP
//! client: the headers and bodies a client sends, and the reading of an SSE answer.

use http::{HeaderMap, HeaderValue, header};
use serde_json::{Value, json};

/// The protocol version the helpers send: the 2025-11-25 baseline of the spec.
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// `Accept: application/json, text/event-stream`, `Content-Type: application/json`,
/// `MCP-Protocol-Version: 2025-11-25` and, when given, `Mcp-Session-Id`.
pub fn mcp_headers(session_id: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "mcp-protocol-version",
        HeaderValue::from_static(PROTOCOL_VERSION),
    );
    if let Some(session_id) = session_id {
        headers.insert(
            "mcp-session-id",
            HeaderValue::from_str(session_id).expect("a session id is visible ASCII"),
        );
    }
    headers
}

/// A JSON-RPC request.
pub fn request(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// A JSON-RPC notification.
pub fn notification(method: &str) -> Value {
    json!({"jsonrpc": "2.0", "method": method})
}

/// An `initialize` request for [`PROTOCOL_VERSION`] from a client declaring no capabilities.
pub fn initialize(id: i64) -> Value {
    request(
        id,
        "initialize",
        json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "portcullis-test", "version": "0"}
        }),
    )
}

/// A `tools/call` of `name` with `arguments`, asking for progress under the progressToken
/// `"p-{id}"`.
pub fn call_tool(id: i64, name: &str, arguments: Value) -> Value {
    let meta = json!({"progressToken": format!("p-{id}")});
    request(
        id,
        "tools/call",
        json!({"name": name, "arguments": arguments, "_meta": meta}),
    )
}

/// The JSON messages of an SSE body, in order, skipping events with empty data (such as
/// rmcp's priming event) and keep-alive comments. Multi-line `data:` fields are joined with
/// `\n` as the SSE spec says. Panics on data that is not JSON: an MCP stream carries nothing else.
pub fn sse_messages(body: &str) -> Vec<Value> {
    let mut messages = Vec::new();
    let mut data: Vec<&str> = Vec::new();
    for line in body.lines().chain(std::iter::once("")) {
        if line.is_empty() {
            if !data.is_empty() {
                let joined = data.join("\n");
                if !joined.trim().is_empty() {
                    messages.push(
                        serde_json::from_str(&joined)
                            .unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {joined}")),
                    );
                }
                data.clear();
            }
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    messages
}

/// The protocol revision without sessions or `initialize`, which rmcp serves statelessly.
pub const STATELESS_PROTOCOL_VERSION: &str = "2026-07-28";

/// A 2026-07-28 request: `params._meta` carries the protocol version, client info and
/// (empty) client capabilities that replace the `initialize` handshake.
pub fn stateless_request(id: i64, method: &str, mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": STATELESS_PROTOCOL_VERSION,
        "io.modelcontextprotocol/clientInfo": {"name": "portcullis-test", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    request(id, method, params)
}

/// The headers of a 2026-07-28 request: those of [`mcp_headers`] with the newer version,
/// `Mcp-Method` and, for `tools/call` and the like, `Mcp-Name`.
pub fn stateless_headers(method: &str, name: Option<&str>) -> HeaderMap {
    let mut headers = mcp_headers(None);
    headers.insert(
        "mcp-protocol-version",
        HeaderValue::from_static(STATELESS_PROTOCOL_VERSION),
    );
    headers.insert(
        "mcp-method",
        HeaderValue::from_str(method).expect("a method name is visible ASCII"),
    );
    if let Some(name) = name {
        headers.insert(
            "mcp-name",
            HeaderValue::from_str(name).expect("a tool name is visible ASCII"),
        );
    }
    headers
}
