//! # portcullis-runtime
//!
//! The plugin runtime: every decision on Portcullis' request path is made here, by
//! sandboxed WebAssembly components typed by the WIT package in `wit/`. The proxy talks
//! only to [`Runtime`]: install or roll back a plugin, list plugins, and ask for a
//! decision. Every answer is a [`Verdict`] naming the plugin versions that made it. A
//! plugin that traps, runs out of CPU or memory, or answers malformed yields a deny (fail
//! closed); the proxy never sees a wasmtime error.
//!
//! Read it from the top down; each module stands on the ones below it:
//!
//! | module | owns |
//! |---|---|
//! | `chain` | resolving the chains and running them: deny-overrides, intersection, answer checks, the fail-closed mapping of faults to denials, stamps |
//! | [`Decider`] (`decider`) | the one seam: who answers one link's call; the sandbox by default |
//! | `call` | sandboxed calls in a scope: a fresh store per plugin per evaluation, dropped with it or at the first fault; per-call budgets; inline scopes that give up; wasmtime errors become faults |
//! | `abi` | the contract versions served, and the only module that names one: linking, version-tagged forms, conversions |
//! | `engine` | the wasmtime engine, its pooling and epoch ticker, the linkers, the instance slots, the blocking pool |
//! | `host_state` | one call's store data: the empty WASI context, the memory limiter, the log budget |
//! | `wasi_linker` | the WASI a plugin is linked against: timers trap, no sockets, no blocking I/O on an async worker |
//! | [`Limits`] (`limits`) | the limits every call runs under |
//! | `admission` | deciding whether bytes may become a plugin (size, format, world, smoke call) |
//! | `artifacts` | compiled components kept in memory and in the cache directory across restarts |
//! | `registry` | the immutable set of loaded plugins and their resolved chains, swapped atomically |
//! | `plugin` | one loaded plugin version and what the admin API shows of it |
//! | `answer` | what plugins answer, and the checks on it |
//! | `config`, `error` | the runtime's setting, and what loading can refuse |
//!
//! The records (what plugins decide on, verdicts, stamps, faults, the chain
//! configuration) are `portcullis-model`'s, re-exported here.

mod abi;
mod admission;
mod answer;
mod artifacts;
mod call;
mod chain;
mod config;
mod decider;
mod engine;
mod error;
mod host_state;
mod limits;
mod plugin;
mod registry;
mod wasi_linker;

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

pub use admission::MAX_COMPONENT_BYTES;
pub use answer::{RawPlan, RawToolSet};
pub use config::{InitialPlugin, RuntimeConfig};
pub use decider::{Bounds, Decider, Evaluation, Link};
pub use error::{LoadError, PlanError};
pub use limits::Limits;
pub use plugin::{Plugin, PluginKind, PluginSummary, PreviousVersion};
pub use portcullis_model::{
    ChainConfig, ChainEntry, ClientAuth, Connector, ConnectorField, ConnectorStatus,
    CredentialKind, Decision, DecisionContext, Denial, DenyCode, Fault, FieldKind, InjectionPlan,
    McpRequest, OAuthProfile, OAuthRequest, PlanRequest, Registration, Run, ServerRule, Stamp,
    Template, TemplateError, Tool, ToolHints, ToolRule, ToolSet, Verdict,
};

use chain::Runner;
use decider::WasmDecider;
use engine::Engine;
use registry::Registry;

pub struct Runtime {
    engine: Arc<Engine>,
    decider: Arc<dyn Decider>,
    registry: ArcSwap<Registry>,
    chains: ChainConfig,
    memoize: bool,
    /// Serializes installs and rollbacks; readers never take it.
    writer: Mutex<()>,
}

