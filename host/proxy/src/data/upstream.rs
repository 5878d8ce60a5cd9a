//! Building and sending the upstream request (FR-22, FR-23), and the credential it carries.
//!
//! Header policy: only the MCP transport headers pass from the client (`Accept`,
//! `Content-Type`, `MCP-Protocol-Version`, `Last-Event-ID`, `Mcp-Method`, `Mcp-Name`,
//! `Mcp-Param-*`); the session id is mapped to the upstream's; the provider plugin's plan
//! is written in with the credential. Everything else — the run token in
//! `Authorization`, cookies, `Origin`, forwarding and hop-by-hop headers — stays behind.
//!
//! The credential is the connector's API key, or for an OAuth connector its current access
//! token (`oauth::Tokens`, refreshed before expiry). An OAuth upstream that answers 401
//! (not a step-up challenge) gets the same request once more with a renewed token
//! (FR-31); a second 401 gives up on the grant, and the client gets ERR-8 (FR-32).

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use bytes::Bytes;
use portcullis_model::InjectionPlan;
use reqwest::Url;

use crate::data::catalogue;
pub use crate::egress::error_chain;
use crate::injection::{self, Injection};
use crate::oauth::tokens::TokenError;
use crate::state::AppState;
use crate::store::{AuthMethod, ConnectorRecord};

pub const SESSION_HEADER: &str = "mcp-session-id";

const PASSED_HEADERS: [HeaderName; 6] = [
    header::ACCEPT,
    header::CONTENT_TYPE,
    HeaderName::from_static("mcp-protocol-version"),
    HeaderName::from_static("last-event-id"),
    HeaderName::from_static("mcp-method"),
    HeaderName::from_static("mcp-name"),
];

/// Why the request never got an answer from the upstream.
pub enum Failure {
    /// The provider plugin gave no usable plan, or the credential could not be opened.
    Injection(String),
    /// Refused by the egress rules, unreachable, or timed out.
    Unreachable { timeout: bool, detail: String },
    /// The OAuth grant is no good: the connector needs re-authorization (ERR-8, whose
    /// `data.reason` this is).
    Reauthorization { reason: String },
}

impl From<TokenError> for Failure {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::Reauthorize { reason } => Failure::Reauthorization { reason },
            TokenError::Unavailable(detail) => Failure::Unreachable {
                timeout: false,
                detail,
            },
            TokenError::Internal(detail) => Failure::Injection(detail),
        }
    }
}

impl Failure {
    /// The client's answer (ERR-10, or the injection failure), counted and logged.
    pub fn answer(
        self,
        state: &AppState,
        connector: &ConnectorRecord,
        id: Option<&serde_json::Value>,
    ) -> axum::response::Response {
        match self {
            Failure::Injection(detail) => {
                state.metrics.upstream_error("injection");
                tracing::error!(connector = %connector.id, %detail, "credential injection failed");
                catalogue::injection_failed(id)
            }
            Failure::Unreachable { timeout, detail } => {
                state
                    .metrics
                    .upstream_error(if timeout { "timeout" } else { "connect" });
                tracing::warn!(connector = %connector.id, %detail, "upstream unavailable");
                catalogue::upstream_unavailable(id, timeout)
            }
            Failure::Reauthorization { reason } => {
                state.metrics.upstream_error("unauthorized");
                catalogue::needs_reauthorization(id, &connector.id, Some(&reason))
            }
        }
    }
}

/// The upstream's answer, with the credential kept for redacting what comes back.
pub struct Answer {
    pub response: reqwest::Response,
    pub injection: Injection,
}

/// One request to a connector's upstream.
pub struct Outgoing<'a> {
    pub connector: &'a ConnectorRecord,
    /// The provider plugin's plan, asked once for this message.
    pub plan: &'a InjectionPlan,
    pub method: Method,
    /// The client's headers; only the transport's own pass.
    pub client_headers: &'a HeaderMap,
    /// The upstream's session id, when the proxy session has one.
    pub upstream_session: Option<&'a HeaderValue>,
    pub body: Option<Bytes>,
}

