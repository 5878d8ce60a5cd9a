//! What a run holds open while an answer is relayed, counted and capped: a stream slot
//! for every exchange under way (a POST's answer until it is relayed whole, a GET stream
//! until it ends), per run and per session, and a watch for every `tools/list` answer
//! still due, per run.
//!
//! Each is a guard: taking it counts, dropping it (the relay ended, however) uncounts, so
//! no count outlives what it counts. A stream slot also marks its session used when it
//! is released, so the idle timeout runs from the end of the last stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::clock::now_secs;
use crate::data::runs::RunState;
use crate::data::session::Session;

/// Which cap a refused slot hit.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    Run,
    Session,
}

/// One exchange under way.
pub struct StreamSlot {
    run: Arc<RunState>,
    session: Option<Arc<Session>>,
}

/// Adds one to `counter` if it is below `cap`.
fn take(counter: &AtomicUsize, cap: usize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < cap).then_some(n + 1)
        })
        .is_ok()
}

impl StreamSlot {
    /// A slot of `run` (and of `session`), unless either is at its cap.
    pub fn take(
        run: &Arc<RunState>,
        session: Option<&Arc<Session>>,
        per_run: usize,
        per_session: usize,
    ) -> Result<Self, Full> {
        if !take(&run.streams, per_run) {
            return Err(Full::Run);
        }
        if let Some(session) = session
            && !take(&session.streams, per_session)
        {
            run.streams.fetch_sub(1, Ordering::AcqRel);
            return Err(Full::Session);
        }
        Ok(Self {
            run: run.clone(),
            session: session.cloned(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.run.streams.fetch_sub(1, Ordering::AcqRel);
        if let Some(session) = &self.session {
            session.touch(now_secs());
            session.streams.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A `tools/list` answer due: while any is, every stream of the run is read closely.
pub struct ListWatch {
    run: Arc<RunState>,
}

impl ListWatch {
    pub fn new(run: &Arc<RunState>) -> Self {
        run.lists.fetch_add(1, Ordering::AcqRel);
        Self { run: run.clone() }
    }
}

impl Drop for ListWatch {
    fn drop(&mut self) {
        self.run.lists.fetch_sub(1, Ordering::AcqRel);
    }
}
