//! The sandbox every plugin call runs in.
//!
//! Owns the one wasmtime [`Engine`], its epoch ticker and the per-call [`Store`]. The
//! invariants a security reviewer can check here:
//!
//! * **Fresh instance per call.** Each call gets a new `Store` instantiated from the
//!   plugin's pre-instantiated form; nothing a call leaves behind is seen by the next, and
//!   a store that trapped is dropped, never reused (a guest lock can stay held forever).
//! * **Bounded.** A CPU budget (fuel: an instruction count, so whether a call fits does
//!   not depend on how busy the machine is), a wall-clock backstop (epoch interruption,
//!   for time spent anywhere in the call), a memory cap (the store's
//!   [`ResourceLimiter`] and the pooling allocator's slot size), a cap on the number of log
//!   lines a call may write, and a pool-sized semaphore in front of instantiation, since
//!   the pooling allocator fails rather than waits when it is exhausted.
//! * **No ambient authority.** WASI is linked only because Rust's standard library imports
//!   it; the context grants no preopened directory, environment, argument, socket or
//!   standard input, its clocks are frozen at the Unix epoch and its entropy is a fixed
//!   sequence, so a decision is a pure function of the records it is given. Its timers
//!   trap rather than wait (see [`wasi_linker`]): no host call can outlive the CPU deadline.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    Trap,
};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::abi::v0_1_0;
use crate::error::Fault;

/// The most random bytes one WASI call may ask for: enough to seed anything.
const MAX_RANDOM_BYTES: u64 = 4096;

/// How often the epoch advances; the wall-clock backstop is counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Fuel per millisecond of CPU budget. Cranelift code runs about one to two wasm
/// instructions per nanosecond here, so this is a generous millisecond; it is an
/// instruction count rather than a clock so that a decision's outcome is the same on an
/// idle machine and on an overloaded one.
const FUEL_PER_MS: u64 = 2_000_000;

/// The limits every plugin call runs under. The defaults need no configuration.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// CPU budget of one call, in milliseconds of guest execution (enforced as an
    /// instruction budget of 2,000,000 per millisecond).
    pub cpu_deadline_ms: u64,
    /// Wall-clock time one call may take, queueing included, in milliseconds; also the
    /// epoch backstop while the call runs.
    pub wall_timeout_ms: u64,
    /// Linear memory one instance may grow to, in bytes.
    pub memory_bytes: usize,
    /// Instances that may exist at once; calls beyond it wait for a free slot.
    pub max_instances: u32,
    /// Log lines one call may write; further lines are dropped and counted.
    pub max_log_lines: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_deadline_ms: 10,
            wall_timeout_ms: 100,
            memory_bytes: 16 << 20,
            max_instances: 128,
            max_log_lines: 16,
        }
    }
}

impl Limits {
    pub fn cpu_deadline(&self) -> Duration {
        Duration::from_millis(self.cpu_deadline_ms)
    }

    pub fn wall_timeout(&self) -> Duration {
        Duration::from_millis(self.wall_timeout_ms)
    }

    fn fuel(&self) -> u64 {
        self.cpu_deadline_ms.max(1).saturating_mul(FUEL_PER_MS)
    }

    fn backstop_ticks(&self) -> u64 {
        (self.wall_timeout().as_micros() / EPOCH_TICK.as_micros()).max(1) as u64
    }
}

/// The engine, its linkers and the admission semaphore, shared by every plugin.
pub struct Sandbox {
    engine: Engine,
    policy_linker: Linker<HostState>,
    provider_linker: Linker<HostState>,
    limits: Limits,
    slots: Arc<tokio::sync::Semaphore>,
}

