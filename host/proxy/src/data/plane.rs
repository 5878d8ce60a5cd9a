//! What the data plane keeps between requests, as parts with one job each, all built by
//! `app::start` before the first request:
//!
//! | part | job |
//! |---|---|
//! | `sessions` | the proxy session table |
//! | `runs` | the cancellation token of each run, parent of its sessions and streams |
//! | `records` | runs by token hash, connectors and actors, as last read from the store |
//! | `decisions` | the plugin chains' memoized answers |
//! | `audit` | the audit writer |
//! | `closer` | the queue of best-effort upstream session DELETEs |
//!
//! The parts are visible to the data plane's modules only. The rest of the proxy sees
//! [`DataPlane::open_sessions`] and, through [`Revocations`], what a change of the
//! control plane makes the data plane forget.

use std::sync::Arc;

use axum::http::HeaderValue;

use crate::data::audit::AuditSink;
use crate::data::cache::RecordCache;
use crate::data::closer::{self, Closer, Closing};
use crate::data::decisions::Decisions;
use crate::data::runs::RunTokens;
use crate::data::session::{ClientCapabilities, NewSession, Session, SessionTable};
use crate::revocation::{Revocation, Revocations};

pub struct DataPlane {
    pub(super) sessions: SessionTable,
    pub(super) runs: RunTokens,
    pub(super) records: RecordCache,
    pub(super) decisions: Decisions,
    pub(super) audit: AuditSink,
    closer: Closer,
}

impl DataPlane {
    /// The data plane around a running audit writer. The other end of the upstream
    /// closer's queue is returned for the task that serves it (`tasks::spawn_closer`).
    pub(crate) fn new(audit: AuditSink) -> (Self, Closing) {
        let (closer, closing) = closer::channel();
        let plane = Self {
            sessions: SessionTable::default(),
            runs: RunTokens::default(),
            records: RecordCache::default(),
            decisions: Decisions::default(),
            audit,
            closer,
        };
        (plane, closing)
    }

    /// How many proxy sessions are open.
    pub fn open_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Opens a session of `run_id` on `connector_id`, ended with the run.
    pub(super) fn open_session(
        &self,
        run_id: &str,
        connector_id: &str,
        upstream_id: Option<HeaderValue>,
        client: ClientCapabilities,
        now: i64,
    ) -> Arc<Session> {
        self.sessions.create(NewSession {
            run_id,
            connector_id,
            upstream_id,
            client,
            cancel: self.runs.child(run_id),
            now,
        })
    }

    /// Ends `session` if it is still open: its streams close and its upstream session
    /// gets a DELETE (best effort).
    pub(super) fn end_session(&self, session: &Session) {
        if self.sessions.remove(session) {
            self.end(session);
        }
    }

    /// Ends the sessions unused since `cutoff` (Unix seconds); answers how many.
    pub(super) fn end_idle_sessions(&self, cutoff: i64) -> usize {
        let idle = self.sessions.take_idle(cutoff);
        for session in &idle {
            self.end(session);
        }
        idle.len()
    }

    fn end(&self, session: &Session) {
        session.cancel.cancel();
        self.closer.close(session);
    }

    fn finish_run(&self, run_id: &str) {
        self.records.forget_run(run_id);
        self.runs.finish(run_id);
        for session in self.sessions.take_run(run_id) {
            self.end(&session);
        }
        self.decisions.forget_run(run_id);
    }
}

#[async_trait::async_trait]
impl Revocations for DataPlane {
    async fn revoke(&self, revocation: Revocation) {
        match revocation {
            Revocation::RunFinished { run } => self.finish_run(&run),
            Revocation::ConnectorChanged { connector } => {
                self.records.forget_connector(&connector);
                self.decisions.forget_connector(&connector);
            }
            Revocation::ConnectorDeleted { connector } => {
                self.records.forget_connector(&connector);
                self.decisions.forget_connector(&connector);
                for session in self.sessions.take_connector(&connector) {
                    self.end(&session);
                }
            }
            Revocation::ActorChanged { actor } => {
                self.records.forget_actor(&actor);
                self.decisions.forget_policies();
            }
        }
    }
}
