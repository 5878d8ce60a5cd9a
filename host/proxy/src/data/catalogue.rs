//! The proxy's own answers on the data plane, one constructor per entry of the error
//! catalogue (ERR-1 to ERR-12 of the specification, and the few transport refusals it
//! leaves to the proxy). Every answer is a JSON-RPC error object with the HTTP status the
//! catalogue gives it; none of them carries a secret, a token or anything a run could
//! use to probe connectors that are not its own.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::data::jsonrpc::Malformed;

/// A JSON-RPC error object answering `id` (or with `id: null` before a message is known).
pub fn error_body(id: Option<&Value>, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({ "code": code, "message": message });
    if let Some(data) = data {
        error["data"] = data;
    }
    json!({ "jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": error })
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A -32600 answer to a request the transport refuses, saying why in `data.detail`.
fn invalid_request(status: StatusCode, message: &str, detail: &str) -> Response {
    invalid_request_to(None, status, message, detail)
}

fn invalid_request_to(
    id: Option<&Value>,
    status: StatusCode,
    message: &str,
    detail: &str,
) -> Response {
    let body = error_body(id, -32600, message, Some(json!({ "detail": detail })));
    json_response(status, &body)
}

/// The protocol revisions the proxy speaks (`MCP-Protocol-Version`).
pub const SUPPORTED_VERSIONS: [&str; 4] = ["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"];

/// ERR-1: no live run behind the token.
pub fn unauthorized(reason: &str) -> Response {
    let body = error_body(
        None,
        -32001,
        "Unauthorized",
        Some(json!({ "reason": reason })),
    );
    let mut response = json_response(StatusCode::UNAUTHORIZED, &body);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    response
}

/// ERR-2: -32700 for a body that is not JSON, -32600 otherwise.
pub fn malformed(malformed: &Malformed) -> Response {
    match malformed {
        Malformed::Parse => json_response(
            StatusCode::BAD_REQUEST,
            &error_body(None, -32700, "Parse error", None),
        ),
        Malformed::Invalid { why, id } => {
            invalid_request_to(id.as_ref(), StatusCode::BAD_REQUEST, "Invalid Request", why)
        }
    }
}

/// ERR-3, the same for every cause so a run cannot probe other connectors; with the
/// request's id when the request chain denied a known message.
pub fn connector_unavailable(id: Option<&Value>, connector_id: &str) -> Response {
    let body = error_body(
        id,
        -32002,
        "Connector not available to this run",
        Some(json!({ "connectorId": connector_id })),
    );
    json_response(StatusCode::FORBIDDEN, &body)
}

/// ERR-4.
pub fn missing_session(id: Option<&Value>) -> Response {
    invalid_request_to(
        id,
        StatusCode::BAD_REQUEST,
        "Invalid Request",
        "Mcp-Session-Id header is required after initialize",
    )
}

/// ERR-5.
pub fn session_not_found(id: Option<&Value>) -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &error_body(id, -32003, "Session not found", None),
    )
}

/// ERR-6, answered by the proxy without contacting the upstream.
pub fn tool_not_permitted(id: &Value, tool: &str, reason: &str) -> Response {
    let body = error_body(
        Some(id),
        -32602,
        &format!("Tool not permitted: {tool}"),
        Some(json!({ "reason": reason })),
    );
    json_response(StatusCode::OK, &body)
}

