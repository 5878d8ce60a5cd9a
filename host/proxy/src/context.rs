//! The records plugins decide on, built from what the store holds.
//!
//! A decision context is a pure function of a run, the connector fields it started with
//! and a connector; the data plane computes it once per session and again only when the
//! connector's revision changes, and the control plane computes the same one to check a
//! run's input for eligibility, so both planes always agree. The fields are the run's
//! own copy (spec FR-6: a later change of the actor's schema neither widens nor narrows
//! a live run); only a run started before runs kept them uses its actor's.

use portcullis_runtime as rt;
use serde_json::Value;

use crate::store::{ActorRecord, ConnectorRecord, RunRecord};

pub fn decision_context(
    run: &RunRecord,
    actor: &ActorRecord,
    connector: &ConnectorRecord,
) -> rt::DecisionContext {
    let fields = run
        .connector_fields
        .as_deref()
        .unwrap_or(&actor.connector_fields);
    rt::DecisionContext {
        run: rt::Run {
            id: run.id.clone(),
            actor: run.actor.clone(),
            user: run.user.clone(),
            fields: fields
                .iter()
                .map(|field| rt::ConnectorField {
                    name: field.name.clone(),
                    kind: field.kind,
                    rules: field.rules.clone(),
                    provided: provided_ids(run.input.get(&field.name)),
                })
                .collect(),
        },
        connector: plugin_view(connector),
    }
}

/// The connector ids an input value gives: one for a string, each string of an array.
pub fn provided_ids(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(id)) => vec![id.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The connector as plugins see it: no credential, no configuration, no timestamps.
pub fn plugin_view(connector: &ConnectorRecord) -> rt::Connector {
    rt::Connector {
        id: connector.id.clone(),
        owner: connector.owner.clone(),
        server_url: connector.server_url.clone(),
        provider: connector.provider.clone(),
        status: connector.status,
        tools: connector
            .tools
            .iter()
            .map(|tool| rt::Tool {
                name: tool.name.clone(),
                hints: tool_hints(tool.annotations.as_ref()),
            })
            .collect(),
        allowed_tools: connector.allowed_tools.clone(),
    }
}

/// The four MCP hints of an `annotations` object; anything that is not a boolean counts
/// as not annotated, so the MCP default applies.
pub fn tool_hints(annotations: Option<&Value>) -> rt::ToolHints {
    let hint = |key: &str| {
        annotations
            .and_then(|a| a.get(key))
            .and_then(Value::as_bool)
    };
    rt::ToolHints {
        read_only: hint("readOnlyHint"),
        destructive: hint("destructiveHint"),
        idempotent: hint("idempotentHint"),
        open_world: hint("openWorldHint"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn provided_ids_from_string_and_array_fields() {
        assert_eq!(provided_ids(Some(&json!("conn_1"))), ["conn_1"]);
        assert_eq!(
            provided_ids(Some(&json!(["conn_1", 7, "conn_2"]))),
            ["conn_1", "conn_2"]
        );
        assert!(provided_ids(Some(&json!({"id": "conn_1"}))).is_empty());
        assert!(provided_ids(None).is_empty());
    }

    #[test]
    fn hints_ignore_non_boolean_values() {
        let hints = tool_hints(Some(
            &json!({"readOnlyHint": true, "destructiveHint": "no"}),
        ));
        assert_eq!(hints.read_only, Some(true));
        assert_eq!(hints.destructive, None);
        assert_eq!(tool_hints(None), rt::ToolHints::default());
    }
}
