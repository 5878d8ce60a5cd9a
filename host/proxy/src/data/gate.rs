//! What every verb of the data plane establishes before it acts, all from the headers
//! (no body is read before these pass): the request's Origin, the live run behind its
//! token, its protocol version, the run's and the connector's rate limits, the
//! connector's access decision and the session it names. Each refusal is the catalogue's
//! answer; nothing here talks to an upstream.
//!
//! A connector that needs re-authorization (its upstream rejected the credential, or the
//! OAuth grant was refused) is judged by the access chain as if it were authorized: a
//! run the chain would let use it learns that it needs re-authorization (ERR-8, on every
//! message until its owner re-authorizes it), any other run gets the same ERR-3 as for a
//! connector it may not use, so no run learns the state of another's connector.

// A refusal is the finished response for the client, returned straight from the handler;
// boxing it would buy nothing on a path that ends the request.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Instant;

use axum::http::{HeaderMap, header};
use axum::response::Response;
use portcullis_model::{ConnectorStatus, Decision};
use serde_json::Value;

use crate::auth;
use crate::clock::now_secs;
use crate::data::audit;
use crate::data::bucket::retry_after;
use crate::data::catalogue;
use crate::data::decisions::Policy;
use crate::data::generation::Seen;
use crate::data::jsonrpc::Message;
use crate::data::runs::RunState;
use crate::data::session::Session;
use crate::data::upstream::SESSION_HEADER;
use crate::state::AppState;
use crate::store::{AuthMethod, ConnectorRecord, RunRecord};
use crate::vault;

/// The 2026-07-28 revision has no sessions: every request stands alone.
const STATELESS_VERSION: &str = "2026-07-28";
/// What a request without `MCP-Protocol-Version` is taken to speak (FR-19).
const DEFAULT_VERSION: &str = "2025-03-26";

/// What every verb establishes before it acts.
pub struct Checked {
    pub run: Arc<RunRecord>,
    /// The run's live state on this proxy.
    pub live: Arc<RunState>,
    pub connector: Arc<ConnectorRecord>,
    pub policy: Arc<Policy>,
    pub version: String,
    /// Set when the connector needs re-authorization: ERR-8's `data.reason`, the answer
    /// to every message (see [`reauthorization`]).
    pub reauthorization: Option<String>,
}

impl Checked {
    /// Whether the request speaks a revision without sessions.
    pub fn stateless(&self) -> bool {
        self.version == STATELESS_VERSION
    }
}

/// Origin, run token, protocol version and connector access.
pub async fn check(
    state: &AppState,
    connector_id: &str,
    headers: &HeaderMap,
) -> Result<Checked, Response> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|o| state.config.http.allowed_origins.iter().any(|a| a == o));
        if !allowed {
            return Err(catalogue::forbidden_origin());
        }
    }
    let seen = state.data.generations.seen();
    let run = authenticate(state, headers, seen).await?;
    let version = match headers.get("mcp-protocol-version") {
        None => DEFAULT_VERSION.to_owned(),
        Some(value) => {
            let value = value.to_str().unwrap_or("");
            if !catalogue::SUPPORTED_VERSIONS.contains(&value) {
                return Err(catalogue::unsupported_version(value));
            }
            value.to_owned()
        }
    };
    let data = &state.data;
    let live = data
        .runs
        .enter(&run)
        .ok_or_else(|| catalogue::unauthorized("run_finished"))?;
    let now = Instant::now();
    live.take(now)
        .map_err(|wait| catalogue::rate_limited(None, "run_rate", retry_after(wait)))?;
    let unavailable = || catalogue::connector_unavailable(None, connector_id);
    let store = state.store.as_ref();
    let connector = data.records.connector(store, connector_id, seen).await;
    let connector = connector.ok().flatten().ok_or_else(unavailable)?;
    data.take_connector_request(&connector.id, now)
        .map_err(|wait| catalogue::rate_limited(None, "connector_rate", retry_after(wait)))?;
    let actor = data.records.actor(store, &run.actor, seen).await;
    let actor = actor.ok().flatten().ok_or_else(unavailable)?;
    let needs_reauthorization = connector.status == ConnectorStatus::NeedsReauthorization;
    // The memo keys on the revision, whose status is fixed: it never mixes the two.
    let judged = if needs_reauthorization {
        Arc::new(ConnectorRecord {
            status: ConnectorStatus::Authorized,
            ..(*connector).clone()
        })
    } else {
        connector.clone()
    };
    let policy = data
        .decisions
        .policy(&state.runtime, (&run, &actor, &judged), seen)
        .await;
    if let Decision::Deny(denial) = &policy.access.value {
        state.metrics.decision("access", "deny", &denial.reason);
        let record = audit::record(&run.id, connector_id, "", None, &policy.access, &[], &[]);
        data.audit.record(record).await;
        return Err(unavailable());
    }
    let reauthorization = match needs_reauthorization {
        true => Some(reauthorization_reason(state, &connector).await),
        false => None,
    };
    Ok(Checked {
        run,
        live,
        connector,
        policy,
        version,
        reauthorization,
    })
}

