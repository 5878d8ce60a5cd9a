//! The chains: which plugins make each decision, and how their answers become one. This
//! is the part a security reviewer reads to know what the proxy is told.
//!
//! **Resolving.** Every registry generation resolves the [`ChainConfig`] against the
//! plugins loaded in it ([`Chains::resolve`]): each name must be loaded and of the kind
//! its chain needs, or the generation is refused and the previous one keeps serving.
//!
//! **Running.** Each link's call is answered by the [`Decider`] (the sandbox by default);
//! everything else happens here, whichever decider answers:
//!
//! * `access` and `request`: every plugin of the chain is asked in order; the first deny
//!   wins (deny overrides) and the plugins after it are not called. Tool arguments reach
//!   only a plugin that declared it reads them.
//! * `tools`: the permitted set is the intersection of every plugin's answer.
//! * `providers`: the provider plugin named for the connector's provider profile answers
//!   the injection plan, and the OAuth profile when the connector is authorized.
//! * Every answer is checked (`answer`) before it counts.
//! * **Fail closed.** A call that gives no usable answer (trap, CPU deadline, memory
//!   limit, wall-clock timeout, malformed answer) is a [`Fault`], and a fault is never an
//!   allow: `access` and `request` deny with the chain's deny code and a reason naming the
//!   fault, `tools` permits nothing, the plan and the OAuth profile are
//!   [`PlanError::Fault`]. The verdict carries
//!   the fault and the fault is logged.
//! * Every [`Verdict`] stamps the plugins that were called, in order (the last stamp of a
//!   deny names the plugin that denied), and the generation the chains were resolved in.
//!
//! Several chains may be asked in one evaluation (`access_and_tools`, `requests`): their
//! rules are the same as asked alone, and a decider may answer all their calls with one
//! instance per plugin (`call`). An evaluation with a link whose decider blocks (every
//! sandboxed call does) runs inline on the async worker under a small budget, or on the
//! blocking pool within its instance slots and a wall-clock timeout of one call's timeout
//! per link (`Runner::on`, `Engine::blocking`); a timeout is a fault like any other.

use std::collections::BTreeMap;
use std::sync::Arc;

use portcullis_model::{
    ChainConfig, ChainEntry, Decision, DecisionContext, Denial, DenyCode, Fault, InjectionPlan,
    McpRequest, OAuthProfile, OAuthRequest, PlanRequest, ToolSet, Verdict,
};

use crate::answer::{self, Malformed};
use crate::decider::{Bounds, Decider, Link};
use crate::engine::Engine;
use crate::error::PlanError;
use crate::plugin::{Plugin, PluginKind};

/// The chains of one registry generation, bound to its plugin versions.
pub(crate) struct Chains {
    pub generation: u64,
    access: Arc<[Link]>,
    request: Arc<[Link]>,
    tools: Arc<[Link]>,
    providers: BTreeMap<String, Arc<Plugin>>,
    /// Whether any plugin of the request chain reads tool arguments.
    pub request_reads_arguments: bool,
}

/// What a chain runs with: the decider that answers each link, and the sandbox whose
/// blocking pool and slots a blocking decider's calls run within.
#[derive(Clone, Copy)]
pub(crate) struct Runner<'a> {
    pub decider: &'a Arc<dyn Decider>,
    pub engine: &'a Engine,
}

/// Resolving: binding the configuration to the plugin versions of one generation.
impl Chains {
    /// `config` resolved against `plugins`, for registry generation `generation`.
    pub fn resolve(
        config: &ChainConfig,
        plugins: &BTreeMap<Arc<str>, Arc<Plugin>>,
        generation: u64,
    ) -> Result<Self, String> {
        let find = |chain: &str, name: &str, kind: PluginKind| -> Result<Arc<Plugin>, String> {
            let plugin = plugins.get(name).ok_or_else(|| {
                format!("the {chain} chain names plugin `{name}`, which is not loaded")
            })?;
            if plugin.kind != kind {
                return Err(format!(
                    "the {chain} chain needs a {} plugin, but `{name}` is a {} plugin",
                    kind.as_str(),
                    plugin.kind.as_str()
                ));
            }
            Ok(plugin.clone())
        };
        let links = |chain: &str, entries: &[ChainEntry]| -> Result<Arc<[Link]>, String> {
            entries
                .iter()
                .map(|entry| {
                    Ok(Link {
                        plugin: find(chain, entry.plugin(), PluginKind::Policy)?,
                        settings: entry.settings_json().into(),
                    })
                })
                .collect()
        };
        let request = links("request", &config.request)?;
        let providers = config
            .providers
            .iter()
            .map(|(profile, name)| {
                Ok((
                    profile.clone(),
                    find("providers", name, PluginKind::Provider)?,
                ))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            generation,
            access: links("access", &config.access)?,
            request_reads_arguments: request.iter().any(|l| l.plugin.reads_arguments),
            request,
            tools: links("tools", &config.tools)?,
            providers,
        })
    }

