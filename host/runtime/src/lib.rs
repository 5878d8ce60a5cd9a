//! # portcullis-runtime
//!
//! The plugin runtime: every decision on Portcullis' request path is made here, by
//! sandboxed WebAssembly components typed by the WIT package in `wit/`.
//!
//! The pieces, each readable on its own:
//!
//! | module | owns |
//! |---|---|
//! | [`admission`] | deciding whether bytes may become a plugin (format, digest, world, smoke call) |
//! | `sandbox` | the engine, the limits and the per-call store: what a plugin can do and use |
//! | `evaluate` | one call: fresh instance, one export, answer checked by `answer` |
//! | `registry` | the immutable set of loaded plugins, swapped atomically |
//! | [`chain`] | which plugins make each decision and how answers combine |
//! | [`model`] | the host's records, independent of the WIT version (`abi` converts) |
//!
//! The proxy talks only to [`Runtime`]: install or roll back a plugin, list plugins, and
//! ask for a decision. Every answer is a [`Verdict`] naming the plugin versions that made
//! it. A plugin that traps, runs out of CPU or memory, or answers malformed yields a deny
//! (fail closed); the proxy never sees a wasmtime error.

mod abi;
pub mod admission;
mod answer;
#[cfg(feature = "bench-internals")]
mod bench;
pub mod chain;
mod error;
mod evaluate;
pub mod model;
#[cfg(feature = "native-plugins")]
mod native;
mod registry;
mod sandbox;
mod template;

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

#[cfg(feature = "bench-internals")]
pub use bench::ReusedInstance;
pub use chain::{ChainConfig, ChainEntry};
pub use error::{Fault, LoadError};
pub use model::*;
pub use registry::{PluginKind, PluginSummary, PreviousVersion, Stamp};
pub use sandbox::Limits;
pub use template::Template;

use chain::Link;
use registry::Registry;
use sandbox::Sandbox;

/// How the runtime is set up; every field has a default.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    pub limits: Limits,
    pub chains: ChainConfig,
    /// Whether callers may reuse an answer for the same plugin versions and inputs.
    /// Plugins are pure, so this only trades memory for speed; turning it off makes
    /// every request pay for its plugin calls (for benchmarks and debugging).
    pub memoize: bool,
    /// Which code answers decisions; see [`Backend`].
    pub backend: Backend,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            chains: ChainConfig::default(),
            memoize: true,
            backend: Backend::Wasm,
        }
    }
}

/// Which code answers decisions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The sandboxed components: the only production mode.
    #[default]
    Wasm,
    /// For benchmarks only, and only in a build with the `native-plugins` feature: chains
    /// made only of built-in plugins are answered by the plugin crates' Rust code compiled
    /// into the host, without a sandbox, so the sandbox's cost can be measured on its own.
    Native,
}

/// A component to load at start.
pub struct InitialPlugin<'a> {
    pub name: &'a str,
    pub wasm: &'a [u8],
    pub builtin: bool,
}

/// An answer and the plugin versions that gave it.
#[derive(Clone, Debug)]
pub struct Verdict<T> {
    pub value: T,
    /// Every plugin that was called, in order.
    pub plugins: Vec<Stamp>,
    /// Set when the answer is a deny because a plugin failed rather than decided.
    pub fault: Option<Fault>,
    /// The registry generation the answer was computed on.
    pub generation: u64,
}

/// Why no injection plan is available for a connector.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no provider plugin is configured for provider `{0}`")]
    UnknownProvider(String),
    #[error("the provider plugin refused the connector's configuration: {0}")]
    Refused(String),
    #[error(transparent)]
    Fault(Fault),
}

pub struct Runtime {
    sandbox: Arc<Sandbox>,
    registry: ArcSwap<Registry>,
    chains: ChainConfig,
    memoize: bool,
    /// Whether decisions go to the native backend (`native-plugins` builds only).
    #[cfg_attr(not(feature = "native-plugins"), allow(dead_code))]
    native: bool,
    /// Serializes installs and rollbacks; readers never take it.
    writer: Mutex<()>,
}

