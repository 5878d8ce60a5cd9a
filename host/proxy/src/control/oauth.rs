//! OAuth connectors on the admin API (`POST /connectors/probe`, the `oauth` method of
//! create and re-authorize) and the browser's return to the proxy, `GET /oauth/callback`.
//!
//! An OAuth connector is stored `pending_authorization` with no tools, and the owner gets
//! the authorization URL (202). The callback is the only route outside `/admin` that
//! changes state; its `state` parameter is its credential (single use, bound to the
//! connector, ten minutes at most, see `oauth::flow`). It redeems the code, discovers the
//! tools with the new access token (AUTH-8), and stores the connector `authorized` together
//! with its grant in one transaction; until then a re-authorized connector keeps its old
//! grant. The callback answers a small HTML page that can be neither framed nor cached,
//! and nothing it answers or logs holds a code, state, token or secret.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_model::ConnectorStatus;
use reqwest::Url;
use serde::Deserialize;

use super::error::{ApiError, ApiResult, JsonBody, check_server_url};
use crate::clock::now_secs;
use crate::discovery;
use crate::injection;
use crate::oauth::CALLBACK_PATH;
use crate::oauth::callback::{self, CallbackQuery, Redeemed};
use crate::oauth::flow::{self, Context, FlowError};
use crate::oauth::net::Net;
use crate::oauth::probe::{self, Discovery, ProbeReport};
use crate::revocation::Revocation;
use crate::state::AppState;
use crate::store::{AuthMethod, ConnectorRecord, StoreError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeBody {
    server_url: String,
}

fn net(state: &AppState) -> Net<'_> {
    Net::new(&state.egress, state.config.upstream.allow_private)
}

fn context(state: &AppState) -> Context<'_> {
    Context {
        net: net(state),
        store: state.store.as_ref(),
        vault: &state.vault,
        runtime: &state.runtime,
        redirect_uri: format!("{}{CALLBACK_PATH}", state.config.base_url()),
        state_ttl: state.config.oauth.state_ttl(),
    }
}

/// `POST /connectors/probe`: what the server supports (AUTH-2).
pub async fn probe(
    State(state): State<Arc<AppState>>,
    JsonBody(body): JsonBody<ProbeBody>,
) -> ApiResult<Json<ProbeReport>> {
    let url = check_server_url(&state, body.server_url.trim()).await?;
    let report = probe::probe(net(&state), &state.egress, &url)
        .await
        .map_err(|e| ApiError::invalid(e.code(), e.to_string()))?;
    Ok(Json(report))
}

/// Discovers the server's authorization server and starts an authorization of
/// `connector`: the URL the owner opens.
async fn start(
    state: &AppState,
    connector: &ConnectorRecord,
    url: &Url,
    request: flow::Request<'_>,
    reauthorization: bool,
) -> Result<flow::Started, ApiError> {
    let discovery = match probe::discover_server(net(state), &state.egress, url).await {
        Ok(found) => found,
        // An own client with both endpoints needs nothing discovered.
        Err(e) if request.has_endpoints() => Discovery {
            problem: Some(e.to_string()),
            ..Discovery::default()
        },
        Err(e) => return Err(ApiError::invalid(e.code(), e.to_string())),
    };
    flow::start(
        &context(state),
        connector,
        url,
        &discovery,
        request,
        reauthorization,
    )
    .await
    .map_err(flow_error)
}

fn flow_error(e: FlowError) -> ApiError {
    match e {
        FlowError::Store(e) => e.into(),
        FlowError::Vault(e) => ApiError::internal("sealing the authorization failed", e),
        e => ApiError::invalid(e.code(), e.to_string()),
    }
}

/// Stores `record` as an OAuth connector waiting for its authorization, and starts it.
pub async fn create(
    state: &AppState,
    mut record: ConnectorRecord,
    url: &Url,
    request: flow::Request<'_>,
) -> ApiResult<(ConnectorRecord, flow::Started)> {
    record.auth = AuthMethod::OAuth;
    record.status = ConnectorStatus::PendingAuthorization;
    state.store.insert_connector(&record).await?;
    let started = match start(state, &record, url, request, false).await {
        Ok(started) => started,
        Err(e) => {
            if let Err(e) = state.store.delete_connector(&record.id).await {
                tracing::error!(connector = %record.id, error = %e, "could not remove a half-created connector");
            }
            return Err(ApiError {
                message: format!("{}; nothing was stored", e.message),
                ..e
            });
        }
    };
    tracing::info!(connector = %record.id, owner = %record.owner, "OAuth connector created; waiting for its authorization");
    Ok((record, started))
}

/// Starts a new authorization of an existing connector. The connector, and its old grant,
/// stay as they are until the callback redeems the new one.
pub async fn reauthorize(
    state: &AppState,
    connector: &ConnectorRecord,
    url: &Url,
    request: flow::Request<'_>,
) -> ApiResult<flow::Started> {
    let reauthorization = connector.status != ConnectorStatus::PendingAuthorization;
    let started = start(state, connector, url, request, reauthorization)
        .await
        .map_err(|e| ApiError {
            message: format!("{}; the connector is unchanged", e.message),
            ..e
        })?;
    tracing::info!(connector = %connector.id, "OAuth re-authorization started");
    Ok(started)
}

