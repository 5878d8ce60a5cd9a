//! The data plane's background work, started by `app::start` once the state exists:
//! ending idle sessions, ending runs that passed their lifetime, and sending the upstream
//! DELETEs queued by the closer ([`closer::CONCURRENT`] at a time). Each task holds the
//! state weakly and stops once the server is gone.

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use futures_util::StreamExt;

use crate::clock::now_secs;
use crate::data::closer::{self, Closing, UpstreamClose};
use crate::data::upstream;
use crate::state::AppState;

/// How long a best-effort upstream DELETE may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often runs past their lifetime are looked for.
const EXPIRY_EVERY: Duration = Duration::from_secs(1);

/// Ends sessions idle for longer than the configured timeout (FR-28), and every session
/// and stream of a run that passed `runs.max_lifetime_secs`.
pub fn spawn_reaper(state: &Arc<AppState>) {
    let idle = state.config.sessions.idle_timeout_secs.max(1);
    let idle_every = (idle / 4).clamp(1, 60);
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(EXPIRY_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        for tick in 0u64.. {
            ticker.tick().await;
            let Some(state) = weak.upgrade() else { return };
            let now = now_secs();
            let expired = state.data.end_expired_runs(now);
            if expired > 0 {
                tracing::info!(runs = expired, "ended the sessions of expired runs");
            }
            if tick % idle_every == 0 {
                let reaped = state.data.end_idle_sessions(now - idle as i64);
                if reaped > 0 {
                    tracing::info!(sessions = reaped, "ended idle sessions");
                }
            }
        }
    });
}

/// Sends the best-effort upstream DELETE of every session that ends without the
/// client's own DELETE: run finished or expired, idle timeout, connector changed.
pub fn spawn_closer(closing: Closing, state: &Arc<AppState>) {
    let weak = Arc::downgrade(state);
    let closes = tokio_stream_of(closing);
    tokio::spawn(
        closes.for_each_concurrent(closer::CONCURRENT, move |close| {
            let weak = weak.clone();
            async move {
                if let Some(state) = weak.upgrade() {
                    close_upstream(&state, close).await;
                }
            }
        }),
    );
}

fn tokio_stream_of(mut closing: Closing) -> impl futures_util::Stream<Item = UpstreamClose> {
    futures_util::stream::poll_fn(move |cx| closing.rx.poll_recv(cx))
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
