//! The three verbs of `/mcp/{connectorId}`, each a sequence of named steps: the checks of
//! `gate` (Origin, run token, protocol version, connector access, session), then for a
//! message the request decision, audit, forward, and relay. Nothing reaches the upstream
//! before every check has passed.
//!
//! A step that refuses returns the client's finished answer as the `Err` of its
//! `Result`, so each verb reads as its steps joined by `?`. The provider plugin's plan is
//! asked once per forwarded message and handed down: the audit record carries its stamp,
//! the upstream request its credential.

// A refusal is the finished response for the client; see `gate`.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_model::{Decision, DenyCode, Stamp, Verdict};
use serde_json::Value;

use crate::clock::now_secs;
use crate::data::audit;
use crate::data::catalogue;
use crate::data::decisions::{Asked, CachedPlan};
use crate::data::gate::{self, Checked};
use crate::data::jsonrpc::{self, Message};
use crate::data::relay::{Relay, Rewrite};
use crate::data::session::{ClientCapabilities, Session};
use crate::data::upstream::{self, Answer, Failure, Outgoing, SESSION_HEADER};
use crate::injection::InjectionError;
use crate::state::AppState;

/// A finished answer either way: the upstream's relayed, or the proxy's refusal.
type Step<T> = Result<T, Response>;