impl Sandbox {
    pub fn new(limits: Limits) -> wasmtime::Result<Self> {
        let mut pool = PoolingAllocationConfig::new();
        let instances = limits.max_instances;
        // A Rust wasip2 component holds its own module plus a few adapter shims: the
        // multipliers leave room for those without letting the pool grow unbounded.
        pool.total_component_instances(instances)
            .total_core_instances(instances * 8)
            .total_memories(instances * 2)
            .total_tables(instances * 8)
            .total_stacks(instances)
            .max_memory_size(limits.memory_bytes);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(true)
            .memory_init_cow(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        spawn_epoch_ticker(&engine);

        let mut policy_linker = wasi_linker(&engine)?;
        v0_1_0::add_policy_imports(&mut policy_linker)?;
        let mut provider_linker = wasi_linker(&engine)?;
        v0_1_0::add_provider_imports(&mut provider_linker)?;

        Ok(Self {
            engine,
            policy_linker,
            provider_linker,
            slots: Arc::new(tokio::sync::Semaphore::new(instances as usize)),
            limits,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn policy_linker(&self) -> &Linker<HostState> {
        &self.policy_linker
    }

    pub fn provider_linker(&self) -> &Linker<HostState> {
        &self.provider_linker
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub(crate) fn slots(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.slots
    }

    /// A fresh store for one call of the plugin `plugin`.
    pub fn store(&self, plugin: Arc<str>) -> Store<HostState> {
        let mut store = Store::new(&self.engine, HostState::new(plugin, &self.limits));
        store.limiter(|state| state);
        self.restart_deadline(&mut store);
        store.epoch_deadline_trap();
        store
    }

    /// Gives the call its whole budget again once instantiation is done. The first budget
    /// bounds instantiation (a core module's start function is guest code too); this one
    /// keeps host-side instantiation time, which is not the plugin's doing, from eating
    /// into the export call's budget.
    pub fn restart_deadline(&self, store: &mut Store<HostState>) {
        store.set_epoch_deadline(self.limits.backstop_ticks());
        store
            .set_fuel(self.limits.fuel())
            .expect("fuel is enabled on the engine");
    }
}

/// Turns a wasmtime error from instantiating or calling a plugin into the fault to report.
pub fn fault(store: &Store<HostState>, plugin: &str, error: wasmtime::Error) -> Fault {
    let plugin = plugin.to_owned();
    if store.data().memory_denied {
        return Fault::MemoryLimit(plugin);
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Fault::CpuDeadline(plugin),
        Some(Trap::Interrupt) => Fault::WallTimeout,
        Some(trap) => Fault::Trap {
            plugin,
            detail: trap.to_string(),
        },
        None => Fault::Trap {
            plugin,
            detail: format!("{error:#}"),
        },
    }
}

/// The WASI interface whose timers are replaced; the version wasmtime-wasi defines, which
/// the linker also offers to guests importing an earlier 0.2 release.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// A linker with WASI, minus its timers.
///
/// WASI's `subscribe-duration` and `subscribe-instant` wait on the host's real clock, and
/// a wait inside a host call is invisible to epoch interruption: a plugin calling
/// `std::thread::sleep` would hold its blocking thread and its instance slot for as long
/// as it asked, long after the caller's wall-clock timeout gave up on it. With the clocks
/// frozen a timer has no meaning anyway, so both trap.
fn wasi_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap("subscribe-duration", |_, (_,): (u64,)| {
        Err::<(Resource<DynPollable>,), _>(timer_denied())
    })?;
    clock.func_wrap("subscribe-instant", |_, (_,): (u64,)| {
        Err::<(Resource<DynPollable>,), _>(timer_denied())
    })?;
    linker.allow_shadowing(false);
    Ok(linker)
}

fn timer_denied() -> wasmtime::Error {
    wasmtime::format_err!(
        "plugins may not wait on a timer (sleep or timeout): their clocks are frozen"
    )
}

/// Advances the epoch every tick until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("portcullis-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn the epoch ticker thread");
}

/// Everything one call's store holds.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    plugin: Arc<str>,
    memory_bytes: usize,
    memory_denied: bool,
    log_lines_left: u32,
    log_lines_dropped: u32,
}

impl HostState {
    fn new(plugin: Arc<str>, limits: &Limits) -> Self {
        let wasi = WasiCtx::builder()
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .secure_random(wasmtime_wasi::random::Deterministic::new(vec![0x5a]))
            .insecure_random(wasmtime_wasi::random::Deterministic::new(vec![0xa5]))
            .insecure_random_seed(0)
            // WASI's default lets one `get-random-bytes` call ask for 64 MiB, which the
            // host generates and allocates on its own side, outside the memory limit and
            // out of reach of the CPU deadline.
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            plugin,
            memory_bytes: limits.memory_bytes,
            memory_denied: false,
            log_lines_left: limits.max_log_lines,
            log_lines_dropped: 0,
        }
    }

    /// Writes one line a plugin logged, within the per-call budget.
    pub(crate) fn plugin_log(&mut self, level: tracing::Level, message: &str) {
        if self.log_lines_left == 0 {
            self.log_lines_dropped += 1;
            return;
        }
        self.log_lines_left -= 1;
        const MAX_LINE: usize = 1024;
        let line = match message.char_indices().nth(MAX_LINE) {
            Some((cut, _)) => &message[..cut],
            None => message,
        };
        let plugin = &*self.plugin;
        match level {
            tracing::Level::ERROR => {
                tracing::error!(target: "portcullis::plugin", plugin, "{line}")
            }
            tracing::Level::WARN => tracing::warn!(target: "portcullis::plugin", plugin, "{line}"),
            tracing::Level::INFO => tracing::info!(target: "portcullis::plugin", plugin, "{line}"),
            tracing::Level::DEBUG => {
                tracing::debug!(target: "portcullis::plugin", plugin, "{line}")
            }
            tracing::Level::TRACE => {
                tracing::trace!(target: "portcullis::plugin", plugin, "{line}")
            }
        }
    }
}

impl Drop for HostState {
    fn drop(&mut self) {
        if self.log_lines_dropped > 0 {
            tracing::warn!(
                target: "portcullis::plugin",
                plugin = &*self.plugin,
                dropped = self.log_lines_dropped,
                "plugin exceeded its log budget for one call; lines were dropped"
            );
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_bytes;
        if !allowed {
            self.memory_denied = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// A clock that always reads the Unix epoch: plugins get no time authority.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
    }
}
