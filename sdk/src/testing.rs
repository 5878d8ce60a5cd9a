//! The native test harness: builders for the records the host passes to a plugin, so a
//! plugin's logic is tested with plain `cargo test` and no WebAssembly. To run the built
//! component exactly as the proxy does, use the `portcullis-plugin-harness` crate.
//!
//! ```
//! use portcullis_sdk::testing::*;
//!
//! let ctx = context()
//!     .connector(connector("conn_1", "alice", "https://mcp.slack.com/mcp")
//!         .tool(tool("list_channels").read_only())
//!         .tool(tool("send_message")))
//!     .field(single("slack").rule(rule("https://mcp.slack.com/mcp").required(["list_*"])))
//!     .provide("slack", "conn_1")
//!     .build();
//! assert_eq!(portcullis_sdk::rules::permitted(&ctx).len(), 1);
//! ```

use crate::policy::{
    Connector, ConnectorField, ConnectorStatus, Decision, DecisionContext, DenyCode, FieldKind,
    McpRequest, Run, ServerRule, Tool, ToolHints, ToolRule, ToolSet,
};
use crate::provider::{
    ClientAuth, CredentialKind, OAuthProfile, OAuthRequest, PlanRequest,
    RESERVED_AUTHORIZATION_PARAMS, RESERVED_TOKEN_PARAMS, Registration,
};

/// The log lines the plugin wrote on this thread since the last call.
#[cfg(not(target_arch = "wasm32"))]
pub fn take_logs() -> Vec<(crate::log::Level, String)> {
    crate::log::native::take()
}