pub async fn post(
    State(state): State<Arc<AppState>>,
    Path(connector_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(post_message(&state, &connector_id, &headers, body).await)
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(connector_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(open_stream(&state, &connector_id, &headers).await)
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(connector_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(end_session(&state, &connector_id, &headers).await)
}

pub async fn other_method() -> Response {
    catalogue::method_not_allowed()
}

fn answer(step: Step<Response>) -> Response {
    step.unwrap_or_else(|refusal| refusal)
}

/// POST: one client message, decided, forwarded and relayed.
async fn post_message(
    state: &Arc<AppState>,
    connector_id: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Step<Response> {
    let checked = gate::check(state, connector_id, headers).await?;
    let body = readable(body)?;
    let incoming = classify(headers, body)?;
    let session = named_session(state, &checked, &incoming)?;
    let verdict = decide(state, &checked, &incoming.message).await;
    let plan = audit_decision(state, &checked, &incoming.message, &verdict).await?;
    let exchange = prepare(state, &checked, incoming, session.as_ref(), plan).await;
    let answer = forward(state, &checked, &exchange, session.as_deref()).await?;
    refuse_upstream(state, &checked, session.as_deref(), &answer, exchange.id())?;
    let session = adopt_session(state, &checked, &exchange, &answer).or(session);
    expect_tools_list(session.as_deref(), &exchange);
    let relay = Relay {
        request_id: exchange.id().cloned(),
        rewrite: exchange.rewrite,
        client: exchange.client,
        ..relay(state, &checked, session)
    };
    Ok(relay.respond(answer).await)
}

/// GET: the session's stream of server messages.
async fn open_stream(
    state: &Arc<AppState>,
    connector_id: &str,
    headers: &HeaderMap,
) -> Step<Response> {
    let (checked, session) = gate::check_session(state, connector_id, headers).await?;
    let plan = state
        .data
        .decisions
        .plan(&state.runtime, &checked.connector)
        .await
        .map_err(|e| Failure::Injection(e.to_string()).answer(state, &checked.connector, None))?;
    let sent = upstream::send(
        state,
        Outgoing {
            connector: &checked.connector,
            plan: &plan.plan,
            method: Method::GET,
            client_headers: headers,
            upstream_session: session.upstream_id.as_ref(),
            body: None,
        },
    )
    .await;
    let answer = match sent {
        Ok(answer) => answer,
        Err(failure) => return Err(upstream_failed(state, &checked, "", None, None, failure).await),
    };
    refuse_upstream(state, &checked, Some(&session), &answer, None)?;
    if answer.response.status() == StatusCode::METHOD_NOT_ALLOWED {
        return Err(catalogue::method_not_allowed());
    }
    Ok(relay(state, &checked, Some(session)).respond(answer).await)
}

/// DELETE: the client ends its session.
async fn end_session(state: &AppState, connector_id: &str, headers: &HeaderMap) -> Step<Response> {
    let (_, session) = gate::check_session(state, connector_id, headers).await?;
    state.data.end_session(&session);
    Ok(StatusCode::OK.into_response())
}

/// One client message: its headers, its bytes, and what they say.
struct Incoming<'a> {
    headers: &'a HeaderMap,
    body: Bytes,
    message: Message,
    value: Value,
}

/// The request body, or the answer to one that could not be read (over the limit).
fn readable(body: Result<Bytes, BytesRejection>) -> Step<Bytes> {
    body.map_err(|rejection| catalogue::unreadable_body(rejection.status(), &rejection.body_text()))
}

/// `Accept`, then the body as one JSON-RPC message, then `Mcp-Method`/`Mcp-Name`.
fn classify(headers: &HeaderMap, body: Bytes) -> Step<Incoming<'_>> {
    if !gate::accepts_json_and_sse(headers) {
        return Err(catalogue::not_acceptable());
    }
    let (message, value) = jsonrpc::parse(&body).map_err(|m| catalogue::malformed(&m))?;
    gate::check_method_headers(headers, &message)?;
    Ok(Incoming {
        headers,
        body,
        message,
        value,
    })
}

/// The session the message belongs to; `initialize` and stateless requests have none.
fn named_session(
    state: &AppState,
    checked: &Checked,
    incoming: &Incoming<'_>,
) -> Step<Option<Arc<Session>>> {
    if incoming.message.method() == "initialize" || checked.stateless() {
        return Ok(None);
    }
    gate::session(state, checked, incoming.headers).map(Some)
}

/// The request chain's decision on the message, counted.
async fn decide(state: &AppState, checked: &Checked, message: &Message) -> Verdict<Decision> {
    let asked = Asked {
        method: message.method(),
        tool: message.tool(),
        arguments: message.params().and_then(|p| p.get("arguments")),
        protocol_version: &checked.version,
    };
    let verdict = checked.policy.request(&state.runtime, asked).await;
    let (decision, reason) = match &verdict.value {
        Decision::Allow => ("allow", ""),
        Decision::Deny(d) => ("deny", d.reason.as_str()),
    };
    let method = match message.method() {
        "" => "response",
        method => method,
    };
    state.metrics.decision(method, decision, reason);
    verdict
}

/// The provider plugin's plan for a message to forward.
type Plan = Result<Arc<CachedPlan>, InjectionError>;

/// Audits the decision, and refuses a denied message. A message to forward also carries
/// the provider plugin's stamp, since it writes the credential: its plan is asked here,
/// once, and handed on to the upstream request.
async fn audit_decision(
    state: &AppState,
    checked: &Checked,
    message: &Message,
    verdict: &Verdict<Decision>,
) -> Step<Plan> {
    let record = |provider_stamps: &[Stamp]| {
        audit::record(
            &checked.run.id,
            &checked.connector.id,
            message.method(),
            message.tool(),
            verdict,
            provider_stamps,
        )
    };
    let Decision::Deny(denial) = &verdict.value else {
        let plan = state
            .data
            .decisions
            .plan(&state.runtime, &checked.connector)
            .await;
        let stamps = plan.as_ref().map_or(&[][..], |plan| plan.stamps.as_slice());
        state.data.audit.record(record(stamps)).await;
        return Ok(plan);
    };
    state.data.audit.record(record(&[])).await;
    Err(match (message, denial.code) {
        (_, DenyCode::ConnectorUnavailable) => {
            catalogue::connector_unavailable(&checked.connector.id)
        }
        (Message::Request { id, .. }, DenyCode::ToolNotPermitted) => {
            catalogue::tool_not_permitted(id, message.tool().unwrap_or(""), &denial.reason)
        }
        (Message::Request { id, .. }, DenyCode::MethodNotAllowed) => {
            catalogue::method_not_found(id, checked.stateless())
        }
        // A notification or response gets no JSON-RPC answer: it is accepted and dropped.
        _ => StatusCode::ACCEPTED.into_response(),
    })
}

/// An allowed message, ready to forward.
struct Exchange<'a> {
    /// The client's headers, of which the transport's own pass.
    headers: &'a HeaderMap,
    message: Message,
    /// What the upstream gets: the client's bytes, unless `initialize` needed a change.
    body: Bytes,
    /// The provider's plan for the credential, asked once with the decision's audit.
    plan: Plan,
    rewrite: Option<Rewrite>,
    client: ClientCapabilities,
}

impl Exchange<'_> {
    fn id(&self) -> Option<&Value> {
        self.message.id()
    }

    fn initialize(&self) -> bool {
        self.message.method() == "initialize"
    }
}

/// The rewrite the answer will need, the client's capabilities, and the body to send.
async fn prepare<'a>(
    state: &AppState,
    checked: &Checked,
    incoming: Incoming<'a>,
    session: Option<&Arc<Session>>,
    plan: Plan,
) -> Exchange<'a> {
    let Incoming {
        headers,
        body,
        message,
        value,
    } = incoming;
    let rewrite = match message.method() {
        "initialize" | "server/discover" => Some(Rewrite::Capabilities(
            checked
                .policy
                .denied_capabilities(&state.runtime, &checked.version)
                .await,
        )),
        "tools/list" => Some(Rewrite::ToolsList),
        _ => None,
    };
    let initialize = message.method() == "initialize";
    let client = match (&message, session) {
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
    Exchange {
        headers,
        message,
        body,
        plan,
        rewrite,
        client,
    }
}

