//! What the data plane keeps between requests, as parts with one job each, all built by
//! `app::start` before the first request:
//!
//! | part | job |
//! |---|---|
//! | `sessions` | the proxy session table |
//! | `runs` | the live runs: cancellation, counters, rate limit, tombstones of finished ones |
//! | `records` | runs by token hash, connectors and actors, as last read from the store |
//! | `decisions` | the plugin chains' memoized answers |
//! | `live_hints` | per connector, the live tool annotations that differ from the snapshot |
//! | `listings` | per connector, the last `tools/list` result and its filtered form |
//! | `generations` | the versions every cache fill is checked against |
//! | `connectors` | per connector: the token its streams end with, its rate limit |
//! | `audit` | the audit writer |
//! | `closer` | the queue of best-effort upstream session DELETEs |
//!
//! The parts are visible to the data plane's modules only. The rest of the proxy sees
//! [`DataPlane::open_sessions`], [`DataPlane::footprint`], [`DataPlane::run_created`]
//! (a new run handed over, so that its first message reads nothing from the store) and,
//! through [`Revocations`], what a change of the control plane makes the data plane
//! forget. Every table here is keyed by what the proxy itself vouches for (a run or
//! connector id the store knows, a session id it minted), never by a string a run chose,
//! and each is bounded by the `[limits]` table or freed when its run ends.

use std::sync::Arc;
use std::time::Instant;

use axum::http::HeaderValue;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, LimitsConfig};
use crate::data::audit::AuditSink;
use crate::data::bucket::Bucket;
use crate::data::cache::{RecordCache, Table};
use crate::data::closer::{self, Closer, Closing};
use crate::data::decisions::Decisions;
use crate::data::generation::{Generations, Kind, Seen};
use crate::data::listings::Listings;
use crate::data::live_hints::LiveHints;
use crate::data::runs::{LiveRuns, RunState};
use crate::data::session::{ClientCapabilities, NewSession, Session, SessionTable};
use crate::revocation::{Revocation, Revocations};
use crate::store::RunRecord;

pub struct DataPlane {
    pub(super) sessions: SessionTable,
    pub(super) runs: LiveRuns,
    pub(super) records: RecordCache,
    pub(super) decisions: Decisions,
    pub(super) live_hints: LiveHints,
    pub(super) listings: Listings,
    pub(super) generations: Arc<Generations>,
    pub(crate) audit: AuditSink,
    pub(super) limits: LimitsConfig,
    /// Cancelled (and replaced) when the connector changes: its open streams end.
    connector_streams: Table<String, CancellationToken>,
    connector_buckets: Table<String, Bucket>,
    closer: Closer,
    /// Random per process: the sessions this replica minted name it (`shared_session`).
    pub(super) instance: String,
}

/// What the data plane holds, counted: for tests and operators checking that nothing a
/// run sends makes it grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    pub sessions: usize,
    pub runs: usize,
    pub cached_runs: usize,
    pub policies: usize,
    pub memoized_requests: usize,
    /// `tools/list` answers due, over all runs.
    pub lists_due: usize,
    /// Connectors whose last filtered `tools/list` result is kept (`listings`).
    pub listings: usize,
}

/// The versions of the data plane's caches before a run was written to the store
/// ([`DataPlane::before_run_created`]).
#[derive(Clone, Copy, Debug)]
pub struct RunFill(Seen);

/// Why a session could not be opened.
pub(super) enum NoSession {
    /// The run finished while its `initialize` was upstream.
    Finished,
    /// The run has `limits.sessions_per_run` sessions open.
    Full,
}

impl DataPlane {
    /// The data plane around a running audit writer. The other end of the upstream
    /// closer's queue is returned for the task that serves it (`tasks::spawn_closer`).
    pub(crate) fn new(audit: AuditSink, config: &Config) -> (Self, Closing) {
        let (closer, closing) = closer::channel();
        let generations = Arc::new(Generations::default());
        let limits = config.limits.clone();
        let plane = Self {
            sessions: SessionTable::default(),
            runs: LiveRuns::new(
                limits.requests_per_second_per_run,
                config.runs.max_lifetime_secs,
            ),
            records: RecordCache::new(generations.clone()),
            decisions: Decisions::new(generations.clone()),
            live_hints: LiveHints::default(),
            listings: Listings::default(),
            generations,
            audit,
            limits,
            connector_streams: Table::default(),
            connector_buckets: Table::default(),
            closer,
            instance: hex::encode(rand::random::<[u8; 8]>()),
        };
        (plane, closing)
    }

    /// How many proxy sessions are open.
    pub fn open_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// The sizes of the tables a run's traffic could grow.
    pub fn footprint(&self) -> Footprint {
        let (policies, memoized_requests) = self.decisions.sizes();
        Footprint {
            sessions: self.sessions.len(),
            runs: self.runs.len(),
            cached_runs: self.records.runs(),
            policies,
            memoized_requests,
            lists_due: self.runs.lists_due(),
            listings: self.listings.len(),
        }
    }

    /// What a run about to be written to the store is checked against when
    /// [`DataPlane::run_created`] keeps it: take it before the write.
    pub fn before_run_created(&self) -> RunFill {
        RunFill(self.generations.seen())
    }

    /// Keeps the run `POST /admin/v1/runs` has just written, so that the run's first
    /// message finds it here instead of reading it back from the store. Nothing is kept
    /// when a revocation came since `fill` was taken: the first message then reads the
    /// store, as for a run another replica created.
    pub fn run_created(&self, fill: RunFill, token_hash: [u8; 32], run: RunRecord) {
        self.records
            .keep_run(token_hash, Arc::new(run), crate::clock::now_secs(), fill.0);
    }