impl Runtime {
    /// Starts the engine and loads `plugins`. Blocking: compiles every component.
    pub fn new(config: RuntimeConfig, plugins: &[InitialPlugin<'_>]) -> Result<Self, LoadError> {
        let native = config.backend == Backend::Native;
        if native && !cfg!(feature = "native-plugins") {
            return Err(LoadError::Engine(
                "backend = \"native\" needs a build with the `native-plugins` feature \
                 (cargo build --features portcullis-runtime/native-plugins)"
                    .to_owned(),
            ));
        }
        if native {
            tracing::warn!(
                "decisions are made by the built-in plugins' native code, without a sandbox: \
                 a benchmark mode, not for production"
            );
        }
        let sandbox =
            Sandbox::new(config.limits).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let loaded = plugins
            .iter()
            .map(|p| admission::admit(&sandbox, p.name, p.wasm, p.builtin).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let registry = Registry::new(loaded, &config.chains).map_err(LoadError::Chain)?;
        Ok(Self {
            sandbox: Arc::new(sandbox),
            registry: ArcSwap::from_pointee(registry),
            chains: config.chains,
            memoize: config.memoize,
            native,
            writer: Mutex::new(()),
        })
    }

    /// Whether answers may be memoized (see [`RuntimeConfig::memoize`]).
    pub fn memoize(&self) -> bool {
        self.memoize
    }

    pub fn limits(&self) -> &Limits {
        self.sandbox.limits()
    }

    /// Changes with every install or rollback; memoized answers must be keyed by it.
    pub fn generation(&self) -> u64 {
        self.registry.load().generation
    }

    /// Whether any plugin of the request chain reads tool arguments, in which case a
    /// `tools/call` answer depends on them and must not be reused across arguments.
    pub fn request_chain_reads_arguments(&self) -> bool {
        self.registry.load().chains.request_reads_arguments
    }

    /// The provider profile names a connector may use.
    pub fn provider_profiles(&self) -> Vec<String> {
        self.registry
            .load()
            .chains
            .providers
            .keys()
            .cloned()
            .collect()
    }

    pub fn plugins(&self) -> Vec<PluginSummary> {
        self.registry.load().summaries()
    }

    pub fn plugin(&self, name: &str) -> Option<PluginSummary> {
        self.registry.load().summary(name)
    }

    /// Admits `wasm` as plugin `name` and swaps it in. The admission runs on the blocking
    /// pool; on any error nothing changes and the current version keeps serving.
    pub async fn install(&self, name: &str, wasm: Vec<u8>) -> Result<PluginSummary, LoadError> {
        let sandbox = self.sandbox.clone();
        let owned_name = name.to_owned();
        // The smoke call instantiates the component, so it takes an instance slot like any
        // call: the pooling allocator refuses rather than waits when every slot is busy,
        // and an install under full load would otherwise fail for no fault of its own.
        let permit = self
            .sandbox
            .slots()
            .clone()
            .acquire_owned()
            .await
            .expect("the slot semaphore is never closed");
        let plugin = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            admission::admit(&sandbox, &owned_name, &wasm, false)
        })
        .await
        .map_err(|e| LoadError::Compile(format!("admission task failed: {e}")))??;
        let plugin = Arc::new(plugin);

        let _writer = self.writer.lock().expect("registry writer lock");
        let registry = self.registry.load();
        if let Some(chain) = self.chains.conflicting_use(name, plugin.kind) {
            let current = match plugin.kind {
                PluginKind::Policy => PluginKind::Provider,
                PluginKind::Provider => PluginKind::Policy,
            };
            return Err(LoadError::KindChange {
                name: name.to_owned(),
                current: current.as_str(),
                offered: plugin.kind.as_str(),
                chain: chain.to_owned(),
            });
        }
        let next = registry
            .with_installed(plugin, &self.chains)
            .map_err(LoadError::Chain)?;
        self.registry.store(Arc::new(next));
        tracing::info!(plugin = name, "plugin installed");
        Ok(self.plugin(name).expect("just installed"))
    }

    /// Makes the previous version of `name` current again (and the current one previous).
    pub fn rollback(&self, name: &str) -> Result<PluginSummary, LoadError> {
        let _writer = self.writer.lock().expect("registry writer lock");
        let registry = self.registry.load();
        if !registry.current.contains_key(name) {
            return Err(LoadError::NotFound(name.to_owned()));
        }
        let next = registry
            .with_rolled_back(name, &self.chains)
            .ok_or_else(|| LoadError::NoPrevious(name.to_owned()))?
            .map_err(LoadError::Chain)?;
        self.registry.store(Arc::new(next));
        tracing::info!(plugin = name, "plugin rolled back");
        Ok(self.plugin(name).expect("rolled back"))
    }