    /// The provider profile names a connector may use.
    pub fn provider_profiles(&self) -> Vec<String> {
        self.providers.keys().cloned().collect()
    }
}

/// Running: each decision of the request path, alone or several in one evaluation.
impl Chains {
    /// May this run use this connector?
    pub async fn access(&self, run: Runner<'_>, ctx: Arc<DecisionContext>) -> Verdict<Decision> {
        let links = self.access.clone();
        let outcome = run
            .on(plugins(&self.access), move |decider| {
                ask_access(decider, &links, &ctx)
            })
            .await;
        self.decision_verdict(&self.access, DenyCode::ConnectorUnavailable, outcome)
    }

    /// May this client-to-server message pass?
    pub async fn request(
        &self,
        run: Runner<'_>,
        ctx: Arc<DecisionContext>,
        request: McpRequest,
    ) -> Verdict<Decision> {
        let code = request_code(&request);
        let links = self.request.clone();
        let outcome = run
            .on(plugins(&self.request), move |decider| {
                ask_request(decider, &links, &ctx, &request)
            })
            .await;
        self.decision_verdict(&self.request, code, outcome)
    }

    /// The decisions on several messages, in one evaluation: each plugin of the request
    /// chain is instantiated once for all of them.
    pub async fn requests(
        &self,
        run: Runner<'_>,
        ctx: Arc<DecisionContext>,
        requests: Vec<McpRequest>,
    ) -> Vec<Verdict<Decision>> {
        let codes: Vec<DenyCode> = requests.iter().map(request_code).collect();
        let links = self.request.clone();
        let every_call = std::iter::repeat_n(&*self.request, requests.len()).flatten();
        let outcome = run
            .on(every_call.map(|l| &*l.plugin), move |decider| {
                requests
                    .iter()
                    .map(|request| ask_request(decider, &links, &ctx, request))
                    .collect::<Vec<_>>()
            })
            .await;
        match outcome {
            Ok(called) => called
                .into_iter()
                .zip(codes)
                .map(|(called, code)| self.decision_verdict(&self.request, code, Ok(called)))
                .collect(),
            Err(fault) => codes
                .into_iter()
                .map(|code| self.decision_verdict(&self.request, code, Err(fault.clone())))
                .collect(),
        }
    }

    /// The intersection of every tools-chain plugin's answer; a failure permits nothing.
    pub async fn permitted_tools(
        &self,
        run: Runner<'_>,
        ctx: Arc<DecisionContext>,
    ) -> Verdict<ToolSet> {
        let links = self.tools.clone();
        let outcome = run
            .on(plugins(&self.tools), move |decider| {
                intersect(decider, &links, &ctx)
            })
            .await;
        self.tools_verdict(outcome.and_then(|answer| answer))
    }

    /// The access decision and the permitted set, in one evaluation: a plugin in both
    /// chains is instantiated once for both.
    pub async fn access_and_tools(
        &self,
        run: Runner<'_>,
        ctx: Arc<DecisionContext>,
    ) -> (Verdict<Decision>, Verdict<ToolSet>) {
        let (access, tools) = (self.access.clone(), self.tools.clone());
        let outcome = run
            .on(
                plugins(&self.access).chain(plugins(&self.tools)),
                move |decider| {
                    (
                        ask_access(decider, &access, &ctx),
                        intersect(decider, &tools, &ctx),
                    )
                },
            )
            .await;
        let (access, tools) = match outcome {
            Ok((access, tools)) => (Ok(access), tools),
            Err(fault) => (Err(fault.clone()), Err(fault)),
        };
        (
            self.decision_verdict(&self.access, DenyCode::ConnectorUnavailable, access),
            self.tools_verdict(tools),
        )
    }

