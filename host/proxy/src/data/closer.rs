//! Closing upstream sessions the client did not end itself (its run finished, the
//! session sat idle, its connector changed): a bounded queue of best-effort `DELETE`s,
//! sent by a background task that `app::start` starts (`tasks`) a few at a time, so
//! ending a session never waits on an upstream, and ending very many at once (a run with
//! thousands of sessions finishing) neither spawns a task per session nor queues without
//! bound: past [`QUEUE`] waiting DELETEs, more are dropped and counted in the log.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderValue;
use tokio::sync::mpsc;

use crate::data::session::Session;

/// DELETEs waiting to be sent.
pub const QUEUE: usize = 1_024;
/// DELETEs in flight at once.
pub const CONCURRENT: usize = 8;

/// An upstream session to end with a best-effort DELETE.
pub struct UpstreamClose {
    pub connector_id: String,
    pub upstream_id: HeaderValue,
}

/// The sending end, kept by the data plane.
pub struct Closer {
    tx: mpsc::Sender<UpstreamClose>,
    dropped: AtomicU64,
}

/// The receiving end, handed to the task that sends the DELETEs.
pub struct Closing {
    pub rx: mpsc::Receiver<UpstreamClose>,
}

pub fn channel() -> (Closer, Closing) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let closer = Closer {
        tx,
        dropped: AtomicU64::new(0),
    };
    (closer, Closing { rx })
}

impl Closer {
    /// Queues the DELETE of `session`'s upstream session, if it has one; drops it when
    /// the queue is full (the upstream's own idle timeout ends that session).
    pub fn close(&self, session: &Session) {
        if let Some(upstream_id) = &session.upstream_id {
            self.close_upstream(&session.connector_id, upstream_id.clone());
        }
    }

    /// Queues the DELETE of the upstream session `upstream_id` of `connector_id`.
    pub fn close_upstream(&self, connector_id: &str, upstream_id: HeaderValue) {
        let close = UpstreamClose {
            connector_id: connector_id.to_owned(),
            upstream_id,
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(close) {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    "the upstream session closer is behind; best-effort DELETEs were dropped"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 10, defect 6: ending very many sessions at once queues at most [`QUEUE`]
    /// DELETEs and drops (and counts) the rest, whatever the task serving the queue does.
    #[test]
    fn the_queue_is_bounded() {
        let (closer, mut closing) = channel();
        for n in 0..(QUEUE + 500) {
            closer.close_upstream("c", HeaderValue::from(n));
        }
        assert_eq!(closer.dropped.load(Ordering::Relaxed), 500);
        let mut queued = 0;
        while closing.rx.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(queued, QUEUE);
    }
}