impl Runtime {
    /// Starts the engine and loads `plugins`. Blocking: compiles every component.
    pub fn new(config: RuntimeConfig, plugins: &[InitialPlugin<'_>]) -> Result<Self, LoadError> {
        let engine = Engine::new(config.limits, config.cache_dir)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let engine = Arc::new(engine);
        let loaded = plugins
            .iter()
            .map(|p| admission::admit(&engine, p.name, p.wasm, p.builtin).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let registry = Registry::new(loaded, &config.chains)?;
        Ok(Self {
            decider: Arc::new(WasmDecider::new(engine.clone())),
            engine,
            registry: ArcSwap::from_pointee(registry),
            chains: config.chains,
            memoize: config.memoize,
            writer: Mutex::new(()),
        })
    }

    /// The runtime with `decider` answering every link's call instead of the sandbox; the
    /// chains run as before (see [`Decider`]). [`Runtime::decider`] gives the one it
    /// replaces, for a decider that answers some links itself and hands on the rest.
    pub fn with_decider(self, decider: Arc<dyn Decider>) -> Self {
        Self { decider, ..self }
    }

    /// The decider that answers each link's call.
    pub fn decider(&self) -> Arc<dyn Decider> {
        self.decider.clone()
    }

    /// The current version of plugin `name` as a link without settings, to ask a
    /// [`Decider`] directly.
    pub fn link(&self, name: &str) -> Option<Link> {
        let plugin = self.registry.load().current.get(name)?.clone();
        Some(Link {
            plugin,
            settings: "{}".into(),
        })
    }

    /// Whether answers may be memoized (see [`RuntimeConfig::memoize`]).
    pub fn memoize(&self) -> bool {
        self.memoize
    }

    pub fn limits(&self) -> &Limits {
        self.engine.limits()
    }

    /// Changes with every install or rollback; memoized answers must be keyed by it.
    pub fn generation(&self) -> u64 {
        self.registry.load().generation()
    }

    /// Whether any plugin of the request chain reads tool arguments, in which case a
    /// `tools/call` answer depends on them and must not be reused across arguments.
    pub fn request_chain_reads_arguments(&self) -> bool {
        self.registry.load().chains.request_reads_arguments
    }

    /// The provider profile names a connector may use.
    pub fn provider_profiles(&self) -> Vec<String> {
        self.registry.load().chains.provider_profiles()
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
        let plugin = admission::admit_off_path(&self.engine, name, wasm).await?;
        let _writer = self.writer.lock().expect("registry writer lock");
        let next = self
            .registry
            .load()
            .with_installed(Arc::new(plugin), &self.chains)?;
        self.registry.store(Arc::new(next));
        tracing::info!(plugin = name, "plugin installed");
        Ok(self.plugin(name).expect("just installed"))
    }

    /// Makes the previous version of `name` current again (and the current one previous).
    pub fn rollback(&self, name: &str) -> Result<PluginSummary, LoadError> {
        let _writer = self.writer.lock().expect("registry writer lock");
        let next = self.registry.load().with_rolled_back(name, &self.chains)?;
        self.registry.store(Arc::new(next));
        tracing::info!(plugin = name, "plugin rolled back");
        Ok(self.plugin(name).expect("rolled back"))
    }

    /// The access decision: may this run use this connector?
    pub async fn access(&self, ctx: Arc<DecisionContext>) -> Verdict<Decision> {
        let registry = self.registry.load_full();
        registry.chains.access(self.runner(), ctx).await
    }

    /// The request decision for one client-to-server message.
    pub async fn request(
        &self,
        ctx: Arc<DecisionContext>,
        request: McpRequest,
    ) -> Verdict<Decision> {
        let registry = self.registry.load_full();
        registry.chains.request(self.runner(), ctx, request).await
    }

    /// The request decisions on several messages, in one evaluation (one instance per
    /// plugin for all of them); the verdicts are in the order of `requests`, each as
    /// [`Runtime::request`] would give it.
    pub async fn requests(
        &self,
        ctx: Arc<DecisionContext>,
        requests: Vec<McpRequest>,
    ) -> Vec<Verdict<Decision>> {
        let registry = self.registry.load_full();
        registry.chains.requests(self.runner(), ctx, requests).await
    }

    /// [`Runtime::access`] and [`Runtime::permitted_tools`] in one evaluation: a plugin of
    /// both chains is instantiated once for both.
    pub async fn access_and_tools(
        &self,
        ctx: Arc<DecisionContext>,
    ) -> (Verdict<Decision>, Verdict<ToolSet>) {
        let registry = self.registry.load_full();
        registry.chains.access_and_tools(self.runner(), ctx).await
    }

    /// The tools this run may see and call on this connector: the intersection of every
    /// plugin's answer. A failure yields the empty set.
    pub async fn permitted_tools(&self, ctx: Arc<DecisionContext>) -> Verdict<ToolSet> {
        let registry = self.registry.load_full();
        registry.chains.permitted_tools(self.runner(), ctx).await
    }

    /// The injection plan of the provider plugin configured for `request.provider`.
    pub async fn injection_plan(
        &self,
        request: PlanRequest,
    ) -> Verdict<Result<InjectionPlan, PlanError>> {
        let registry = self.registry.load_full();
        registry.chains.injection_plan(self.runner(), request).await
    }

    /// The OAuth profile of the provider plugin configured for `request.provider`: where
    /// this provider departs from the standard OAuth 2.1 flow the host runs.
    pub async fn oauth_profile(
        &self,
        request: OAuthRequest,
    ) -> Verdict<Result<OAuthProfile, PlanError>> {
        let registry = self.registry.load_full();
        registry.chains.oauth_profile(self.runner(), request).await
    }

    fn runner(&self) -> Runner<'_> {
        Runner {
            decider: &self.decider,
            engine: &self.engine,
        }
    }
}
