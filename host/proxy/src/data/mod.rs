//! The data plane: `POST|GET|DELETE /mcp/{connectorId}`, a transparent MCP Streamable
//! HTTP proxy whose every decision is asked of the plugin runtime.

use std::sync::Arc;

use axum::Router;

use crate::app::AppState;

/// The proxy sessions of every run, so that finishing a run can close them.
#[derive(Default)]
pub struct Sessions {}

impl Sessions {
    /// Ends every session of `run_id`: closes open streams and sends DELETE upstream
    /// (best effort). Called when a run finishes.
    pub async fn close_run(&self, _run_id: &str) {}
}

/// The routes of the data plane.
pub fn router(_state: Arc<AppState>) -> Router {
    Router::new()
}
