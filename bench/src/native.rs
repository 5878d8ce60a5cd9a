//! The native decision backend, for benchmarks only: a [`Decider`] that answers the
//! built-in plugins' links by calling the plugin crates' Rust code, compiled into the
//! host, and hands every other link to the decider it wraps (the sandbox).
//!
//! It owns the calls into the plugin crates and the conversions between the runtime's
//! records (`portcullis-model`) and the SDK's. Everything else is the runtime's chain
//! code, the same as for the sandbox: which plugins are asked, deny-overrides and
//! intersection, the answer checks, fail-closed, stamps and generation. A native link does
//! not block, so a chain made only of built-ins runs inline on the calling task: no
//! blocking-pool hop, no instance slot, no store and no instance. What remains is what a
//! decision costs without WebAssembly.
//!
//! It is not a production mode: the built-ins run without any sandbox limit, and a
//! plugin swapped in under a built-in's name changes the registry (stamps, generation)
//! but not the code that answers, which stays the built-in one.

use std::sync::Arc;

use portcullis_builtins::list::{
    CONNECTOR_ACCESS, CONNECTOR_ALLOWLIST, DECLARED_TOOLS, PROVIDER_BEARER, PROVIDER_GITHUB,
    PROVIDER_NOTION, PROVIDER_SENTRY, PROVIDER_SLACK, PROVIDER_SUPABASE,
};
use portcullis_model::{self as model, Fault};
use portcullis_plugin_connector_access::ConnectorAccess;
use portcullis_plugin_connector_allowlist::ConnectorAllowlist;
use portcullis_plugin_declared_tools::DeclaredTools;
use portcullis_plugin_provider_bearer::ProviderBearer;
use portcullis_plugin_provider_github::ProviderGithub;
use portcullis_plugin_provider_notion::ProviderNotion;
use portcullis_plugin_provider_sentry::ProviderSentry;
use portcullis_plugin_provider_slack::ProviderSlack;
use portcullis_plugin_provider_supabase::ProviderSupabase;
use portcullis_runtime::{Decider, Link, Plugin, RawPlan, RawToolSet};
use portcullis_sdk::policy::{self as sdk, Policy};
use portcullis_sdk::provider::{self as sdk_provider, Provider};

/// Answers the built-in plugins natively and every other link with `fallback`.
pub struct NativeDecider {
    fallback: Arc<dyn Decider>,
}

impl NativeDecider {
    pub fn new(fallback: Arc<dyn Decider>) -> Self {
        Self { fallback }
    }
}

/// A built-in plugin's entry points.
#[derive(Clone, Copy)]
enum Native {
    Policy {
        access: fn(sdk::DecisionContext) -> sdk::Decision,
        request: fn(sdk::DecisionContext, sdk::McpRequest) -> sdk::Decision,
        permitted_tools: fn(sdk::DecisionContext) -> sdk::ToolSet,
    },
    Provider {
        plan: fn(sdk_provider::PlanRequest) -> Result<sdk_provider::InjectionPlan, String>,
        oauth: fn(sdk_provider::OAuthRequest) -> Result<sdk_provider::OAuthProfile, String>,
    },
}

fn policy<P: Policy>() -> Native {
    Native::Policy {
        access: P::access,
        request: P::request,
        permitted_tools: P::permitted_tools,
    }
}

fn provider<P: Provider>() -> Native {
    Native::Provider {
        plan: P::plan,
        oauth: P::oauth,
    }
}

/// The code of the built-in plugin `name`, or `None` when `name` is not one.
fn native(name: &str) -> Option<Native> {
    let code = [
        (
            CONNECTOR_ACCESS,
            policy::<ConnectorAccess> as fn() -> Native,
        ),
        (DECLARED_TOOLS, policy::<DeclaredTools>),
        (CONNECTOR_ALLOWLIST, policy::<ConnectorAllowlist>),
        (PROVIDER_BEARER, provider::<ProviderBearer>),
        (PROVIDER_SENTRY, provider::<ProviderSentry>),
        (PROVIDER_GITHUB, provider::<ProviderGithub>),
        (PROVIDER_SLACK, provider::<ProviderSlack>),
        (PROVIDER_NOTION, provider::<ProviderNotion>),
        (PROVIDER_SUPABASE, provider::<ProviderSupabase>),
    ];
    code.iter()
        .find(|(entry, _)| entry.name == name)
        .map(|(_, code)| code())
}

