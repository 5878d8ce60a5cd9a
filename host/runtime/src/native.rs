//! The native decision backend, for benchmarks only (feature `native-plugins`).
//!
//! Owns the calls into the built-in plugin crates' Rust code, compiled into the host,
//! and the conversions from [`crate::model`] into the SDK's records. With
//! `backend = "native"` the runtime answers every chain made only of built-in plugins
//! here, inline on the calling task: no blocking-pool hop, no instance slot, no store and
//! no instance. What remains is what a decision costs without WebAssembly, so that a
//! benchmark can show the sandbox's share of the proxy's overhead on its own.
//!
//! It is not a production mode: plugins run without any sandbox limit, and a plugin
//! swapped in through the admin API changes the registry (stamps, generation) but not
//! the code that answers, which stays the built-in one of the same name.

use portcullis_sdk::policy::{self as sdk, Policy};
use portcullis_sdk::provider::{self as sdk_provider, Provider};

use crate::answer;
use crate::chain::Link;
use crate::error::Fault;
use crate::model;

/// A built-in policy plugin, by registry name.
#[derive(Clone, Copy, Debug)]
pub(crate) enum NativePolicy {
    ConnectorAccess,
    DeclaredTools,
    ConnectorAllowlist,
}

impl NativePolicy {
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "connector-access" => Some(Self::ConnectorAccess),
            "declared-tools" => Some(Self::DeclaredTools),
            "connector-allowlist" => Some(Self::ConnectorAllowlist),
            _ => None,
        }
    }

    fn access(self, ctx: sdk::DecisionContext) -> sdk::Decision {
        use portcullis_plugin_connector_access::ConnectorAccess;
        use portcullis_plugin_connector_allowlist::ConnectorAllowlist;
        use portcullis_plugin_declared_tools::DeclaredTools;
        match self {
            Self::ConnectorAccess => ConnectorAccess::access(ctx),
            Self::DeclaredTools => DeclaredTools::access(ctx),
            Self::ConnectorAllowlist => ConnectorAllowlist::access(ctx),
        }
    }

    fn request(self, ctx: sdk::DecisionContext, request: sdk::McpRequest) -> sdk::Decision {
        use portcullis_plugin_connector_access::ConnectorAccess;
        use portcullis_plugin_connector_allowlist::ConnectorAllowlist;
        use portcullis_plugin_declared_tools::DeclaredTools;
        match self {
            Self::ConnectorAccess => ConnectorAccess::request(ctx, request),
            Self::DeclaredTools => DeclaredTools::request(ctx, request),
            Self::ConnectorAllowlist => ConnectorAllowlist::request(ctx, request),
        }
    }

    fn permitted_tools(self, ctx: sdk::DecisionContext) -> sdk::ToolSet {
        use portcullis_plugin_connector_access::ConnectorAccess;
        use portcullis_plugin_connector_allowlist::ConnectorAllowlist;
        use portcullis_plugin_declared_tools::DeclaredTools;
        match self {
            Self::ConnectorAccess => ConnectorAccess::permitted_tools(ctx),
            Self::DeclaredTools => DeclaredTools::permitted_tools(ctx),
            Self::ConnectorAllowlist => ConnectorAllowlist::permitted_tools(ctx),
        }
    }
}

/// Which policy call a chain makes.
pub(crate) enum Call<'a> {
    Access,
    Request(&'a model::McpRequest),
}

/// Runs a deny-overrides policy chain natively: how many links were called and the
/// answer, or `None` when a link is not a built-in (the caller then uses the components).
pub(crate) fn policy_chain(
    links: &[Link],
    ctx: &model::DecisionContext,
    call: Call<'_>,
) -> Option<(usize, Result<model::Decision, Fault>)> {
    let plugins = links
        .iter()
        .map(|l| NativePolicy::by_name(&l.plugin.name))
        .collect::<Option<Vec<_>>>()?;
    let base = decision_context(ctx);
    for (index, (link, plugin)) in links.iter().zip(plugins).enumerate() {
        let mut sdk_ctx = base.clone();
        sdk_ctx.settings = link.settings.to_string();
        match policy_call(plugin, &link.plugin.name, sdk_ctx, &call) {
            Ok(model::Decision::Allow) => continue,
            other => return Some((index + 1, other)),
        }
    }
    Some((links.len(), Ok(model::Decision::Allow)))
}

