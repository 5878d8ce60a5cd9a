//! The admin API's one error shape, `{"error":{"code","message"}}`, the request
//! extractors that produce it instead of axum's plain-text rejections, and the field
//! checks every resource shares.
//!
//! Codes are stable identifiers a platform can branch on; messages say what went wrong
//! and what to do, and never carry a secret.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::egress::EgressError;
use crate::state::AppState;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// A plugin's machine-readable reason, when a plugin's denial is the cause; answered
    /// as `error.reason`.
    pub reason: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            reason: None,
        }
    }

    /// The same error, carrying a plugin's deny reason.
    pub fn with_reason(self, reason: &str) -> Self {
        Self {
            reason: Some(reason.to_owned()),
            ..self
        }
    }

    /// 422: the request is well-formed but its content cannot be accepted.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} does not exist"),
        )
    }

    /// 500 for a failure the caller cannot fix; the detail goes to the log.
    pub fn internal(context: &str, detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!("{context}; the proxy log has the details"),
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(what) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{what} changed at the same time; retry the request"),
            ),
            StoreError::Backend(detail) => ApiError::internal("the store failed", detail),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": {"code": self.code, "message": self.message}});
        if let Some(reason) = self.reason {
            body["error"]["reason"] = reason.into();
        }
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// A JSON request body parsed strictly: any `Content-Type`, an empty body read as `{}`,
/// malformed JSON, unknown fields and wrong types rejected with the API's error shape.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        // Syntax first, over the whole body: a field error found early must not hide that
        // the body is not JSON at all (`{"bogus": 1,,,` is malformed, not "unknown field").
        serde_json::from_slice::<serde::de::IgnoredAny>(text).map_err(|e| body_error(e, "."))?;
        let mut deserializer = serde_json::Deserializer::from_slice(text);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let path = error.path().to_string();
            body_error(error.into_inner(), &path)
        })?;
        deserializer.end().map_err(|e| body_error(e, "."))?;
        Ok(JsonBody(value))
    }
}

/// 400 for a body that is not JSON, or not of the expected shape (naming where).
fn body_error(e: serde_json::Error, path: &str) -> ApiError {
    if e.is_data() {
        let at = if path == "." {
            String::new()
        } else {
            format!(" at `{path}`")
        };
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("the request body does not have the expected fields{at}: {e}"),
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the request body is not valid JSON: {e}"),
        )
    }
}

/// The raw body, read only after the admin token was checked: over the route's size
/// limit 413, not all sent within `limits.body_read_timeout_ms` 408 (a client trickling
/// its body holds neither a task nor memory for longer).
pub async fn read_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let timeout = Duration::from_millis(state.config.limits.body_read_timeout_ms);
    let Ok(read) = tokio::time::timeout(timeout, Bytes::from_request(req, &())).await else {
        return Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within limits.body_read_timeout_ms \
                 ({} ms); send it at once",
                timeout.as_millis()
            ),
        ));
    };
    read.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is over the size limit for this endpoint",
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                format!("the request body could not be read: {rejection}"),
            )
        }
    })
}

/// Query parameters parsed strictly, rejected with the API's error shape.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| QueryParams(value))
            .map_err(|rejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    format!("the query string is not valid: {}", rejection.body_text()),
                )
            })
    }
}

/// Checks a required free-text field: not blank, not too long.
pub fn require_text(field: &str, value: &str, max: usize) -> ApiResult<()> {
    if value.trim().is_empty() {
        return Err(ApiError::invalid(
            "invalid_field",
            format!("`{field}` must not be empty"),
        ));
    }
    if value.len() > max {
        return Err(ApiError::invalid(
            "invalid_field",
            format!("`{field}` is longer than {max} bytes"),
        ));
    }
    Ok(())
}

/// The server URL of a connector, checked by the egress rules (http(s), SSRF).
pub async fn check_server_url(state: &AppState, server_url: &str) -> ApiResult<reqwest::Url> {
    state
        .egress
        .check_url(server_url)
        .await
        .map_err(|e| match e {
            EgressError::InvalidUrl(_)
            | EgressError::Scheme(_)
            | EgressError::NoHost
            | EgressError::Userinfo
            | EgressError::PortZero => ApiError::invalid(
                "invalid_server_url",
                format!("{e}; give the MCP endpoint as an https URL"),
            ),
            EgressError::PrivateAddress { .. } | EgressError::Cleartext { .. } => {
                ApiError::invalid("server_url_refused", e.to_string())
            }
            EgressError::Resolve { .. } => ApiError::invalid("upstream_unreachable", e.to_string()),
            EgressError::Client(detail) => ApiError::internal("the upstream client failed", detail),
        })
}
