//! `declared-tools`: layer 2, what the actor declared in its input schema.
//!
//! * The permitted set is the union of the ceilings of every `mcpServers` rule that
//!   matches the connector, over every input field that carries it (specification
//!   section 4.4, steps 3 to 9). A `tools/call` outside it is denied.
//! * Methods: the lifecycle (`initialize`, `ping`, `server/discover`), `tools/list`,
//!   `tools/call`, notifications, responses and `subscriptions/listen` (MCP 2026-07-28's
//!   replacement for the notification stream of `GET`) pass. Everything else (resources, prompts,
//!   completion, logging, tasks, unknown methods) is denied unless the operator's settings
//!   name it in `allow_methods` (patterns with `*` and `?`), for example
//!   `{ "allow_methods": ["resources/*", "prompts/*"] }`.

use portcullis_sdk::policy::*;
use portcullis_sdk::{glob, rules};
use serde::Deserialize;

/// Methods that pass without operator settings.
const DEFAULT_METHODS: [&str; 6] = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "server/discover",
    "subscriptions/listen",
];

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    allow_methods: Vec<String>,
}

impl Settings {
    /// serde would also read the struct from a JSON array (`[["resources/*"]]`); the
    /// contract says settings are an object, so anything else is refused.
    fn parse(json: &str) -> Result<Self, serde_json::Error> {
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)?;
        serde_json::from_value(serde_json::Value::Object(object))
    }
}

pub struct DeclaredTools;

impl DeclaredTools {
    fn method_allowed(method: &str, settings: &Settings) -> bool {
        method.is_empty()
            || method.starts_with("notifications/")
            || DEFAULT_METHODS.contains(&method)
            || settings
                .allow_methods
                .iter()
                .any(|p| glob::matches(p, method))
    }
}

impl Policy for DeclaredTools {
    fn describe() -> PolicyInfo {
        info("declared-tools", env!("CARGO_PKG_VERSION"))
    }

    fn request(ctx: DecisionContext, request: McpRequest) -> Decision {
        let settings = match Settings::parse(&ctx.settings) {
            Ok(settings) => settings,
            Err(e) => {
                return deny(
                    DenyCode::MethodNotAllowed,
                    "invalid_settings",
                    format!("declared-tools settings are invalid: {e}"),
                );
            }
        };
        if !Self::method_allowed(&request.method, &settings) {
            return deny(
                DenyCode::MethodNotAllowed,
                "method_not_allowed",
                format!("method {} is not allowed by policy", request.method),
            );
        }
        if request.method != "tools/call" {
            return Decision::Allow;
        }
        match request.tool {
            None => deny(
                DenyCode::ToolNotPermitted,
                "missing_tool_name",
                "tools/call without params.name",
            ),
            Some(tool) if rules::permits(&ctx, &tool) => Decision::Allow,
            // The declaration only narrows layer 1: a tool outside it is denied for that
            // cause, so the run learns the same reason whichever plugin the chain asks first.
            Some(tool) => match rules::outside_layer1(&ctx.connector, &tool) {
                Some((reason, message)) => deny(DenyCode::ToolNotPermitted, reason, message),
                None => deny(
                    DenyCode::ToolNotPermitted,
                    "not_declared",
                    format!("tool {tool} is outside what the actor declared"),
                ),
            },
        }
    }

    fn permitted_tools(ctx: DecisionContext) -> ToolSet {
        ToolSet::Only(rules::permitted(&ctx).into_iter().collect())
    }
}

portcullis_sdk::export_policy!(DeclaredTools);

#[cfg(test)]
mod tests;
