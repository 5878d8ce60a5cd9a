//! The runs the data plane serves, as long as they are live: each run's cancellation
//! token (parent of its sessions' and streams'), its counters (sessions, open streams,
//! `tools/list` answers due) and its rate limit.
//!
//! An entry is made on a run's first authenticated request and freed when the run
//! finishes or expires ([`LiveRuns::sweep`], from the reaper), so the table holds live
//! runs only. A finished run leaves a tombstone until it would have expired anyway, so
//! that a request that was authenticated before the finish cannot bring it back: opening
//! a session goes through [`LiveRuns::while_live`], under the same lock as
//! [`LiveRuns::finish`], and fails once the run is finished.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::data::bucket::Bucket;
use crate::store::RunRecord;

/// One live (or recently finished) run.
pub struct RunState {
    pub id: String,
    /// Cancelled when the run finishes or expires; its sessions and streams are children.
    pub cancel: CancellationToken,
    /// Unix seconds after which the run's token no longer works.
    expires_at: i64,
    finished: AtomicBool,
    pub(super) sessions: AtomicUsize,
    pub(super) streams: AtomicUsize,
    /// `tools/list` requests of the run whose answers are still due.
    pub(super) lists: AtomicUsize,
    bucket: Option<Bucket>,
}

impl RunState {
    /// Takes one request from the run's rate limit, or says how long to wait.
    pub fn take(&self, now: Instant) -> Result<(), Duration> {
        self.bucket.as_ref().map_or(Ok(()), |b| b.take(now))
    }

    /// Whether a `tools/list` answer of this run is due on some stream.
    pub fn lists_due(&self) -> bool {
        self.lists.load(Ordering::Acquire) > 0
    }

    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }
}

pub struct LiveRuns {
    runs: Mutex<HashMap<String, Arc<RunState>>>,
    /// Requests per second per run; 0 for unlimited.
    rate: u32,
    /// How long a tombstone of a run finished before its first request here is kept.
    max_lifetime_secs: i64,
}

impl LiveRuns {
    pub fn new(rate: u32, max_lifetime_secs: u64) -> Self {
        Self {
            runs: Mutex::new(HashMap::new()),
            rate,
            max_lifetime_secs: i64::try_from(max_lifetime_secs).unwrap_or(i64::MAX),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<RunState>>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state of `run`, made on its first request; `None` once it finished here.
    pub fn enter(&self, run: &RunRecord) -> Option<Arc<RunState>> {
        let mut runs = self.lock();
        let state = runs
            .entry(run.id.clone())
            .or_insert_with(|| Arc::new(self.state(&run.id, run.expires_at)));
        (!state.is_finished()).then(|| state.clone())
    }

    fn state(&self, id: &str, expires_at: i64) -> RunState {
        RunState {
            id: id.to_owned(),
            cancel: CancellationToken::new(),
            expires_at,
            finished: AtomicBool::new(false),
            sessions: AtomicUsize::new(0),
            streams: AtomicUsize::new(0),
            lists: AtomicUsize::new(0),
            bucket: Bucket::new(self.rate, Instant::now()),
        }
    }

    /// Runs `act` unless `run` has finished, under the lock [`Self::finish`] takes: what
    /// `act` adds is either seen by the finish or never added.
    pub fn while_live<T>(&self, run: &RunState, act: impl FnOnce() -> T) -> Option<T> {
        let _runs = self.lock();
        (!run.is_finished()).then(act)
    }

    /// Marks `run_id` finished and cancels everything of it; its tombstone stays until
    /// the run would have expired.
    pub fn finish(&self, run_id: &str, now: i64) {
        let mut runs = self.lock();
        let state = runs.entry(run_id.to_owned()).or_insert_with(|| {
            let until = now.saturating_add(self.max_lifetime_secs);
            Arc::new(self.state(run_id, until))
        });
        state.finished.store(true, Ordering::Release);
        state.cancel.cancel();
    }

    /// Frees the entries of runs expired at `now`; answers the ids of those that were
    /// still live, whose sessions the caller ends.
    pub fn sweep(&self, now: i64) -> Vec<String> {
        let mut expired = Vec::new();
        self.lock().retain(|id, state| {
            if state.expires_at > now {
                return true;
            }
            if !state.is_finished() {
                state.cancel.cancel();
                expired.push(id.clone());
            }
            false
        });
        expired
    }

    /// How many `tools/list` answers are due, over all runs.
    pub fn lists_due(&self) -> usize {
        self.lock()
            .values()
            .map(|run| run.lists.load(Ordering::Acquire))
            .sum()
    }

    /// How many runs have an entry (live or tombstone).
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::RunStatus;

    fn run(id: &str, expires_at: i64) -> RunRecord {
        RunRecord {
            id: id.to_owned(),
            actor: "a".into(),
            user: "u".into(),
            input: json!({}),
            connector_fields: None,
            status: RunStatus::Running,
            created_at: 0,
            finished_at: None,
            expires_at,
        }
    }

    #[test]
    fn a_finished_run_cannot_come_back() {
        let runs = LiveRuns::new(0, 100);
        let state = runs.enter(&run("r1", 50)).unwrap();
        let child = state.cancel.child_token();
        runs.finish("r1", 10);
        assert!(child.is_cancelled());
        assert!(runs.enter(&run("r1", 50)).is_none());
        assert!(runs.while_live(&state, || ()).is_none());
        // Finished before its first request here: still refused.
        runs.finish("r2", 10);
        assert!(runs.enter(&run("r2", 50)).is_none());
    }

    #[test]
    fn sweeping_frees_expired_runs_and_old_tombstones() {
        let runs = LiveRuns::new(0, 100);
        let live = runs.enter(&run("live", 1_000)).unwrap();
        let expiring = runs.enter(&run("expiring", 20)).unwrap();
        runs.finish("done", 10);
        assert_eq!(runs.len(), 3);
        assert_eq!(runs.sweep(30), ["expiring"]);
        assert!(expiring.cancel.is_cancelled());
        assert!(!live.cancel.is_cancelled());
        assert_eq!(runs.len(), 2);
        assert!(runs.sweep(200).is_empty());
        assert_eq!(runs.len(), 1);
    }
}
