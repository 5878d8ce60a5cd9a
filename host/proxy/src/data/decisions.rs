//! Decisions of the plugin chains for one run on one connector, and their memoization.
//!
//! Plugins are pure functions of the records they are given (the sandbox grants them no
//! clock, entropy or I/O), so an answer can be reused while its inputs are unchanged:
//! the access decision and the permitted set of a (run, connector) pair are computed once
//! and reused until the connector's revision or the plugin registry's generation moves.
//! A request decision is reused for the same method, tool and protocol version unless a
//! plugin of the request chain declared that it reads tool arguments; a session's
//! `initialize` is decided with the capability probes of its answer in one evaluation.
//! A provider's plan holds templates and never a secret, so it is kept per connector the
//! same way. Memoization is an optimization only: every request is still authenticated,
//! checked and audited, with the stamps of the plugin versions that made the answer it
//! reuses, and handed to the runtime's shadow candidates, if any, to be asked again off
//! the request path.
//!
//! Invariants: a memoized answer is used only while the connector's revision and the
//! registry's generation are the ones it was computed for; a fault is never memoized (a
//! faulted access or permitted-tools verdict, or a faulted capability probe, serves its
//! own request only, so a run that saturates the plugin slots cannot get other runs
//! refused afterwards); an answer computed from records read before a revocation is
//! never kept (`generation`); what a revocation names is forgotten
//! ([`Decisions::forget_run`] and friends). The request memo of a (run, connector) is
//! bounded: it keeps only known MCP methods, only tools of the connector's snapshot, and
//! at most [`REQUEST_MEMO`] answers, so a run choosing methods or tool names cannot grow it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use portcullis_model::{
    Decision, DecisionContext, InjectionPlan, McpRequest, Stamp, ToolSet, Verdict,
};
use portcullis_runtime::Runtime;
use reqwest::Url;

use crate::context;
use crate::data::cache::Table;
use crate::data::generation::{Generations, Seen};
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

/// A request decision's memo key: the method, for `tools/call` the tool, and the
/// protocol version the message was sent under (the request chain is told it, so a
/// plugin may decide on it; the gate admits only the versions the proxy speaks).
type RequestKey = (String, Option<String>, String);

/// The most request decisions memoized per (run, connector).
pub const REQUEST_MEMO: usize = 256;

/// What the chains decided for one run on one connector.
pub struct Policy {
    pub revision: i64,
    pub generation: u64,
    pub ctx: Arc<DecisionContext>,
    pub access: Verdict<Decision>,
    pub permitted: Verdict<ToolSet>,
    requests: Mutex<HashMap<RequestKey, Verdict<Decision>>>,
}

/// A provider plan, which holds templates and never a secret, with the connector's
/// server URL parsed once for the requests the plan is written into.
pub struct CachedPlan {
    pub revision: i64,
    pub generation: u64,
    pub plan: InjectionPlan,
    pub stamps: Vec<Stamp>,
    /// The server URL, or why it does not parse (the request then fails as
    /// unreachable).
    pub upstream_url: Result<Url, String>,
}

/// One client-to-server message, as the request chain is asked about it.
pub struct Asked<'a> {
    pub method: &'a str,
    pub tool: Option<&'a str>,
    pub arguments: Option<&'a serde_json::Value>,
    pub protocol_version: &'a str,
}

impl Asked<'_> {
    fn request(&self) -> McpRequest {
        McpRequest {
            method: self.method.to_owned(),
            tool: self.tool.map(str::to_owned),
            arguments: self.arguments.map(|a| a.to_string()),
            protocol_version: self.protocol_version.to_owned(),
        }
    }
}

/// The memoized answers: policies per (run, connector), plans per connector.
pub struct Decisions {
    generations: Arc<Generations>,
    policies: Table<(String, String), Policy>,
    plans: Table<String, CachedPlan>,
}

impl Decisions {
    /// Memos whose fills check `generations`.
    pub fn new(generations: Arc<Generations>) -> Self {
        Self {
            generations,
            policies: Table::default(),
            plans: Table::default(),
        }
    }

