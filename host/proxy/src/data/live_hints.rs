//! The tool annotations of the upstream's live `tools/list` answers, where they differ
//! from the discovery snapshot's (spec 4.4.10: a tool must pass the rules' hints against
//! both, conservatively).
//!
//! The host never judges a hint itself. The relay records, per connector, the hints of
//! each snapshot tool whose live annotations differ from the snapshot's, and the plugin
//! chains are asked again with a decision context that carries them: the
//! `permitted-tools` chain for the list being relayed (a tool it no longer permits is
//! hidden), the request chain for a later `tools/call` of such a tool (denied as any tool
//! outside the permitted set). A tool whose live annotations match the snapshot again is
//! dropped from the record, so it is judged by the snapshot alone.
//!
//! Bounded: one entry per connector, holding only tools of its snapshot, used only while
//! the connector's revision is the one it was recorded for, and forgotten when the
//! connector changes. Nothing here is keyed by what a run chose.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use portcullis_model::{Decision, DecisionContext, McpRequest, ToolHints, ToolSet, Verdict};
use portcullis_runtime::Runtime;

use crate::data::decisions::Asked;
use crate::store::ConnectorRecord;

/// The live hints that differ from the snapshot, per connector.
#[derive(Default)]
pub struct LiveHints {
    table: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    revision: i64,
    differing: HashMap<String, ToolHints>,
}

impl LiveHints {
    /// Records what `tools` (the names and hints of a live `tools/list` answer's
    /// entries) say of the hints of `connector`'s snapshot tools. Answers the context to
    /// ask the chains with when a tool of this answer has hints that differ from `ctx`'s
    /// (the snapshot's).
    pub fn observe<'t>(
        &self,
        connector: &ConnectorRecord,
        ctx: &DecisionContext,
        tools: impl IntoIterator<Item = (&'t str, ToolHints)>,
    ) -> Option<Arc<DecisionContext>> {
        let mut differs = false;
        let mut table = self.lock();
        let entry = table.entry(connector.id.clone()).or_insert_with(|| Entry {
            revision: connector.revision,
            differing: HashMap::new(),
        });
        if entry.revision != connector.revision {
            *entry = Entry {
                revision: connector.revision,
                differing: HashMap::new(),
            };
        }
        for (name, live) in tools {
            let Some(snapshot) = ctx.connector.tools.iter().find(|t| t.name == name) else {
                continue;
            };
            if live == snapshot.hints {
                entry.differing.remove(name);
            } else {
                differs = true;
                entry.differing.insert(name.to_owned(), live);
            }
        }
        if entry.differing.is_empty() {
            table.remove(&connector.id);
        }
        drop(table);
        differs
            .then(|| self.context(connector, ctx, None))
            .flatten()
    }

    /// `ctx` with the live hints known for `connector` in place of the snapshot's, when
    /// any are known (for `tool`, when one is given).
    pub fn context(
        &self,
        connector: &ConnectorRecord,
        ctx: &DecisionContext,
        tool: Option<&str>,
    ) -> Option<Arc<DecisionContext>> {
        let table = self.lock();
        let entry = table
            .get(&connector.id)
            .filter(|e| e.revision == connector.revision)?;
        if tool.is_some_and(|tool| !entry.differing.contains_key(tool)) {
            return None;
        }
        let mut live = ctx.clone();
        for snapshot in &mut live.connector.tools {
            if let Some(hints) = entry.differing.get(&snapshot.name) {
                snapshot.hints = hints.clone();
            }
        }
        Some(Arc::new(live))
    }

    /// Forgets what was seen of a connector that changed.
    pub fn forget(&self, connector_id: &str) {
        self.lock().remove(connector_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The permitted-tools chain's answer on the live hints in `ctx` (a fault permits
/// nothing).
pub async fn permitted(runtime: &Runtime, ctx: Arc<DecisionContext>) -> ToolSet {
    runtime.permitted_tools(ctx).await.value
}

/// The request chain's decision on `asked` with the live hints in `ctx`; never memoized.
pub async fn request(
    runtime: &Runtime,
    ctx: Arc<DecisionContext>,
    asked: Asked<'_>,
) -> Verdict<Decision> {
    runtime
        .request(
            ctx,
            McpRequest {
                method: asked.method.to_owned(),
                tool: asked.tool.map(str::to_owned),
                arguments: asked.arguments.map(|a| a.to_string()),
                protocol_version: asked.protocol_version.to_owned(),
            },
        )
        .await
}
