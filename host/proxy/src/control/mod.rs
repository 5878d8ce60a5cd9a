//! The control plane: the admin API under `/admin/v1` (design.md, "Admin API v1").
//!
//! Every route sits behind `Authorization: Bearer <admin token>`, compared in constant
//! time. Every answer that is not a success has the shape `{"error":{"code","message"}}`,
//! unknown paths and methods included. One module per resource.

mod actors;
mod audit;
mod connectors;
mod error;
mod plugins;
mod runs;
pub mod schema;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::vault::token_hash;

pub use error::{ApiError, ApiResult};

/// The largest plugin component `PUT /plugins/{name}` accepts.
pub const MAX_PLUGIN_BYTES: usize = 32 << 20;

/// The admin API, to be nested under `/admin/v1`.
pub fn router(state: Arc<AppState>) -> Router {
    let plugins = Router::new()
        .route("/plugins/{name}", put(plugins::install).get(plugins::show))
        .layer(DefaultBodyLimit::max(MAX_PLUGIN_BYTES));
    let api = Router::new()
        .route(
            "/connectors",
            post(connectors::create).get(connectors::list),
        )
        .route(
            "/connectors/{id}",
            get(connectors::show)
                .patch(connectors::update)
                .delete(connectors::remove),
        )
        .route(
            "/connectors/{id}/reauthorize",
            post(connectors::reauthorize),
        )
        .route("/actors/{id}", put(actors::put).get(actors::show))
        .route("/runs", post(runs::start))
        .route("/runs/{id}", get(runs::show))
        .route("/runs/{id}/finish", post(runs::finish))
        .route("/plugins", get(plugins::list))
        .route("/plugins/{name}/rollback", post(plugins::rollback))
        .route("/audit", get(audit::list))
        .layer(DefaultBodyLimit::max(state.config.http.max_body_bytes))
        .merge(plugins)
        .fallback(unknown_path)
        .method_not_allowed_fallback(wrong_method);
    let admin = api
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state);
    Router::new().nest("/admin/v1", admin)
}

async fn authenticate(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let Some(presented) = presented else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the admin token as `Authorization: Bearer <admin token>`",
        )
        .into_response();
    };
    // Comparing hashes keeps the comparison constant-time whatever the lengths.
    let matches: bool = token_hash(presented.trim())
        .ct_eq(&state.admin_token_hash)
        .into();
    if !matches {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the admin token is not valid; use PORTCULLIS_ADMIN_TOKEN or the token in the \
             data directory's admin.token file",
        )
        .into_response();
    }
    next.run(request).await
}

async fn count(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    state.metrics.admin_request(response.status().as_u16());
    response
}

async fn unknown_path(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("there is no admin API endpoint {method} {uri}; see the admin API reference"),
    )
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{uri} does not accept {method}; see the admin API reference"),
    )
}

/// Checks a required free-text field: not blank, not too long.
fn require_text(field: &str, value: &str, max: usize) -> ApiResult<()> {
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
