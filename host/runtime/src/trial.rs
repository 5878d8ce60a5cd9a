//! Trial calls: whether each link of a chain configuration accepts its settings, checked
//! before the configuration may serve.
//!
//! Contract 0.1.0 has no export that validates settings, and it is frozen; so each
//! distinct (plugin, settings) pair of a policy chain is asked the three policy questions
//! once, alone, against a small fixed context ([`context`]): `access`, `request` for a
//! `ping`, and `permitted-tools`. A link is refused when any of the calls gives no answer
//! (a trap, a limit, a malformed answer: the plugin cannot run with these settings) or
//! when it denies with the reason `invalid_settings`, the convention a plugin uses to say
//! that it rejects its settings (the built-in `declared-tools` does). Any other answer is
//! a decision about the fixture, not about the settings, and is not judged.
//!
//! The calls run like any other (sandbox, limits, answer checks) but are not counted in
//! the plugin metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use portcullis_model::{
    ChainConfig, ChainEntry, Connector, ConnectorStatus, Decision, DecisionContext, McpRequest,
    Run, Tool, ToolHints,
};

use crate::chain::{Chains, Runner};
use crate::error::LoadError;
use crate::plugin::Plugin;

/// The deny reason by which a plugin refuses its settings.
pub const INVALID_SETTINGS: &str = "invalid_settings";

/// Checks every policy link of `config` whose plugin is in `plugins`.
pub(crate) async fn check(
    run: Runner<'_>,
    config: &ChainConfig,
    plugins: &BTreeMap<Arc<str>, Arc<Plugin>>,
    generation: u64,
) -> Result<(), LoadError> {
    let mut seen = BTreeSet::new();
    let chains = [
        ("access", &config.access),
        ("request", &config.request),
        ("tools", &config.tools),
    ];
    for (chain, entries) in chains {
        for entry in entries {
            if !seen.insert((entry.plugin().to_owned(), entry.settings_json())) {
                continue;
            }
            let Some(plugin) = plugins.get(entry.plugin()) else {
                continue;
            };
            let refused = |detail: String| LoadError::Settings {
                chain,
                plugin: entry.plugin().to_owned(),
                detail,
            };
            let alone = alone(plugin, entry, generation).map_err(refused)?;
            let ctx = Arc::new(context());
            let access = alone.access(run, ctx.clone()).await;
            let request = alone.request(run, ctx.clone(), ping()).await;
            let tools = alone.permitted_tools(run, ctx).await;
            let faults = [access.fault, request.fault, tools.fault];
            if let Some(fault) = faults.into_iter().flatten().next() {
                return Err(refused(fault.to_string()));
            }
            for decision in [&access.value, &request.value] {
                if let Decision::Deny(denial) = decision
                    && denial.reason == INVALID_SETTINGS
                {
                    return Err(refused(denial.message.clone()));
                }
            }
        }
    }
    Ok(())
}

/// `entry` alone in every policy chain.
fn alone(plugin: &Arc<Plugin>, entry: &ChainEntry, generation: u64) -> Result<Chains, String> {
    let link = vec![entry.clone()];
    let config = ChainConfig {
        access: link.clone(),
        request: link.clone(),
        tools: link,
        providers: BTreeMap::new(),
    };
    let plugins = BTreeMap::from([(plugin.name.clone(), plugin.clone())]);
    Chains::resolve(&config, &plugins, generation)
}

fn ping() -> McpRequest {
    McpRequest {
        method: "ping".into(),
        tool: None,
        arguments: None,
        protocol_version: "2025-11-25".into(),
    }
}

/// A run with no connector fields on an authorized connector with one tool.
fn context() -> DecisionContext {
    DecisionContext {
        run: Run {
            id: "run_trial".into(),
            actor: "trial-actor".into(),
            user: "trial-user".into(),
            fields: Vec::new(),
        },
        connector: Connector {
            id: "conn_trial".into(),
            owner: "trial-user".into(),
            server_url: "https://mcp.example.com/mcp".into(),
            provider: "bearer".into(),
            status: ConnectorStatus::Authorized,
            tools: vec![Tool {
                name: "list_items".into(),
                hints: ToolHints::default(),
            }],
            allowed_tools: None,
        },
    }
}
