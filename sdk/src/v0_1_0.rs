//! Contract version 0.1.0 (`wit/v0.1.0`), for the feature `contract-v0-1-0`: its bindings,
//! and bridges that export a [`Policy`] or a [`Provider`] written against the records of
//! 0.2.0 as a 0.1.0 component.
//!
//! The bridges convert at the boundary and add nothing: 0.1.0 records become 0.2.0
//! records on the way in (0.1.0 has no pending status, so nothing arrives as
//! `pending-authorization`) and answers go back field for field. A 0.1.0 provider has no
//! `oauth` export, so [`Provider::oauth`] is not exported: the host gives such a provider
//! the standard profile. The log import is 0.1.0's (`crate::log` calls it).

use crate::policy::{self as latest, Policy};
use crate::provider::{self as latest_provider, Provider};

// The worlds are included under names of their own: wit-bindgen names a crate-level
// macro after the world, and the default 0.2.0 bindings already use `policy-plugin` and
// `provider-plugin`. What a component exports is unchanged (the interfaces of 0.1.0).

pub mod policy {
    wit_bindgen::generate!({
        inline: "package portcullis:sdk-compat;
                 world policy-plugin-v0-1-0 { include portcullis:plugin/policy-plugin@0.1.0; }",
        path: "../wit/v0.1.0",
        world: "policy-plugin-v0-1-0",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "export_policy_bindings",
        default_bindings_module: "portcullis_sdk::v0_1_0::policy",
    });
}

pub mod provider {
    wit_bindgen::generate!({
        inline: "package portcullis:sdk-compat;
                 world provider-plugin-v0-1-0 { include portcullis:plugin/provider-plugin@0.1.0; }",
        path: "../wit/v0.1.0",
        world: "provider-plugin-v0-1-0",
        with: {
            "portcullis:plugin/types@0.1.0": crate::v0_1_0::policy::portcullis::plugin::types,
            "portcullis:plugin/log@0.1.0": crate::v0_1_0::policy::portcullis::plugin::log,
        },
        pub_export_macro: true,
        export_macro_name: "export_provider_bindings",
        default_bindings_module: "portcullis_sdk::v0_1_0::provider",
    });
}

use policy::exports::portcullis::plugin::policy as wit_policy;
use policy::portcullis::plugin::types as wit;
use provider::exports::portcullis::plugin::provider as wit_provider;

impl<T: Policy> wit_policy::Guest for T {
    fn describe() -> wit_policy::PolicyInfo {
        let info = <T as Policy>::describe();
        wit_policy::PolicyInfo {
            plugin: plugin_info(info.plugin),
            reads_arguments: info.reads_arguments,
        }
    }
    fn access(ctx: wit::DecisionContext) -> wit::Decision {
        decision(<T as Policy>::access(context(ctx)))
    }
    fn request(ctx: wit::DecisionContext, request: wit::McpRequest) -> wit::Decision {
        decision(<T as Policy>::request(context(ctx), mcp_request(request)))
    }
    fn permitted_tools(ctx: wit::DecisionContext) -> wit::ToolSet {
        match <T as Policy>::permitted_tools(context(ctx)) {
            latest::ToolSet::All => wit::ToolSet::All,
            latest::ToolSet::Only(names) => wit::ToolSet::Only(names),
        }
    }
}

impl<T: Provider> wit_provider::Guest for T {
    fn describe() -> wit::PluginInfo {
        plugin_info(<T as Provider>::describe())
    }
    fn plan(request: wit_provider::PlanRequest) -> Result<wit_provider::InjectionPlan, String> {
        let request = latest_provider::PlanRequest {
            connector_id: request.connector_id,
            server_url: request.server_url,
            provider: request.provider,
            config: request.config,
            credential: match request.credential {
                wit_provider::CredentialKind::None => latest_provider::CredentialKind::None,
                wit_provider::CredentialKind::ApiKey => latest_provider::CredentialKind::ApiKey,
                wit_provider::CredentialKind::OauthAccessToken => {
                    latest_provider::CredentialKind::OauthAccessToken
                }
            },
        };
        <T as Provider>::plan(request).map(|plan| wit_provider::InjectionPlan {
            headers: plan.headers,
            query: plan.query,
        })
    }
}

fn plugin_info(info: latest::PluginInfo) -> wit::PluginInfo {
    wit::PluginInfo {
        name: info.name,
        version: info.version,
    }
}

fn context(ctx: wit::DecisionContext) -> latest::DecisionContext {
    let c = ctx.connector;
    latest::DecisionContext {
        run: latest::Run {
            id: ctx.run.id,
            actor: ctx.run.actor,
            user: ctx.run.user,
            fields: ctx.run.fields.into_iter().map(field).collect(),
        },
        connector: latest::Connector {
            id: c.id,
            owner: c.owner,
            server_url: c.server_url,
            provider: c.provider,
            status: match c.status {
                wit::ConnectorStatus::Authorized => latest::ConnectorStatus::Authorized,
                wit::ConnectorStatus::NeedsReauthorization => {
                    latest::ConnectorStatus::NeedsReauthorization
                }
            },
            tools: c
                .tools
                .into_iter()
                .map(|t| latest::Tool {
                    name: t.name,
                    hints: latest::ToolHints {
                        read_only: t.hints.read_only,
                        destructive: t.hints.destructive,
                        idempotent: t.hints.idempotent,
                        open_world: t.hints.open_world,
                    },
                })
                .collect(),
            allowed_tools: c.allowed_tools,
        },
        settings: ctx.settings,
    }
}

fn field(f: wit::ConnectorField) -> latest::ConnectorField {
    latest::ConnectorField {
        name: f.name,
        kind: match f.kind {
            wit::FieldKind::Single => latest::FieldKind::Single,
            wit::FieldKind::Multiple => latest::FieldKind::Multiple,
        },
        rules: f
            .rules
            .into_iter()
            .map(|r| latest::ServerRule {
                url: r.url,
                tools: r.tools.map(|t| latest::ToolRule {
                    required: t.required,
                    read_only: t.read_only,
                    destructive: t.destructive,
                    idempotent: t.idempotent,
                    open_world: t.open_world,
                }),
            })
            .collect(),
        provided: f.provided,
    }
}

fn mcp_request(r: wit::McpRequest) -> latest::McpRequest {
    latest::McpRequest {
        method: r.method,
        tool: r.tool,
        arguments: r.arguments,
        protocol_version: r.protocol_version,
    }
}

fn decision(d: latest::Decision) -> wit::Decision {
    match d {
        latest::Decision::Allow => wit::Decision::Allow,
        latest::Decision::Deny(denial) => wit::Decision::Deny(wit::Denial {
            code: match denial.code {
                latest::DenyCode::ConnectorUnavailable => wit::DenyCode::ConnectorUnavailable,
                latest::DenyCode::ToolNotPermitted => wit::DenyCode::ToolNotPermitted,
                latest::DenyCode::MethodNotAllowed => wit::DenyCode::MethodNotAllowed,
            },
            reason: denial.reason,
            message: denial.message,
        }),
    }
}
