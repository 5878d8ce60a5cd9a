//! The host's view of what plugins decide on and what they answer, independent of any WIT
//! version.
//!
//! The proxy builds these records and keeps some of them in its store; the runtime's `abi`
//! converts them into the bindings of the contract version a plugin was built against.
//! Keeping them apart is what lets a later contract version live beside this one without
//! touching the proxy.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolHints {
    pub read_only: Option<bool>,
    pub destructive: Option<bool>,
    pub idempotent: Option<bool>,
    pub open_world: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub hints: ToolHints,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorStatus {
    Authorized,
    NeedsReauthorization,
    /// Created with OAuth and waiting for its owner to complete the first authorization.
    PendingAuthorization,
}

/// A connector without its credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connector {
    pub id: String,
    pub owner: String,
    pub server_url: String,
    pub provider: String,
    pub status: ConnectorStatus,
    pub tools: Vec<Tool>,
    pub allowed_tools: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolRule {
    pub required: Option<Vec<String>>,
    pub read_only: Option<bool>,
    pub destructive: Option<bool>,
    pub idempotent: Option<bool>,
    pub open_world: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRule {
    pub url: String,
    pub tools: Option<ToolRule>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Single,
    Multiple,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorField {
    pub name: String,
    pub kind: FieldKind,
    pub rules: Vec<ServerRule>,
    pub provided: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    pub actor: String,
    pub user: String,
    pub fields: Vec<ConnectorField>,
}

/// What every policy decision of one run on one connector depends on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionContext {
    pub run: Run,
    pub connector: Connector,
}

/// One client-to-server JSON-RPC message, as policies see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McpRequest {
    pub method: String,
    pub tool: Option<String>,
    /// `params.arguments` as JSON text; handed only to plugins that read arguments.
    pub arguments: Option<String>,
    pub protocol_version: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyCode {
    /// ERR-3.
    ConnectorUnavailable,
    /// ERR-6.
    ToolNotPermitted,
    /// ERR-7.
    MethodNotAllowed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Denial {
    pub code: DenyCode,
    pub reason: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny(Denial),
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// A set of tool names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolSet {
    All,
    Only(std::collections::BTreeSet<String>),
}

impl ToolSet {
    pub fn contains(&self, name: &str) -> bool {
        match self {
            ToolSet::All => true,
            ToolSet::Only(names) => names.contains(name),
        }
    }

    /// The names in both sets.
    pub fn intersect(self, other: ToolSet) -> ToolSet {
        match (self, other) {
            (ToolSet::All, set) | (set, ToolSet::All) => set,
            (ToolSet::Only(a), ToolSet::Only(b)) => {
                ToolSet::Only(a.intersection(&b).cloned().collect())
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    None,
    ApiKey,
    OauthAccessToken,
}

/// What a provider plugin is told about a connector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRequest {
    pub connector_id: String,
    pub server_url: String,
    pub provider: String,
    /// The connector's provider configuration, a JSON object.
    pub config: String,
    pub credential: CredentialKind,
}

/// Headers and query parameters for upstream requests, with placeholders still in them.
/// The runtime has checked every name and template (see `answer`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InjectionPlan {
    /// Header names are lower-case.
    pub headers: Vec<(String, crate::Template)>,
    pub query: Vec<(String, crate::Template)>,
}
