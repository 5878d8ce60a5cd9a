//! `/plugins/{name}/shadow`: a candidate version asked every decision the live plugin is,
//! off the request path, and only counted (see `portcullis_runtime`'s `shadow`); promoted
//! to serve when the operator is satisfied, or dropped.
//!
//! The candidate passes the same provenance checks and admission as an install and is
//! kept in the store as a version of the name, so `promote` only moves the head. A shadow
//! lives in memory: a restart ends it (the candidate stays among the kept versions).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use portcullis_runtime::ShadowReport;

use super::audit::audited;
use super::error::{ApiError, ApiResult, QueryParams};
use super::plugins::{PluginView, UploadParams, json, load_error, loaded_view, upload};
use crate::state::AppState;

fn shadow_of(state: &AppState, name: &str) -> ApiResult<ShadowReport> {
    state
        .runtime
        .shadow(name)
        .ok_or_else(|| ApiError::not_found(format!("a shadow of plugin `{name}`")))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<ShadowReport>> {
    shadow_of(&state, &name).map(Json)
}

pub async fn put(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    QueryParams(params): QueryParams<UploadParams>,
    request: Request,
) -> ApiResult<Json<ShadowReport>> {
    let _writer = state.plugin_store.lock().await;
    let before = state.runtime.shadow(&name).map(|s| json(&s.candidate));
    let outcome = start(&state, &name, params, request).await;
    audited(&state, "plugin.shadow", &name, before, outcome)
        .await
        .map(Json)
}

async fn start(
    state: &AppState,
    name: &str,
    params: UploadParams,
    request: Request,
) -> ApiResult<ShadowReport> {
    if state.runtime.plugin(name).is_none() {
        return Err(ApiError::not_found(format!("plugin `{name}`")));
    }
    let upload = upload(state, name, params, request).await?;
    let version = upload.admitted.summary().version;
    state
        .runtime
        .change(|draft| draft.set_shadow(upload.admitted))
        .map_err(load_error)?;
    state
        .plugin_store
        .keep(
            name,
            &version,
            &upload.wasm,
            &upload.provenance,
            upload.signature.as_deref(),
        )
        .await?;
    tracing::info!(plugin = %name, sha256 = %upload.provenance.sha256, "shadow candidate set through the admin API");
    shadow_of(state, name)
}

pub async fn promote(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginView>> {
    let _writer = state.plugin_store.lock().await;
    let before = state.runtime.plugin(&name).map(|p| json(&p));
    let outcome = promote_checked(&state, &name).await;
    audited(&state, "plugin.shadow.promote", &name, before, outcome)
        .await
        .map(Json)
}

async fn promote_checked(state: &AppState, name: &str) -> ApiResult<PluginView> {
    let report = shadow_of(state, name)?;
    state
        .runtime
        .change(|draft| draft.promote_shadow(name))
        .map_err(load_error)?;
    state
        .plugin_store
        .made_current(name, &report.candidate.sha256, None)
        .await
        .map_err(|e| {
            ApiError::internal(
                "the promoted version serves but could not be saved and will not survive a \
                 restart",
                e,
            )
        })?;
    tracing::info!(plugin = %name, sha256 = %report.candidate.sha256, "shadow candidate promoted through the admin API");
    loaded_view(state, name)
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let _writer = state.plugin_store.lock().await;
    let before = state.runtime.shadow(&name).map(|s| json(&s.candidate));
    let outcome = match state.runtime.change(|draft| Ok(draft.remove_shadow(&name))) {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::not_found(format!("a shadow of plugin `{name}`"))),
        Err(e) => Err(load_error(e)),
    };
    audited(&state, "plugin.shadow.delete", &name, before, outcome)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}
