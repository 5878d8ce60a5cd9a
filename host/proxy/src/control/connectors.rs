//! `/connectors`: create (with discovery), list, show, restrict, re-authorize, delete.
//!
//! A connector is stored only after its upstream answered `initialize` and every page of
//! `tools/list` with the credential written in by the provider plugin, so a stored
//! connector always has a working credential and a tool snapshot. The secret is sealed
//! by the vault before it reaches the store and is never part of an answer.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use portcullis_model::ConnectorStatus;
use serde::{Deserialize, Deserializer, Serialize};

use super::error::{ApiError, ApiResult, JsonBody, QueryParams, require_text};
use crate::clock::now_secs;
use crate::config::Secret;
use crate::discovery::{self, DiscoveryError};
use crate::egress::EgressError;
use crate::injection::{self, Injection};
use crate::revocation::Revocation;
use crate::state::AppState;
use crate::store::{AuthMethod, ConnectorRecord, DiscoveredTool, new_id};

/// The default provider profile: `Authorization: Bearer <secret>`.
const DEFAULT_PROVIDER: &str = "bearer";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    owner: String,
    #[serde(default)]
    name: Option<String>,
    server_url: String,
    #[serde(default)]
    provider: Option<String>,
    auth: AuthBody,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthBody {
    method: AuthMethod,
    #[serde(default)]
    secret: Option<Secret>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    /// Absent leaves the allowlist alone; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    allowed_tools: Option<Option<Vec<String>>>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReauthorizeBody {
    #[serde(default)]
    auth: Option<AuthBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[serde(default)]
    owner: Option<String>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A connector as the API shows it: never its secret.
#[derive(Serialize)]
pub struct ConnectorView {
    id: String,
    owner: String,
    name: String,
    server_url: String,
    provider: String,
    status: ConnectorStatus,
    tools: Vec<DiscoveredTool>,
    allowed_tools: Option<Vec<String>>,
    created_at: i64,
    authorized_at: i64,
}

impl From<ConnectorRecord> for ConnectorView {
    fn from(c: ConnectorRecord) -> Self {
        Self {
            id: c.id,
            owner: c.owner,
            name: c.name,
            server_url: c.server_url,
            provider: c.provider,
            status: c.status,
            tools: c.tools,
            allowed_tools: c.allowed_tools,
            created_at: c.created_at,
            authorized_at: c.authorized_at,
        }
    }
}

impl AuthBody {
    /// The secret, checked against the method.
    fn secret(&self) -> ApiResult<Option<&str>> {
        match (self.method, &self.secret) {
            (AuthMethod::ApiKey, Some(secret)) if !secret.expose().trim().is_empty() => {
                Ok(Some(secret.expose()))
            }
            (AuthMethod::ApiKey, _) => Err(ApiError::invalid(
                "invalid_field",
                "`auth.secret` is required for the api_key method: give the API key or token",
            )),
            (AuthMethod::None, None) => Ok(None),
            (AuthMethod::None, Some(_)) => Err(ApiError::invalid(
                "invalid_field",
                "`auth.secret` must be omitted for the none method; use api_key to send a secret",
            )),
            (AuthMethod::OAuth, _) => Err(ApiError::invalid(
                "invalid_field",
                "the oauth method is not available yet; use api_key or none",
            )),
        }
    }
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<(StatusCode, Json<ConnectorView>)> {
    require_text("owner", &body.owner, 256)?;
    if let Some(name) = &body.name {
        require_text("name", name, 256)?;
    }
    let secret = body.auth.secret()?;
    let provider = body
        .provider
        .clone()
        .unwrap_or_else(|| DEFAULT_PROVIDER.to_owned());
    let profiles = state.runtime.provider_profiles();
    if !profiles.contains(&provider) {
        return Err(ApiError::invalid(
            "unknown_provider",
            format!(
                "provider `{provider}` is not configured; use one of: {}",
                profiles.join(", ")
            ),
        ));
    }
    let config = match body.config {
        None => serde_json::json!({}),
        Some(value @ serde_json::Value::Object(_)) => value,
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid_field",
                "`config` must be a JSON object of provider settings",
            ));
        }
    };
    let server_url = body.server_url.trim().to_owned();
    let url = check_server_url(&state, &server_url).await?;
    let now = now_secs();
    let mut record = ConnectorRecord {
        id: new_id("conn"),
        owner: body.owner,
        name: body
            .name
            .unwrap_or_else(|| url.host_str().unwrap_or("connector").to_owned()),
        server_url,
        provider,
        config,
        auth: body.auth.method,
        sealed_secret: None,
        status: ConnectorStatus::Authorized,
        tools: Vec::new(),
        allowed_tools: None,
        created_at: now,
        authorized_at: now,
        revision: 1,
    };
    let injection = injection::prepare_with_secret(&state.runtime, &record, secret)
        .await
        .map_err(provider_refused(NOT_STORED))?;
    record.tools = discover(&state, &injection, &url, NOT_STORED).await?;
    record.sealed_secret = seal(&state, secret)?;
    state.store.insert_connector(&record).await?;
    tracing::info!(connector = %record.id, owner = %record.owner, tools = record.tools.len(), "connector created");
    Ok((StatusCode::CREATED, Json(record.into())))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    QueryParams(params): QueryParams<ListParams>,
) -> ApiResult<Json<Vec<ConnectorView>>> {
    let connectors = state.store.connectors(params.owner.as_deref()).await?;
    Ok(Json(connectors.into_iter().map(Into::into).collect()))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<ConnectorView>> {
    Ok(Json(load(&state, &id).await?.into()))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> ApiResult<Json<ConnectorView>> {
    let mut connector = load(&state, &id).await?;
    if body.allowed_tools.is_none() && body.name.is_none() {
        return Ok(Json(connector.into()));
    }
    if let Some(name) = body.name {
        require_text("name", &name, 256)?;
        connector.name = name;
    }
    if let Some(allowed) = body.allowed_tools {
        connector.allowed_tools = allowed
            .map(|names| checked_allowlist(&connector, names))
            .transpose()?;
    }
    connector.revision += 1;
    state.store.update_connector(&connector).await?;
    state
        .revocations
        .revoke(Revocation::ConnectorChanged {
            connector: connector.id.clone(),
        })
        .await;
    tracing::info!(connector = %connector.id, revision = connector.revision, "connector updated");
    Ok(Json(connector.into()))
}

pub async fn reauthorize(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ReauthorizeBody>,
) -> ApiResult<Json<ConnectorView>> {
    let mut connector = load(&state, &id).await?;
    let url = check_server_url(&state, &connector.server_url).await?;
    let (injection, sealed) = match &body.auth {
        Some(auth) => {
            let secret = auth.secret()?;
            connector.auth = auth.method;
            let injection = injection::prepare_with_secret(&state.runtime, &connector, secret)
                .await
                .map_err(provider_refused(UNCHANGED))?;
            (injection, seal(&state, secret)?)
        }
        None => {
            let injection = injection::prepare(&state.runtime, &state.vault, &connector)
                .await
                .map_err(provider_refused(UNCHANGED))?;
            (injection, connector.sealed_secret.take())
        }
    };
    let tools = discover(&state, &injection, &url, UNCHANGED).await?;
    // AUTH-9: allowed tools that still exist stay allowed; new tools are not added to a
    // set allowlist, so they stay hidden until the owner allows them.
    if let Some(allowed) = &mut connector.allowed_tools {
        let names: BTreeSet<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        allowed.retain(|name| names.contains(name.as_str()));
    }
    connector.tools = tools;
    connector.sealed_secret = sealed;
    connector.status = ConnectorStatus::Authorized;
    connector.authorized_at = now_secs();
    connector.revision += 1;
    state.store.update_connector(&connector).await?;
    state
        .revocations
        .revoke(Revocation::ConnectorChanged {
            connector: connector.id.clone(),
        })
        .await;
    tracing::info!(connector = %connector.id, tools = connector.tools.len(), "connector re-authorized");
    Ok(Json(connector.into()))
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if state.store.delete_connector(&id).await? {
        state
            .revocations
            .revoke(Revocation::ConnectorChanged {
                connector: id.clone(),
            })
            .await;
        tracing::info!(connector = %id, "connector deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("connector `{id}`")))
    }
}

async fn load(state: &AppState, id: &str) -> ApiResult<ConnectorRecord> {
    state
        .store
        .connector(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("connector `{id}`")))
}

/// The allowlist with duplicates removed, or 422 naming the tools not in the snapshot.
fn checked_allowlist(connector: &ConnectorRecord, names: Vec<String>) -> ApiResult<Vec<String>> {
    let known: BTreeSet<&str> = connector.tools.iter().map(|t| t.name.as_str()).collect();
    let unknown: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !known.contains(n))
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::invalid(
            "unknown_tools",
            format!(
                "`allowed_tools` names tools the connector does not have: {}; re-authorize \
                 the connector if the upstream added them",
                unknown.join(", ")
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    Ok(names
        .into_iter()
        .filter(|n| seen.insert(n.clone()))
        .collect())
}

async fn check_server_url(state: &AppState, server_url: &str) -> ApiResult<reqwest::Url> {
    state
        .egress
        .check_url(server_url)
        .await
        .map_err(|e| match e {
            EgressError::InvalidUrl(_) | EgressError::Scheme(_) | EgressError::NoHost => {
                ApiError::invalid(
                    "invalid_server_url",
                    format!("{e}; give the MCP endpoint as an http(s) URL"),
                )
            }
            EgressError::PrivateAddress { .. } => {
                ApiError::invalid("server_url_refused", e.to_string())
            }
            EgressError::Resolve { .. } => ApiError::invalid("upstream_unreachable", e.to_string()),
            EgressError::Client(detail) => ApiError::internal("the upstream client failed", detail),
        })
}

/// What a failed create or re-authorization left behind, for its error message.
const NOT_STORED: &str = "nothing was stored";
const UNCHANGED: &str = "the connector is unchanged";

async fn discover(
    state: &AppState,
    injection: &Injection,
    url: &reqwest::Url,
    outcome: &str,
) -> ApiResult<Vec<DiscoveredTool>> {
    discovery::discover(&state.egress, injection, url)
        .await
        .map_err(|e: DiscoveryError| {
            tracing::info!(code = e.code(), error = %e, "discovery failed");
            ApiError::invalid(e.code(), format!("{e}; {outcome}"))
        })
}

fn provider_refused(outcome: &'static str) -> impl Fn(injection::InjectionError) -> ApiError {
    move |e| ApiError::invalid("provider_refused", format!("{e}; {outcome}"))
}

fn seal(state: &AppState, secret: Option<&str>) -> ApiResult<Option<Vec<u8>>> {
    secret
        .map(|s| state.vault.seal(s))
        .transpose()
        .map_err(|e| ApiError::internal("sealing the credential failed", e))
}
