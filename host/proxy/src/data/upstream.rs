//! Building and sending the upstream request (FR-22, FR-23), and the credential it carries.
//!
//! Header policy: only the MCP transport headers pass from the client (`Accept`,
//! `Content-Type`, `MCP-Protocol-Version`, `Last-Event-ID`, `Mcp-Method`, `Mcp-Name`,
//! `Mcp-Param-*`); the session id is mapped to the upstream's; the provider plugin's plan
//! is written in with the credential. Everything else — the run token in
//! `Authorization`, cookies, `Origin`, forwarding and hop-by-hop headers — stays behind.
//!
//! What comes back is redacted of everything confidential the request carried (the
//! credential, and the owner's longer extra header and query values), and no error text
//! the data plane logs or returns holds the upstream URL, whose query may carry the
//! credential ([`describe`]).
//!
//! The credential is the connector's API key, or for an OAuth connector its current access
//! token (`oauth::Tokens`, refreshed before expiry). An OAuth upstream that answers 401
//! (not a step-up challenge) gets the same request once more with a renewed token
//! (FR-31); a second 401 gives up on the grant, and the client gets ERR-8 (FR-32).

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use bytes::Bytes;
use portcullis_model::InjectionPlan;

use crate::data::catalogue;
use crate::data::decisions::CachedPlan;
pub use crate::egress::error_chain;
use crate::injection::{self, Injection};
use crate::oauth::tokens::TokenError;
use crate::redact::{MIN_EXTRA_BYTES, Redactor};
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

/// The upstream's answer, with what to redact from what comes back.
pub struct Answer {
    pub response: reqwest::Response,
    pub redactor: Redactor,
}

/// Everything confidential a request carries: the credential, and the values of the
/// plan's other headers and query parameters long enough to be secrets of the owner's.
fn redactor(plan: &InjectionPlan, injection: &Injection) -> Redactor {
    let extras: Vec<String> = plan
        .headers
        .iter()
        .chain(&plan.query)
        .filter(|(_, template)| !template.uses_credential())
        .filter_map(|(_, template)| template.render(None))
        .filter(|value| value.len() >= MIN_EXTRA_BYTES)
        .collect();
    Redactor::new(
        injection
            .secret()
            .into_iter()
            .chain(extras.iter().map(String::as_str)),
    )
}

/// A reqwest error as text for a log or an answer: its whole cause chain, without the
/// request URL (whose query may carry the credential), and redacted.
pub fn describe(error: reqwest::Error, redactor: &Redactor) -> String {
    redactor.redact_text(error_chain(&error.without_url()))
}

/// One request to a connector's upstream.
pub struct Outgoing<'a> {
    pub connector: &'a ConnectorRecord,
    /// The provider plugin's plan, asked once for this message.
    pub plan: &'a CachedPlan,
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
        connector: _,
        plan,
        method,
        client_headers,
        upstream_session,
        body,
    } = outgoing;
    let injection =
        injection::render(&plan.plan, secret).map_err(|e| Failure::Injection(e.to_string()))?;
    let redactor = redactor(&plan.plan, &injection);

    let base = plan
        .upstream_url
        .as_ref()
        .map_err(|detail| Failure::Unreachable {
            timeout: false,
            detail: detail.clone(),
        })?;
    let client = state
        .egress
        .client_for(base)
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
    let url = injection.apply(base, &mut headers);

    let mut request = client.request(method.clone(), url).headers(headers);
    if let Some(body) = body {
        request = request.body(body.clone());
    }
    match request.send().await {
        Ok(response) => Ok(Answer { response, redactor }),
        Err(error) => Err(Failure::Unreachable {
            timeout: error.is_timeout(),
            detail: describe(error, &redactor),
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
            plan: &plan,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 10, defect 11: what comes back is redacted of the credential and of the
    /// plan's other long values (an owner's extra header or query value), not of short
    /// configuration values.
    #[test]
    fn the_redactor_covers_the_plans_long_values() {
        use portcullis_model::Template;
        let template = |text: &str| Template::parse(text).unwrap();
        let plan = InjectionPlan {
            headers: vec![
                ("authorization".into(), template("Bearer {secret}")),
                ("x-team-secret".into(), template("team-secret-value-0123")),
                ("notion-version".into(), template("2025-09-03")),
            ],
            query: vec![("workspace_key".into(), template("workspace-key-abcdef-9"))],
        };
        let secret = zeroize::Zeroizing::new("sk-credential-xyz".to_owned());
        let injection = injection::render(&plan, Some(secret)).unwrap();
        let redactor = redactor(&plan, &injection);
        let text = "sk-credential-xyz team-secret-value-0123 workspace-key-abcdef-9 2025-09-03";
        assert_eq!(
            redactor.redact_text(text.to_owned()),
            "[REDACTED] [REDACTED] [REDACTED] 2025-09-03"
        );
    }

    /// Issue 10, defect 7: a provider that puts the credential in the query string does
    /// not get it into the text of an upstream error.
    #[tokio::test]
    async fn errors_carry_neither_the_url_nor_the_credential() {
        let secret = "sk-query-credential-42";
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let error = reqwest::Client::new()
            .get(format!("http://{addr}/mcp?api_key={secret}"))
            .send()
            .await
            .unwrap_err();
        assert!(
            error_chain(&error).contains(secret),
            "the case tests nothing"
        );
        let redactor = Redactor::new([secret]);
        let text = describe(error, &redactor);
        assert!(
            !text.contains(secret) && !text.contains("api_key"),
            "{text}"
        );
        assert!(!text.is_empty());
    }
}
