//! The data plane: `POST|GET|DELETE /mcp/{connectorId}`, a transparent MCP Streamable
//! HTTP proxy whose every decision is asked of the plugin runtime.
//!
//! | module | owns |
//! |---|---|
//! | `handler` | each verb as a sequence of named steps |
//! | `gate` | the checks before anything is forwarded: Origin, run token, version, access, session |
//! | `jsonrpc` | parsing and classifying one client message, strictly; comparing ids |
//! | `catalogue` | the proxy's own answers: the error catalogue |
//! | `decisions` | asking the plugin chains, and memoizing their pure answers |
//! | `live_hints` | the live `tools/list` annotations that differ from the snapshot, asked of the chains again |
//! | `listings` | per connector, the last `tools/list` result and its filtered form, reused for the same text |
//! | `upstream` | building and sending the upstream request (header policy, injection) |
//! | `relay` | streaming the answer back, bounded, filtered and redacted |
//! | `sse` | reading and writing event streams, bounded |
//! | `plane` | [`DataPlane`]: what is kept between requests, as parts with one job each |
//! | `session` | the proxy session table |
//! | `shared_session` | session ids any replica can open (sealed by the vault) |
//! | `runs` | the live runs: cancellation, counters, rate limit, tombstones |
//! | `slots` | the open streams and due `tools/list` answers a run holds, counted |
//! | `bucket` | the token bucket of the rate limits |
//! | `cache` | the records kept between requests, and the map every cache is made of |
//! | `generation` | the versions that keep a cache fill from undoing a revocation |
//! | `audit` | the batched audit writer |
//! | `closer` | the queue of best-effort upstream session DELETEs |
//! | `tasks` | the background work: idle reaper, expiry, upstream closer |
//!
//! Building the router has no side effect: every part exists before the first request
//! (`app::start` builds them and starts `tasks`). The control plane never reaches into
//! these modules; it tells the data plane what changed through
//! [`crate::revocation::Revocations`], which [`DataPlane`] implements, and hands over a
//! run it has just created ([`DataPlane::run_created`]).
//!
//! The proxy is written on axum and reqwest rather than on an MCP SDK's server: it must
//! pass messages it does not know, keep the upstream's session semantics and stream SSE
//! without re-encoding what it does not inspect.

mod audit;
mod bucket;
mod cache;
mod catalogue;
mod closer;
mod decisions;
mod gate;
mod generation;
mod handler;
mod jsonrpc;
mod listings;
mod live_hints;
pub mod plane;
mod relay;
mod runs;
mod session;
mod shared_session;
mod slots;
mod sse;
pub(crate) mod tasks;
mod upstream;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::any;

pub(crate) use audit::AuditSink;
pub use plane::{DataPlane, Footprint};

use crate::state::AppState;

/// The routes of the data plane.
pub fn router(state: Arc<AppState>) -> Router {
    let verbs = any(dispatch);
    Router::new()
        .route("/mcp/{connector_id}", verbs.clone())
        .route("/mcp/{connector_id}/", verbs)
        .with_state(state)
}

async fn dispatch(
    method: Method,
    state: State<Arc<AppState>>,
    path: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match method {
        Method::POST => handler::post(state, path, headers, body).await,
        Method::GET => handler::get(state, path, headers).await,
        Method::DELETE => handler::delete(state, path, headers).await,
        _ => handler::other_method().await,
    }
}
