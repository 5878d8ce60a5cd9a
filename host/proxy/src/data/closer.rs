//! Closing upstream sessions the client did not end itself (its run finished, or the
//! session sat idle): a queue of best-effort `DELETE`s, sent by a background task that
//! `app::start` starts (`tasks`), so ending a session never waits on an upstream.

use axum::http::HeaderValue;
use tokio::sync::mpsc;

use crate::data::session::Session;

/// An upstream session to end with a best-effort DELETE.
pub struct UpstreamClose {
    pub connector_id: String,
    pub upstream_id: HeaderValue,
}

/// The sending end, kept by the data plane.
pub struct Closer {
    tx: mpsc::UnboundedSender<UpstreamClose>,
}

/// The receiving end, handed to the task that sends the DELETEs.
pub struct Closing {
    pub rx: mpsc::UnboundedReceiver<UpstreamClose>,
}

pub fn channel() -> (Closer, Closing) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Closer { tx }, Closing { rx })
}

impl Closer {
    /// Queues the DELETE of `session`'s upstream session, if it has one.
    pub fn close(&self, session: &Session) {
        if let Some(upstream_id) = &session.upstream_id {
            // Only fails once the task has stopped, when the server is shutting down.
            let _ = self.tx.send(UpstreamClose {
                connector_id: session.connector_id.clone(),
                upstream_id: upstream_id.clone(),
            });
        }
    }
}
