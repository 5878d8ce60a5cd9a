//! The sandbox's engine: the one wasmtime engine every plugin runs in, its configuration,
//! its epoch ticker, the linkers that define what a plugin may import, and the instance
//! slots. The invariants a security reviewer can check here:
//!
//! * **Fresh instance per call.** Each call gets a new `Store` ([`Engine::store`]),
//!   instantiated from the plugin's pre-instantiated form; nothing a call leaves behind is
//!   seen by the next, and a store that trapped is dropped, never reused (a guest lock can
//!   stay held forever). `call` does this for every call.
//! * **Bounded.** A CPU budget (fuel: an instruction count, so whether a call fits does
//!   not depend on how busy the machine is), a wall-clock backstop (epoch interruption,
//!   for time spent anywhere in the call), a memory cap (the pooling allocator's slot size,
//!   and the store's limiter in `host_state`), and a pool-sized semaphore in front of
//!   instantiation, since the pooling allocator fails rather than waits when it is
//!   exhausted. A call that blocks runs on tokio's blocking pool within one slot and the
//!   wall-clock timeout ([`Engine::blocking`]), never on an async worker.
//! * **No ambient authority.** The linkers hold WASI with its timers replaced by traps (see
//!   [`wasi_linker`]) and the imports of each contract world (`abi::link`), nothing else: a
//!   component that imports any other capability does not link.

use std::sync::Arc;

use portcullis_model::Fault;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Linker, Resource};
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::p2::DynPollable;

use crate::abi::{self, Linkers};
use crate::host_state::HostState;
use crate::limits::{EPOCH_TICK, Limits};

/// The engine, its linkers and the instance slots, shared by every plugin.
pub(crate) struct Engine {
    engine: wasmtime::Engine,
    linkers: Linkers,
    limits: Limits,
    slots: Arc<Semaphore>,
}

impl Engine {
    pub(crate) fn new(limits: Limits) -> wasmtime::Result<Self> {
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
        let engine = wasmtime::Engine::new(&config)?;
        spawn_epoch_ticker(&engine);
        let linkers = abi::link(|| wasi_linker(&engine))?;
        Ok(Self {
            engine,
            linkers,
            slots: Arc::new(Semaphore::new(instances as usize)),
            limits,
        })
    }

    pub(crate) fn wasmtime(&self) -> &wasmtime::Engine {
        &self.engine
    }

    pub(crate) fn linkers(&self) -> &Linkers {
        &self.linkers
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A fresh store for one call of the plugin `plugin`.
    pub(crate) fn store(&self, plugin: Arc<str>) -> Store<HostState> {
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
    pub(crate) fn restart_deadline(&self, store: &mut Store<HostState>) {
        store.set_epoch_deadline(self.limits.backstop_ticks());
        store
            .set_fuel(self.limits.fuel())
            .expect("fuel is enabled on the engine");
    }

    /// Waits for an instance slot; anything that instantiates holds one while it does.
    pub(crate) async fn slot(&self) -> OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("the slot semaphore is never closed")
    }

    /// Runs `work` on the blocking pool within one instance slot and the wall-clock
    /// timeout of `calls` plugin calls, queueing for the slot included.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        calls: usize,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Fault> {
        let budget = self.limits.wall_timeout() * calls.max(1) as u32;
        let run = async move {
            let permit = self.slot().await;
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
fn wasi_linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<HostState>> {
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
fn spawn_epoch_ticker(engine: &wasmtime::Engine) {
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