    /// Takes one request of `connector_id`'s rate limit, or says how long to wait.
    pub(super) fn take_connector_request(
        &self,
        connector_id: &str,
        now: Instant,
    ) -> Result<(), std::time::Duration> {
        let rate = self.limits.requests_per_second_per_connector;
        let bucket = match self.connector_buckets.get(connector_id) {
            Some(bucket) => bucket,
            None => {
                let Some(bucket) = Bucket::new(rate, now) else {
                    return Ok(());
                };
                let bucket = Arc::new(bucket);
                self.connector_buckets
                    .insert(connector_id.to_owned(), bucket.clone());
                bucket
            }
        };
        bucket.take(now)
    }

    /// The token the streams of `connector_id` end with when the connector changes.
    pub(super) fn connector_token(&self, connector_id: &str) -> CancellationToken {
        if let Some(token) = self.connector_streams.get(connector_id) {
            return (*token).clone();
        }
        let token = CancellationToken::new();
        self.connector_streams
            .insert(connector_id.to_owned(), Arc::new(token.clone()));
        token
    }

    /// Opens a session of `run` on `connector_id` under `id` (random when `None`), ended
    /// with the run, unless the run finished meanwhile or has all the sessions it may
    /// have. A session already open under `id` is answered as it is.
    pub(super) fn open_session(
        &self,
        id: Option<String>,
        run: &Arc<RunState>,
        connector_id: &str,
        upstream_id: Option<HeaderValue>,
        client: ClientCapabilities,
        now: i64,
    ) -> Result<Arc<Session>, NoSession> {
        let cap = self.limits.sessions_per_run;
        let opened = self.runs.while_live(run, || {
            let open = &run.sessions;
            let taken = open.fetch_update(
                std::sync::atomic::Ordering::AcqRel,
                std::sync::atomic::Ordering::Acquire,
                |n| (n < cap).then_some(n + 1),
            );
            taken.is_ok().then(|| {
                let (session, new) = self.sessions.create(NewSession {
                    id,
                    run_id: &run.id,
                    connector_id,
                    upstream_id: upstream_id.clone(),
                    client,
                    run: run.clone(),
                    now,
                });
                if !new {
                    open.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                }
                session
            })
        });
        match opened {
            Some(Some(session)) => Ok(session),
            Some(None) => Err(NoSession::Full),
            None => Err(NoSession::Finished),
        }
    }

    /// Ends `session` if it is still open: its streams close and its upstream session
    /// gets a DELETE (best effort).
    pub(super) fn end_session(&self, session: &Session) {
        if self.sessions.remove(session) {
            self.end(session);
        }
    }

    /// Ends the sessions unused since `cutoff` (Unix seconds) and with no stream open;
    /// answers how many.
    pub(super) fn end_idle_sessions(&self, cutoff: i64) -> usize {
        let idle = self.sessions.take_idle(cutoff);
        for session in &idle {
            self.end(session);
        }
        idle.len()
    }

    /// Ends everything of the runs that passed their lifetime at `now` and forgets them;
    /// answers how many were still live.
    pub(super) fn end_expired_runs(&self, now: i64) -> usize {
        self.records.forget_expired(now);
        let expired = self.runs.sweep(now);
        for run in &expired {
            self.forget_run(run);
        }
        expired.len()
    }

    /// Closes an upstream session the proxy never handed out (its run finished, or had
    /// too many sessions, while the `initialize` was upstream).
    pub(super) fn close_upstream(&self, connector_id: &str, upstream_id: HeaderValue) {
        self.closer.close_upstream(connector_id, upstream_id);
    }

    fn end(&self, session: &Session) {
        session.cancel.cancel();
        session
            .run
            .sessions
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        self.closer.close(session);
    }

    fn finish_run(&self, run_id: &str) {
        self.generations.bump(Kind::Runs);
        self.records.forget_run(run_id);
        self.runs.finish(run_id, crate::clock::now_secs());
        self.forget_run(run_id);
    }

    fn forget_run(&self, run_id: &str) {
        for session in self.sessions.take_run(run_id) {
            self.end(&session);
        }
        self.decisions.forget_run(run_id);
    }

    fn connector_changed(&self, connector_id: &str, deleted: bool) {
        self.generations.bump(Kind::Connectors);
        self.records.forget_connector(connector_id);
        self.decisions.forget_connector(connector_id);
        self.live_hints.forget(connector_id);
        self.listings.forget(connector_id);
        if let Some(token) = self.connector_streams.remove(connector_id) {
            token.cancel();
        }
        if deleted {
            self.connector_buckets.remove(connector_id);
            for session in self.sessions.take_connector(connector_id) {
                self.end(&session);
            }
        }
    }
}

#[async_trait::async_trait]
impl Revocations for DataPlane {
    async fn revoke(&self, revocation: Revocation) {
        match revocation {
            Revocation::RunFinished { run } => self.finish_run(&run),
            Revocation::ConnectorChanged { connector } => {
                self.connector_changed(&connector, false);
            }
            Revocation::ConnectorDeleted { connector } => {
                self.connector_changed(&connector, true);
            }
            Revocation::ActorChanged { actor } => {
                self.generations.bump(Kind::Actors);
                self.records.forget_actor(&actor);
                self.decisions.forget_policies();
            }
            // The registry's reload (`plugin_sync`) bumps its generation, which every
            // memoized answer is checked against: nothing here to forget.
            Revocation::PluginsChanged => {}
            Revocation::Everything => {
                for kind in [Kind::Runs, Kind::Connectors, Kind::Actors] {
                    self.generations.bump(kind);
                }
                self.records.forget_all();
                self.decisions.forget_policies();
            }
        }
    }
}
