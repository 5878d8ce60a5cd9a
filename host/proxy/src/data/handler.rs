//! The three verbs of `/mcp/{connectorId}`, each the same sequence: the checks of `gate`
//! (Origin, run token, protocol version, connector access, session), then the request
//! decision, forward, relay and audit. Nothing reaches the upstream before every check
//! has passed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_runtime::{Decision, DenyCode};
use serde_json::Value;

use crate::app::AppState;
use crate::data::audit;
use crate::data::gate::{
    Checked, STATELESS_VERSION, accepts_json_and_sse, check, check_method_headers, check_session,
    now, session,
};
use crate::data::jsonrpc::{self, Message, catalogue};
use crate::data::policy;
use crate::data::relay::{Relay, Rewrite};
use crate::data::session::{ClientCapabilities, Session};
use crate::data::upstream::{self, Answer, Failure, SESSION_HEADER};
use crate::store::ConnectorRecord;

pub async fn post(
    State(state): State<Arc<AppState>>,
    Path(connector_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let checked = match check(&state, &connector_id, &headers).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let detail = serde_json::json!({ "detail": rejection.body_text() });
            return catalogue::json(
                status,
                &jsonrpc::error_body(None, -32600, "Invalid Request", Some(detail)),
            );
        }
    };
    if !accepts_json_and_sse(&headers) {
        return catalogue::not_acceptable();
    }
    let (message, value) = match jsonrpc::parse(&body) {
        Ok(parsed) => parsed,
        Err(malformed) => return catalogue::malformed(&malformed),
    };
    if let Err(response) = check_method_headers(&headers, &message) {
        return response;
    }
    let stateless = checked.version == STATELESS_VERSION;
    let initialize = message.method() == "initialize";
    let session = if initialize || stateless {
        None
    } else {
        match session(&state, &checked, &headers) {
            Ok(session) => Some(session),
            Err(response) => return response,
        }
    };

    let method = message.method().to_owned();
    let tool = message.tool().map(str::to_owned);
    let arguments = message.params().and_then(|p| p.get("arguments"));
    let verdict = policy::request_decision(
        &state,
        &checked.policy,
        &method,
        tool.as_deref(),
        arguments,
        &checked.version,
    )
    .await;
    let (decision, reason) = match &verdict.value {
        Decision::Allow => ("allow", ""),
        Decision::Deny(d) => ("deny", d.reason.as_str()),
    };
    state.metrics.decision(
        if method.is_empty() {
            "response"
        } else {
            &method
        },
        decision,
        reason,
    );
    // A forwarded message also carries the provider plugin's stamp: it wrote the credential.
    let provider_stamps = match verdict.value {
        Decision::Allow => policy::plan(&state, &checked.connector)
            .await
            .map(|plan| plan.stamps.clone())
            .unwrap_or_default(),
        Decision::Deny(_) => Vec::new(),
    };
    let record = audit::record(
        &checked.run.id,
        &checked.connector.id,
        &method,
        tool.as_deref(),
        &verdict,
        &provider_stamps,
    );
    state.sessions.audit().record(record).await;
    if let Decision::Deny(denial) = &verdict.value {
        return denied(
            &message,
            denial.code,
            &denial.reason,
            &connector_id,
            stateless,
        );
    }

    let rewrite = match method.as_str() {
        "initialize" | "server/discover" => Some(Rewrite::Capabilities(
            policy::denied_capabilities(&state, &checked.policy, &checked.version).await,
        )),
        "tools/list" => Some(Rewrite::ToolsList),
        _ => None,
    };
    let client = match (&message, &session) {
        (Message::Request { params, .. }, None) if initialize => {
            ClientCapabilities::from_initialize(params)
        }
        (_, Some(session)) => session.client,
        _ => ClientCapabilities::default(),
    };
    let body = if initialize {
        without_client_tasks(value, body)
    } else {
        body
    };

    let answer = upstream::send(
        &state,
        &checked.connector,
        Method::POST,
        &headers,
        session.as_ref().and_then(|s| s.upstream_id.as_ref()),
        Some(body),
    )
    .await;
    let Answer {
        response,
        injection,
    } = match answer {
        Ok(answer) => answer,
        Err(failure) => return failed(&state, &checked.connector, failure, message.id()),
    };
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);

    if let Some(answer) = upstream_refusal(
        &state,
        &checked,
        session.as_deref(),
        &response,
        message.id(),
    ) {
        return answer;
    }

    let mut session = session;
    if initialize && status.is_success() {
        let upstream_id = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
        session = Some(state.sessions.create(
            &checked.run.id,
            &checked.connector.id,
            upstream_id,
            client,
            now(),
        ));
    }
    if matches!(rewrite, Some(Rewrite::ToolsList))
        && let (Some(session), Some(id)) = (&session, message.id())
    {
        session
            .pending_lists
            .lock()
            .expect("pending lists")
            .insert(id.to_string());
    }
    relay(
        &state,
        &checked,
        session,
        message.id().cloned(),
        rewrite,
        client,
        injection,
        status,
        response,
    )
    .await
}

