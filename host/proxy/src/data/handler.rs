//! The three verbs of `/mcp/{connectorId}`, each a sequence of named steps: the checks of
//! `gate` (Origin, run token, protocol version, rate limits, connector access), and only
//! then, for a message, reading the body (bounded in size and time), the session, the
//! request decision, audit, a stream slot, forward, and relay. Nothing reaches the
//! upstream before every check has passed, and nothing of the body is read before the
//! token is checked. Once the body is parsed, every refusal carries the request's id.
//!
//! A step that refuses returns the client's finished answer as the `Err` of its
//! `Result`, so each verb reads as its steps joined by `?`. The provider plugin's plan is
//! asked once per forwarded message and handed down: the audit record carries its stamp,
//! the upstream request its credential.

// A refusal is the finished response for the client; see `gate`.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
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
use crate::data::jsonrpc::{self, Lengths, Message};
use crate::data::live_hints;
use crate::data::relay::{Relay, Rewrite};
use crate::data::session::{ClientCapabilities, Session};
use crate::data::shared_session;
use crate::data::slots::{Full, ListWatch, StreamSlot};
use crate::data::upstream::{self, Answer, Failure, Outgoing, SESSION_HEADER};
use crate::http_body::{self, BodyError, BodyLimits};
use crate::injection::InjectionError;
use crate::state::AppState;

/// A finished answer either way: the upstream's relayed, or the proxy's refusal.
type Step<T> = Result<T, Response>;

pub async fn post(
    State(state): State<Arc<AppState>>,
    Path(connector_id): Path<String>,
    headers: HeaderMap,
    body: Body,
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
    body: Body,
) -> Step<Response> {
    let checked = gate::check(state, connector_id, headers).await?;
    if !gate::accepts_json_and_sse(headers) {
        return Err(catalogue::not_acceptable());
    }
    let body = read_body(state, headers, body).await?;
    let incoming = classify(state, headers, body)?;
    gate::reauthorization(state, &checked, Some(&incoming.message)).await?;
    let session = named_session(state, &checked, &incoming)?;
    let verdict = decide(state, &checked, &incoming.message).await;
    let plan = audit_decision(state, &checked, &incoming.message, &verdict).await?;
    let slot = stream_slot(state, &checked, session.as_ref(), incoming.message.id())?;
    let exchange = prepare(state, &checked, incoming, session.as_ref(), plan).await;
    let answer = forward(state, &checked, &exchange, session.as_deref()).await?;
    refuse_upstream(state, &checked, session.as_deref(), &answer, exchange.id()).await?;
    let session = match adopt_session(state, &checked, &exchange, &answer)? {
        Some(adopted) => Some(adopted),
        None => session,
    };
    let relay = Relay {
        request_id: exchange.id().cloned(),
        rewrite: exchange.rewrite,
        client: exchange.client,
        list: exchange.list,
        ..relay(state, &checked, session, slot)
    };
    Ok(relay.respond(answer).await)
}

/// GET: the session's stream of server messages.
async fn open_stream(
    state: &Arc<AppState>,
    connector_id: &str,
    headers: &HeaderMap,
) -> Step<Response> {
    let (checked, session) = check_session(state, connector_id, headers).await?;
    let slot = stream_slot(state, &checked, Some(&session), None)?;
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
            plan: &plan,
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
    refuse_upstream(state, &checked, Some(&session), &answer, None).await?;
    if answer.response.status() == StatusCode::METHOD_NOT_ALLOWED {
        return Err(catalogue::method_not_allowed());
    }
    Ok(relay(state, &checked, Some(session), slot)
        .respond(answer)
        .await)
}

/// DELETE: the client ends its session.
async fn end_session(state: &AppState, connector_id: &str, headers: &HeaderMap) -> Step<Response> {
    let (_, session) = check_session(state, connector_id, headers).await?;
    state.data.end_session(&session);
    Ok(StatusCode::OK.into_response())
}

/// The checks of `gate::check` and the session the request names, which another replica
/// may have minted (see `shared_session`): for GET and DELETE.
async fn check_session(
    state: &AppState,
    connector_id: &str,
    headers: &HeaderMap,
) -> Step<(Checked, Arc<Session>)> {
    let checked = gate::check(state, connector_id, headers).await?;
    gate::reauthorization(state, &checked, None).await?;
    shared_session::adopt(state, &checked, headers, None)?;
    let session = gate::session(state, &checked, headers, None)?;
    Ok((checked, session))
}

/// One client message: its headers, its bytes, and what they say.
struct Incoming<'a> {
    headers: &'a HeaderMap,
    body: Bytes,
    message: Message,
    value: Value,
}

/// The request body, read only now that the token is checked: at most
/// `http.max_body_bytes` (413 beyond, after draining up to `limits.body_drain_bytes` so
/// that the client can read it), within `limits.body_read_timeout_ms` (408).
async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Step<Bytes> {
    let max = state.config.http.max_body_bytes;
    let limits = BodyLimits {
        max,
        drain: state.data.limits.body_drain_bytes,
        timeout: Duration::from_millis(state.data.limits.body_read_timeout_ms),
    };
    http_body::read(headers, body, limits)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge => catalogue::unreadable_body(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the body is larger than http.max_body_bytes ({max} bytes)"),
            ),
            BodyError::TimedOut => catalogue::body_timeout(),
            BodyError::Broken => {
                catalogue::unreadable_body(StatusCode::BAD_REQUEST, "the body broke off")
            }
        })
}

