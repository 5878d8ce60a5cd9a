//! `/plugins`: list and inspect the loaded plugins; install, roll back and delete them;
//! list their kept versions.
//!
//! An install checks provenance first (the `sha256` pin and the minisign `signature`
//! against `plugins.trusted_keys`, see `portcullis_runtime::TrustPolicy`), then hands the
//! bytes to the runtime, which admits them off the request path; the version is kept in
//! the store, swapped in atomically, then recorded as serving. A refused component leaves
//! the serving version in place. Every change, refusals included, is audited
//! (`control::audit::audited`). Shadow candidates are `plugin_shadow`'s.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use base64::Engine as _;
use portcullis_runtime::{Admitted, Inspection, Limits, LoadError, PluginSummary, Provenance};
use serde::{Deserialize, Serialize};

use super::audit::audited;
use super::error::{ApiError, ApiResult, JsonBody, QueryParams, read_body};
use crate::plugin_store::{VersionView, sha256};
use crate::state::AppState;

/// A plugin as `GET /plugins` lists it.
#[derive(Serialize)]
pub struct PluginView {
    #[serde(flatten)]
    pub summary: PluginSummary,
    /// The chains that name it (`access`, `request`, `tools`, `providers`).
    pub chains: Vec<&'static str>,
    /// The digest of its shadow candidate, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<String>,
}

/// `GET /plugins/{name}`: everything a reviewer needs to judge a plugin's authority.
#[derive(Serialize)]
pub struct PluginDetail {
    #[serde(flatten)]
    pub view: PluginView,
    /// The minisign key id that signed the serving version, if it came signed.
    pub signed_by: Option<String>,
    /// The limits every call of it runs under.
    pub limits: Limits,
    /// What its bytes declare: world, WIT version, imports, exports, custom sections.
    pub inspection: Inspection,
}

fn view(state: &AppState, summary: PluginSummary) -> PluginView {
    let shadow = state
        .runtime
        .shadows()
        .into_iter()
        .find(|(name, _)| *name == summary.name)
        .map(|(_, sha)| sha);
    PluginView {
        chains: state.runtime.chains().chains_using(&summary.name),
        shadow,
        summary,
    }
}

fn loaded(state: &AppState, name: &str) -> ApiResult<PluginSummary> {
    state
        .runtime
        .plugin(name)
        .ok_or_else(|| ApiError::not_found(format!("plugin `{name}`")))
}

/// The view of loaded plugin `name`.
pub fn loaded_view(state: &AppState, name: &str) -> ApiResult<PluginView> {
    Ok(view(state, loaded(state, name)?))
}

pub async fn list(State(state): State<Arc<AppState>>) -> Json<Vec<PluginView>> {
    let plugins = state.runtime.plugins();
    Json(plugins.into_iter().map(|p| view(&state, p)).collect())
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginDetail>> {
    let summary = loaded(&state, &name)?;
    let (wasm, _) = state
        .plugin_store
        .component(&name, &summary.sha256)
        .await?
        .ok_or_else(|| {
            ApiError::internal(
                "the serving version's bytes are not kept",
                format!("plugin `{name}`"),
            )
        })?;
    let inspection = portcullis_runtime::inspect(&wasm)
        .map_err(|e| ApiError::internal("the serving version could not be inspected", e))?;
    let signed_by = state.plugin_store.signer(&name, &summary.sha256).await?;
    Ok(Json(PluginDetail {
        view: view(&state, summary),
        signed_by,
        limits: state.runtime.limits().clone(),
        inspection,
    }))
}

/// The provenance parameters of an upload (`PUT /plugins/{name}` and its shadow).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    #[serde(default)]
    sha256: Option<String>,
    /// Base64 of the `.minisig` file.
    #[serde(default)]
    signature: Option<String>,
}

/// A component that passed the provenance checks and admission.
pub struct Upload {
    pub admitted: Admitted,
    pub wasm: Vec<u8>,
    pub provenance: Provenance,
    /// The `.minisig` text.
    pub signature: Option<String>,
}

fn rejected(reason: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid("plugin_rejected", message).with_reason(reason)
}

/// Reads, checks and admits an uploaded component as a version of `name`.
pub async fn upload(
    state: &AppState,
    name: &str,
    params: UploadParams,
    request: Request,
) -> ApiResult<Upload> {
    let bytes = read_body(request, &()).await?;
    if bytes.is_empty() {
        return Err(ApiError::invalid(
            "plugin_rejected",
            "the body is empty; send the component bytes (curl --data-binary @plugin.wasm)",
        ));
    }
    let signature = match params.signature {
        None => None,
        Some(text) => Some(decode_signature(&text)?),
    };
    let provenance = state
        .plugin_store
        .trust()
        .verify(&bytes, params.sha256.as_deref(), signature.as_deref())
        .map_err(|rejection| rejected(rejection.reason.as_str(), rejection.message))?;
    let wasm = bytes.to_vec();
    let admitted = state
        .runtime
        .admit(name, wasm.clone(), false)
        .await
        .map_err(load_error)?;
    Ok(Upload {
        admitted,
        wasm,
        provenance,
        signature,
    })
}

/// The `.minisig` text of a `signature` parameter: base64 (standard or URL-safe).
fn decode_signature(text: &str) -> ApiResult<String> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let text = text.trim();
    let bytes = STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .map_err(|_| {
            rejected(
                "signature_invalid",
                "`signature` is not base64; send base64 of the whole .minisig file \
                 (URL-encoded in the query)",
            )
        })?;
    String::from_utf8(bytes).map_err(|_| {
        rejected(
            "signature_invalid",
            "`signature` does not decode to the text of a .minisig file",
        )
    })
}

