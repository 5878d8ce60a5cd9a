//! Decisions of the plugin chain for one run on one connector, and their memoization.
//!
//! Plugins are pure functions of the records they are given (the sandbox grants them no
//! clock, entropy or I/O), so an answer can be reused while its inputs are unchanged:
//! the access decision and the permitted set of a (run, connector) pair are computed once
//! and reused until the connector's revision or the plugin registry's generation moves.
//! A request decision is reused for the same method and tool unless a plugin of the
//! request chain declared that it reads tool arguments. Memoization is an optimization
//! only: every request is still authenticated, checked and audited, with the stamps of
//! the plugin versions that made the answer it reuses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use portcullis_runtime::{
    Decision, DecisionContext, InjectionPlan, McpRequest, Stamp, ToolSet, Verdict,
};

use crate::app::AppState;
use crate::context;
use crate::injection::{self, InjectionError};
use crate::store::{ActorRecord, ConnectorRecord, RunRecord};

/// Server capabilities and the method that stands for each when the proxy asks the
/// request chain whether a capability may stay in an `initialize` answer.
const CAPABILITY_PROBES: [(&str, &str); 5] = [
    ("resources", "resources/list"),
    ("prompts", "prompts/list"),
    ("completions", "completion/complete"),
    ("logging", "logging/setLevel"),
    ("tasks", "tasks/list"),
];

/// A request decision's memo key: the method and, for `tools/call`, the tool.
type RequestKey = (String, Option<String>);

pub struct Policy {
    pub revision: i64,
    pub generation: u64,
    pub ctx: Arc<DecisionContext>,
    pub access: Verdict<Decision>,
    pub permitted: Verdict<ToolSet>,
    requests: Mutex<HashMap<RequestKey, Verdict<Decision>>>,
    denied_capabilities: OnceLock<Vec<&'static str>>,
}

/// A provider plan, which holds templates and never a secret.
pub struct CachedPlan {
    pub revision: i64,
    pub generation: u64,
    pub plan: InjectionPlan,
    pub stamps: Vec<Stamp>,
}

/// The policy of `run` on `connector`, from the cache when still valid.
pub async fn policy(
    state: &AppState,
    run: &RunRecord,
    actor: &ActorRecord,
    connector: &ConnectorRecord,
) -> Arc<Policy> {
    let generation = state.runtime.generation();
    let key = (run.id.clone(), connector.id.clone());
    let cached = state
        .runtime
        .memoize()
        .then(|| state.sessions.policies.read().ok()?.get(&key).cloned())
        .flatten();
    if let Some(policy) =
        cached.filter(|p| p.revision == connector.revision && p.generation == generation)
    {
        return policy;
    }
    let ctx = Arc::new(context::decision_context(run, actor, connector));
    let access = state.runtime.access(ctx.clone()).await;
    let permitted = state.runtime.permitted_tools(ctx.clone()).await;
    let policy = Arc::new(Policy {
        revision: connector.revision,
        generation: access.generation.min(permitted.generation),
        ctx,
        access,
        permitted,
        requests: Mutex::new(HashMap::new()),
        denied_capabilities: OnceLock::new(),
    });
    if let Ok(mut policies) = state.sessions.policies.write() {
        policies.insert(key, policy.clone());
    }
    policy
}

/// The request chain's decision on one message.
pub async fn request_decision(
    state: &AppState,
    policy: &Policy,
    method: &str,
    tool: Option<&str>,
    arguments: Option<&serde_json::Value>,
    protocol_version: &str,
) -> Verdict<Decision> {
    let memoizable = state.runtime.memoize() && !state.runtime.request_chain_reads_arguments();
    let key = (method.to_owned(), tool.map(str::to_owned));
    if memoizable && let Some(verdict) = policy.requests.lock().expect("request memo").get(&key) {
        return verdict.clone();
    }
    let verdict = state
        .runtime
        .request(
            policy.ctx.clone(),
            McpRequest {
                method: method.to_owned(),
                tool: tool.map(str::to_owned),
                arguments: arguments.map(|a| a.to_string()),
                protocol_version: protocol_version.to_owned(),
            },
        )
        .await;
    // A fault is not a decision: retry it next time rather than remember it.
    if memoizable && verdict.fault.is_none() {
        policy
            .requests
            .lock()
            .expect("request memo")
            .insert(key, verdict.clone());
    }
    verdict
}

/// The server capabilities to strip from an `initialize` answer: those whose methods the
/// request chain denies.
pub async fn denied_capabilities(
    state: &AppState,
    policy: &Policy,
    protocol_version: &str,
) -> Vec<&'static str> {
    if let Some(denied) = policy.denied_capabilities.get() {
        return denied.clone();
    }
    let mut denied = Vec::new();
    for (capability, method) in CAPABILITY_PROBES {
        let verdict = request_decision(state, policy, method, None, None, protocol_version).await;
        if !verdict.value.is_allow() {
            denied.push(capability);
        }
    }
    let _ = policy.denied_capabilities.set(denied.clone());
    denied
}

/// The connector's provider plan, from the cache when still valid.
pub async fn plan(
    state: &AppState,
    connector: &ConnectorRecord,
) -> Result<Arc<CachedPlan>, InjectionError> {
    let generation = state.runtime.generation();
    let cached = state
        .runtime
        .memoize()
        .then(|| {
            state
                .sessions
                .plans
                .read()
                .ok()?
                .get(&connector.id)
                .cloned()
        })
        .flatten();
    if let Some(plan) =
        cached.filter(|p| p.revision == connector.revision && p.generation == generation)
    {
        return Ok(plan);
    }
    let (plan, stamps) = injection::plan(&state.runtime, connector).await?;
    let cached = Arc::new(CachedPlan {
        revision: connector.revision,
        generation,
        plan,
        stamps,
    });
    if let Ok(mut plans) = state.sessions.plans.write() {
        plans.insert(connector.id.clone(), cached.clone());
    }
    Ok(cached)
}
