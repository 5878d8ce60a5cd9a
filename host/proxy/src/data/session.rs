//! The proxy's session table.
//!
//! A proxy session is minted on `initialize`, bound to one (run, connector) pair and
//! mapped to the upstream's own session id. The session id is never authentication: every
//! request is authenticated by its run token first, and a session presented with another
//! run's token is unknown (404), not forbidden, so it reveals nothing.
//!
//! This module keeps the table only; ending a session (cancelling its streams, closing
//! the upstream's session) is the data plane's (`plane`). A session with an open stream
//! is in use: the idle reaper passes it by ([`SessionTable::take_idle`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use axum::http::HeaderValue;
use base64::Engine;
use tokio_util::sync::CancellationToken;

use crate::data::cache::Table;
use crate::data::runs::RunState;

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
    /// The run the session belongs to.
    pub run: Arc<RunState>,
    /// Streams open on the session (see `slots`).
    pub(super) streams: AtomicUsize,
    last_used: AtomicI64,
}

impl Session {
    pub fn touch(&self, now: i64) {
        self.last_used.store(now, Ordering::Relaxed);
    }
}

/// What a new session is made of.
pub struct NewSession<'a> {
    /// Its id: one `shared_session` minted or opened, or `None` for a random one.
    pub id: Option<String>,
    pub run_id: &'a str,
    pub connector_id: &'a str,
    pub upstream_id: Option<HeaderValue>,
    pub client: ClientCapabilities,
    pub run: Arc<RunState>,
    pub now: i64,
}

#[derive(Default)]
pub struct SessionTable {
    sessions: Table<Arc<str>, Session>,
}

impl SessionTable {
    /// Adds the session under its id (a random one when it has none); answers it and
    /// whether it is new: a session already under that id (two requests adopting one
    /// shared session at once) is answered instead.
    pub fn create(&self, new: NewSession<'_>) -> (Arc<Session>, bool) {
        let id: Arc<str> = new.id.unwrap_or_else(new_session_id).into();
        let make = || {
            Arc::new(Session {
                id: id.clone(),
                run_id: new.run_id.to_owned(),
                connector_id: new.connector_id.to_owned(),
                upstream_id: new.upstream_id,
                client: new.client,
                // A child of the run's token, so that finishing the run ends the session.
                cancel: new.run.cancel.child_token(),
                run: new.run,
                streams: AtomicUsize::new(0),
                last_used: AtomicI64::new(new.now),
            })
        };
        self.sessions.get_or_insert(id.clone(), make)
    }

    /// The session `id` if it belongs to this run and connector; anything else is unknown.
    pub fn find(&self, id: &str, run_id: &str, connector_id: &str) -> Option<Arc<Session>> {
        self.sessions
            .get(id)
            .filter(|s| s.run_id == run_id && s.connector_id == connector_id)
    }

    /// Removes `session`; false when it was already gone.
    pub fn remove(&self, session: &Session) -> bool {
        self.sessions.remove(&session.id).is_some()
    }

    /// Removes and returns every session of `run_id`.
    pub fn take_run(&self, run_id: &str) -> Vec<Arc<Session>> {
        self.sessions.take_where(|_, s| s.run_id == run_id)
    }

    /// Removes and returns every session of `connector_id`.
    pub fn take_connector(&self, connector_id: &str) -> Vec<Arc<Session>> {
        self.sessions
            .take_where(|_, s| s.connector_id == connector_id)
    }

    /// Removes and returns every session unused since `cutoff` (Unix seconds) with no
    /// stream open.
    pub fn take_idle(&self, cutoff: i64) -> Vec<Arc<Session>> {
        self.sessions.take_where(|_, s| {
            s.last_used.load(Ordering::Relaxed) < cutoff && s.streams.load(Ordering::Acquire) == 0
        })
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }
}

/// 32 bytes from the OS RNG, base64url: visible ASCII as MCP requires, unguessable.
fn new_session_id() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