    /// The injection plan of the provider plugin configured for `request.provider`.
    pub async fn injection_plan(
        &self,
        run: Runner<'_>,
        request: PlanRequest,
    ) -> Verdict<Result<InjectionPlan, PlanError>> {
        let profile = request.provider.clone();
        self.ask_provider(run, &profile, move |decider, provider| {
            answer::check_plan(decider.plan(provider, &request)?)
                .map_err(|e| malformed(provider, e))
        })
        .await
    }

    /// The OAuth profile of the provider plugin configured for `request.provider`.
    pub async fn oauth_profile(
        &self,
        run: Runner<'_>,
        request: OAuthRequest,
    ) -> Verdict<Result<OAuthProfile, PlanError>> {
        let profile = request.provider.clone();
        self.ask_provider(run, &profile, move |decider, provider| {
            answer::check_oauth_profile(decider.oauth(provider, &request)?)
                .map_err(|e| malformed(provider, e))
        })
        .await
    }

    /// Asks the provider plugin of provider profile `profile`: its checked answer, its
    /// refusal, or the fault that stands for no answer.
    async fn ask_provider<T: Send + 'static>(
        &self,
        run: Runner<'_>,
        profile: &str,
        ask: impl Fn(&dyn Decider, &Plugin) -> Result<Result<T, String>, Fault> + Send + 'static,
    ) -> Verdict<Result<T, PlanError>> {
        let Some(plugin) = self.providers.get(profile).cloned() else {
            return Verdict {
                value: Err(PlanError::UnknownProvider(profile.to_owned())),
                plugins: Vec::new(),
                fault: None,
                generation: self.generation,
            };
        };
        let plugins = vec![plugin.stamp()];
        let provider = plugin.clone();
        let outcome = run
            .on(std::iter::once(&*plugin), move |decider| {
                ask(decider, &provider)
            })
            .await
            .and_then(|answer| answer);
        let (value, fault) = match outcome {
            Ok(Ok(answer)) => (Ok(answer), None),
            Ok(Err(refusal)) => (Err(PlanError::Refused(refusal)), None),
            Err(fault) => {
                tracing::warn!(error = %fault, "provider plugin failed");
                (Err(PlanError::Fault(fault.clone())), Some(fault))
            }
        };
        Verdict {
            value,
            plugins,
            fault,
            generation: self.generation,
        }
    }

    /// The verdict of a deny-overrides chain of `links` from what it answered (or the
    /// fault that stopped it as a whole); a fault denies with `code`.
    fn decision_verdict(
        &self,
        links: &[Link],
        code: DenyCode,
        outcome: Result<Called, Fault>,
    ) -> Verdict<Decision> {
        let (called, result) = outcome.unwrap_or_else(|fault| (links.len(), Err(fault)));
        let plugins = links[..called].iter().map(|l| l.plugin.stamp()).collect();
        let (value, fault) = match result {
            Ok(decision) => (decision, None),
            Err(fault) => {
                tracing::warn!(error = %fault, "policy plugin failed; denying");
                (fault_denial(code, &fault), Some(fault))
            }
        };
        Verdict {
            value,
            plugins,
            fault,
            generation: self.generation,
        }
    }

    /// The verdict of the tools chain; a fault permits nothing.
    fn tools_verdict(&self, outcome: Result<ToolSet, Fault>) -> Verdict<ToolSet> {
        let (value, fault) = match outcome {
            Ok(set) => (set, None),
            Err(fault) => {
                tracing::warn!(error = %fault, "permitted-tools chain failed; no tool is permitted");
                (ToolSet::Only(Default::default()), Some(fault))
            }
        };
        Verdict {
            value,
            plugins: self.tools.iter().map(|l| l.plugin.stamp()).collect(),
            fault,
            generation: self.generation,
        }
    }
}

/// How many links of a deny-overrides chain were called, and what the chain answered.
type Called = (usize, Result<Decision, Fault>);

