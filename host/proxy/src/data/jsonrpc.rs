//! JSON-RPC as the data plane needs it: classifying one client message, and the
//! proxy's own error answers (the error catalogue, ERR-1 to ERR-12).
//!
//! The proxy forwards messages as the bytes it received; it parses them only to learn
//! the method, id and tool name a decision needs, and to rewrite the few answers it must
//! filter (`initialize`, `tools/list`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// What one client-to-server message is.
#[derive(Debug)]
pub enum Message {
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
    /// An answer to a server-to-client request (`result` or `error`).
    Response {
        id: Value,
    },
}

impl Message {
    pub fn method(&self) -> &str {
        match self {
            Message::Request { method, .. } | Message::Notification { method, .. } => method,
            Message::Response { .. } => "",
        }
    }

    pub fn id(&self) -> Option<&Value> {
        match self {
            Message::Request { id, .. } | Message::Response { id } => Some(id),
            Message::Notification { .. } => None,
        }
    }

    pub fn params(&self) -> Option<&Value> {
        match self {
            Message::Request { params, .. } | Message::Notification { params, .. } => Some(params),
            Message::Response { .. } => None,
        }
    }

    /// `params.name` of a `tools/call`.
    pub fn tool(&self) -> Option<&str> {
        (self.method() == "tools/call")
            .then(|| self.params()?.get("name")?.as_str())
            .flatten()
    }
}

/// Why a body is not one JSON-RPC message (ERR-2).
#[derive(Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Not JSON at all: -32700.
    Parse,
    /// JSON, but a batch or not a JSON-RPC 2.0 message: -32600.
    Invalid(&'static str),
}

pub fn parse(body: &[u8]) -> Result<(Message, Value), Malformed> {
    let value: Value = serde_json::from_slice(body).map_err(|_| Malformed::Parse)?;
    let object = match &value {
        Value::Object(object) => object,
        Value::Array(_) => return Err(Malformed::Invalid("JSON-RPC batches are not supported")),
        _ => return Err(Malformed::Invalid("the body must be one JSON-RPC message")),
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Malformed::Invalid("the message is not JSON-RPC 2.0"));
    }
    let id = object.get("id").cloned();
    if matches!(
        id,
        Some(Value::Null) | Some(Value::Bool(_)) | Some(Value::Array(_)) | Some(Value::Object(_))
    ) {
        return Err(Malformed::Invalid(
            "a JSON-RPC id must be a string or a number",
        ));
    }
    let params = object.get("params").cloned().unwrap_or(Value::Null);
    let message = match (object.get("method"), id) {
        (Some(Value::String(method)), Some(id)) => Message::Request {
            id,
            method: method.clone(),
            params,
        },
        (Some(Value::String(method)), None) => Message::Notification {
            method: method.clone(),
            params,
        },
        (Some(_), _) => return Err(Malformed::Invalid("the method must be a string")),
        (None, Some(id)) if object.contains_key("result") || object.contains_key("error") => {
            Message::Response { id }
        }
        (None, _) => return Err(Malformed::Invalid("the message has no method")),
    };
    Ok((message, value))
}

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

/// The proxy's own answers, one constructor per catalogue entry.
pub mod catalogue {
    use super::*;

    pub const SUPPORTED_VERSIONS: [&str; 4] =
        ["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"];

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
        let body = match malformed {
            Malformed::Parse => error_body(None, -32700, "Parse error", None),
            Malformed::Invalid(why) => error_body(
                None,
                -32600,
                "Invalid Request",
                Some(json!({ "detail": why })),
            ),
        };
        json_response(StatusCode::BAD_REQUEST, &body)
    }

    /// ERR-3, the same for every cause so a run cannot probe other connectors.
    pub fn connector_unavailable(connector_id: &str) -> Response {
        let body = error_body(
            None,
            -32002,
            "Connector not available to this run",
            Some(json!({ "connectorId": connector_id })),
        );
        json_response(StatusCode::FORBIDDEN, &body)
    }

    /// ERR-4.
    pub fn missing_session() -> Response {
        let body = error_body(
            None,
            -32600,
            "Invalid Request",
            Some(json!({ "detail": "Mcp-Session-Id header is required after initialize" })),
        );
        json_response(StatusCode::BAD_REQUEST, &body)
    }

    /// ERR-5.
    pub fn session_not_found() -> Response {
        json_response(
            StatusCode::NOT_FOUND,
            &error_body(None, -32003, "Session not found", None),
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

    /// ERR-8.
    pub fn needs_reauthorization(id: Option<&Value>, connector_id: &str) -> Response {
        let body = error_body(
            id,
            -32004,
            "Connector requires re-authorization",
            Some(json!({ "connectorId": connector_id })),
        );
        let status = if id.is_some() {
            StatusCode::OK
        } else {
            StatusCode::BAD_GATEWAY
        };
        json_response(status, &body)
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
        let status = if id.is_some() {
            StatusCode::OK
        } else {
            StatusCode::BAD_GATEWAY
        };
        json_response(status, &body)
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
        let body = error_body(
            None,
            -32600,
            "Not Acceptable",
            Some(json!({ "detail": "Accept must list application/json and text/event-stream" })),
        );
        json_response(StatusCode::NOT_ACCEPTABLE, &body)
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

    pub fn method_not_allowed() -> Response {
        let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
        response
    }

    /// A rewritten JSON answer with the proxy's session id.
    pub fn json(status: StatusCode, body: &Value) -> Response {
        json_response(status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_messages() {
        let (m, _) =
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#)
                .unwrap();
        assert_eq!(m.method(), "tools/call");
        assert_eq!(m.tool(), Some("echo"));
        let (m, _) = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(m, Message::Notification { .. }));
        let (m, _) = parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert!(matches!(m, Message::Response { .. }));
    }

    #[test]
    fn refuses_what_is_not_one_message() {
        assert_eq!(parse(b"{not json").unwrap_err(), Malformed::Parse);
        assert!(matches!(parse(b"[]").unwrap_err(), Malformed::Invalid(_)));
        assert!(matches!(
            parse(br#"{"id":1,"method":"x"}"#).unwrap_err(),
            Malformed::Invalid(_)
        ));
        assert!(matches!(
            parse(br#"{"jsonrpc":"2.0","id":null,"method":"x"}"#).unwrap_err(),
            Malformed::Invalid(_)
        ));
        assert!(matches!(
            parse(br#"{"jsonrpc":"2.0","id":1}"#).unwrap_err(),
            Malformed::Invalid(_)
        ));
    }
}