impl Decider for NativeDecider {
    fn access(&self, link: &Link, ctx: &model::DecisionContext) -> Result<model::Decision, Fault> {
        match native(&link.plugin.name) {
            Some(Native::Policy { access, .. }) => Ok(answered(decision(access(
                decision_context(ctx, &link.settings),
            )))),
            _ => self.fallback.access(link, ctx),
        }
    }

    fn request(
        &self,
        link: &Link,
        ctx: &model::DecisionContext,
        request: &model::McpRequest,
    ) -> Result<model::Decision, Fault> {
        match native(&link.plugin.name) {
            Some(Native::Policy { request: call, .. }) => Ok(answered(decision(call(
                decision_context(ctx, &link.settings),
                mcp_request(request),
            )))),
            _ => self.fallback.request(link, ctx, request),
        }
    }

    fn permitted_tools(
        &self,
        link: &Link,
        ctx: &model::DecisionContext,
    ) -> Result<RawToolSet, Fault> {
        match native(&link.plugin.name) {
            Some(Native::Policy {
                permitted_tools, ..
            }) => Ok(answered(
                match permitted_tools(decision_context(ctx, &link.settings)) {
                    sdk::ToolSet::All => RawToolSet::All,
                    sdk::ToolSet::Only(names) => RawToolSet::Only(names),
                },
            )),
            _ => self.fallback.permitted_tools(link, ctx),
        }
    }

    fn plan(
        &self,
        provider: &Plugin,
        request: &model::PlanRequest,
    ) -> Result<Result<RawPlan, String>, Fault> {
        match native(&provider.name) {
            Some(Native::Provider { plan, .. }) => {
                Ok(answered(plan(plan_request(request)).map(|plan| RawPlan {
                    headers: plan.headers,
                    query: plan.query,
                })))
            }
            _ => self.fallback.plan(provider, request),
        }
    }

    fn oauth(
        &self,
        provider: &Plugin,
        request: &model::OAuthRequest,
    ) -> Result<Result<model::OAuthProfile, String>, Fault> {
        match native(&provider.name) {
            Some(Native::Provider { oauth, .. }) => {
                Ok(answered(oauth(oauth_request(request)).map(oauth_profile)))
            }
            _ => self.fallback.oauth(provider, request),
        }
    }

    fn blocks(&self, plugin: &Plugin) -> bool {
        native(&plugin.name).is_none() && self.fallback.blocks(plugin)
    }
}

/// `answer`, after the log lines the call wrote went where a component's go. Natively the
/// SDK keeps them in a thread-local list for tests, which a server thread would grow
/// forever.
fn answered<T>(answer: T) -> T {
    for (_, line) in portcullis_sdk::testing::take_logs() {
        tracing::debug!(target: "portcullis_bench::native", "{line}");
    }
    answer
}

fn hints(h: &model::ToolHints) -> sdk::ToolHints {
    sdk::ToolHints {
        read_only: h.read_only,
        destructive: h.destructive,
        idempotent: h.idempotent,
        open_world: h.open_world,
    }
}

fn rule(r: &model::ServerRule) -> sdk::ServerRule {
    sdk::ServerRule {
        url: r.url.clone(),
        tools: r.tools.as_ref().map(|t| sdk::ToolRule {
            required: t.required.clone(),
            read_only: t.read_only,
            destructive: t.destructive,
            idempotent: t.idempotent,
            open_world: t.open_world,
        }),
    }
}

