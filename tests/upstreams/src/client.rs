//! An rmcp client for tests: connects to an upstream (or to the proxy) and keeps every
//! progress notification it receives, with its arrival time, so a test can check that
//! progress reached the client before the result did.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use rmcp::{
    ClientHandler, RoleClient, ServiceExt,
    model::{CallToolResult, JsonObject, ProgressNotificationParam},
    service::{ClientInitializeError, NotificationContext, RunningService},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};

/// A connected rmcp client; `client.service().progress()` reads what it received.
pub type McpClient = RunningService<RoleClient, ProgressLog>;

/// One `notifications/progress` as the client received it.
#[derive(Clone, Debug)]
pub struct ProgressEvent {
    pub at: Instant,
    pub params: ProgressNotificationParam,
}

/// The client handler: declares no capabilities and logs progress notifications.
#[derive(Clone, Debug, Default)]
pub struct ProgressLog(Arc<Mutex<Vec<ProgressEvent>>>);

impl ProgressLog {
    /// Every progress notification received so far, in arrival order.
    pub fn progress(&self) -> Vec<ProgressEvent> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ClientHandler for ProgressLog {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let event = ProgressEvent {
            at: Instant::now(),
            params,
        };
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(event);
    }
}

/// Connects and completes the `initialize` handshake, sending `Authorization: Bearer <bearer>`
/// on every request when a bearer is given (a run token, when the URL is the proxy's).
pub async fn connect(url: &str, bearer: Option<&str>) -> Result<McpClient, ClientInitializeError> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url);
    if let Some(bearer) = bearer {
        config = config.auth_header(bearer);
    }
    ProgressLog::default()
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
}

/// The text content of a tool result, joined with newlines.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Tool arguments from a `json!({...})` object. Panics on anything but an object.
pub fn arguments(value: serde_json::Value) -> JsonObject {
    match value {
        serde_json::Value::Object(map) => map,
        other => panic!("tool arguments must be a JSON object, not {other}"),
    }
}
