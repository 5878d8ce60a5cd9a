//! The cancellation token of each run the data plane serves.
//!
//! Every session and every stream of a run is cancelled through a child of its run's
//! token, so finishing the run ends them all at once, including streams that belong to
//! no session (2026-07-28 requests).

use std::collections::HashMap;
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct RunTokens {
    tokens: Mutex<HashMap<String, CancellationToken>>,
}

impl RunTokens {
    /// A new child of `run_id`'s token, for one session or stream.
    pub fn child(&self, run_id: &str) -> CancellationToken {
        self.tokens
            .lock()
            .expect("run tokens")
            .entry(run_id.to_owned())
            .or_default()
            .child_token()
    }

    /// Cancels everything of `run_id`.
    pub fn finish(&self, run_id: &str) {
        if let Some(token) = self.tokens.lock().expect("run tokens").remove(run_id) {
            token.cancel();
        }
    }
}