/// The permitted set of a tools chain natively (the intersection of every answer), or
/// `None` when a link is not a built-in.
pub(crate) fn tools_chain(
    links: &[Link],
    ctx: &model::DecisionContext,
) -> Option<Result<model::ToolSet, Fault>> {
    let plugins = links
        .iter()
        .map(|l| NativePolicy::by_name(&l.plugin.name))
        .collect::<Option<Vec<_>>>()?;
    let base = decision_context(ctx);
    let mut set = model::ToolSet::All;
    for (link, plugin) in links.iter().zip(plugins) {
        let mut sdk_ctx = base.clone();
        sdk_ctx.settings = link.settings.to_string();
        match permitted_tools(plugin, &link.plugin.name, sdk_ctx) {
            Ok(Some(names)) => {
                set = set.intersect(model::ToolSet::Only(names.into_iter().collect()));
            }
            Ok(None) => {}
            Err(fault) => return Some(Err(fault)),
        }
    }
    Some(Ok(set))
}

/// One policy call. The context is moved in, as the component would receive a copy.
fn policy_call(
    plugin: NativePolicy,
    name: &str,
    ctx: sdk::DecisionContext,
    call: &Call<'_>,
) -> Result<model::Decision, Fault> {
    let answer = match call {
        Call::Access => plugin.access(ctx),
        // The built-ins declare that they do not read arguments, so none are handed over.
        Call::Request(request) => plugin.request(ctx, mcp_request(request)),
    };
    drain_logs();
    let decision = decision(answer);
    answer::check_decision(&decision).map_err(|detail| malformed(name, detail))?;
    Ok(decision)
}

/// `None` stands for every tool.
fn permitted_tools(
    plugin: NativePolicy,
    name: &str,
    ctx: sdk::DecisionContext,
) -> Result<Option<Vec<String>>, Fault> {
    let answer = plugin.permitted_tools(ctx);
    drain_logs();
    match answer {
        sdk::ToolSet::All => Ok(None),
        sdk::ToolSet::Only(names) => {
            answer::check_tool_names(&names).map_err(|d| malformed(name, d))?;
            Ok(Some(names))
        }
    }
}

/// The plan of a built-in provider plugin, or `None` when `name` is not one.
pub(crate) fn plan(
    name: &str,
    request: &model::PlanRequest,
) -> Option<Result<Result<model::InjectionPlan, String>, Fault>> {
    use portcullis_plugin_provider_bearer::ProviderBearer;
    use portcullis_plugin_provider_github::ProviderGithub;
    use portcullis_plugin_provider_sentry::ProviderSentry;
    let request = plan_request(request);
    let answer = match name {
        "provider-bearer" => ProviderBearer::plan(request),
        "provider-sentry" => ProviderSentry::plan(request),
        "provider-github" => ProviderGithub::plan(request),
        _ => return None,
    };
    drain_logs();
    Some(match answer {
        Ok(plan) => answer::check_plan(plan.headers, plan.query)
            .map(Ok)
            .map_err(|d| malformed(name, d)),
        Err(refusal) => Ok(Err(refusal)),
    })
}

/// Natively, the SDK keeps log lines in a thread-local list for tests; a server thread
/// would grow it forever, so the lines go to the host's log as a component's would.
fn drain_logs() {
    for (_, line) in portcullis_sdk::testing::take_logs() {
        tracing::debug!(target: "portcullis_runtime::native", "{line}");
    }
}

fn malformed(plugin: &str, detail: String) -> Fault {
    Fault::Malformed {
        plugin: plugin.to_owned(),
        detail,
    }
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

/// The SDK's context record; `settings` is set per link.
fn decision_context(ctx: &model::DecisionContext) -> sdk::DecisionContext {
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
        settings: String::new(),
    }
}

fn mcp_request(r: &model::McpRequest) -> sdk::McpRequest {
    sdk::McpRequest {
        method: r.method.clone(),
        tool: r.tool.clone(),
        arguments: None,
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
