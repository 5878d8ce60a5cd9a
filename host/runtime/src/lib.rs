//! # portcullis-runtime
//!
//! The plugin runtime: every decision on Portcullis' request path is made here, by
//! sandboxed WebAssembly components typed by the WIT package in `wit/`. The proxy talks
//! only to [`Runtime`]: admit a component, change the registry (install, roll back,
//! remove, set the chains, shadow a plugin) through a [`Draft`], list plugins, and ask
//! for a decision. Every answer is a [`Verdict`] naming the plugin versions that made it.
//! A plugin that traps, runs out of CPU or memory, or answers malformed yields a deny
//! (fail closed); the proxy never sees a wasmtime error. Beside it, free of the sandbox:
//! [`TrustPolicy`] (is this the component the operator meant, signed by whom) and
//! [`inspect`] (what a component declares).
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
//! | `provenance` | digest pins and minisign signatures: whether bytes may be offered to admission at all |
//! | `admission` | deciding whether bytes may become a plugin (size, format, world, smoke call) |
//! | `artifacts` | compiled components kept in memory and in the cache directory across restarts |
//! | `registry` | the immutable set of loaded plugins, the chain configuration, its resolved chains and the shadows, swapped atomically |
//! | `trial` | trial calls that check a chain configuration's settings before it serves |
//! | `shadow` | candidates asked every decision the live version is, off the request path, and counted |
//! | `metering` | what is counted per plugin: calls and latency of every link, faults of every verdict |
//! | `counters` | one plugin name's counters: calls, faults by kind, latency histogram |
//! | `inspect` | what a component's bytes declare: world, imports, exports, custom sections |
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
mod counters;
mod decider;
mod engine;
mod error;
mod host_state;
mod inspect;
mod limits;
mod metering;
mod plugin;
mod provenance;
mod registry;
mod shadow;
mod trial;
mod wasi_linker;

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

pub use admission::MAX_COMPONENT_BYTES;
pub use answer::{RawPlan, RawToolSet};
pub use config::{InitialPlugin, RuntimeConfig};
pub use counters::{FAULT_KINDS, LATENCY_BUCKETS, PluginMetrics};
pub use decider::{Bounds, Decider, Evaluation, Link};
pub use error::{LoadError, PlanError};
pub use inspect::{CustomSection, InspectError, Inspection, InterfaceUse, inspect};
pub use limits::Limits;
pub use plugin::{Admitted, Plugin, PluginKind, PluginSummary, PreviousVersion};
pub use portcullis_model::{
    ChainConfig, ChainEntry, ClientAuth, Connector, ConnectorField, ConnectorStatus,
    CredentialKind, Decision, DecisionContext, Denial, DenyCode, Fault, FieldKind, InjectionPlan,
    McpRequest, OAuthProfile, OAuthRequest, PlanRequest, Registration, Run, ServerRule, Stamp,
    Template, TemplateError, Tool, ToolHints, ToolRule, ToolSet, Verdict,
};
pub use provenance::{
    Provenance, RejectReason, Rejection, TrustPolicy, TrustedKeyError, key_id, signature_key_id,
    trusted_comment,
};
pub use registry::Draft;
pub use shadow::{Answer as ShadowAnswer, Sample as ShadowSample, ShadowReport};
pub use trial::INVALID_SETTINGS;

use chain::Runner;
use decider::WasmDecider;
use engine::Engine;
use metering::{Metered, Meters};
use registry::Registry;
use shadow::Observer;

pub struct Runtime {
    engine: Arc<Engine>,
    /// The decider as given (the sandbox, or a benchmark's): shadow and trial calls use
    /// it, so they are not counted in the plugin metrics.
    inner: Arc<dyn Decider>,
    /// `inner` behind the meters: what decisions ask.
    decider: Arc<dyn Decider>,
    registry: ArcSwap<Registry>,
    memoize: bool,
    /// Serializes changes of the registry; readers never take it.
    writer: Mutex<()>,
    meters: Arc<Meters>,
    observer: Observer,
}