/// Sends one request to the connector's upstream, with its credential; for an OAuth
/// connector, once more with a renewed token when the first is refused.
pub async fn send(state: &AppState, outgoing: Outgoing<'_>) -> Result<Answer, Failure> {
    let connector = outgoing.connector;
    if connector.auth != AuthMethod::OAuth {
        let secret = injection::open_secret(&state.vault, connector)
            .map_err(|e| Failure::Injection(e.to_string()))?;
        return send_with(state, &outgoing, secret).await;
    }
    let token = state.oauth.access_token(connector).await?;
    let answer = send_with(state, &outgoing, Some(token.token)).await?;
    if !refuses_token(&answer.response) {
        return Ok(answer);
    }
    drop(answer);
    let renewed = state.oauth.renew(connector, token.generation).await?;
    let generation = renewed.generation;
    let answer = send_with(state, &outgoing, Some(renewed.token)).await?;
    if refuses_token(&answer.response) {
        return Err(state.oauth.reject(connector, generation).await.into());
    }
    Ok(answer)
}

/// A 401 that is not a step-up challenge: the token itself was refused.
fn refuses_token(response: &reqwest::Response) -> bool {
    response.status() == reqwest::StatusCode::UNAUTHORIZED
        && insufficient_scope(response.headers()).is_none()
}

/// Sends the request once with `secret` as the credential.
async fn send_with(
    state: &AppState,
    outgoing: &Outgoing<'_>,
    secret: Option<zeroize::Zeroizing<String>>,
) -> Result<Answer, Failure> {
    let Outgoing {
        connector,
        plan,
        method,
        client_headers,
        upstream_session,
        body,
    } = outgoing;
    let injection =
        injection::render(plan, secret).map_err(|e| Failure::Injection(e.to_string()))?;

    let base = Url::parse(&connector.server_url).map_err(|e| Failure::Unreachable {
        timeout: false,
        detail: format!("stored server URL is invalid: {e}"),
    })?;
    state
        .egress
        .check_target(&base)
        .map_err(|e| Failure::Unreachable {
            timeout: false,
            detail: e.to_string(),
        })?;

    let mut headers = HeaderMap::with_capacity(8);
    for name in &PASSED_HEADERS {
        if let Some(value) = client_headers.get(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    for (name, value) in client_headers.iter() {
        if name.as_str().starts_with("mcp-param-") {
            headers.insert(name.clone(), value.clone());
        }
    }
    if let Some(id) = upstream_session {
        headers.insert(HeaderName::from_static(SESSION_HEADER), (*id).clone());
    }
    let url = injection.apply(&base, &mut headers);

    let mut request = state
        .egress
        .client()
        .request(method.clone(), url)
        .headers(headers);
    if let Some(body) = body {
        request = request.body(body.clone());
    }
    match request.send().await {
        Ok(response) => Ok(Answer {
            response,
            injection,
        }),
        Err(error) => Err(Failure::Unreachable {
            timeout: error.is_timeout(),
            detail: error_chain(&error),
        }),
    }
}

/// A request the proxy sends on its own behalf, not a client's (closing an upstream
/// session, declining a server-to-client request): it asks for the plan itself, and
/// sends JSON, if a body, accepting JSON or SSE.
pub async fn send_own(
    state: &AppState,
    connector: &ConnectorRecord,
    method: Method,
    upstream_session: Option<&HeaderValue>,
    body: Option<Bytes>,
) -> Result<Answer, Failure> {
    let plan = state
        .data
        .decisions
        .plan(&state.runtime, connector)
        .await
        .map_err(|e| Failure::Injection(e.to_string()))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    if body.is_some() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    send(
        state,
        Outgoing {
            connector,
            plan: &plan.plan,
            method,
            client_headers: &headers,
            upstream_session,
            body,
        },
    )
    .await
}

/// The `scope` of a `WWW-Authenticate: Bearer error="insufficient_scope"` challenge, or
/// `None` when the answer is not a step-up challenge.
pub fn insufficient_scope(headers: &reqwest::header::HeaderMap) -> Option<Option<String>> {
    let challenge = headers
        .get(reqwest::header::WWW_AUTHENTICATE)?
        .to_str()
        .ok()?;
    if !challenge.contains("insufficient_scope") {
        return None;
    }
    let scope = challenge
        .split("scope=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next());
    Some(scope.map(str::to_owned))
}