/// Sends the message upstream with the credential written in by the provider's plan.
async fn forward(
    state: &AppState,
    checked: &Checked,
    exchange: &Exchange<'_>,
    session: Option<&Session>,
) -> Step<Answer> {
    let message = &exchange.message;
    let failed = |failure: Failure| {
        upstream_failed(
            state,
            checked,
            message.method(),
            message.tool(),
            exchange.id(),
            failure,
        )
    };
    let plan = match &exchange.plan {
        Ok(plan) => plan,
        Err(error) => return Err(failed(Failure::Injection(error.to_string())).await),
    };
    let sent = upstream::send(
        state,
        Outgoing {
            connector: &checked.connector,
            plan: &plan.plan,
            method: Method::POST,
            client_headers: exchange.headers,
            upstream_session: session.and_then(|s| s.upstream_id.as_ref()),
            body: Some(exchange.body.clone()),
        },
    )
    .await;
    match sent {
        Ok(answer) => Ok(answer),
        Err(failure) => Err(failed(failure).await),
    }
}

/// The client's answer to an exchange that got no usable upstream answer. A grant found to
/// be no good (the connector now needs re-authorization) is audited.
async fn upstream_failed(
    state: &AppState,
    checked: &Checked,
    method: &str,
    tool: Option<&str>,
    id: Option<&Value>,
    failure: Failure,
) -> Response {
    if let Failure::Reauthorization { reason } = &failure {
        let record =
            audit::reauthorization(&checked.run.id, &checked.connector.id, method, tool, reason);
        state.data.audit.record(record).await;
    }
    failure.answer(state, &checked.connector, id)
}

/// Upstream answers the client must not see as they are: auth challenges (ERR-8, ERR-9)
/// and an expired upstream session (ERR-5, so the client re-initializes).
fn refuse_upstream(
    state: &AppState,
    checked: &Checked,
    session: Option<&Session>,
    answer: &Answer,
    id: Option<&Value>,
) -> Step<()> {
    let response = &answer.response;
    match response.status().as_u16() {
        401 => {
            state.metrics.upstream_error("unauthorized");
            Err(catalogue::needs_reauthorization(
                id,
                &checked.connector.id,
                Some("credential_rejected"),
            ))
        }
        403 => match upstream::insufficient_scope(response.headers()) {
            Some(scope) => {
                state.metrics.upstream_error("insufficient_scope");
                Err(catalogue::insufficient_scope(id, scope.as_deref()))
            }
            None => Ok(()),
        },
        404 if session.is_some_and(|s| s.upstream_id.is_some()) => {
            if let Some(session) = session {
                state.data.end_session(session);
            }
            Err(catalogue::session_not_found())
        }
        _ => Ok(()),
    }
}

/// The proxy session an accepted `initialize` opens, mapped to the upstream's.
fn adopt_session(
    state: &AppState,
    checked: &Checked,
    exchange: &Exchange<'_>,
    answer: &Answer,
) -> Option<Arc<Session>> {
    let response = &answer.response;
    if !exchange.initialize() || !response.status().is_success() {
        return None;
    }
    let upstream_id = response
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
    Some(state.data.open_session(
        &checked.run.id,
        &checked.connector.id,
        upstream_id,
        exchange.client,
        now_secs(),
    ))
}

/// Notes a `tools/list` whose answer is due, so it is filtered on whichever stream of
/// the session it arrives.
fn expect_tools_list(session: Option<&Session>, exchange: &Exchange<'_>) {
    if let (Some(session), Some(Rewrite::ToolsList), Some(id)) =
        (session, &exchange.rewrite, exchange.id())
    {
        session
            .pending_lists
            .lock()
            .expect("pending lists")
            .insert(id.to_string());
    }
}

/// The relay of an upstream answer on this session (or, without one, on the run), for
/// no request in particular.
fn relay(state: &Arc<AppState>, checked: &Checked, session: Option<Arc<Session>>) -> Relay {
    let (cancel, client) = match &session {
        Some(session) => (session.cancel.clone(), session.client),
        None => (
            state.data.runs.child(&checked.run.id),
            ClientCapabilities::default(),
        ),
    };
    Relay {
        state: state.clone(),
        connector: checked.connector.clone(),
        permitted: checked.policy.permitted.value.clone(),
        session,
        request_id: None,
        rewrite: None,
        client,
        cancel,
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