fn plugins(links: &[Link]) -> impl Iterator<Item = &Plugin> {
    links.iter().map(|l| &*l.plugin)
}

/// The deny code of a request chain's fault for `request`.
fn request_code(request: &McpRequest) -> DenyCode {
    if request.method == "tools/call" {
        DenyCode::ToolNotPermitted
    } else {
        DenyCode::MethodNotAllowed
    }
}

fn ask_access(decider: &dyn Decider, links: &[Link], ctx: &DecisionContext) -> Called {
    deny_overrides(decider, links, |decider, link| decider.access(link, ctx))
}

/// Tool arguments reach only a plugin that declared it reads them.
fn ask_request(
    decider: &dyn Decider,
    links: &[Link],
    ctx: &DecisionContext,
    request: &McpRequest,
) -> Called {
    let without_arguments = request.arguments.is_some().then(|| McpRequest {
        arguments: None,
        ..request.clone()
    });
    deny_overrides(decider, links, |decider, link| {
        let request = match (&without_arguments, link.plugin.reads_arguments) {
            (Some(without), false) => without,
            _ => request,
        };
        decider.request(link, ctx, request)
    })
}

/// Asks `links` in order until one denies (deny overrides).
fn deny_overrides(
    decider: &dyn Decider,
    links: &[Link],
    ask: impl Fn(&dyn Decider, &Link) -> Result<Decision, Fault>,
) -> Called {
    for (index, link) in links.iter().enumerate() {
        let answer = ask(decider, link).and_then(|decision| {
            answer::check_decision(&decision)
                .map(|()| decision)
                .map_err(|e| malformed(&link.plugin, e))
        });
        match answer {
            Ok(Decision::Allow) => continue,
            other => return (index + 1, other),
        }
    }
    (links.len(), Ok(Decision::Allow))
}

/// The intersection of every link's checked answer.
fn intersect(
    decider: &dyn Decider,
    links: &[Link],
    ctx: &DecisionContext,
) -> Result<ToolSet, Fault> {
    let mut set = ToolSet::All;
    for link in links {
        let answer = decider.permitted_tools(link, ctx)?;
        let answer = answer::check_tools(answer).map_err(|e| malformed(&link.plugin, e))?;
        set = set.intersect(answer);
    }
    Ok(set)
}

impl Runner<'_> {
    /// Runs `work`, one evaluation that calls the decider for `plugins` (each call once),
    /// where the decider needs it. Links answered without blocking run inline. Otherwise
    /// the evaluation first runs inline on the async worker if its instance slots are
    /// free at once and the decider can bound it ([`Bounds::inline`]); if it gave up, or
    /// could not start, it runs on the blocking pool within its slots and the wall-clock
    /// timeout of its calls. `work` may run twice, so it only computes answers.
    async fn on<'p, T: Send + 'static>(
        self,
        plugins: impl Iterator<Item = &'p Plugin>,
        work: impl Fn(&dyn Decider) -> T + Send + 'static,
    ) -> Result<T, Fault> {
        let mut calls = 0;
        let mut blocking: Vec<usize> = Vec::new();
        for plugin in plugins {
            calls += 1;
            let key = plugin as *const Plugin as usize;
            if self.decider.blocks(plugin) && !blocking.contains(&key) {
                blocking.push(key);
            }
        }
        if blocking.is_empty() {
            return Ok(work(&**self.decider));
        }
        let instances = blocking.len().min(self.engine.slot_count());
        if let Some(_slots) = self.engine.try_slots(instances)
            && let Some(evaluation) = self.decider.evaluation(Bounds {
                inline: true,
                instances,
            })
        {
            let value = work(&*evaluation);
            if !evaluation.gave_up() {
                return Ok(value);
            }
        }
        let decider = self.decider.clone();
        self.engine
            .blocking(calls, instances, move || {
                let bounds = Bounds {
                    inline: false,
                    instances,
                };
                match decider.evaluation(bounds) {
                    Some(evaluation) => work(&*evaluation),
                    None => work(&*decider),
                }
            })
            .await
    }
}

