//! `/connectors`: create (with discovery), list, show, restrict, re-authorize, delete.
//!
//! A connector with an API key or no credential is stored only after its upstream
//! answered `initialize` and every page of `tools/list` with the credential written in by
//! the provider plugin, so it always has a working credential and a tool snapshot. An
//! OAuth connector is stored `pending_authorization` and gets both at its callback
//! (`control::oauth`). The secret is sealed by the vault before it reaches the store and
//! is never part of an answer. Deleting an OAuth connector revokes its tokens at the
//! authorization server.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_model::{ClientAuth, ConnectorStatus, Registration};
use serde::{Deserialize, Deserializer, Serialize};

use super::error::{ApiError, ApiResult, JsonBody, QueryParams, check_server_url, require_text};
use crate::clock::now_secs;
use crate::config::Secret;
use crate::discovery::{self, DiscoveryError};
use crate::injection::{self, Injection};
use crate::oauth::flow;
use crate::revocation::Revocation;
use crate::state::AppState;
use crate::store::{AuthMethod, ConnectorRecord, DiscoveredTool, new_id};
use crate::vault::Binding;

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
    /// Provider settings: an object (any other JSON type is a malformed body).
    #[serde(default)]
    config: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthBody {
    method: AuthMethod,
    #[serde(default)]
    secret: Option<Secret>,
    // The `oauth` method's fields.
    #[serde(default)]
    registration: Option<Registration>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<Secret>,
    #[serde(default)]
    authorization_url: Option<String>,
    #[serde(default)]
    token_url: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<ClientAuth>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
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
    /// What the `oauth` method asks for; its secret is an own client's `client_secret`.
    fn oauth_request(&self) -> ApiResult<flow::Request<'_>> {
        if self.secret.is_some() {
            return Err(ApiError::invalid(
                "invalid_field",
                "`auth.secret` is for api_key; an own OAuth client's secret is \
                 `auth.client_secret`",
            ));
        }
        Ok(flow::Request {
            registration: self.registration,
            client_id: self.client_id.as_deref(),
            client_secret: self.client_secret.as_ref().map(|s| s.expose()),
            authorization_url: self.authorization_url.as_deref(),
            token_url: self.token_url.as_deref(),
            client_auth: self.token_endpoint_auth_method,
            scopes: self.scopes.clone(),
        })
    }

    /// The secret, checked against the method (not `oauth`).
    fn secret(&self) -> ApiResult<Option<&str>> {
        let oauth_only = self.registration.is_some()
            || self.client_id.is_some()
            || self.client_secret.is_some()
            || self.authorization_url.is_some()
            || self.token_url.is_some()
            || self.token_endpoint_auth_method.is_some()
            || self.scopes.is_some();
        if oauth_only {
            return Err(ApiError::invalid(
                "invalid_field",
                "`auth` has fields of the oauth method; give `\"method\": \"oauth\"` or \
                 remove them",
            ));
        }
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
            (AuthMethod::OAuth, _) => Err(ApiError::internal(
                "an oauth credential was read as an API key",
                "AuthBody::secret called for the oauth method",
            )),
        }
    }
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<Response> {
    require_text("owner", &body.owner, 256)?;
    if let Some(name) = &body.name {
        require_text("name", name, 256)?;
    }
    let oauth = body.auth.method == AuthMethod::OAuth;
    let secret = if oauth { None } else { body.auth.secret()? };
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
    let config = serde_json::Value::Object(body.config.unwrap_or_default());
    let url = check_server_url(&state, body.server_url.trim()).await?;
    let now = now_secs();
    let mut record = ConnectorRecord {
        id: new_id("conn"),
        owner: body.owner,
        name: body
            .name
            .unwrap_or_else(|| url.host_str().unwrap_or("connector").to_owned()),
        server_url: url.to_string(),
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
    if oauth {
        let (record, started) =
            super::oauth::create(&state, record, &url, body.auth.oauth_request()?).await?;
        return Ok(pending(record, started));
    }
    let injection = injection::prepare_with_secret(&state.runtime, &record, secret)
        .await
        .map_err(provider_refused(NOT_STORED))?;
    record.tools = discover(&state, &injection, &url, NOT_STORED).await?;
    record.sealed_secret = seal(&state, &record, secret)?;
    state.store.insert_connector(&record).await?;
    tracing::info!(connector = %record.id, owner = %record.owner, tools = record.tools.len(), "connector created");
    Ok((StatusCode::CREATED, Json(ConnectorView::from(record))).into_response())
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
) -> ApiResult<Response> {
    let mut connector = load(&state, &id).await?;
    let url = check_server_url(&state, &connector.server_url).await?;
    let was_oauth = connector.auth == AuthMethod::OAuth;
    let (injection, sealed) = match &body.auth {
        Some(auth) if auth.method == AuthMethod::OAuth => {
            let request = auth.oauth_request()?;
            let started = super::oauth::reauthorize(&state, &connector, &url, request).await?;
            return Ok(pending(connector, started));
        }
        None if was_oauth => {
            return Err(ApiError::invalid(
                "invalid_field",
                "an OAuth connector is re-authorized with a new authorization: give `auth` \
                 with `\"method\": \"oauth\"` (and the own client's fields, if it has one)",
            ));
        }
        Some(auth) => {
            let secret = auth.secret()?;
            connector.auth = auth.method;
            let injection = injection::prepare_with_secret(&state.runtime, &connector, secret)
                .await
                .map_err(provider_refused(UNCHANGED))?;
            (injection, seal(&state, &connector, secret)?)
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
    if was_oauth {
        // It no longer uses OAuth: its grant is revoked and forgotten.
        if let Ok(Some(grant)) = state.store.grant(&connector.id).await {
            state.store.delete_grant(&connector.id).await?;
            state.oauth.forget(&connector.id);
            state.oauth.revoke(&grant, &connector.owner).await;
        }
    }
    tracing::info!(connector = %connector.id, tools = connector.tools.len(), "connector re-authorized");
    Ok(Json(ConnectorView::from(connector)).into_response())
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    // The grant's tokens are sealed for the connector and its owner: both are read before
    // the delete, which removes the grant with the connector.
    let owner = state.store.connector(&id).await?.map(|c| c.owner);
    let grant = state.store.grant(&id).await?;
    if !state.store.delete_connector(&id).await? {
        return Err(ApiError::not_found(format!("connector `{id}`")));
    }
    state.oauth.forget(&id);
    state
        .revocations
        .revoke(Revocation::ConnectorDeleted {
            connector: id.clone(),
        })
        .await;
    tracing::info!(connector = %id, "connector deleted");
    // AUTH-10: after the delete, so no request can pick the tokens up again.
    if let (Some(grant), Some(owner)) = (grant, owner) {
        state.oauth.revoke(&grant, &owner).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The answer to a create or re-authorize that started an OAuth authorization.
#[derive(Serialize)]
struct Pending {
    connector: ConnectorView,
    authorization_url: String,
    /// Unix seconds: the authorization URL works until then.
    authorization_expires_at: i64,
}

fn pending(connector: ConnectorRecord, started: flow::Started) -> Response {
    let body = Pending {
        connector: connector.into(),
        authorization_url: started.authorization_url,
        authorization_expires_at: started.expires_at,
    };
    (StatusCode::ACCEPTED, Json(body)).into_response()
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

/// What a failed create or re-authorization left behind, for its error message.
const NOT_STORED: &str = "nothing was stored";
const UNCHANGED: &str = "the connector is unchanged";

async fn discover(
    state: &AppState,
    injection: &Injection,
    url: &reqwest::Url,
    outcome: &str,
) -> ApiResult<Vec<DiscoveredTool>> {
    discovery::discover(&state.egress, injection, url, (&state.config.limits).into())
        .await
        .map_err(|e: DiscoveryError| {
            tracing::info!(code = e.code(), error = %e, "discovery failed");
            ApiError::invalid(e.code(), format!("{e}; {outcome}"))
        })
}

fn provider_refused(outcome: &'static str) -> impl Fn(injection::InjectionError) -> ApiError {
    move |e| ApiError::invalid("provider_refused", format!("{e}; {outcome}"))
}

/// The credential sealed for `connector`: it opens for no other connector or owner.
fn seal(
    state: &AppState,
    connector: &ConnectorRecord,
    secret: Option<&str>,
) -> ApiResult<Option<Vec<u8>>> {
    let binding = Binding::Connector {
        id: &connector.id,
        owner: &connector.owner,
    };
    secret
        .map(|s| state.vault.seal(s, binding))
        .transpose()
        .map_err(|e| ApiError::internal("sealing the credential failed", e))
}