    /// The policy of `run` on `connector`, from the memo when still valid; `seen` is
    /// what the records were read under.
    pub async fn policy(
        &self,
        runtime: &Runtime,
        (run, actor, connector): (&RunRecord, &ActorRecord, &ConnectorRecord),
        seen: Seen,
    ) -> Arc<Policy> {
        let generation = runtime.generation();
        let key = (run.id.clone(), connector.id.clone());
        let cached = runtime.memoize().then(|| self.policies.get(&key)).flatten();
        if let Some(policy) =
            cached.filter(|p| p.revision == connector.revision && p.generation == generation)
        {
            return policy;
        }
        let ctx = Arc::new(context::decision_context(run, actor, connector));
        let (access, permitted) = runtime.access_and_tools(ctx.clone()).await;
        if runtime.shadowing() {
            runtime.observe_access(&ctx);
            runtime.observe_tools(&ctx);
        }
        let policy = Arc::new(Policy {
            revision: connector.revision,
            generation: access.generation.min(permitted.generation),
            ctx,
            access,
            permitted,
            requests: Mutex::new(HashMap::new()),
        });
        if policy.access.fault.is_none() && policy.permitted.fault.is_none() {
            self.policies
                .insert_if(key, policy.clone(), || self.generations.unchanged(seen));
        }
        policy
    }

    /// The connector's provider plan, from the memo when still valid.
    pub async fn plan(
        &self,
        runtime: &Runtime,
        connector: &ConnectorRecord,
    ) -> Result<Arc<CachedPlan>, InjectionError> {
        let seen = self.generations.seen();
        let generation = runtime.generation();
        let cached = runtime
            .memoize()
            .then(|| self.plans.get(&connector.id))
            .flatten();
        if let Some(plan) =
            cached.filter(|p| p.revision == connector.revision && p.generation == generation)
        {
            return Ok(plan);
        }
        let (plan, stamps) = injection::plan(runtime, connector).await?;
        let cached = Arc::new(CachedPlan {
            revision: connector.revision,
            generation,
            plan,
            stamps,
            upstream_url: Url::parse(&connector.server_url)
                .map_err(|e| format!("stored server URL is invalid: {e}")),
        });
        self.plans
            .insert_if(connector.id.clone(), cached.clone(), || {
                self.generations.unchanged(seen)
            });
        Ok(cached)
    }

    /// Forgets the policies of a finished run.
    pub fn forget_run(&self, run_id: &str) {
        self.policies.take_where(|(run, _), _| run == run_id);
    }

    /// Forgets what was decided about a connector that changed.
    pub fn forget_connector(&self, connector_id: &str) {
        self.plans.remove(connector_id);
        self.policies
            .take_where(|(_, connector), _| connector == connector_id);
    }

    /// Forgets every policy: any run may belong to the actor that changed.
    pub fn forget_policies(&self) {
        self.policies.clear();
    }

    /// How many policies and request decisions are memoized.
    pub fn sizes(&self) -> (usize, usize) {
        let policies = self.policies.values();
        let requests = policies.iter().map(|p| p.memoized_requests()).sum();
        (policies.len(), requests)
    }
}

impl Policy {
    /// The request chain's decision on one message.
    pub async fn request(&self, runtime: &Runtime, asked: Asked<'_>) -> Verdict<Decision> {
        let memoizable = runtime.memoize()
            && !runtime.request_chain_reads_arguments()
            && (asked.method.is_empty() || crate::metrics::is_known_method(asked.method))
            && asked
                .tool
                .is_none_or(|tool| self.ctx.connector.tools.iter().any(|t| t.name == tool));
        let key = (
            asked.method.to_owned(),
            asked.tool.map(str::to_owned),
            asked.protocol_version.to_owned(),
        );
        if runtime.shadowing() {
            runtime.observe_request(&self.ctx, &asked.request());
        }
        if memoizable && let Some(verdict) = self.memo().get(&key) {
            return verdict.clone();
        }
        if memoizable
            && asked.method == "initialize"
            && let Some(verdict) = self.initialize_with_probes(runtime, &asked).await
        {
            self.remember(key, &verdict);
            return verdict;
        }
        let verdict = runtime.request(self.ctx.clone(), asked.request()).await;
        if memoizable {
            self.remember(key, &verdict);
        }
        verdict
    }