/// Relays an upstream answer to the client.
#[allow(clippy::too_many_arguments)]
async fn relay(
    state: &Arc<AppState>,
    checked: &Checked,
    session: Option<Arc<Session>>,
    request_id: Option<Value>,
    rewrite: Option<Rewrite>,
    client: ClientCapabilities,
    injection: crate::injection::Injection,
    status: StatusCode,
    response: reqwest::Response,
) -> Response {
    let is_sse = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let has_body = !matches!(status, StatusCode::ACCEPTED | StatusCode::NO_CONTENT);
    let cancel = match &session {
        Some(session) => session.cancel.clone(),
        None => state.sessions.run_token(&checked.run.id).child_token(),
    };
    let relay = Relay {
        state: state.clone(),
        connector: checked.connector.clone(),
        permitted: checked.policy.permitted.value.clone(),
        session_header: session
            .as_ref()
            .and_then(|s| HeaderValue::from_str(&s.id).ok()),
        session,
        request_id,
        rewrite,
        answered: Default::default(),
        resumable: Default::default(),
        client,
        injection,
        cancel,
    };
    if !has_body {
        let mut answer = status.into_response();
        if let Some(id) = relay.session_header {
            answer.headers_mut().insert(SESSION_HEADER, id);
        }
        return answer;
    }
    if is_sse {
        relay.sse(status, response)
    } else {
        relay.json(status, response).await
    }
}

/// The answer for a message the request chain denied.
fn denied(
    message: &Message,
    code: DenyCode,
    reason: &str,
    connector_id: &str,
    stateless: bool,
) -> Response {
    match (message, code) {
        (_, DenyCode::ConnectorUnavailable) => catalogue::connector_unavailable(connector_id),
        (Message::Request { id, .. }, DenyCode::ToolNotPermitted) => {
            catalogue::tool_not_permitted(id, message.tool().unwrap_or(""), reason)
        }
        (Message::Request { id, .. }, DenyCode::MethodNotAllowed) => {
            catalogue::method_not_found(id, stateless)
        }
        // A notification or response gets no JSON-RPC answer: it is accepted and dropped.
        _ => StatusCode::ACCEPTED.into_response(),
    }
}

/// The client's answer when the upstream could not be reached or used (ERR-10).
fn failed(
    state: &AppState,
    connector: &ConnectorRecord,
    failure: Failure,
    id: Option<&Value>,
) -> Response {
    match failure {
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
    }
}

/// Upstream answers the client must not see as they are: auth challenges (ERR-8, ERR-9)
/// and an expired upstream session (ERR-5, so the client re-initializes).
fn upstream_refusal(
    state: &AppState,
    checked: &Checked,
    session: Option<&Session>,
    response: &reqwest::Response,
    id: Option<&Value>,
) -> Option<Response> {
    match response.status().as_u16() {
        401 => {
            state.metrics.upstream_error("unauthorized");
            Some(catalogue::needs_reauthorization(id, &checked.connector.id))
        }
        403 => upstream::insufficient_scope(response.headers()).map(|scope| {
            state.metrics.upstream_error("insufficient_scope");
            catalogue::insufficient_scope(id, scope.as_deref())
        }),
        404 if session.is_some_and(|s| s.upstream_id.is_some()) => {
            if let Some(session) = session {
                state.sessions.remove(session);
            }
            Some(catalogue::session_not_found())
        }
        _ => None,
    }
}

/// The `initialize` body without the client's `tasks` capability: task-augmented
/// requests are not proxied, so the upstream must not offer them.
fn without_client_tasks(mut value: Value, body: Bytes) -> Bytes {
    let removed = value
        .get_mut("params")
        .and_then(|p| p.get_mut("capabilities"))
        .and_then(Value::as_object_mut)
        .and_then(|caps| caps.remove("tasks"))
        .is_some();
    if removed {
        Bytes::from(value.to_string())
    } else {
        body
    }
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(connector_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (checked, session) = match check_session(&state, &connector_id, &headers).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let answer = upstream::send(
        &state,
        &checked.connector,
        Method::GET,
        &headers,
        session.upstream_id.as_ref(),
        None,
    )
    .await;
    let Answer {
        response,
        injection,
    } = match answer {
        Ok(answer) => answer,
        Err(failure) => return failed(&state, &checked.connector, failure, None),
    };
    if let Some(answer) = upstream_refusal(&state, &checked, Some(&session), &response, None) {
        return answer;
    }
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    if status == StatusCode::METHOD_NOT_ALLOWED {
        return catalogue::method_not_allowed();
    }
    let client = session.client;
    relay(
        &state,
        &checked,
        Some(session),
        None,
        None,
        client,
        injection,
        status,
        response,
    )
    .await
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(connector_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (_, session) = match check_session(&state, &connector_id, &headers).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    state.sessions.remove(&session);
    StatusCode::OK.into_response()
}

pub async fn other_method() -> Response {
    catalogue::method_not_allowed()
}
