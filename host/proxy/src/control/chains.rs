//! `/chains`: the chain configuration, read and replaced while the proxy serves.
//!
//! A new configuration is checked before it serves: every plugin it names is loaded and
//! of the kind its chain needs, every policy link accepts its settings in trial calls
//! (see `portcullis_runtime::Runtime::check_chains`), and every provider profile a stored
//! connector uses keeps a provider plugin. It then replaces the serving one in one atomic
//! swap of the runtime's registry (requests in flight finish on the chains they started
//! with; the generation changes, so memoized answers are not reused), is saved in the
//! store, and is audited with the configuration before and after.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use portcullis_runtime::ChainConfig;

use super::audit::audited;
use super::error::{ApiError, ApiResult, JsonBody};
use super::plugins::load_error;
use crate::state::AppState;

pub async fn show(State(state): State<Arc<AppState>>) -> Json<ChainConfig> {
    Json(state.runtime.chains())
}

pub async fn put(
    State(state): State<Arc<AppState>>,
    JsonBody(chains): JsonBody<ChainConfig>,
) -> ApiResult<Json<ChainConfig>> {
    let _writer = state.plugin_store.lock().await;
    let before = serde_json::to_value(state.runtime.chains()).ok();
    let outcome = set(&state, chains).await;
    audited(&state, "chains.set", "chains", before, outcome)
        .await
        .map(Json)
}

async fn set(state: &AppState, chains: ChainConfig) -> ApiResult<ChainConfig> {
    providers_in_use_kept(state, &chains).await?;
    state
        .runtime
        .check_chains(&chains)
        .await
        .map_err(load_error)?;
    state
        .runtime
        .change(|draft| {
            draft.set_chains(chains.clone());
            Ok(())
        })
        .map_err(load_error)?;
    state.plugin_store.save_chains(&chains).await.map_err(|e| {
        ApiError::internal(
            "the chain configuration is serving but could not be saved and will not survive a \
             restart",
            e,
        )
    })?;
    tracing::info!("chain configuration changed through the admin API");
    Ok(state.runtime.chains())
}

/// Refuses a configuration that drops the provider profile of a stored connector.
async fn providers_in_use_kept(state: &AppState, chains: &ChainConfig) -> ApiResult<()> {
    let connectors = state.store.connectors(None).await?;
    let missing: BTreeSet<&str> = connectors
        .iter()
        .map(|c| c.provider.as_str())
        .filter(|p| !chains.providers.contains_key(*p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.into_iter().collect();
    Err(ApiError::invalid(
        "invalid_chains",
        format!(
            "connectors use the provider profile(s) {}, which the configuration leaves \
             without a provider plugin; keep them in `providers` or delete those connectors \
             first",
            names.join(", ")
        ),
    ))
}
