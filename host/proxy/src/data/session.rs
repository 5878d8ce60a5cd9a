//! Proxy sessions and the caches the data plane keeps between requests.
//!
//! A proxy session is minted on `initialize`, bound to one (run, connector) pair and
//! mapped to the upstream's own session id. The session id is never authentication: every
//! request is authenticated by its run token first, and a session presented with another
//! run's token is unknown (404), not forbidden, so it reveals nothing.
//!
//! Cache invariants, so that edits "take effect on the next request":
//! * a run leaves the token cache the moment it finishes ([`Sessions::close_run`]);
//! * connectors and actors leave their caches when the control plane changes them
//!   ([`Sessions::connector_changed`], [`Sessions::actor_changed`]);
//! * a cached policy or injection plan is used only while the connector's revision and
//!   the plugin registry's generation are the ones it was computed for.
//!
//! Finishing a run cancels one token that every stream of the run listens to, so open
//! SSE streams end at once, and queues a best-effort DELETE for each upstream session.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::http::HeaderValue;
use base64::Engine;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::data::audit::AuditSink;
use crate::data::policy::{CachedPlan, Policy};
use crate::store::{ActorRecord, ConnectorRecord, RunRecord};

/// What a client declared it can answer, from its `initialize` capabilities.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientCapabilities {
    pub sampling: bool,
    pub elicitation: bool,
    pub roots: bool,
}

impl ClientCapabilities {
    pub fn from_initialize(params: &serde_json::Value) -> Self {
        let caps = params.get("capabilities");
        let has = |name: &str| caps.and_then(|c| c.get(name)).is_some_and(|v| !v.is_null());
        Self {
            sampling: has("sampling"),
            elicitation: has("elicitation"),
            roots: has("roots"),
        }
    }

    /// Whether the client may be sent the server-to-client request `method`.
    pub fn accepts(&self, method: &str) -> bool {
        match method {
            "sampling/createMessage" => self.sampling,
            "elicitation/create" => self.elicitation,
            "roots/list" => self.roots,
            "ping" => true,
            _ => false,
        }
    }
}

pub struct Session {
    pub id: Arc<str>,
    pub run_id: String,
    pub connector_id: String,
    pub upstream_id: Option<HeaderValue>,
    pub client: ClientCapabilities,
    /// Cancelled when the session ends or its run finishes.
    pub cancel: CancellationToken,
    /// Ids (as JSON text) of `tools/list` requests whose answers are still due, so an
    /// answer is filtered on whichever stream it arrives.
    pub pending_lists: Mutex<HashSet<String>>,
    last_used: AtomicI64,
}

impl Session {
    pub fn touch(&self, now: i64) {
        self.last_used.store(now, Ordering::Relaxed);
    }
}

/// An upstream session to end with a best-effort DELETE.
pub struct UpstreamClose {
    pub connector_id: String,
    pub upstream_id: HeaderValue,
}

