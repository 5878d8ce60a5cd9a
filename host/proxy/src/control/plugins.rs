//! `/plugins`: list, inspect, install (swap) and roll back the loaded plugins.
//!
//! An install hands the component bytes to the runtime, which admits the new version
//! off the request path and swaps it in atomically; a refused component leaves the
//! serving version in place.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use portcullis_runtime::{LoadError, PluginSummary};

use super::error::{ApiError, ApiResult, read_body};
use crate::state::AppState;

pub async fn list(State(state): State<Arc<AppState>>) -> Json<Vec<PluginSummary>> {
    Json(state.runtime.plugins())
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginSummary>> {
    state
        .runtime
        .plugin(&name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("plugin `{name}`")))
}

pub async fn install(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    request: Request,
) -> ApiResult<Json<PluginSummary>> {
    let bytes = read_body(request, &state).await?;
    if bytes.is_empty() {
        return Err(ApiError::invalid(
            "plugin_rejected",
            "the body is empty; send the component bytes (curl --data-binary @plugin.wasm)",
        ));
    }
    let _writer = state.plugin_store.lock().await;
    let summary = state
        .runtime
        .install(&name, bytes.to_vec())
        .await
        .map_err(load_error)?;
    state
        .plugin_store
        .installed_new(&name, &bytes)
        .map_err(|e| not_kept(&name, e))?;
    tracing::info!(plugin = %name, version = %summary.version, sha256 = %summary.sha256, "plugin installed through the admin API");
    Ok(Json(summary))
}

pub async fn rollback(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginSummary>> {
    let _writer = state.plugin_store.lock().await;
    let summary = state.runtime.rollback(&name).map_err(load_error)?;
    state
        .plugin_store
        .rolled_back(&name)
        .map_err(|e| not_kept(&name, e))?;
    tracing::info!(plugin = %name, version = %summary.version, "plugin rolled back through the admin API");
    Ok(Json(summary))
}

/// The change is serving but was not written down: say so, since a restart would undo it.
fn not_kept(name: &str, error: crate::plugin_store::PluginStoreError) -> ApiError {
    ApiError::internal(
        "the plugin change is serving but could not be saved and will not survive a restart",
        format!("plugin `{name}`: {error}"),
    )
}

fn load_error(error: LoadError) -> ApiError {
    let message = format!("{error}; the current version keeps serving");
    match error {
        LoadError::NotFound(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", error.to_string())
        }
        LoadError::NoPrevious(_) => {
            ApiError::new(StatusCode::CONFLICT, "no_previous_version", message)
        }
        LoadError::TooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message)
        }
        LoadError::Engine(detail) => ApiError::internal("the plugin runtime failed", detail),
        _ => ApiError::invalid("plugin_rejected", message),
    }
}
