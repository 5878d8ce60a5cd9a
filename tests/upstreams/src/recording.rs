//! The record of what reached an upstream, taken in front of everything else it runs.

use std::sync::{Arc, Mutex};

use axum::{
    body::Body,
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};

use crate::server::lock;

/// The log an upstream appends every received request to.
pub type RequestLog = Arc<Mutex<Vec<RecordedRequest>>>;

// Larger than any MCP message a test sends, small enough that a runaway client cannot exhaust
// memory.
const MAX_RECORDED_BODY: usize = 16 * 1024 * 1024;

/// One HTTP request exactly as it arrived.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: Method,
    /// Path and query, e.g. `/mcp?api_key=...`.
    pub path_and_query: String,
    /// Every header, names lower-cased by `http`, repeated headers kept.
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RecordedRequest {
    /// The first value of header `name`, if it is present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body parsed as JSON, or `None` if it is not JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The JSON-RPC `method` of the body, if it has one.
    pub fn rpc_method(&self) -> Option<String> {
        self.json()?.get("method")?.as_str().map(str::to_owned)
    }

    /// Whether `needle` occurs anywhere in this request: path, query, any header name or
    /// value, or the body. The assertion "the run token never reached the upstream" is
    /// `!requests.iter().any(|r| r.contains(token))`.
    pub fn contains(&self, needle: &str) -> bool {
        let needle = needle.as_bytes();
        let found = |haystack: &[u8]| {
            !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
        };
        found(self.path_and_query.as_bytes())
            || found(&self.body)
            || self
                .headers
                .iter()
                .any(|(name, value)| found(name.as_str().as_bytes()) || found(value.as_bytes()))
    }
}

/// Records the request, then hands an identical one to the rest of the upstream.
pub(crate) async fn record(
    State(log): State<RequestLog>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_RECORDED_BODY).await {
        Ok(body) => body,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    lock(&log).push(RecordedRequest {
        method: parts.method.clone(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    next.run(Request::from_parts(parts, Body::from(body))).await
}
