//! The tools the rmcp upstreams offer, and the live set a test can change while one runs.

use std::sync::{Arc, RwLock, RwLockReadGuard};

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::json;

/// Lists channels. `readOnlyHint: true`.
pub fn list_channels() -> Tool {
    Tool::new(
        "list_channels",
        "List the channels of the workspace",
        schema(json!({"limit": {"type": "integer"}}), &[]),
    )
    .annotate(ToolAnnotations::new().read_only(true))
}

/// Reads one channel. `readOnlyHint: true`.
pub fn get_channel() -> Tool {
    Tool::new(
        "get_channel",
        "Read one channel",
        schema(json!({"channel": {"type": "string"}}), &["channel"]),
    )
    .annotate(ToolAnnotations::new().read_only(true))
}

/// Posts a message: `readOnlyHint: false`, `destructiveHint: false` (additive only).
pub fn send_message() -> Tool {
    Tool::new(
        "send_message",
        "Post a message to a channel",
        schema(
            json!({"channel": {"type": "string"}, "text": {"type": "string"}}),
            &["channel", "text"],
        ),
    )
    .annotate(ToolAnnotations::new().read_only(false).destructive(false))
}

/// Deletes a channel: `readOnlyHint: false`, `destructiveHint: true`.
pub fn delete_channel() -> Tool {
    Tool::new(
        "delete_channel",
        "Delete a channel and its history",
        schema(json!({"channel": {"type": "string"}}), &["channel"]),
    )
    .annotate(ToolAnnotations::new().read_only(false).destructive(true))
}

/// Archives a channel: `readOnlyHint: false`, `destructiveHint: false`, `idempotentHint: true`.
pub fn archive_channel() -> Tool {
    Tool::new(
        "archive_channel",
        "Archive a channel",
        schema(json!({"channel": {"type": "string"}}), &["channel"]),
    )
    .annotate(
        ToolAnnotations::new()
            .read_only(false)
            .destructive(false)
            .idempotent(true),
    )
}

/// Answers its `text` argument as text content. No annotations, so every hint takes its
/// spec default (`readOnlyHint: false`, `destructiveHint: true`).
pub fn echo() -> Tool {
    Tool::new(
        "echo",
        "Echo the text argument",
        schema(json!({"text": {"type": "string"}}), &["text"]),
    )
}

/// Answers with the `Authorization` header the upstream received (an error result if none).
pub fn whoami() -> Tool {
    Tool::new(
        "whoami",
        "Return the Authorization header this server received",
        schema(json!({}), &[]),
    )
    .annotate(ToolAnnotations::new().read_only(true))
}

/// Sends `count` (default 3) `notifications/progress` with the request's progressToken,
/// `delay_ms` (default 20) apart, then its result `counted N`.
pub fn slow_count() -> Tool {
    Tool::new(
        "slow_count",
        "Count slowly, reporting progress",
        schema(
            json!({
                "count": {"type": "integer", "minimum": 0},
                "delay_ms": {"type": "integer", "minimum": 0}
            }),
            &[],
        ),
    )
    .annotate(ToolAnnotations::new().read_only(true))
}

/// `tool_000`, `tool_001`, ...: `total` read-only tools for paging tests.
pub fn numbered(total: usize) -> Vec<Tool> {
    (0..total)
        .map(|i| {
            Tool::new(
                format!("tool_{i:03}"),
                format!("Numbered tool {i}"),
                schema(json!({}), &[]),
            )
            .annotate(ToolAnnotations::new().read_only(true))
        })
        .collect()
}

/// The five channel tools and `echo`, in that order.
pub fn channel_tools() -> Vec<Tool> {
    vec![
        list_channels(),
        get_channel(),
        send_message(),
        delete_channel(),
        archive_channel(),
        echo(),
    ]
}

fn schema(properties: serde_json::Value, required: &[&str]) -> JsonObject {
    let mut schema = JsonObject::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), properties);
    if !required.is_empty() {
        schema.insert("required".into(), json!(required));
    }
    schema
}

/// The tools an upstream lists and answers, shared with the test that started it.
///
/// Clones share one set: a test keeps a clone, starts an upstream with another, and later
/// calls [`ToolSet::add`] to make a tool appear upstream after the connector was authorized.
/// Listing and calling always see the set as it is at that moment.
#[derive(Clone, Debug)]
pub struct ToolSet(Arc<RwLock<Vec<Tool>>>);

impl ToolSet {
    pub fn new(tools: Vec<Tool>) -> Self {
        Self(Arc::new(RwLock::new(tools)))
    }

    /// The channel tools and `echo` ([`channel_tools`]).
    pub fn channels() -> Self {
        Self::new(channel_tools())
    }

    /// Adds `tool`, replacing any tool of the same name.
    pub fn add(&self, tool: Tool) {
        let mut tools = self.0.write().unwrap_or_else(|p| p.into_inner());
        tools.retain(|t| t.name != tool.name);
        tools.push(tool);
    }

    /// Removes the tool called `name`; listing and calling it then fail as for any unknown tool.
    pub fn remove(&self, name: &str) {
        let mut tools = self.0.write().unwrap_or_else(|p| p.into_inner());
        tools.retain(|t| t.name != name);
    }

    pub fn names(&self) -> Vec<String> {
        self.read().iter().map(|t| t.name.to_string()).collect()
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Vec<Tool>> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.read().iter().any(|t| t.name == name)
    }
}