    /// `initialize` and the capability probes its answer needs, in one evaluation: each
    /// plugin of the request chain is instantiated once for all six. The probes are
    /// remembered for [`Policy::denied_capabilities`]. Only a sound batch is used: if any
    /// answer faulted, `None`, and `initialize` is asked alone as without the batch, so
    /// that a faulted probe strips its capability but never denies `initialize`.
    async fn initialize_with_probes(
        &self,
        runtime: &Runtime,
        asked: &Asked<'_>,
    ) -> Option<Verdict<Decision>> {
        let mut requests = vec![asked.request()];
        requests.extend(probes(asked.protocol_version));
        let mut verdicts = runtime.requests(self.ctx.clone(), requests).await;
        if verdicts.iter().any(|verdict| verdict.fault.is_some()) {
            return None;
        }
        let probed = verdicts.split_off(1);
        self.keep_probes(runtime, asked.protocol_version, &probed);
        verdicts.pop()
    }

    /// Keeps a request verdict for its key, up to the memo's bound; a fault is not a
    /// decision: it is asked again next time rather than remembered.
    fn remember(&self, key: RequestKey, verdict: &Verdict<Decision>) {
        if verdict.fault.is_none() {
            let mut memo = self.memo();
            if memo.len() < REQUEST_MEMO {
                memo.insert(key, verdict.clone());
            }
        }
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, HashMap<RequestKey, Verdict<Decision>>> {
        self.requests.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn memoized_requests(&self) -> usize {
        self.memo().len()
    }

    /// The server capabilities to strip from an `initialize` answer: those whose methods
    /// the request chain denies under `protocol_version`, from the remembered probes
    /// when all five are, else asked in one evaluation (each plugin instantiated once).
    pub async fn denied_capabilities(
        &self,
        runtime: &Runtime,
        protocol_version: &str,
    ) -> Vec<&'static str> {
        let remembered: Option<Vec<Verdict<Decision>>> = {
            let memo = self.memo();
            CAPABILITY_PROBES
                .iter()
                .map(|(_, method)| memo.get(&probe_key(method, protocol_version)).cloned())
                .collect()
        };
        let verdicts = match remembered {
            Some(verdicts) => verdicts,
            None => {
                let verdicts = runtime
                    .requests(self.ctx.clone(), probes(protocol_version).collect())
                    .await;
                self.keep_probes(runtime, protocol_version, &verdicts);
                verdicts
            }
        };
        // A faulted probe strips its capability (fail closed); it was not remembered.
        CAPABILITY_PROBES
            .into_iter()
            .zip(&verdicts)
            .filter(|(_, verdict)| !verdict.value.is_allow())
            .map(|((capability, _), _)| capability)
            .collect()
    }

    /// Remembers the probes' verdicts (in [`CAPABILITY_PROBES`] order), where the
    /// request memo may keep them.
    fn keep_probes(
        &self,
        runtime: &Runtime,
        protocol_version: &str,
        verdicts: &[Verdict<Decision>],
    ) {
        if runtime.memoize() && !runtime.request_chain_reads_arguments() {
            for ((_, method), verdict) in CAPABILITY_PROBES.iter().zip(verdicts) {
                self.remember(probe_key(method, protocol_version), verdict);
            }
        }
    }
}

/// The capability probes, asked under `protocol_version`.
fn probes(protocol_version: &str) -> impl Iterator<Item = McpRequest> + '_ {
    CAPABILITY_PROBES.iter().map(move |(_, method)| McpRequest {
        method: (*method).to_owned(),
        tool: None,
        arguments: None,
        protocol_version: protocol_version.to_owned(),
    })
}

fn probe_key(method: &str, protocol_version: &str) -> RequestKey {
    (method.to_owned(), None, protocol_version.to_owned())
}