    /// The access decision: may this run use this connector?
    pub async fn access(&self, ctx: Arc<DecisionContext>) -> Verdict<Decision> {
        let registry = self.registry.load_full();
        let links = registry.chains.access.clone();
        let deny = |fault: &Fault| fault_denial(DenyCode::ConnectorUnavailable, fault);
        #[cfg(feature = "native-plugins")]
        if self.native
            && let Some((called, result)) = native::policy_chain(&links, &ctx, native::Call::Access)
        {
            return policy_verdict(registry.generation, &links, called, result, deny);
        }
        let sandbox = self.sandbox.clone();
        self.policy_chain(
            registry.generation,
            links,
            deny,
            move |link, wit_ctx| evaluate::access(&sandbox, &link.plugin, wit_ctx),
            ctx,
        )
        .await
    }

    /// The request decision for one client-to-server message.
    pub async fn request(
        &self,
        ctx: Arc<DecisionContext>,
        request: McpRequest,
    ) -> Verdict<Decision> {
        let registry = self.registry.load_full();
        let links = registry.chains.request.clone();
        let code = if request.method == "tools/call" {
            DenyCode::ToolNotPermitted
        } else {
            DenyCode::MethodNotAllowed
        };
        let deny = move |fault: &Fault| fault_denial(code, fault);
        #[cfg(feature = "native-plugins")]
        if self.native
            && let Some((called, result)) =
                native::policy_chain(&links, &ctx, native::Call::Request(&request))
        {
            return policy_verdict(registry.generation, &links, called, result, deny);
        }
        let sandbox = self.sandbox.clone();
        self.policy_chain(
            registry.generation,
            links,
            deny,
            move |link, wit_ctx| evaluate::request(&sandbox, &link.plugin, wit_ctx, &request),
            ctx,
        )
        .await
    }

    /// The tools this run may see and call on this connector: the intersection of every
    /// plugin's answer. A failure yields the empty set.
    pub async fn permitted_tools(&self, ctx: Arc<DecisionContext>) -> Verdict<ToolSet> {
        let registry = self.registry.load_full();
        let generation = registry.generation;
        let links = registry.chains.tools.clone();
        let sandbox = self.sandbox.clone();
        let stamps: Vec<Stamp> = links.iter().map(|l| l.plugin.stamp()).collect();
        #[cfg(feature = "native-plugins")]
        let native_outcome = if self.native {
            native::tools_chain(&links, &ctx)
        } else {
            None
        };
        #[cfg(not(feature = "native-plugins"))]
        let native_outcome = None;
        let outcome = match native_outcome {
            Some(outcome) => outcome,
            None => self
                .blocking(links.len(), move || {
                    let mut wit_ctx = abi::v0_1_0::decision_context(&ctx);
                    let mut set = ToolSet::All;
                    for link in links.iter() {
                        wit_ctx.settings = link.settings.to_string();
                        let answer = evaluate::permitted_tools(&sandbox, &link.plugin, &wit_ctx)?;
                        if let Some(names) = answer {
                            set = set.intersect(ToolSet::Only(names.into_iter().collect()));
                        }
                    }
                    Ok(set)
                })
                .await
                .and_then(|answer| answer),
        };
        match outcome {
            Ok(set) => Verdict {
                value: set,
                plugins: stamps,
                fault: None,
                generation,
            },
            Err(fault) => {
                tracing::warn!(error = %fault, "permitted-tools chain failed; no tool is permitted");
                Verdict {
                    value: ToolSet::Only(Default::default()),
                    plugins: stamps,
                    fault: Some(fault),
                    generation,
                }
            }
        }
    }