/// Why the connector needs re-authorization: the OAuth error its grant was refused with
/// (or `token_rejected`), `credential_rejected` for a static credential.
async fn reauthorization_reason(state: &AppState, connector: &ConnectorRecord) -> String {
    if connector.auth == AuthMethod::OAuth
        && let Some(reason) = state.oauth.failed_reason(&connector.id).await
    {
        return reason;
    }
    "credential_rejected".to_owned()
}

/// ERR-8 for every message to a connector that needs re-authorization, audited with the
/// message's method and tool (none for GET and DELETE, whose answer is then a 502).
pub async fn reauthorization(
    state: &AppState,
    checked: &Checked,
    message: Option<&Message>,
) -> Result<(), Response> {
    let Some(reason) = &checked.reauthorization else {
        return Ok(());
    };
    state
        .metrics
        .decision("access", "deny", "needs_reauthorization");
    let method = message.map_or("", Message::method);
    let tool = message.and_then(Message::tool);
    let (run, connector) = (&checked.run.id, &checked.connector.id);
    let record = audit::reauthorization(run, connector, method, tool, reason);
    state.data.audit.record(record).await;
    let id = message.and_then(Message::id);
    Err(catalogue::needs_reauthorization(
        id,
        connector,
        Some(reason),
    ))
}

/// The live run behind `Authorization: Bearer <token>` (ERR-1 otherwise).
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    seen: Seen,
) -> Result<Arc<RunRecord>, Response> {
    let invalid = || catalogue::unauthorized("invalid_run_token");
    let token = auth::bearer(headers)
        .filter(|t| !t.is_empty())
        .ok_or_else(invalid)?;
    let run = state
        .data
        .records
        .run(
            state.store.as_ref(),
            &vault::token_hash(token),
            now_secs(),
            seen,
        )
        .await
        .map_err(|error| {
            tracing::error!(%error, "run lookup failed");
            invalid()
        })?
        .ok_or_else(invalid)?;
    if !run.is_live(now_secs()) {
        return Err(catalogue::unauthorized("run_finished"));
    }
    Ok(run)
}

/// The session a request names (ERR-4 when it names none, ERR-5 when it is unknown),
/// answered with the id of the request `id` when it is known.
pub fn session(
    state: &AppState,
    checked: &Checked,
    headers: &HeaderMap,
    id: Option<&Value>,
) -> Result<Arc<Session>, Response> {
    let session_id = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| catalogue::missing_session(id))?;
    let session = state
        .data
        .sessions
        .find(session_id, &checked.run.id, &checked.connector.id)
        .ok_or_else(|| catalogue::session_not_found(id))?;
    session.touch(now_secs());
    Ok(session)
}

pub fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let has = |wanted: &str| {
        accept
            .split(',')
            .any(|part| matches!(part.split(';').next().map(str::trim), Some(t) if t == wanted || t == "*/*"))
    };
    has("application/json") && has("text/event-stream")
}

/// Checks `Mcp-Method` and `Mcp-Name` against the body when a client sends them.
pub fn check_method_headers(headers: &HeaderMap, message: &Message) -> Result<(), Response> {
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}"));
    if let Some(method) = header("mcp-method")
        && method != message.method()
    {
        return Err(catalogue::header_mismatch(message.id(), "Mcp-Method"));
    }
    if let Some(name) = header("mcp-name") {
        let body_name = message
            .params()
            .and_then(|p| p.get("name").or_else(|| p.get("uri")))
            .and_then(Value::as_str);
        if body_name != Some(name) {
            return Err(catalogue::header_mismatch(message.id(), "Mcp-Name"));
        }
    }
    Ok(())
}