/// `GET /oauth/callback`: the authorization server sends the owner's browser back here.
pub async fn callback(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let query = match parse_callback(query.as_deref().unwrap_or("")) {
        Ok(query) => query,
        Err(why) => return page(StatusCode::BAD_REQUEST, "Authorization failed", &why),
    };
    let redeemed = match callback::redeem(&context(&state), &query).await {
        Ok(redeemed) => redeemed,
        Err((connector, e)) => {
            tracing::warn!(connector = connector.as_deref().unwrap_or("-"), error = %e, "OAuth callback refused");
            return failed(connector.as_deref(), &e.to_string());
        }
    };
    let connector_id = redeemed.pending.connector_id.clone();
    match complete(&state, &redeemed).await {
        Ok(connector) => {
            tracing::info!(connector = %connector.id, tools = connector.tools.len(), "connector authorized");
            page(
                StatusCode::OK,
                "Connector authorized",
                &format!(
                    "Connector {} ({}) is authorized and has {} tools. You can close this page.",
                    connector.name,
                    connector.id,
                    connector.tools.len()
                ),
            )
        }
        Err(why) => {
            tracing::warn!(connector = %connector_id, error = %why, "OAuth callback failed after the code exchange");
            failed(Some(&connector_id), &why)
        }
    }
}

fn failed(connector: Option<&str>, why: &str) -> Response {
    let what = match connector {
        Some(id) => format!(
            "Connector {id} was not authorized: {why}. It keeps its previous state; start \
             a new authorization with POST /admin/v1/connectors/{id}/reauthorize."
        ),
        None => format!("No connector was authorized: {why}."),
    };
    page(StatusCode::BAD_REQUEST, "Authorization failed", &what)
}

/// The callback's parameters; each may appear once (RFC 6749 section 3.1).
fn parse_callback(raw: &str) -> Result<CallbackQuery, String> {
    let mut query = CallbackQuery::default();
    for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        let slot = match name.as_ref() {
            "state" => &mut query.state,
            "code" => &mut query.code,
            "iss" => &mut query.iss,
            "error" => &mut query.error,
            "error_description" => &mut query.error_description,
            _ => continue,
        };
        if slot.is_some() {
            return Err(format!(
                "the parameter `{name}` appears more than once; start a new authorization"
            ));
        }
        *slot = Some(value.into_owned());
    }
    Ok(query)
}

/// Discovers the tools with the new token and stores the connector authorized with its
/// grant; retried once when the connector changed meanwhile (a rename, say).
async fn complete(state: &AppState, redeemed: &Redeemed) -> Result<ConnectorRecord, String> {
    let id = &redeemed.pending.connector_id;
    let grant = callback::grant(&state.vault, redeemed).map_err(|e| e.to_string())?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let connector = state
            .store
            .connector(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the connector was deleted meanwhile".to_owned())?;
        let authorized = with_tools(state, connector, redeemed).await?;
        match state.store.authorize(&authorized, &grant).await {
            Ok(_) => {
                state.oauth.forget(id);
                state
                    .revocations
                    .revoke(Revocation::ConnectorChanged {
                        connector: id.clone(),
                    })
                    .await;
                return Ok(authorized);
            }
            Err(StoreError::Conflict(_)) if attempt < 2 => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// `connector` authorized by OAuth, with the tools its upstream lists to the new token
/// (AUTH-8; AUTH-9 for the allowlist of a re-authorized one).
async fn with_tools(
    state: &AppState,
    mut connector: ConnectorRecord,
    redeemed: &Redeemed,
) -> Result<ConnectorRecord, String> {
    connector.auth = AuthMethod::OAuth;
    connector.sealed_secret = None;
    let url = check_server_url(state, &connector.server_url)
        .await
        .map_err(|e| e.message)?;
    let token = redeemed.tokens.access_token.as_str();
    let injection = injection::prepare_with_secret(&state.runtime, &connector, Some(token))
        .await
        .map_err(|e| format!("the provider plugin refused: {e}"))?;
    let tools = discovery::discover(
        &state.egress,
        &injection,
        &url,
        (&state.config.limits).into(),
    )
    .await
    .map_err(|e| format!("listing the tools with the new token failed: {e}"))?;
    if let Some(allowed) = &mut connector.allowed_tools {
        let names: BTreeSet<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        allowed.retain(|name| names.contains(name.as_str()));
    }
    connector.tools = tools;
    connector.status = ConnectorStatus::Authorized;
    connector.authorized_at = now_secs();
    connector.revision += 1;
    Ok(connector)
}

/// The callback's HTML answer: escaped text, no script, no framing, no caching, no
/// referrer (the URL that led here held the code).
fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         </head><body><h1>{title}</h1><p>{}</p><p>Portcullis</p></body></html>\n",
        escape(text),
        title = escape(title),
    );
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_parameters_appear_once() {
        let q = parse_callback("code=c%20d&state=s&iss=http%3A%2F%2Fa&x=1").unwrap();
        assert_eq!(q.code.as_deref(), Some("c d"));
        assert_eq!(q.state.as_deref(), Some("s"));
        assert_eq!(q.iss.as_deref(), Some("http://a"));
        assert!(parse_callback("state=a&state=b").is_err());
        assert!(parse_callback("code=a&code=a").is_err());
        assert!(parse_callback("").unwrap().state.is_none());
    }

    #[test]
    fn pages_escape_and_forbid_framing() {
        let response = page(StatusCode::BAD_REQUEST, "T<", "<script>alert('x')</script>");
        let headers = response.headers();
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert!(
            headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(
            escape("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
    }
}