/// The chain that uses `name` as a plugin of a kind other than `kind`, if any.
pub(crate) fn conflicting_use(
    config: &ChainConfig,
    name: &str,
    kind: PluginKind,
) -> Option<&'static str> {
    let policies = [
        ("access", &config.access),
        ("request", &config.request),
        ("tools", &config.tools),
    ]
    .into_iter()
    .flat_map(|(chain, entries)| {
        entries
            .iter()
            .map(move |e| (chain, e.plugin(), PluginKind::Policy))
    });
    let providers = config
        .providers
        .values()
        .map(|p| ("providers", p.as_str(), PluginKind::Provider));
    policies
        .chain(providers)
        .find(|(_, plugin, wanted)| *plugin == name && *wanted != kind)
        .map(|(chain, _, _)| chain)
}

fn malformed(plugin: &Plugin, error: Malformed) -> Fault {
    Fault::Malformed {
        plugin: plugin.name.to_string(),
        detail: error.to_string(),
    }
}

/// The deny a fault stands for: fail closed.
fn fault_denial(code: DenyCode, fault: &Fault) -> Decision {
    Decision::Deny(Denial {
        code,
        reason: fault.reason().to_owned(),
        message: fault.to_string(),
    })
}

/// The built-in chains end to end under the default limits. It is here rather than with
/// the integration tests because the default wall-clock timeout (100 ms per call) holds
/// only on a machine that is not running the sandbox's hostile tests beside it.
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use portcullis_model::fixtures::{call, connector, context, plan_request, rule, single, tool};
    use portcullis_model::{
        CredentialKind, Decision, OAuthProfile, OAuthRequest, PlanRequest, Registration, ToolSet,
    };

    use crate::{InitialPlugin, PlanError, Runtime, RuntimeConfig};

    fn builtins() -> Runtime {
        let plugins: Vec<InitialPlugin> = portcullis_builtins::BUILTINS
            .iter()
            .map(|b| InitialPlugin::builtin(b.name, b.wasm))
            .collect();
        Runtime::new(RuntimeConfig::default(), &plugins).unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_default_chain_decides_under_default_limits() {
        let rt = builtins();
        let slack = "https://mcp.slack.com/mcp";
        let ctx = Arc::new(
            context()
                .connector(
                    connector("conn_1", "alice", slack)
                        .tool(tool("list_channels").read_only())
                        .tool(tool("send_message").read_only()),
                )
                .field(single("slack").rule(rule(slack).required(["list_*"])))
                .provide("slack", "conn_1")
                .build(),
        );
        let v = rt.access(ctx.clone()).await;
        assert_eq!(v.value, Decision::Allow, "{v:?}");
        let v = rt.permitted_tools(ctx.clone()).await;
        assert_eq!(
            v.value,
            ToolSet::Only(["list_channels".to_string()].into()),
            "{v:?}"
        );
        let v = rt.request(ctx.clone(), call("send_message")).await;
        assert!(!v.value.is_allow(), "{v:?}");
        let v = rt
            .injection_plan(PlanRequest {
                server_url: "https://mcp.sentry.dev/mcp".into(),
                provider: "sentry".into(),
                ..plan_request(CredentialKind::ApiKey, "{}")
            })
            .await;
        let plan = v.value.unwrap();
        assert_eq!(
            plan.headers[0].1.render(Some("tok")).unwrap(),
            "Sentry-Bearer tok"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_0_1_0_provider_takes_the_standard_oauth_profile() {
        let rt = builtins();
        let request = OAuthRequest {
            connector_id: "conn_1".into(),
            server_url: "https://mcp.example.com/mcp".into(),
            provider: "bearer".into(),
            config: "{}".into(),
            registration: Registration::Dynamic,
            discovered_scopes: vec!["mcp:tools".into()],
            requested_scopes: None,
            client_auth_methods: Vec::new(),
        };
        let v = rt.oauth_profile(request.clone()).await;
        assert_eq!(v.value, Ok(OAuthProfile::default()), "{v:?}");
        assert_eq!(&*v.plugins[0].name, "provider-bearer");
        assert_eq!(v.fault, None);
        let v = rt
            .oauth_profile(OAuthRequest {
                provider: "nope".into(),
                ..request
            })
            .await;
        assert_eq!(v.value, Err(PlanError::UnknownProvider("nope".into())));
        assert!(v.plugins.is_empty());
    }
}
