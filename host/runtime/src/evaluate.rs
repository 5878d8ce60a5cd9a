//! One plugin call: a fresh store, a fresh instance from the pre-instantiated form, one
//! export call, and the store dropped whatever happened. These functions block; the
//! runtime runs them on the blocking pool, never on an async worker.

use wasmtime::Store;

use crate::abi::v0_1_0::{self, policy, provider};
use crate::answer;
use crate::error::Fault;
use crate::model::{Decision, InjectionPlan, McpRequest};
use crate::registry::{Plugin, Pre};
use crate::sandbox::{self, HostState, Sandbox};

type WitContext = policy::portcullis::plugin::types::DecisionContext;

fn malformed(plugin: &str, detail: String) -> Fault {
    Fault::Malformed {
        plugin: plugin.to_owned(),
        detail,
    }
}

/// Instantiates a policy plugin in a fresh store and calls `f` on its exports.
fn with_policy<T>(
    sandbox: &Sandbox,
    name: &str,
    pre: &policy::PolicyPluginPre<HostState>,
    f: impl FnOnce(
        &mut Store<HostState>,
        &policy::exports::portcullis::plugin::policy::Guest,
    ) -> wasmtime::Result<T>,
) -> Result<T, Fault> {
    let mut store = sandbox.store(name.into());
    let instance = pre
        .instantiate(&mut store)
        .map_err(|e| sandbox::fault(&store, name, e))?;
    sandbox.restart_deadline(&mut store);
    f(&mut store, instance.portcullis_plugin_policy()).map_err(|e| sandbox::fault(&store, name, e))
}

fn with_provider<T>(
    sandbox: &Sandbox,
    name: &str,
    pre: &provider::ProviderPluginPre<HostState>,
    f: impl FnOnce(
        &mut Store<HostState>,
        &provider::exports::portcullis::plugin::provider::Guest,
    ) -> wasmtime::Result<T>,
) -> Result<T, Fault> {
    let mut store = sandbox.store(name.into());
    let instance = pre
        .instantiate(&mut store)
        .map_err(|e| sandbox::fault(&store, name, e))?;
    sandbox.restart_deadline(&mut store);
    f(&mut store, instance.portcullis_plugin_provider())
        .map_err(|e| sandbox::fault(&store, name, e))
}

fn policy_pre(plugin: &Plugin) -> Result<&policy::PolicyPluginPre<HostState>, Fault> {
    match &plugin.pre {
        Pre::Policy(pre) => Ok(pre),
        Pre::Provider(_) => Err(malformed(
            &plugin.name,
            "a provider plugin in a policy chain".into(),
        )),
    }
}

/// The `describe` answer: reported name, version and whether `request` reads arguments.
pub fn describe(sandbox: &Sandbox, name: &str, pre: &Pre) -> Result<(String, String, bool), Fault> {
    match pre {
        Pre::Policy(pre) => with_policy(sandbox, name, pre, |store, guest| {
            guest.call_describe(store)
        })
        .map(|info| (info.plugin.name, info.plugin.version, info.reads_arguments)),
        Pre::Provider(pre) => with_provider(sandbox, name, pre, |store, guest| {
            guest.call_describe(store)
        })
        .map(|info| (info.name, info.version, false)),
    }
}

pub fn access(sandbox: &Sandbox, plugin: &Plugin, ctx: &WitContext) -> Result<Decision, Fault> {
    let answer = with_policy(
        sandbox,
        &plugin.name,
        policy_pre(plugin)?,
        |store, guest| guest.call_access(store, ctx),
    )?;
    checked_decision(plugin, v0_1_0::decision(answer))
}

pub fn request(
    sandbox: &Sandbox,
    plugin: &Plugin,
    ctx: &WitContext,
    request: &McpRequest,
) -> Result<Decision, Fault> {
    let wit_request = v0_1_0::mcp_request(request, plugin.reads_arguments);
    let answer = with_policy(
        sandbox,
        &plugin.name,
        policy_pre(plugin)?,
        |store, guest| guest.call_request(store, ctx, &wit_request),
    )?;
    checked_decision(plugin, v0_1_0::decision(answer))
}

/// `None` stands for every tool.
pub fn permitted_tools(
    sandbox: &Sandbox,
    plugin: &Plugin,
    ctx: &WitContext,
) -> Result<Option<Vec<String>>, Fault> {
    let answer = with_policy(
        sandbox,
        &plugin.name,
        policy_pre(plugin)?,
        |store, guest| guest.call_permitted_tools(store, ctx),
    )?;
    match v0_1_0::tool_set(answer) {
        (true, _) => Ok(None),
        (false, names) => {
            answer::check_tool_names(&names).map_err(|d| malformed(&plugin.name, d))?;
            Ok(Some(names))
        }
    }
}

/// The plan, or the provider's refusal in its own words.
pub fn plan(
    sandbox: &Sandbox,
    plugin: &Plugin,
    request: &crate::model::PlanRequest,
) -> Result<Result<InjectionPlan, String>, Fault> {
    let Pre::Provider(pre) = &plugin.pre else {
        return Err(malformed(
            &plugin.name,
            "a policy plugin named as a provider".into(),
        ));
    };
    let wit_request = v0_1_0::plan_request(request);
    let answer = with_provider(sandbox, &plugin.name, pre, |store, guest| {
        guest.call_plan(store, &wit_request)
    })?;
    match answer {
        Ok(plan) => answer::check_plan(plan.headers, plan.query)
            .map(Ok)
            .map_err(|d| malformed(&plugin.name, d)),
        Err(refusal) if refusal.len() <= 4096 => Ok(Err(refusal)),
        Err(refusal) => Err(malformed(
            &plugin.name,
            format!(
                "a refusal of {} bytes, over the 4096-byte limit",
                refusal.len()
            ),
        )),
    }
}

fn checked_decision(plugin: &Plugin, decision: Decision) -> Result<Decision, Fault> {
    answer::check_decision(&decision).map_err(|d| malformed(&plugin.name, d))?;
    Ok(decision)
}
