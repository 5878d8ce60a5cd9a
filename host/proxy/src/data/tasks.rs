//! The data plane's background work, started by `app::start` once the state exists:
//! ending idle sessions, and sending the upstream DELETEs queued by the closer. Each task
//! holds the state weakly and stops once the server is gone.

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;

use crate::clock::now_secs;
use crate::data::closer::{Closing, UpstreamClose};
use crate::data::upstream;
use crate::state::AppState;

/// How long a best-effort upstream DELETE may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Ends sessions idle for longer than the configured timeout (FR-28).
pub fn spawn_reaper(state: &Arc<AppState>) {
    let idle = state.config.sessions.idle_timeout_secs.max(1);
    let every = Duration::from_secs((idle / 4).clamp(1, 60));
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            ticker.tick().await;
            let Some(state) = weak.upgrade() else { return };
            let reaped = state.data.end_idle_sessions(now_secs() - idle as i64);
            if reaped > 0 {
                tracing::info!(sessions = reaped, "ended idle sessions");
            }
        }
    });
}

/// Sends the best-effort upstream DELETE of every session that ends without the
/// client's own DELETE: run finished, idle timeout.
pub fn spawn_closer(mut closing: Closing, state: &Arc<AppState>) {
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        while let Some(close) = closing.rx.recv().await {
            let Some(state) = weak.upgrade() else { return };
            tokio::spawn(async move { close_upstream(&state, close).await });
        }
    });
}

async fn close_upstream(state: &AppState, close: UpstreamClose) {
    let Ok(Some(connector)) = state.store.connector(&close.connector_id).await else {
        return;
    };
    let sent = tokio::time::timeout(
        CLOSE_TIMEOUT,
        upstream::send_own(
            state,
            &connector,
            Method::DELETE,
            Some(&close.upstream_id),
            None,
        ),
    )
    .await;
    if !matches!(sent, Ok(Ok(_))) {
        tracing::debug!(connector = %connector.id, "best-effort upstream DELETE failed");
    }
}
