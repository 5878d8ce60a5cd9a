//! Host-side builders for tests (feature `fixtures`): the records the proxy hands the
//! runtime, built in a line. This mirrors `portcullis_sdk::testing`, which builds the same
//! records on the plugin's side, so a test reads the same whichever side it is on.
//!
//! ```
//! use portcullis_model::fixtures::*;
//!
//! let ctx = context()
//!     .connector(connector("conn_1", "alice", "https://mcp.slack.com/mcp")
//!         .tool(tool("list_channels").read_only())
//!         .tool(tool("send_message")))
//!     .field(single("slack").rule(rule("https://mcp.slack.com/mcp").required(["list_*"])))
//!     .provide("slack", "conn_1")
//!     .build();
//! assert_eq!(ctx.run.fields[0].provided, ["conn_1"]);
//! ```

use crate::{
    Connector, ConnectorField, ConnectorStatus, CredentialKind, DecisionContext, FieldKind,
    McpRequest, PlanRequest, Run, ServerRule, Tool, ToolHints, ToolRule,
};

fn owned(names: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    names.into_iter().map(Into::into).collect()
}

/// A tool of the snapshot with no annotations.
pub fn tool(name: &str) -> ToolBuilder {
    ToolBuilder(Tool {
        name: name.to_owned(),
        hints: ToolHints::default(),
    })
}

pub struct ToolBuilder(Tool);

impl ToolBuilder {
    pub fn read_only(mut self) -> Self {
        self.0.hints.read_only = Some(true);
        self
    }
    pub fn hints(
        mut self,
        read_only: Option<bool>,
        destructive: Option<bool>,
        idempotent: Option<bool>,
        open_world: Option<bool>,
    ) -> Self {
        self.0.hints = ToolHints {
            read_only,
            destructive,
            idempotent,
            open_world,
        };
        self
    }
    pub fn build(self) -> Tool {
        self.0
    }
}

/// An authorized `bearer` connector with an empty snapshot and no allowlist.
pub fn connector(id: &str, owner: &str, server_url: &str) -> ConnectorBuilder {
    ConnectorBuilder(Connector {
        id: id.to_owned(),
        owner: owner.to_owned(),
        server_url: server_url.to_owned(),
        provider: "bearer".to_owned(),
        status: ConnectorStatus::Authorized,
        tools: Vec::new(),
        allowed_tools: None,
    })
}

pub struct ConnectorBuilder(Connector);

impl ConnectorBuilder {
    pub fn tool(mut self, tool: ToolBuilder) -> Self {
        self.0.tools.push(tool.0);
        self
    }
    /// Sets the owner's allowlist.
    pub fn allow(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.0.allowed_tools = Some(owned(names));
        self
    }
    pub fn status(mut self, status: ConnectorStatus) -> Self {
        self.0.status = status;
        self
    }
    pub fn build(self) -> Connector {
        self.0
    }
}

/// An `mcpServers` entry with a URL pattern and no tool constraints.
pub fn rule(url: &str) -> RuleBuilder {
    RuleBuilder(ServerRule {
        url: url.to_owned(),
        tools: None,
    })
}

pub struct RuleBuilder(ServerRule);

impl RuleBuilder {
    fn tools(&mut self) -> &mut ToolRule {
        self.0.tools.get_or_insert_with(ToolRule::default)
    }
    pub fn required(mut self, patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.tools().required = Some(owned(patterns));
        self
    }
    pub fn read_only(mut self, value: bool) -> Self {
        self.tools().read_only = Some(value);
        self
    }
    pub fn destructive(mut self, value: bool) -> Self {
        self.tools().destructive = Some(value);
        self
    }
    pub fn idempotent(mut self, value: bool) -> Self {
        self.tools().idempotent = Some(value);
        self
    }
    pub fn open_world(mut self, value: bool) -> Self {
        self.tools().open_world = Some(value);
        self
    }
}

/// A `type: "string"` connector field.
pub fn single(name: &str) -> FieldBuilder {
    field(name, FieldKind::Single)
}

/// A `type: "array"` connector field.
pub fn multiple(name: &str) -> FieldBuilder {
    field(name, FieldKind::Multiple)
}

fn field(name: &str, kind: FieldKind) -> FieldBuilder {
    FieldBuilder(ConnectorField {
        name: name.to_owned(),
        kind,
        rules: Vec::new(),
        provided: Vec::new(),
    })
}

pub struct FieldBuilder(ConnectorField);