/// ERR-7; the 2026-07-28 revision answers unimplemented methods with HTTP 404.
pub fn method_not_found(id: &Value, stateless: bool) -> Response {
    let status = if stateless {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    json_response(
        status,
        &error_body(Some(id), -32601, "Method not found", None),
    )
}

/// The status of an upstream refusal: 200 when it answers a request (the error is in
/// the JSON-RPC answer), 502 on a GET or DELETE, which have no request to answer.
fn in_band(id: Option<&Value>) -> StatusCode {
    if id.is_some() {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    }
}

/// ERR-8; `reason` says why when the proxy knows (an OAuth connector's grant failed).
pub fn needs_reauthorization(
    id: Option<&Value>,
    connector_id: &str,
    reason: Option<&str>,
) -> Response {
    let mut data = json!({ "connectorId": connector_id });
    if let Some(reason) = reason {
        data["reason"] = json!(reason);
    }
    let body = error_body(
        id,
        -32004,
        "Connector requires re-authorization",
        Some(data),
    );
    json_response(in_band(id), &body)
}

/// ERR-9.
pub fn insufficient_scope(id: Option<&Value>, scopes: Option<&str>) -> Response {
    let data = scopes.map(|s| json!({ "requiredScopes": s }));
    let body = error_body(
        id,
        -32005,
        "Connector lacks required upstream permission",
        data,
    );
    json_response(in_band(id), &body)
}

/// ERR-10: 504 for a timeout, 502 otherwise.
pub fn upstream_unavailable(id: Option<&Value>, timeout: bool) -> Response {
    let status = if timeout {
        StatusCode::GATEWAY_TIMEOUT
    } else {
        StatusCode::BAD_GATEWAY
    };
    json_response(
        status,
        &error_body(id, -32006, "Upstream MCP server unavailable", None),
    )
}

/// ERR-10 for an answer the proxy will not relay: over a size limit, or one it must
/// filter and cannot read. `reason` is `answer_too_large`, `event_too_large` or
/// `malformed_answer`.
pub fn unusable_answer_body(id: Option<&Value>, reason: &str) -> Value {
    error_body(
        id,
        -32006,
        "Upstream MCP server unavailable",
        Some(json!({ "reason": reason })),
    )
}

/// [`unusable_answer_body`] as a 502 answer.
pub fn unusable_answer(id: Option<&Value>, reason: &str) -> Response {
    json_response(StatusCode::BAD_GATEWAY, &unusable_answer_body(id, reason))
}

/// ERR-13: a rate or a cap of the `[limits]` table was reached (`reason` says which);
/// the client may try again after `retry_after` seconds.
pub fn rate_limited(id: Option<&Value>, reason: &str, retry_after: u64) -> Response {
    let body = error_body(
        id,
        -32007,
        "Rate limited",
        Some(json!({ "reason": reason, "retryAfter": retry_after })),
    );
    let mut response = json_response(StatusCode::TOO_MANY_REQUESTS, &body);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
    response
}

/// The client sent its body too slowly (`limits.body_read_timeout_ms`).
pub fn body_timeout() -> Response {
    invalid_request(
        StatusCode::REQUEST_TIMEOUT,
        "Request Timeout",
        "the request body did not arrive in time; send it at once",
    )
}

/// ERR-11.
pub fn unsupported_version(requested: &str) -> Response {
    let body = error_body(
        None,
        -32602,
        "Unsupported protocol version",
        Some(json!({ "supported": SUPPORTED_VERSIONS, "requested": requested })),
    );
    json_response(StatusCode::BAD_REQUEST, &body)
}

/// ERR-12.
pub fn forbidden_origin() -> Response {
    let body = error_body(None, -32600, "Origin not allowed", None);
    json_response(StatusCode::FORBIDDEN, &body)
}

/// A 2026-07-28 header that disagrees with the body (-32020 HeaderMismatch).
pub fn header_mismatch(id: Option<&Value>, header: &str) -> Response {
    let body = error_body(
        id,
        -32020,
        "Header mismatch",
        Some(json!({ "header": header })),
    );
    json_response(StatusCode::BAD_REQUEST, &body)
}

/// The request's `Accept` does not list both JSON and SSE (FR-13).
pub fn not_acceptable() -> Response {
    invalid_request(
        StatusCode::NOT_ACCEPTABLE,
        "Not Acceptable",
        "Accept must list application/json and text/event-stream",
    )
}

/// The provider plugin gave no usable plan, so the request cannot be sent.
pub fn injection_failed(id: Option<&Value>) -> Response {
    let body = error_body(
        id,
        -32603,
        "Credential injection failed; the operator should check the connector's provider plugin",
        None,
    );
    json_response(StatusCode::BAD_GATEWAY, &body)
}

/// A verb other than POST, GET and DELETE.
pub fn method_not_allowed() -> Response {
    let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
    response
}

/// The body could not be read: over `http.max_body_bytes` (413), or broken off (400).
pub fn unreadable_body(status: StatusCode, detail: &str) -> Response {
    invalid_request(status, "Invalid Request", detail)
}