impl Runtime {
    /// Starts the engine and loads `plugins`. Blocking: compiles every component.
    pub fn new(config: RuntimeConfig, plugins: &[InitialPlugin<'_>]) -> Result<Self, LoadError> {
        let (runtime, skipped) = Self::loading(config, plugins, false)?;
        debug_assert!(skipped.is_empty());
        Ok(runtime)
    }

    /// [`Runtime::new`], except that a component that is not built-in and that admission
    /// refuses is skipped and reported instead of stopping the start. A later plugin of a
    /// name replaces an earlier one, so a built-in listed before an installed version of
    /// its name serves when that version is skipped.
    pub fn new_skipping(
        config: RuntimeConfig,
        plugins: &[InitialPlugin<'_>],
    ) -> Result<(Self, Vec<(String, LoadError)>), LoadError> {
        Self::loading(config, plugins, true)
    }

    fn loading(
        config: RuntimeConfig,
        plugins: &[InitialPlugin<'_>],
        skip: bool,
    ) -> Result<(Self, Vec<(String, LoadError)>), LoadError> {
        let engine = Engine::new(config.limits, config.cache_dir)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let engine = Arc::new(engine);
        let meters = Arc::new(Meters::default());
        let mut loaded = Vec::with_capacity(plugins.len());
        let mut skipped = Vec::new();
        for p in plugins {
            let stats = meters.of(p.name);
            match admission::admit(&engine, p.name, p.wasm, p.builtin, stats) {
                Ok(plugin) => loaded.push(Arc::new(plugin)),
                Err(error) if skip && !p.builtin => skipped.push((p.name.to_owned(), error)),
                Err(error) => return Err(error),
            }
        }
        let registry = Registry::new(loaded, &config.chains)?;
        let inner: Arc<dyn Decider> = Arc::new(WasmDecider::new(engine.clone()));
        let runtime = Self {
            decider: Arc::new(Metered::new(inner.clone())),
            inner,
            engine,
            registry: ArcSwap::from_pointee(registry),
            memoize: config.memoize,
            writer: Mutex::new(()),
            meters,
            observer: Observer::new(),
        };
        Ok((runtime, skipped))
    }

    /// The runtime with `decider` answering every link's call instead of the sandbox; the
    /// chains run as before (see [`Decider`]). [`Runtime::decider`] gives the one it
    /// replaces, for a decider that answers some links itself and hands on the rest.
    pub fn with_decider(self, decider: Arc<dyn Decider>) -> Self {
        Self {
            decider: Arc::new(Metered::new(decider.clone())),
            inner: decider,
            ..self
        }
    }

    /// The decider that answers each link's call.
    pub fn decider(&self) -> Arc<dyn Decider> {
        self.inner.clone()
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

    /// Changes with every change of the registry (install, rollback, removal, chains,
    /// shadow); memoized answers must be keyed by it.
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

    /// Admits `wasm` as a version of plugin `name` without installing it: hand the result
    /// to a [`Draft`] in [`Runtime::change`]. The admission runs on the blocking pool.
    pub async fn admit(
        &self,
        name: &str,
        wasm: Vec<u8>,
        builtin: bool,
    ) -> Result<Admitted, LoadError> {
        let stats = self.meters.of(name);
        let plugin = admission::admit_off_path(&self.engine, name, wasm, builtin, stats).await?;
        Ok(Admitted(Arc::new(plugin)))
    }

    /// Applies `edit` to a copy of the registry and publishes the result atomically as the
    /// next generation. On any error (from `edit`, or chains that no longer resolve)
    /// nothing changes.
    pub fn change<T>(
        &self,
        edit: impl FnOnce(&mut Draft) -> Result<T, LoadError>,
    ) -> Result<T, LoadError> {
        let _writer = self.writer.lock().expect("registry writer lock");
        let current = self.registry.load_full();
        let mut draft = current.draft();
        let outcome = edit(&mut draft)?;
        let next = current.next(draft)?;
        for gone in current.current.keys() {
            if !next.current.contains_key(gone) {
                self.meters.forget(gone);
            }
        }
        if !next.shadows.is_empty() {
            self.observer.start(self.engine.clone(), self.inner.clone());
        }
        self.registry.store(Arc::new(next));
        Ok(outcome)
    }

    /// Admits `wasm` as plugin `name` and swaps it in. On any error nothing changes and
    /// the current version keeps serving.
    pub async fn install(&self, name: &str, wasm: Vec<u8>) -> Result<PluginSummary, LoadError> {
        let plugin = self.admit(name, wasm, false).await?;
        self.change(|draft| draft.install(plugin))?;
        tracing::info!(plugin = name, "plugin installed");
        Ok(self.plugin(name).expect("just installed"))
    }

    /// Makes the previous version of `name` current again (and the current one previous).
    /// The runtime keeps one previous version in memory; the proxy keeps every version.
    pub fn rollback(&self, name: &str) -> Result<PluginSummary, LoadError> {
        let _writer = self.writer.lock().expect("registry writer lock");
        let next = self.registry.load().with_rolled_back(name)?;
        self.registry.store(Arc::new(next));
        tracing::info!(plugin = name, "plugin rolled back");
        Ok(self.plugin(name).expect("rolled back"))
    }

    /// The chain configuration serving.
    pub fn chains(&self) -> ChainConfig {
        self.registry.load().config.clone()
    }

    /// Checks `config` against the plugins loaded: every name loaded and of the kind its
    /// chain needs, and every policy link accepting its settings in trial calls (see
    /// `trial`). Changes nothing.
    pub async fn check_chains(&self, config: &ChainConfig) -> Result<(), LoadError> {
        let registry = self.registry.load_full();
        let generation = registry.generation();
        chain::Chains::resolve(config, &registry.current, generation).map_err(LoadError::Chain)?;
        let run = Runner {
            decider: &self.inner,
            engine: &self.engine,
        };
        trial::check(run, config, &registry.current, generation).await
    }

    /// The shadow of plugin `name`: its candidate and how it compares.
    pub fn shadow(&self, name: &str) -> Option<ShadowReport> {
        self.registry.load().shadows.get(name).map(|s| s.report())
    }

    /// The names of the plugins that have a shadow candidate, with its sha256.
    pub fn shadows(&self) -> Vec<(String, String)> {
        let registry = self.registry.load();
        registry
            .shadows
            .iter()
            .map(|(name, s)| (name.to_string(), s.candidate.sha256.to_string()))
            .collect()
    }

    /// Whether any shadow is running, so that a caller can skip building what
    /// `observe_*` would take.
    pub fn shadowing(&self) -> bool {
        !self.registry.load().shadows.is_empty()
    }

    /// Hands an access decision the data plane made to the shadows it concerns, to be
    /// asked again off the request path.
    pub fn observe_access(&self, ctx: &Arc<DecisionContext>) {
        let registry = self.registry.load();
        self.observer.access(registry.shadows.values(), ctx);
    }

    /// Hands a request decision to the shadows it concerns (see [`Runtime::observe_access`]).
    pub fn observe_request(&self, ctx: &Arc<DecisionContext>, request: &McpRequest) {
        let registry = self.registry.load();
        self.observer
            .request(registry.shadows.values(), ctx, request);
    }

    /// Hands a permitted-tools decision to the shadows it concerns.
    pub fn observe_tools(&self, ctx: &Arc<DecisionContext>) {
        let registry = self.registry.load();
        self.observer.tools(registry.shadows.values(), ctx);
    }

    /// The calls, faults and latency of every loaded plugin.
    pub fn plugin_metrics(&self) -> Vec<PluginMetrics> {
        let registry = self.registry.load();
        self.meters.snapshot(registry.current.keys().map(|k| &**k))
    }

    /// Counts the fault of a verdict against the plugin it names.
    fn counted<T>(&self, verdict: Verdict<T>) -> Verdict<T> {
        if let Some(fault) = &verdict.fault {
            let last = verdict.plugins.last().map(|s| &*s.name);
            self.meters.fault(fault, last);
        }
        verdict
    }

    /// The access decision: may this run use this connector?
    pub async fn access(&self, ctx: Arc<DecisionContext>) -> Verdict<Decision> {
        let registry = self.registry.load_full();
        self.counted(registry.chains.access(self.runner(), ctx).await)
    }

    /// The request decision for one client-to-server message.
    pub async fn request(
        &self,
        ctx: Arc<DecisionContext>,
        request: McpRequest,
    ) -> Verdict<Decision> {
        let registry = self.registry.load_full();
        self.counted(registry.chains.request(self.runner(), ctx, request).await)
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
        let verdicts = registry.chains.requests(self.runner(), ctx, requests).await;
        verdicts.into_iter().map(|v| self.counted(v)).collect()
    }

    /// [`Runtime::access`] and [`Runtime::permitted_tools`] in one evaluation: a plugin of
    /// both chains is instantiated once for both.
    pub async fn access_and_tools(
        &self,
        ctx: Arc<DecisionContext>,
    ) -> (Verdict<Decision>, Verdict<ToolSet>) {
        let registry = self.registry.load_full();
        let (access, tools) = registry.chains.access_and_tools(self.runner(), ctx).await;
        (self.counted(access), self.counted(tools))
    }

    /// The tools this run may see and call on this connector: the intersection of every
    /// plugin's answer. A failure yields the empty set.
    pub async fn permitted_tools(&self, ctx: Arc<DecisionContext>) -> Verdict<ToolSet> {
        let registry = self.registry.load_full();
        self.counted(registry.chains.permitted_tools(self.runner(), ctx).await)
    }

    /// The injection plan of the provider plugin configured for `request.provider`.
    pub async fn injection_plan(
        &self,
        request: PlanRequest,
    ) -> Verdict<Result<InjectionPlan, PlanError>> {
        let registry = self.registry.load_full();
        self.counted(registry.chains.injection_plan(self.runner(), request).await)
    }

    /// The OAuth profile of the provider plugin configured for `request.provider`: where
    /// this provider departs from the standard OAuth 2.1 flow the host runs.
    pub async fn oauth_profile(
        &self,
        request: OAuthRequest,
    ) -> Verdict<Result<OAuthProfile, PlanError>> {
        let registry = self.registry.load_full();
        self.counted(registry.chains.oauth_profile(self.runner(), request).await)
    }

    fn runner(&self) -> Runner<'_> {
        Runner {
            decider: &self.decider,
            engine: &self.engine,
        }
    }
}