#[derive(Default)]
pub struct Sessions {
    sessions: RwLock<HashMap<Arc<str>, Arc<Session>>>,
    runs_by_token: RwLock<HashMap<[u8; 32], Arc<RunRecord>>>,
    run_tokens: Mutex<HashMap<String, CancellationToken>>,
    pub(crate) connectors: RwLock<HashMap<String, Arc<ConnectorRecord>>>,
    pub(crate) actors: RwLock<HashMap<String, Arc<ActorRecord>>>,
    pub(crate) policies: RwLock<HashMap<(String, String), Arc<Policy>>>,
    pub(crate) plans: RwLock<HashMap<String, Arc<CachedPlan>>>,
    closer: std::sync::OnceLock<mpsc::UnboundedSender<UpstreamClose>>,
    audit: std::sync::OnceLock<AuditSink>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sessions {
    /// Ends every session of `run_id`: its streams close at once and its upstream
    /// sessions get a DELETE (best effort). Called when a run finishes.
    pub async fn close_run(&self, run_id: &str) {
        write(&self.runs_by_token).retain(|_, run| run.id != run_id);
        if let Some(token) = self.run_tokens.lock().expect("run tokens").remove(run_id) {
            token.cancel();
        }
        let ended: Vec<Arc<Session>> = {
            let mut sessions = write(&self.sessions);
            let ids: Vec<Arc<str>> = sessions
                .values()
                .filter(|s| s.run_id == run_id)
                .map(|s| s.id.clone())
                .collect();
            ids.iter().filter_map(|id| sessions.remove(id)).collect()
        };
        for session in ended {
            self.end(&session);
        }
        write(&self.policies).retain(|(run, _), _| run != run_id);
    }

    /// Forgets what is cached about a connector after the control plane changed it.
    pub fn connector_changed(&self, connector_id: &str) {
        write(&self.connectors).remove(connector_id);
        write(&self.plans).remove(connector_id);
        write(&self.policies).retain(|(_, connector), _| connector != connector_id);
    }

    /// Forgets what is cached about an actor after the control plane changed it.
    pub fn actor_changed(&self, actor_id: &str) {
        write(&self.actors).remove(actor_id);
        write(&self.policies).clear();
    }

    pub(crate) fn set_closer(&self, closer: mpsc::UnboundedSender<UpstreamClose>) {
        let _ = self.closer.set(closer);
    }

    pub(crate) fn set_audit(&self, sink: AuditSink) {
        let _ = self.audit.set(sink);
    }

    /// The audit writer; the data plane's router starts it before serving.
    pub(crate) fn audit(&self) -> &AuditSink {
        self.audit
            .get()
            .expect("the data plane router starts the audit writer")
    }

    pub(crate) fn cached_run(&self, token_hash: &[u8; 32]) -> Option<Arc<RunRecord>> {
        read(&self.runs_by_token).get(token_hash).cloned()
    }

    pub(crate) fn cache_run(&self, token_hash: [u8; 32], run: Arc<RunRecord>) {
        write(&self.runs_by_token).insert(token_hash, run);
    }

    /// The token every stream of `run_id` listens to.
    pub(crate) fn run_token(&self, run_id: &str) -> CancellationToken {
        self.run_tokens
            .lock()
            .expect("run tokens")
            .entry(run_id.to_owned())
            .or_default()
            .clone()
    }

    pub(crate) fn create(
        &self,
        run_id: &str,
        connector_id: &str,
        upstream_id: Option<HeaderValue>,
        client: ClientCapabilities,
        now: i64,
    ) -> Arc<Session> {
        let session = Arc::new(Session {
            id: new_session_id().into(),
            run_id: run_id.to_owned(),
            connector_id: connector_id.to_owned(),
            upstream_id,
            client,
            cancel: self.run_token(run_id).child_token(),
            pending_lists: Mutex::new(HashSet::new()),
            last_used: AtomicI64::new(now),
        });
        write(&self.sessions).insert(session.id.clone(), session.clone());
        session
    }

    /// The session `id` if it belongs to this run and connector; anything else is unknown.
    pub(crate) fn find(&self, id: &str, run_id: &str, connector_id: &str) -> Option<Arc<Session>> {
        read(&self.sessions)
            .get(id)
            .filter(|s| s.run_id == run_id && s.connector_id == connector_id)
            .cloned()
    }

    pub(crate) fn remove(&self, session: &Session) {
        if write(&self.sessions).remove(&session.id).is_some() {
            self.end(session);
        }
    }

    /// Ends sessions unused since `cutoff` (Unix seconds).
    pub(crate) fn reap_idle(&self, cutoff: i64) -> usize {
        let idle: Vec<Arc<Session>> = {
            let mut sessions = write(&self.sessions);
            let ids: Vec<Arc<str>> = sessions
                .values()
                .filter(|s| s.last_used.load(Ordering::Relaxed) < cutoff)
                .map(|s| s.id.clone())
                .collect();
            ids.iter().filter_map(|id| sessions.remove(id)).collect()
        };
        for session in &idle {
            self.end(session);
        }
        idle.len()
    }

    pub fn len(&self) -> usize {
        read(&self.sessions).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn end(&self, session: &Session) {
        session.cancel.cancel();
        if let (Some(upstream_id), Some(closer)) = (&session.upstream_id, self.closer.get()) {
            let _ = closer.send(UpstreamClose {
                connector_id: session.connector_id.clone(),
                upstream_id: upstream_id.clone(),
            });
        }
    }
}

/// 32 bytes from the OS RNG, base64url: visible ASCII as MCP requires, unguessable.
fn new_session_id() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
