//! What an MCP server supports (AUTH-1, AUTH-2): an unauthenticated `initialize`, then,
//! when it answers 401 or 403, discovery of its authorization server.
//!
//! [`discover`] is also what an OAuth authorization starts from. It never fails on what the
//! server publishes: a missing or broken document is recorded as the discovery's `problem`,
//! so the probe can still say what is offered and an authorization can say why it cannot
//! start. Transport failures of the `initialize` itself are the errors of tool discovery
//! (`upstream_unreachable`, `upstream_not_mcp`, `upstream_error`).

use std::time::Duration;

use http::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::Serialize;
use serde_json::json;

use super::metadata::{self, AuthServerMetadata, Challenge, ResourceMetadata};
use super::net::Net;
use crate::discovery::DiscoveryError;
use crate::egress::{Egress, error_chain};

const INITIALIZE_DEADLINE: Duration = Duration::from_secs(15);

/// What discovery found about a protected server.
#[derive(Debug, Default)]
pub struct Discovery {
    pub challenge: Option<Challenge>,
    pub resource_metadata: Option<ResourceMetadata>,
    pub auth_server: Option<AuthServerMetadata>,
    /// Why `auth_server` is missing, in words for the owner.
    pub problem: Option<String>,
}

impl Discovery {
    /// The RFC 8707 resource: the protected resource metadata's, else the server's
    /// canonical URI.
    pub fn resource(&self, server_url: &Url) -> String {
        self.resource_metadata
            .as_ref()
            .map(|m| m.resource.clone())
            .unwrap_or_else(|| metadata::canonical_resource(server_url))
    }

    /// The scopes to request when neither the owner nor the provider says (AUTH-4): the
    /// challenge's, else the resource metadata's `scopes_supported`.
    pub fn scopes(&self) -> Vec<String> {
        match self.challenge.as_ref().map(Challenge::scopes) {
            Some(scopes) if !scopes.is_empty() => scopes,
            _ => self
                .resource_metadata
                .as_ref()
                .map(|m| m.scopes_supported.clone())
                .unwrap_or_default(),
        }
    }
}

/// Finds the protected resource metadata and the authorization server of `server_url`,
/// starting from the 401's challenge when there was one.
pub async fn discover(net: Net<'_>, server_url: &Url, challenge: Option<Challenge>) -> Discovery {
    let mut found = Discovery {
        challenge,
        ..Discovery::default()
    };
    let prm = metadata::resource_metadata(net, server_url, found.challenge.as_ref()).await;
    let prm = match prm {
        Ok(Some(prm)) => prm,
        Ok(None) => {
            found.problem = Some(
                "the server publishes no OAuth protected resource metadata (RFC 9728)".to_owned(),
            );
            return found;
        }
        Err(e) => {
            found.problem = Some(e.to_string());
            return found;
        }
    };
    let mut problems = Vec::new();
    for issuer in &prm.authorization_servers {
        match metadata::auth_server_metadata(net, issuer).await {
            Ok(server) => {
                found.auth_server = Some(server);
                break;
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    if found.auth_server.is_none() {
        found.problem = Some(problems.join("; "));
    }
    found.resource_metadata = Some(prm);
    found
}

/// Sends an unauthenticated `initialize` to `server_url`, then discovers its
/// authorization server from the answer's challenge (an authorization starts here).
pub async fn discover_server(
    net: Net<'_>,
    egress: &Egress,
    server_url: &Url,
) -> Result<Discovery, DiscoveryError> {
    let challenge = initialize(egress, server_url).await?.flatten();
    Ok(discover(net, server_url, challenge).await)
}

/// One authentication method a server supports, as the probe answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Offer {
    pub method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration: Option<&'static str>,
}

/// The probe's answer (`POST /admin/v1/connectors/probe`).
#[derive(Debug, Serialize)]
pub struct ProbeReport {
    pub server_url: String,
    pub auth_required: bool,
    pub methods: Vec<Offer>,
    pub resource: Option<String>,
    pub authorization_server: Option<AuthServerMetadata>,
    pub scopes: Vec<String>,
    pub pkce_supported: bool,
}

/// Probes the MCP server at `server_url` (already checked by the egress rules).
pub async fn probe(
    net: Net<'_>,
    egress: &Egress,
    server_url: &Url,
) -> Result<ProbeReport, DiscoveryError> {
    let offer = |method, registration| Offer {
        method,
        registration,
    };
    let status = initialize(egress, server_url).await?;
    let mut report = ProbeReport {
        server_url: server_url.to_string(),
        auth_required: false,
        methods: Vec::new(),
        resource: None,
        authorization_server: None,
        scopes: Vec::new(),
        pkce_supported: false,
    };
    let Some(challenge) = status else {
        // Open: offer none, and an API key in case its tools check one themselves.
        report.methods = vec![offer("none", None), offer("api_key", None)];
        return Ok(report);
    };
    report.auth_required = true;
    report.methods.push(offer("api_key", None));
    let found = discover(net, server_url, challenge).await;
    if let Some(problem) = &found.problem {
        tracing::info!(server = %server_url, %problem, "probe: no usable OAuth metadata");
    }
    if found.resource_metadata.is_none() {
        return Ok(report);
    }
    report.resource = Some(found.resource(server_url));
    report.scopes = found.scopes();
    if let Some(server) = &found.auth_server {
        report.pkce_supported = server.supports_s256();
        // Without PKCE S256 the MCP specification forbids proceeding with the server on
        // our own: an owner who knows better can still bring their own client.
        if server.registration_endpoint.is_some() && report.pkce_supported {
            report.methods.push(offer("oauth", Some("dynamic")));
        }
    }
    report.methods.push(offer("oauth", Some("own")));
    report.authorization_server = found.auth_server;
    Ok(report)
}

/// Sends an unauthenticated `initialize`: `None` when the server accepts it, the `Bearer`
/// challenge (if it sent one) when it answers 401 or 403.
async fn initialize(
    egress: &Egress,
    server_url: &Url,
) -> Result<Option<Option<Challenge>>, DiscoveryError> {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "portcullis-probe", "version": env!("CARGO_PKG_VERSION")},
        },
    });
    let client = egress
        .client_for(server_url)
        .map_err(|e| DiscoveryError::Unreachable(e.to_string()))?;
    let response = client
        .post(server_url.clone())
        .header(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        )
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(body.to_string())
        .timeout(INITIALIZE_DEADLINE)
        .send()
        .await
        .map_err(|e| DiscoveryError::Unreachable(error_chain(&e)))?;
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Ok(Some(Challenge::from_headers(response.headers())));
    }
    if status.is_server_error() {
        return Err(DiscoveryError::Upstream(format!(
            "initialize answered HTTP {status}"
        )));
    }
    let content_type = crate::discovery::content_type(&response);
    let mcp = content_type.starts_with("application/json")
        || content_type.starts_with("text/event-stream");
    if !status.is_success() || !mcp {
        return Err(DiscoveryError::NotMcp(format!(
            "initialize answered HTTP {status} ({}); check that the URL is the server's MCP \
             endpoint",
            if content_type.is_empty() {
                "no content type"
            } else {
                content_type.as_str()
            }
        )));
    }
    if let Some(session) = response.headers().get("mcp-session-id").cloned() {
        let _ = client
            .delete(server_url.clone())
            .header("mcp-session-id", session)
            .timeout(INITIALIZE_DEADLINE)
            .send()
            .await;
    }
    Ok(None)
}