    /// The injection plan of the provider plugin configured for `request.provider`.
    pub async fn injection_plan(
        &self,
        request: PlanRequest,
    ) -> Verdict<Result<InjectionPlan, PlanError>> {
        let registry = self.registry.load_full();
        let generation = registry.generation;
        let Some(plugin) = registry.chains.providers.get(&request.provider).cloned() else {
            return Verdict {
                value: Err(PlanError::UnknownProvider(request.provider)),
                plugins: Vec::new(),
                fault: None,
                generation,
            };
        };
        let stamps = vec![plugin.stamp()];
        #[cfg(feature = "native-plugins")]
        let native_outcome = if self.native {
            native::plan(&plugin.name, &request)
        } else {
            None
        };
        #[cfg(not(feature = "native-plugins"))]
        let native_outcome = None;
        let outcome = match native_outcome {
            Some(outcome) => outcome,
            None => {
                let sandbox = self.sandbox.clone();
                self.blocking(1, move || evaluate::plan(&sandbox, &plugin, &request))
                    .await
                    .and_then(|answer| answer)
            }
        };
        let (value, fault) = match outcome {
            Ok(Ok(plan)) => (Ok(plan), None),
            Ok(Err(refusal)) => (Err(PlanError::Refused(refusal)), None),
            Err(fault) => {
                tracing::warn!(error = %fault, "provider plugin failed");
                (Err(PlanError::Fault(fault.clone())), Some(fault))
            }
        };
        Verdict {
            value,
            plugins: stamps,
            fault,
            generation,
        }
    }

    /// Runs a deny-overrides policy chain on the blocking pool.
    async fn policy_chain(
        &self,
        generation: u64,
        links: Arc<[Link]>,
        deny_for_fault: impl Fn(&Fault) -> Decision,
        call: impl Fn(
            &Link,
            &abi::v0_1_0::policy::portcullis::plugin::types::DecisionContext,
        ) -> Result<Decision, Fault>
        + Send
        + 'static,
        ctx: Arc<DecisionContext>,
    ) -> Verdict<Decision> {
        let count = links.len();
        let chain = links.clone();
        let outcome = self
            .blocking(count, move || {
                let mut wit_ctx = abi::v0_1_0::decision_context(&ctx);
                for (index, link) in chain.iter().enumerate() {
                    wit_ctx.settings = link.settings.to_string();
                    match call(link, &wit_ctx) {
                        Ok(Decision::Allow) => continue,
                        Ok(deny) => return (index + 1, Ok(deny)),
                        Err(fault) => return (index + 1, Err(fault)),
                    }
                }
                (count, Ok(Decision::Allow))
            })
            .await;
        let (called, result) = match outcome {
            Ok(answer) => answer,
            Err(fault) => (count, Err(fault)),
        };
        policy_verdict(generation, &links, called, result, deny_for_fault)
    }

    /// Runs `work` on the blocking pool within one instance slot and the wall-clock
    /// timeout of `calls` plugin calls, queueing for the slot included.
    async fn blocking<T: Send + 'static>(
        &self,
        calls: usize,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Fault> {
        let slots = self.sandbox.slots().clone();
        let budget = self.sandbox.limits().wall_timeout() * calls.max(1) as u32;
        let run = async move {
            let permit = slots
                .acquire_owned()
                .await
                .expect("the slot semaphore is never closed");
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                work()
            })
            .await
        };
        match tokio::time::timeout(budget, run).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(join)) => Err(Fault::Trap {
                plugin: "(host)".to_owned(),
                detail: format!("plugin call task failed: {join}"),
            }),
            Err(_) => Err(Fault::WallTimeout),
        }
    }
}

/// The verdict of a policy chain whose first `called` links answered `result`.
fn policy_verdict(
    generation: u64,
    links: &[Link],
    called: usize,
    result: Result<Decision, Fault>,
    deny_for_fault: impl Fn(&Fault) -> Decision,
) -> Verdict<Decision> {
    let plugins = links[..called].iter().map(|l| l.plugin.stamp()).collect();
    match result {
        Ok(value) => Verdict {
            value,
            plugins,
            fault: None,
            generation,
        },
        Err(fault) => {
            tracing::warn!(error = %fault, "policy plugin failed; denying");
            Verdict {
                value: deny_for_fault(&fault),
                plugins,
                fault: Some(fault),
                generation,
            }
        }
    }
}

fn fault_denial(code: DenyCode, fault: &Fault) -> Decision {
    Decision::Deny(Denial {
        code,
        reason: fault.reason().to_owned(),
        message: fault.to_string(),
    })
}

impl<T> Verdict<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Verdict<U> {
        Verdict {
            value: f(self.value),
            plugins: self.plugins,
            fault: self.fault,
            generation: self.generation,
        }
    }
}
