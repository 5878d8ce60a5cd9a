//! Everything a policy plugin needs: the typed records of the contract, the [`Policy`]
//! trait to implement and shorthands for answers.

use crate::bindings::policy::exports::portcullis::plugin::policy::Guest;
pub use crate::bindings::policy::exports::portcullis::plugin::policy::PolicyInfo;
pub use crate::bindings::policy::portcullis::plugin::types::{
    Connector, ConnectorField, ConnectorStatus, Decision, DecisionContext, Denial, DenyCode,
    FieldKind, McpRequest, PluginInfo, Run, ServerRule, Tool, ToolHints, ToolRule, ToolSet,
};

/// A policy plugin: the decisions of the request path. Only `describe` is required;
/// a policy implements the decisions it makes and inherits the rest, which allow.
/// In a chain the host combines policies deny-overrides and intersects their tool
/// sets, so an inherited answer never widens what another policy narrows.
pub trait Policy {
    /// The plugin's name and version, and whether `request` reads tool arguments.
    fn describe() -> PolicyInfo;

    /// May this run use this connector at all? Inherited: allow.
    fn access(_ctx: DecisionContext) -> Decision {
        Decision::Allow
    }

    /// May this client-to-server message pass? Inherited: allow.
    fn request(_ctx: DecisionContext, _request: McpRequest) -> Decision {
        Decision::Allow
    }

    /// Which tools of the connector's snapshot the run may see and call. Inherited:
    /// all of them.
    fn permitted_tools(_ctx: DecisionContext) -> ToolSet {
        ToolSet::All
    }
}

/// The bridge [`export_policy!`](crate::export_policy) relies on: every [`Policy`] is
/// the component's `policy` export.
impl<T: Policy> Guest for T {
    fn describe() -> PolicyInfo {
        <T as Policy>::describe()
    }
    fn access(ctx: DecisionContext) -> Decision {
        <T as Policy>::access(ctx)
    }
    fn request(ctx: DecisionContext, request: McpRequest) -> Decision {
        <T as Policy>::request(ctx, request)
    }
    fn permitted_tools(ctx: DecisionContext) -> ToolSet {
        <T as Policy>::permitted_tools(ctx)
    }
}

/// A policy's self-description for a plugin that ignores tool arguments.
pub fn info(name: &str, version: &str) -> PolicyInfo {
    PolicyInfo {
        plugin: PluginInfo {
            name: name.to_owned(),
            version: version.to_owned(),
        },
        reads_arguments: false,
    }
}

/// A deny answer.
pub fn deny(code: DenyCode, reason: &str, message: impl Into<String>) -> Decision {
    Decision::Deny(Denial {
        code,
        reason: reason.to_owned(),
        message: message.into(),
    })
}
