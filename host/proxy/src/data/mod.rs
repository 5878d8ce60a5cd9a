//! The data plane: `POST|GET|DELETE /mcp/{connectorId}`, a transparent MCP Streamable
//! HTTP proxy whose every decision is asked of the plugin runtime.
//!
//! | module | owns |
//! |---|---|
//! | `handler` | the order of checks for each verb |
//! | `jsonrpc` | classifying a client message; the proxy's error catalogue |
//! | `policy` | asking the plugin chain, and memoizing pure answers |
//! | `session` | proxy sessions, run-token and record caches, run shutdown |
//! | `upstream` | building and sending the upstream request (header policy, injection) |
//! | `relay` | streaming the answer back, filtered and redacted |
//! | `audit` | the batched audit writer |
//!
//! The proxy is written on axum and reqwest rather than on an MCP SDK's server: it must
//! pass messages it does not know, keep the upstream's session semantics and stream SSE
//! without re-encoding what it does not inspect.

mod audit;
mod gate;
mod handler;
mod jsonrpc;
mod policy;
mod relay;
mod session;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::routing::any;
use tokio::sync::mpsc;

pub use session::Sessions;

use crate::app::AppState;

/// The routes of the data plane. Also starts its background tasks: the audit writer, the
/// idle-session reaper and the upstream session closer.
pub fn router(state: Arc<AppState>) -> Router {
    state
        .sessions
        .set_audit(audit::AuditSink::spawn(state.store.clone()));
    state.sessions.set_closer(spawn_closer(state.clone()));
    spawn_reaper(state.clone());

    let verbs = any(dispatch);
    Router::new()
        .route("/mcp/{connector_id}", verbs.clone())
        .route("/mcp/{connector_id}/", verbs)
        .layer(DefaultBodyLimit::max(state.config.http.max_body_bytes))
        .with_state(state)
}

async fn dispatch(
    method: Method,
    state: axum::extract::State<Arc<AppState>>,
    path: axum::extract::Path<String>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> axum::response::Response {
    match method {
        Method::POST => handler::post(state, path, headers, body).await,
        Method::GET => handler::get(state, path, headers).await,
        Method::DELETE => handler::delete(state, path, headers).await,
        _ => handler::other_method().await,
    }
}

/// Ends sessions idle for longer than the configured timeout (FR-28).
fn spawn_reaper(state: Arc<AppState>) {
    let idle = state.config.sessions.idle_timeout_secs.max(1);
    let every = Duration::from_secs((idle / 4).clamp(1, 60));
    let weak = Arc::downgrade(&state);
    drop(state);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            ticker.tick().await;
            let Some(state) = weak.upgrade() else { return };
            let cutoff = audit::now_ms() / 1000 - idle as i64;
            let reaped = state.sessions.reap_idle(cutoff);
            if reaped > 0 {
                tracing::info!(sessions = reaped, "ended idle sessions");
            }
        }
    });
}

/// Sends the best-effort upstream DELETE of every session that ends without the
/// client's own DELETE: run finished, idle timeout.
fn spawn_closer(state: Arc<AppState>) -> mpsc::UnboundedSender<session::UpstreamClose> {
    let (tx, mut rx) = mpsc::unbounded_channel::<session::UpstreamClose>();
    let weak = Arc::downgrade(&state);
    drop(state);
    tokio::spawn(async move {
        while let Some(close) = rx.recv().await {
            let Some(state) = weak.upgrade() else { return };
            tokio::spawn(async move {
                let Ok(Some(connector)) = state.store.connector(&close.connector_id).await else {
                    return;
                };
                let mut headers = HeaderMap::new();
                headers.insert(
                    header::ACCEPT,
                    HeaderValue::from_static("application/json, text/event-stream"),
                );
                let sent = tokio::time::timeout(
                    Duration::from_secs(5),
                    upstream::send(
                        &state,
                        &connector,
                        Method::DELETE,
                        &headers,
                        Some(&close.upstream_id),
                        None,
                    ),
                )
                .await;
                if !matches!(sent, Ok(Ok(_))) {
                    tracing::debug!(connector = %connector.id, "best-effort upstream DELETE failed");
                }
            });
        }
    });
    tx
}