impl FieldBuilder {
    pub fn rule(mut self, rule: RuleBuilder) -> Self {
        self.0.rules.push(rule.0);
        self
    }
    /// Puts `connector_id` into the run's input value of this field.
    pub fn provide(mut self, connector_id: &str) -> Self {
        self.0.provided.push(connector_id.to_owned());
        self
    }
}

/// The input-schema examples the Apify documentation gives (specification section 3.3),
/// as fields with no connector provided: the same five as `portcullis_sdk::testing::examples`.
pub mod examples {
    use super::{FieldBuilder, multiple, rule, single};

    /// `slackConnector`: only Slack, reading only, at least one `list_*`, `get_*` and
    /// `read_*` tool.
    pub fn read_only_slack_monitor() -> FieldBuilder {
        single("slackConnector").rule(
            rule("https://mcp.slack.com/mcp")
                .required(["list_*", "get_*", "read_*"])
                .read_only(true)
                .destructive(false)
                .idempotent(true),
        )
    }

    /// `mcpConnectors`: any server, any tool.
    pub fn general_purpose_agent() -> FieldBuilder {
        multiple("mcpConnectors").rule(rule("*"))
    }

    /// `messagingConnectors`: Slack or Discord, each with the same three tool patterns.
    pub fn multi_service_messaging() -> FieldBuilder {
        let required = ["send_message", "post_*", "list_channels"];
        multiple("messagingConnectors")
            .rule(rule("https://mcp.slack.com/mcp").required(required))
            .rule(rule("https://mcp.discord.com/mcp").required(required))
    }

    /// `outputConnectors`: any server with a tool to send, post, write or log.
    pub fn output_writing() -> FieldBuilder {
        ["send_*", "post_*", "write_*", "log_*"]
            .into_iter()
            .fold(multiple("outputConnectors"), |field, pattern| {
                field.rule(rule("*").required([pattern]))
            })
    }

    /// `exampleConnector`: a URL pattern, a name pattern and two hints in one rule.
    pub fn combined() -> FieldBuilder {
        single("exampleConnector").rule(
            rule("https://mcp.example.com/*")
                .required(["read_*"])
                .read_only(true)
                .destructive(false),
        )
    }
}

/// Run `run_1` of actor `actor_1` by user `alice` with no connector fields, on an empty
/// connector `conn_1` of alice's.
pub fn context() -> ContextBuilder {
    ContextBuilder {
        run: Run {
            id: "run_1".to_owned(),
            actor: "actor_1".to_owned(),
            user: "alice".to_owned(),
            fields: Vec::new(),
        },
        connector: connector("conn_1", "alice", "https://mcp.example.com/mcp").0,
    }
}

pub struct ContextBuilder {
    run: Run,
    connector: Connector,
}

impl ContextBuilder {
    pub fn run(mut self, id: &str) -> Self {
        self.run.id = id.to_owned();
        self
    }
    pub fn user(mut self, user: &str) -> Self {
        self.run.user = user.to_owned();
        self
    }
    pub fn connector(mut self, connector: ConnectorBuilder) -> Self {
        self.connector = connector.0;
        self
    }
    pub fn field(mut self, field: FieldBuilder) -> Self {
        self.run.fields.push(field.0);
        self
    }
    /// Puts `connector_id` into the run's input value of field `name`, added earlier.
    pub fn provide(mut self, name: &str, connector_id: &str) -> Self {
        let field = self
            .run
            .fields
            .iter_mut()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no field {name}: add it with .field() first"));
        field.provided.push(connector_id.to_owned());
        self
    }
    pub fn build(self) -> DecisionContext {
        DecisionContext {
            run: self.run,
            connector: self.connector,
        }
    }
}

/// A client-to-server message with `method` and no tool, in a 2025-11-25 session; `""`
/// stands for a response to a server-to-client request.
pub fn request(method: &str) -> McpRequest {
    McpRequest {
        method: method.to_owned(),
        tool: None,
        arguments: None,
        protocol_version: "2025-11-25".to_owned(),
    }
}

/// A `tools/call` of `tool`, without arguments.
pub fn call(tool: &str) -> McpRequest {
    McpRequest {
        tool: Some(tool.to_owned()),
        ..request("tools/call")
    }
}

/// What the host asks the `bearer` provider for connector `conn_1` with this `config` JSON.
pub fn plan_request(credential: CredentialKind, config: &str) -> PlanRequest {
    PlanRequest {
        connector_id: "conn_1".to_owned(),
        server_url: "https://mcp.example.com/mcp".to_owned(),
        provider: "bearer".to_owned(),
        config: config.to_owned(),
        credential,
    }
}