/// The body as one JSON-RPC message, then `Mcp-Method`/`Mcp-Name`.
fn classify<'a>(state: &AppState, headers: &'a HeaderMap, body: Bytes) -> Step<Incoming<'a>> {
    let limits = &state.data.limits;
    let lengths = Lengths {
        method: limits.method_bytes,
        tool: limits.tool_bytes,
        id: limits.id_bytes,
    };
    let (message, value) = jsonrpc::parse(&body, lengths).map_err(|m| catalogue::malformed(&m))?;
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
    let id = incoming.message.id();
    shared_session::adopt(state, checked, incoming.headers, id)?;
    gate::session(state, checked, incoming.headers, id).map(Some)
}

/// A slot for the exchange, unless the run or the session has all the open streams it
/// may have (ERR-13).
fn stream_slot(
    state: &AppState,
    checked: &Checked,
    session: Option<&Arc<Session>>,
    id: Option<&Value>,
) -> Step<StreamSlot> {
    let limits = &state.data.limits;
    StreamSlot::take(
        &checked.live,
        session,
        limits.streams_per_run,
        limits.streams_per_session,
    )
    .map_err(|full| {
        let reason = match full {
            Full::Run => "streams_per_run",
            Full::Session => "streams_per_session",
        };
        state.metrics.decision("limit", "deny", reason);
        catalogue::rate_limited(id, reason, 1)
    })
}

/// The request chain's decision on the message, counted.
async fn decide(state: &AppState, checked: &Checked, message: &Message) -> Verdict<Decision> {
    let asked = || Asked {
        method: message.method(),
        tool: message.tool(),
        arguments: message.params().and_then(|p| p.get("arguments")),
        protocol_version: &checked.version,
    };
    let mut verdict = checked.policy.request(&state.runtime, asked()).await;
    // Spec 4.4.10: a tool whose live annotations differ from the snapshot's must pass
    // the request chain on those too.
    if verdict.value.is_allow()
        && let Some(ctx) = message.tool().and_then(|tool| {
            let live = &state.data.live_hints;
            live.context(&checked.connector, &checked.policy.ctx, Some(tool))
        })
    {
        verdict = live_hints::request(&state.runtime, ctx, asked()).await;
    }
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
            &checked.policy.access.plugins,
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
            catalogue::connector_unavailable(message.id(), &checked.connector.id)
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
    /// Held from before the `tools/list` is forwarded until its relay ends.
    list: Option<ListWatch>,
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
    let list = matches!(rewrite, Some(Rewrite::ToolsList)).then(|| ListWatch::new(&checked.live));
    Exchange {
        headers,
        message,
        body,
        plan,
        rewrite,
        client,
        list,
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
            plan,
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

/// FR-34: a static credential the upstream rejects is not retried: the connector needs
/// re-authorization (a new key) until its owner gives one, and what was decided about it
/// is read again. An OAuth connector's 401 is handled where its token is renewed.
async fn credential_rejected(state: &AppState, connector: &str) {
    match state.store.credential_rejected(connector).await {
        Ok(true) => {
            tracing::warn!(%connector, "the upstream rejected the credential; the connector needs re-authorization");
            state
                .revocations
                .revoke(crate::revocation::Revocation::ConnectorChanged {
                    connector: connector.to_owned(),
                })
                .await;
        }
        Ok(false) => {}
        Err(e) => {
            tracing::error!(%connector, error = %e, "could not mark the connector for re-authorization")
        }
    }
}

/// Upstream answers the client must not see as they are: auth challenges (ERR-8, ERR-9)
/// and an expired upstream session (ERR-5, so the client re-initializes).
async fn refuse_upstream(
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
            credential_rejected(state, &checked.connector.id).await;
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
            Err(catalogue::session_not_found(id))
        }
        _ => Ok(()),
    }
}

/// The proxy session an accepted `initialize` opens, mapped to the upstream's; refused
/// when the run finished while the `initialize` was upstream (ERR-1) or already has
/// `limits.sessions_per_run` sessions (ERR-13), and the upstream session is closed.
fn adopt_session(
    state: &AppState,
    checked: &Checked,
    exchange: &Exchange<'_>,
    answer: &Answer,
) -> Step<Option<Arc<Session>>> {
    let response = &answer.response;
    if !exchange.initialize() || !response.status().is_success() {
        return Ok(None);
    }
    let upstream_id = response
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
    let (run, connector) = (&checked.run.id, &checked.connector.id);
    let id = shared_session::mint(
        &state.vault,
        &state.data.instance,
        run,
        connector,
        upstream_id.as_ref(),
        exchange.client,
    );
    let opened = state.data.open_session(
        id,
        &checked.live,
        connector,
        upstream_id.clone(),
        exchange.client,
        now_secs(),
    );
    match opened {
        Ok(session) => Ok(Some(session)),
        Err(refused) => {
            if let Some(upstream_id) = upstream_id {
                state
                    .data
                    .close_upstream(&checked.connector.id, upstream_id);
            }
            Err(shared_session::refusal(state, refused, exchange.id()))
        }
    }
}

/// The relay of an upstream answer on this session (or, without one, on the run), for
/// no request in particular.
fn relay(
    state: &Arc<AppState>,
    checked: &Checked,
    session: Option<Arc<Session>>,
    slot: StreamSlot,
) -> Relay {
    let (cancel, client) = match &session {
        Some(session) => (session.cancel.clone(), session.client),
        None => (
            checked.live.cancel.child_token(),
            ClientCapabilities::default(),
        ),
    };
    Relay {
        state: state.clone(),
        connector: checked.connector.clone(),
        permitted: checked.policy.permitted.value.clone(),
        ctx: checked.policy.ctx.clone(),
        run: checked.live.clone(),
        session,
        request_id: None,
        rewrite: None,
        client,
        cancel,
        revoked: state.data.connector_token(&checked.connector.id),
        _slot: slot,
        list: None,
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