pub async fn install(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    QueryParams(params): QueryParams<UploadParams>,
    request: Request,
) -> ApiResult<Json<PluginView>> {
    let _writer = state.plugin_store.lock().await;
    let before = state.runtime.plugin(&name).map(|p| json(&p));
    let outcome = install_checked(&state, &name, params, request).await;
    audited(&state, "plugin.install", &name, before, outcome)
        .await
        .map(Json)
}

async fn install_checked(
    state: &AppState,
    name: &str,
    params: UploadParams,
    request: Request,
) -> ApiResult<PluginView> {
    let upload = upload(state, name, params, request).await?;
    let digest = upload.provenance.sha256.clone();
    let version = upload.admitted.summary().version;
    state
        .runtime
        .change(|draft| draft.install(upload.admitted))
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
        .await
        .map_err(|e| not_kept(name, e))?;
    made_current(state, name, &digest).await?;
    tracing::info!(plugin = %name, %version, sha256 = %digest, "plugin installed through the admin API");
    loaded_view(state, name)
}

/// Records in the store that `digest` serves as `name`.
async fn made_current(state: &AppState, name: &str, digest: &str) -> ApiResult<()> {
    let shadow = state
        .runtime
        .shadows()
        .into_iter()
        .find(|(live, _)| live == name)
        .map(|(_, sha)| sha);
    state
        .plugin_store
        .made_current(name, digest, shadow.as_deref())
        .await
        .map_err(|e| not_kept(name, e))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The kept version to return to; without it, the previous one.
    #[serde(default)]
    sha256: Option<String>,
}

pub async fn rollback(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<RollbackBody>,
) -> ApiResult<Json<PluginView>> {
    let _writer = state.plugin_store.lock().await;
    let before = state.runtime.plugin(&name).map(|p| json(&p));
    let outcome = rollback_checked(&state, &name, body).await;
    audited(&state, "plugin.rollback", &name, before, outcome)
        .await
        .map(Json)
}

async fn rollback_checked(
    state: &AppState,
    name: &str,
    body: RollbackBody,
) -> ApiResult<PluginView> {
    let current = loaded(state, name)?;
    let target = match body.sha256 {
        Some(sha) => sha.trim().to_ascii_lowercase(),
        None => state.plugin_store.previous(name).await?.ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_previous_version",
                format!("plugin `{name}` has no previous version; see GET /admin/v1/plugins/{name}/versions"),
            )
        })?,
    };
    if target == current.sha256 {
        return Ok(view(state, current));
    }
    let (wasm, builtin) = state
        .plugin_store
        .component(name, &target)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("version {target} of plugin `{name}`")))?;
    if sha256(&wasm) != target {
        return Err(ApiError::internal(
            "the kept version does not hash to its digest; it was changed in the store",
            format!("plugin `{name}` version {target}"),
        ));
    }
    if !builtin && state.plugin_store.trust().requires_signature() {
        let signer = state.plugin_store.signer(name, &target).await?;
        if signer.is_none() {
            return Err(rejected(
                "signature_required",
                "plugins.require_signature is on and this version was installed unsigned; \
                 install it again with a signature",
            ));
        }
    }
    let admitted = state
        .runtime
        .admit(name, wasm, builtin)
        .await
        .map_err(load_error)?;
    state
        .runtime
        .change(|draft| draft.install(admitted))
        .map_err(load_error)?;
    made_current(state, name, &target).await?;
    tracing::info!(plugin = %name, sha256 = %target, "plugin rolled back through the admin API");
    loaded_view(state, name)
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let _writer = state.plugin_store.lock().await;
    let before = state.runtime.plugin(&name).map(|p| json(&p));
    let outcome = remove_checked(&state, &name).await;
    audited(&state, "plugin.delete", &name, before, outcome)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

async fn remove_checked(state: &AppState, name: &str) -> ApiResult<()> {
    state
        .runtime
        .change(|draft| draft.remove(name))
        .map_err(load_error)?;
    state
        .plugin_store
        .deleted(name)
        .await
        .map_err(|e| not_kept(name, e))?;
    tracing::info!(plugin = %name, "plugin deleted through the admin API");
    Ok(())
}

#[derive(Serialize)]
pub struct Versions {
    versions: Vec<VersionView>,
}

pub async fn versions(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Versions>> {
    let current = state.runtime.plugin(&name);
    let chains = state.runtime.chains().chains_using(&name);
    let builtin_version = current
        .as_ref()
        .filter(|c| c.builtin)
        .map(|c| c.version.clone());
    let versions = state
        .plugin_store
        .versions(
            &name,
            current.as_ref().map(|c| c.sha256.as_str()),
            builtin_version.as_deref(),
            &chains,
        )
        .await?;
    if versions.is_empty() && current.is_none() {
        return Err(ApiError::not_found(format!("plugin `{name}`")));
    }
    Ok(Json(Versions { versions }))
}

pub fn json(value: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// The change is serving but was not written down: say so, since a restart would undo it.
fn not_kept(name: &str, error: crate::store::StoreError) -> ApiError {
    ApiError::internal(
        "the plugin change is serving but could not be saved and will not survive a restart",
        format!("plugin `{name}`: {error}"),
    )
}

pub fn load_error(error: LoadError) -> ApiError {
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
        LoadError::InUse { .. } => {
            ApiError::new(StatusCode::CONFLICT, "plugin_in_use", error.to_string())
        }
        LoadError::NoShadow(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", error.to_string())
        }
        LoadError::Chain(_) | LoadError::Settings { .. } => {
            ApiError::invalid("invalid_chains", error.to_string())
        }
        LoadError::Engine(detail) => ApiError::internal("the plugin runtime failed", detail),
        _ => ApiError::invalid("plugin_rejected", message),
    }
}