/// A tool of the snapshot with no annotations.
pub fn tool(name: &str) -> ToolBuilder {
    ToolBuilder(Tool {
        name: name.to_owned(),
        hints: ToolHints {
            read_only: None,
            destructive: None,
            idempotent: None,
            open_world: None,
        },
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

/// An authorized connector with an empty snapshot and no allowlist.
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
    pub fn allow<const N: usize>(mut self, names: [&str; N]) -> Self {
        self.0.allowed_tools = Some(names.iter().map(|n| (*n).to_owned()).collect());
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
        self.0.tools.get_or_insert(ToolRule {
            required: None,
            read_only: None,
            destructive: None,
            idempotent: None,
            open_world: None,
        })
    }
    pub fn required<const N: usize>(mut self, patterns: [&str; N]) -> Self {
        self.tools().required = Some(patterns.iter().map(|p| (*p).to_owned()).collect());
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
/// as fields with no connector provided, so a policy can be tested against each.
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

/// A run of actor `actor_1` by user `alice` with no connector fields.
pub fn context() -> ContextBuilder {
    ContextBuilder {
        run: Run {
            id: "run_1".to_owned(),
            actor: "actor_1".to_owned(),
            user: "alice".to_owned(),
            fields: Vec::new(),
        },
        connector: connector("conn_1", "alice", "https://mcp.example.com/mcp").0,
        settings: "{}".to_owned(),
    }
}

pub struct ContextBuilder {
    run: Run,
    connector: Connector,
    settings: String,
}

impl ContextBuilder {
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
    pub fn settings(mut self, json: &str) -> Self {
        self.settings = json.to_owned();
        self
    }
    pub fn build(self) -> DecisionContext {
        DecisionContext {
            run: self.run,
            connector: self.connector,
            settings: self.settings,
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

/// What the host asks a provider for connector `conn_1` with this provider `config` JSON.
pub fn plan_request(credential: CredentialKind, config: &str) -> PlanRequest {
    PlanRequest {
        connector_id: "conn_1".to_owned(),
        server_url: "https://mcp.example.com/mcp".to_owned(),
        provider: "bearer".to_owned(),
        config: config.to_owned(),
        credential,
    }
}

/// The headers of provider `P`'s plan for `credential` and `config`; panics if the plan
/// is refused or sets query parameters, which no built-in provider does.
pub fn plan_headers<P: crate::provider::Provider>(
    credential: CredentialKind,
    config: &str,
) -> Vec<(String, String)> {
    let plan = P::plan(plan_request(credential, config))
        .unwrap_or_else(|refusal| panic!("the plan was refused: {refusal}"));
    assert!(
        plan.query.is_empty(),
        "unexpected query parameters {:?}",
        plan.query
    );
    plan.headers
}

/// What the host asks a provider before it authorizes connector `conn_1` of
/// `https://mcp.example.com/mcp` with `registration`: no configuration, nothing
/// discovered. Add what a test needs with the builder's methods.
pub fn oauth_request(registration: Registration) -> OAuthRequestBuilder {
    OAuthRequestBuilder(OAuthRequest {
        connector_id: "conn_1".to_owned(),
        server_url: "https://mcp.example.com/mcp".to_owned(),
        provider: "bearer".to_owned(),
        config: "{}".to_owned(),
        registration,
        discovered_scopes: Vec::new(),
        requested_scopes: None,
        client_auth_methods: Vec::new(),
    })
}

pub struct OAuthRequestBuilder(OAuthRequest);

impl OAuthRequestBuilder {
    pub fn server_url(mut self, url: &str) -> Self {
        url.clone_into(&mut self.0.server_url);
        self
    }
    /// The connector's provider configuration, as JSON.
    pub fn config(mut self, json: &str) -> Self {
        json.clone_into(&mut self.0.config);
        self
    }
    /// The scopes discovery found.
    pub fn discovered_scopes<const N: usize>(mut self, scopes: [&str; N]) -> Self {
        self.0.discovered_scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }
    /// The scopes the connector's owner asked for.
    pub fn requested_scopes<const N: usize>(mut self, scopes: [&str; N]) -> Self {
        self.0.requested_scopes = Some(scopes.iter().map(|s| (*s).to_owned()).collect());
        self
    }
    /// The client authentication methods the authorization server lists.
    pub fn client_auth_methods<const N: usize>(mut self, methods: [ClientAuth; N]) -> Self {
        self.0.client_auth_methods = methods.to_vec();
        self
    }
    pub fn build(self) -> OAuthRequest {
        self.0
    }
}

/// The value of parameter `name` among `params` (a profile's authorization or token
/// parameters), if it is there once; panics if it is there twice.
#[track_caller]
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut found = params
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str());
    let first = found.next();
    assert!(found.next().is_none(), "parameter {name} is set twice");
    first
}

/// Panics unless the host would accept `profile`: no parameter the host's flow sets
/// itself, parameter names of visible ASCII without separators, values of visible ASCII
/// and spaces, RFC 6749 scope tokens, and an access-token pointer that is a JSON pointer.
/// A profile the host refuses makes every authorization of the connector fail.
#[track_caller]
pub fn assert_profile_accepted(profile: &OAuthProfile) {
    for (params, reserved) in [
        (
            &profile.authorization_params,
            &RESERVED_AUTHORIZATION_PARAMS[..],
        ),
        (&profile.token_params, &RESERVED_TOKEN_PARAMS[..]),
    ] {
        for (name, value) in params {
            assert!(
                !reserved.contains(&name.as_str()),
                "parameter {name} is set by the host's flow"
            );
            assert!(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)),
                "{name:?} is not a parameter name"
            );
            assert!(
                value
                    .bytes()
                    .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic()),
                "the value of {name} holds a control or non-ASCII character"
            );
        }
    }
    for scope in profile.scopes.iter().flatten() {
        assert!(
            !scope.is_empty()
                && scope
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'),
            "{scope:?} is not a scope token"
        );
    }
    if let Some(pointer) = &profile.access_token_pointer {
        assert!(
            pointer.starts_with('/') && pointer.bytes().all(|b| b.is_ascii_graphic()),
            "{pointer:?} is not a JSON pointer"
        );
    }
}

/// Panics unless `profile` is the standard flow (the inherited [`Provider::oauth`]).
///
/// [`Provider::oauth`]: crate::provider::Provider::oauth
#[track_caller]
pub fn assert_standard_profile(profile: &OAuthProfile) {
    assert_eq!(
        *profile,
        crate::provider::standard_profile(),
        "not the standard profile"
    );
}

/// Owned `(name, value)` pairs, to compare with a plan's headers.
pub fn pairs<const N: usize>(pairs: [(&str, &str); N]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// The names of an `only` tool set, sorted, so tests compare sets and not the order a
/// plugin happened to list them in; `None` for `all`.
pub fn only_names(tools: &ToolSet) -> Option<Vec<&str>> {
    match tools {
        ToolSet::All => None,
        ToolSet::Only(names) => {
            let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
            names.sort_unstable();
            Some(names)
        }
    }
}

/// Panics unless `decision` is an allow.
#[track_caller]
pub fn assert_allowed(decision: &Decision) {
    if let Decision::Deny(denial) = decision {
        panic!(
            "expected allow, got deny {:?}: {} ({})",
            denial.code, denial.reason, denial.message
        );
    }
}

/// Panics unless `decision` is a deny with `code` and `reason`.
#[track_caller]
pub fn assert_denied(decision: &Decision, code: DenyCode, reason: &str) {
    match decision {
        Decision::Allow => panic!("expected deny {code:?}/{reason}, got allow"),
        Decision::Deny(denial) => {
            assert_eq!(denial.code, code, "deny code ({})", denial.message);
            assert_eq!(denial.reason, reason, "deny reason ({})", denial.message);
        }
    }
}
