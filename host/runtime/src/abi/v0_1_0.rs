//! Bindings for `wit/v0.1.0` and conversions from [`crate::model`].

use crate::model;
use crate::sandbox::HostState;

pub mod policy {
    wasmtime::component::bindgen!({
        world: "policy-plugin",
        path: "../../wit/v0.1.0",
    });
}

pub mod provider {
    wasmtime::component::bindgen!({
        world: "provider-plugin",
        path: "../../wit/v0.1.0",
        with: {
            "portcullis:plugin/types": super::policy::portcullis::plugin::types,
            "portcullis:plugin/log": super::policy::portcullis::plugin::log,
        },
    });
}

use policy::portcullis::plugin::{log, types as wit};

impl wit::Host for HostState {}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        let level = match level {
            log::Level::Trace => tracing::Level::TRACE,
            log::Level::Debug => tracing::Level::DEBUG,
            log::Level::Info => tracing::Level::INFO,
            log::Level::Warn => tracing::Level::WARN,
            log::Level::Error => tracing::Level::ERROR,
        };
        self.plugin_log(level, &message);
    }
}

/// Registers the imports of the policy world.
pub fn add_policy_imports(
    linker: &mut wasmtime::component::Linker<HostState>,
) -> wasmtime::Result<()> {
    policy::PolicyPlugin::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
        linker,
        |s| s,
    )
}

/// Registers the imports of the provider world.
pub fn add_provider_imports(
    linker: &mut wasmtime::component::Linker<HostState>,
) -> wasmtime::Result<()> {
    provider::ProviderPlugin::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
        linker,
        |s| s,
    )
}

fn hints(h: &model::ToolHints) -> wit::ToolHints {
    wit::ToolHints {
        read_only: h.read_only,
        destructive: h.destructive,
        idempotent: h.idempotent,
        open_world: h.open_world,
    }
}

fn connector(c: &model::Connector) -> wit::Connector {
    wit::Connector {
        id: c.id.clone(),
        owner: c.owner.clone(),
        server_url: c.server_url.clone(),
        provider: c.provider.clone(),
        status: match c.status {
            model::ConnectorStatus::Authorized => wit::ConnectorStatus::Authorized,
            model::ConnectorStatus::NeedsReauthorization => {
                wit::ConnectorStatus::NeedsReauthorization
            }
        },
        tools: c
            .tools
            .iter()
            .map(|t| wit::Tool {
                name: t.name.clone(),
                hints: hints(&t.hints),
            })
            .collect(),
        allowed_tools: c.allowed_tools.clone(),
    }
}

fn rule(r: &model::ServerRule) -> wit::ServerRule {
    wit::ServerRule {
        url: r.url.clone(),
        tools: r.tools.as_ref().map(|t| wit::ToolRule {
            required: t.required.clone(),
            read_only: t.read_only,
            destructive: t.destructive,
            idempotent: t.idempotent,
            open_world: t.open_world,
        }),
    }
}

/// The context record for one chain evaluation; `settings` is set per plugin.
pub fn decision_context(ctx: &model::DecisionContext) -> wit::DecisionContext {
    wit::DecisionContext {
        run: wit::Run {
            id: ctx.run.id.clone(),
            actor: ctx.run.actor.clone(),
            user: ctx.run.user.clone(),
            fields: ctx
                .run
                .fields
                .iter()
                .map(|f| wit::ConnectorField {
                    name: f.name.clone(),
                    kind: match f.kind {
                        model::FieldKind::Single => wit::FieldKind::Single,
                        model::FieldKind::Multiple => wit::FieldKind::Multiple,
                    },
                    rules: f.rules.iter().map(rule).collect(),
                    provided: f.provided.clone(),
                })
                .collect(),
        },
        connector: connector(&ctx.connector),
        settings: String::new(),
    }
}

/// The request record; arguments only for a plugin that declared it reads them.
pub fn mcp_request(r: &model::McpRequest, with_arguments: bool) -> wit::McpRequest {
    wit::McpRequest {
        method: r.method.clone(),
        tool: r.tool.clone(),
        arguments: if with_arguments {
            r.arguments.clone()
        } else {
            None
        },
        protocol_version: r.protocol_version.clone(),
    }
}

pub fn decision(d: wit::Decision) -> model::Decision {
    match d {
        wit::Decision::Allow => model::Decision::Allow,
        wit::Decision::Deny(denial) => model::Decision::Deny(model::Denial {
            code: match denial.code {
                wit::DenyCode::ConnectorUnavailable => model::DenyCode::ConnectorUnavailable,
                wit::DenyCode::ToolNotPermitted => model::DenyCode::ToolNotPermitted,
                wit::DenyCode::MethodNotAllowed => model::DenyCode::MethodNotAllowed,
            },
            reason: denial.reason,
            message: denial.message,
        }),
    }
}

pub fn tool_set(s: wit::ToolSet) -> (bool, Vec<String>) {
    match s {
        wit::ToolSet::All => (true, Vec::new()),
        wit::ToolSet::Only(names) => (false, names),
    }
}

pub fn plan_request(
    r: &model::PlanRequest,
) -> provider::exports::portcullis::plugin::provider::PlanRequest {
    use provider::exports::portcullis::plugin::provider::{CredentialKind, PlanRequest};
    PlanRequest {
        connector_id: r.connector_id.clone(),
        server_url: r.server_url.clone(),
        provider: r.provider.clone(),
        config: r.config.clone(),
        credential: match r.credential {
            model::CredentialKind::None => CredentialKind::None,
            model::CredentialKind::ApiKey => CredentialKind::ApiKey,
            model::CredentialKind::OauthAccessToken => CredentialKind::OauthAccessToken,
        },
    }
}
