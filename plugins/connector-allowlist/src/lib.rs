//! `connector-allowlist`: layer 1, the connector owner's allowlist.
//!
//! The permitted set is the discovery snapshot intersected with the allowlist (every
//! snapshot tool when there is none). A `tools/call` for a tool outside it is denied, and
//! a tool the upstream added after authorization is never permitted: it is not in the
//! snapshot until the owner re-authorizes.

use portcullis_sdk::policy::*;
use portcullis_sdk::rules;

pub struct ConnectorAllowlist;

impl Policy for ConnectorAllowlist {
    fn describe() -> PolicyInfo {
        info("connector-allowlist", env!("CARGO_PKG_VERSION"))
    }

    fn request(ctx: DecisionContext, request: McpRequest) -> Decision {
        if request.method != "tools/call" {
            return Decision::Allow;
        }
        let Some(tool) = request.tool else {
            return deny(
                DenyCode::ToolNotPermitted,
                "missing_tool_name",
                "tools/call without params.name",
            );
        };
        match rules::outside_layer1(&ctx.connector, &tool) {
            Some((reason, message)) => deny(DenyCode::ToolNotPermitted, reason, message),
            None => Decision::Allow,
        }
    }

    fn permitted_tools(ctx: DecisionContext) -> ToolSet {
        ToolSet::Only(
            rules::layer1(&ctx.connector)
                .map(|t| t.name.clone())
                .collect(),
        )
    }
}

portcullis_sdk::export_policy!(ConnectorAllowlist);

#[cfg(test)]
mod tests;