/// The SDK's context record, with the link's settings.
fn decision_context(ctx: &model::DecisionContext, settings: &str) -> sdk::DecisionContext {
    let c = &ctx.connector;
    sdk::DecisionContext {
        run: sdk::Run {
            id: ctx.run.id.clone(),
            actor: ctx.run.actor.clone(),
            user: ctx.run.user.clone(),
            fields: ctx
                .run
                .fields
                .iter()
                .map(|f| sdk::ConnectorField {
                    name: f.name.clone(),
                    kind: match f.kind {
                        model::FieldKind::Single => sdk::FieldKind::Single,
                        model::FieldKind::Multiple => sdk::FieldKind::Multiple,
                    },
                    rules: f.rules.iter().map(rule).collect(),
                    provided: f.provided.clone(),
                })
                .collect(),
        },
        connector: sdk::Connector {
            id: c.id.clone(),
            owner: c.owner.clone(),
            server_url: c.server_url.clone(),
            provider: c.provider.clone(),
            status: match c.status {
                model::ConnectorStatus::Authorized => sdk::ConnectorStatus::Authorized,
                model::ConnectorStatus::NeedsReauthorization => {
                    sdk::ConnectorStatus::NeedsReauthorization
                }
                model::ConnectorStatus::PendingAuthorization => {
                    sdk::ConnectorStatus::PendingAuthorization
                }
            },
            tools: c
                .tools
                .iter()
                .map(|t| sdk::Tool {
                    name: t.name.clone(),
                    hints: hints(&t.hints),
                })
                .collect(),
            allowed_tools: c.allowed_tools.clone(),
        },
        settings: settings.to_owned(),
    }
}

fn mcp_request(r: &model::McpRequest) -> sdk::McpRequest {
    sdk::McpRequest {
        method: r.method.clone(),
        tool: r.tool.clone(),
        arguments: r.arguments.clone(),
        protocol_version: r.protocol_version.clone(),
    }
}

fn decision(d: sdk::Decision) -> model::Decision {
    match d {
        sdk::Decision::Allow => model::Decision::Allow,
        sdk::Decision::Deny(denial) => model::Decision::Deny(model::Denial {
            code: match denial.code {
                sdk::DenyCode::ConnectorUnavailable => model::DenyCode::ConnectorUnavailable,
                sdk::DenyCode::ToolNotPermitted => model::DenyCode::ToolNotPermitted,
                sdk::DenyCode::MethodNotAllowed => model::DenyCode::MethodNotAllowed,
            },
            reason: denial.reason,
            message: denial.message,
        }),
    }
}

fn plan_request(r: &model::PlanRequest) -> sdk_provider::PlanRequest {
    sdk_provider::PlanRequest {
        connector_id: r.connector_id.clone(),
        server_url: r.server_url.clone(),
        provider: r.provider.clone(),
        config: r.config.clone(),
        credential: match r.credential {
            model::CredentialKind::None => sdk_provider::CredentialKind::None,
            model::CredentialKind::ApiKey => sdk_provider::CredentialKind::ApiKey,
            model::CredentialKind::OauthAccessToken => {
                sdk_provider::CredentialKind::OauthAccessToken
            }
        },
    }
}

fn oauth_request(r: &model::OAuthRequest) -> sdk_provider::OAuthRequest {
    sdk_provider::OAuthRequest {
        connector_id: r.connector_id.clone(),
        server_url: r.server_url.clone(),
        provider: r.provider.clone(),
        config: r.config.clone(),
        registration: match r.registration {
            model::Registration::Dynamic => sdk_provider::Registration::Dynamic,
            model::Registration::Own => sdk_provider::Registration::Own,
        },
        discovered_scopes: r.discovered_scopes.clone(),
        requested_scopes: r.requested_scopes.clone(),
        client_auth_methods: r
            .client_auth_methods
            .iter()
            .map(|auth| match auth {
                model::ClientAuth::None => sdk_provider::ClientAuth::None,
                model::ClientAuth::ClientSecretBasic => sdk_provider::ClientAuth::ClientSecretBasic,
                model::ClientAuth::ClientSecretPost => sdk_provider::ClientAuth::ClientSecretPost,
            })
            .collect(),
    }
}

fn oauth_profile(p: sdk_provider::OAuthProfile) -> model::OAuthProfile {
    model::OAuthProfile {
        scopes: p.scopes,
        authorization_params: p.authorization_params,
        token_params: p.token_params,
        client_auth: p.client_auth.map(|auth| match auth {
            sdk_provider::ClientAuth::None => model::ClientAuth::None,
            sdk_provider::ClientAuth::ClientSecretBasic => model::ClientAuth::ClientSecretBasic,
            sdk_provider::ClientAuth::ClientSecretPost => model::ClientAuth::ClientSecretPost,
        }),
        access_token_pointer: p.access_token_pointer,
    }
}

#[cfg(test)]
mod tests;
