//! The sandbox's engine: the one wasmtime engine every plugin runs in, its configuration,
//! its epoch ticker, the linkers that define what a plugin may import, and the instance
//! slots. The invariants a security reviewer can check here:
//!
//! * **Fresh instance per call.** Each call gets a new `Store` ([`Engine::store`]),
//!   instantiated from the plugin's pre-instantiated form; nothing a call leaves behind is
//!   seen by the next, and a store that trapped is dropped, never reused (a guest lock can
//!   stay held forever). `call` does this for every call. A pool slot's memory goes
//!   back to the component's initial image when its instance ends (wasmtime's pooling
//!   allocator: dirty pages rewritten in place, or dropped), before another instance
//!   may use the slot.
//! * **Bounded.** A CPU budget (fuel: an instruction count, so whether a call fits does
//!   not depend on how busy the machine is), a wall-clock backstop (epoch interruption,
//!   for time spent anywhere in the call), a memory cap (the pooling allocator's slot size,
//!   and the store's limiter in `host_state`), and a pool-sized semaphore in front of
//!   instantiation, since the pooling allocator fails rather than waits when it is
//!   exhausted: whoever holds an instance holds a slot. An evaluation that may block runs
//!   on tokio's blocking pool within its slots and the wall-clock timeout
//!   ([`Engine::blocking`]); one that runs on an async worker does so only with slots it
//!   got without waiting and under a small budget of its own (`evaluation`).
//! * **The epoch ticks only while guest code may run.** The ticker thread advances the
//!   epoch every [`EPOCH_TICK`] while any call holds a [`Ticking`] guard, and is parked
//!   otherwise, so an idle proxy (or one serving memoized answers) is not woken a thousand
//!   times a second. A deadline is counted in ticks from when the call set it, so a
//!   parked ticker never shortens or stretches one: the first guard wakes it.
//! * **No ambient authority.** The linkers hold WASI as `wasi_linker` restricts it (timers
//!   trap, no sockets, no blocking I/O on an async worker) and the imports of each contract world (`abi::link`), nothing else: a
//!   component that imports any other capability does not link.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::Thread;

use portcullis_model::Fault;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::{Config, Enabled, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use crate::abi::{self, Linkers};
use crate::artifacts::Artifacts;
use crate::host_state::HostState;
use crate::limits::{EPOCH_TICK, Limits};
use crate::wasi_linker::wasi_linker;

/// The most bytes of a memory or table written back in place when an instance ends
/// (see [`Engine::new`]); a plugin that dirtied more has the rest dropped by `madvise`.
const KEEP_RESIDENT: usize = 1 << 20;

/// The engine, its linkers and the instance slots, shared by every plugin.
pub(crate) struct Engine {
    engine: wasmtime::Engine,
    linkers: Linkers,
    limits: Limits,
    slots: Arc<Semaphore>,
    ticker: Arc<Ticker>,
    artifacts: Artifacts,
}

/// What one call may spend: fuel, and wall-clock time in epoch ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Budget {
    pub fuel: u64,
    pub ticks: u64,
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.ticker.stop.store(true, Ordering::SeqCst);
        self.ticker.thread.unpark();
    }
}

impl Engine {
    pub(crate) fn new(limits: Limits, cache_dir: Option<PathBuf>) -> wasmtime::Result<Self> {
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
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            // A slot's dirty pages are written back to the component's image when its
            // instance ends, rather than dropped from the address space: the next
            // instance in the slot starts from the same pristine memory without a page
            // fault per page it touches (most of a fresh instance's cost otherwise).
            // Without PAGEMAP_SCAN, keeping pages resident would mean copying the
            // whole kept region each time, so the default (madvise) stays.
            pool.pagemap_scan(Enabled::Yes)
                .linear_memory_keep_resident(KEEP_RESIDENT)
                .table_keep_resident(KEEP_RESIDENT);
        }
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(true)
            .memory_init_cow(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = wasmtime::Engine::new(&config)?;
        let ticker = spawn_epoch_ticker(&engine);
        let linkers = abi::link(|| wasi_linker(&engine))?;
        Ok(Self {
            engine,
            linkers,
            slots: Arc::new(Semaphore::new(instances as usize)),
            limits,
            ticker,
            artifacts: Artifacts::new(cache_dir),
        })
    }

    /// Where compiled components are kept.
    pub(crate) fn artifacts(&self) -> &Artifacts {
        &self.artifacts
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

    /// The whole budget of one call under the configured limits.
    pub(crate) fn full_budget(&self) -> Budget {
        Budget {
            fuel: self.limits.fuel(),
            ticks: self.limits.backstop_ticks(),
        }
    }

    /// A fresh store for calls of the plugin `plugin`, with `budget` for what runs first
    /// (instantiation: a core module's start function is guest code too).
    /// A fresh store; `inline` when its calls run on an async worker (see `wasi_linker`).
    pub(crate) fn store(&self, plugin: Arc<str>, budget: Budget, inline: bool) -> Store<HostState> {
        let mut store = Store::new(&self.engine, HostState::new(plugin, &self.limits, inline));
        store.limiter(|state| state);
        set_budget(&mut store, budget);
        store.epoch_deadline_trap();
        store
    }

    /// Keeps the epoch ticking until the guard is dropped: hold one while guest code may
    /// run (instantiation and calls).
    pub(crate) fn ticking(&self) -> Ticking<'_> {
        if self.ticker.active.fetch_add(1, Ordering::SeqCst) == 0 {
            self.ticker.thread.unpark();
        }
        Ticking(&self.ticker)
    }

    /// The instance slots the pool has in all.
    pub(crate) fn slot_count(&self) -> usize {
        self.limits.max_instances as usize
    }

    /// Waits for an instance slot; anything that instantiates holds one while it does.
    pub(crate) async fn slot(&self) -> OwnedSemaphorePermit {
        self.slots(1).await
    }

    /// Waits for `count` instance slots (at most [`Engine::slot_count`]).
    pub(crate) async fn slots(&self, count: usize) -> OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_many_owned(count.clamp(1, self.slot_count()) as u32)
            .await
            .expect("the slot semaphore is never closed")
    }

    /// `count` instance slots if they are free now; never waits.
    pub(crate) fn try_slots(&self, count: usize) -> Option<OwnedSemaphorePermit> {
        self.slots
            .clone()
            .try_acquire_many_owned(count.clamp(1, self.slot_count()) as u32)
            .ok()
    }

    /// Runs `work` on the blocking pool within `slots` instance slots and the wall-clock
    /// timeout of `calls` plugin calls, queueing for the slots included.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        calls: usize,
        slots: usize,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Fault> {
        let budget = self.limits.wall_timeout() * calls.max(1) as u32;
        let run = async move {
            let permit = self.slots(slots).await;
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

/// Sets the fuel and the epoch deadline of what runs next in `store`.
pub(crate) fn set_budget(store: &mut Store<HostState>, budget: Budget) {
    store.set_epoch_deadline(budget.ticks);
    store
        .set_fuel(budget.fuel)
        .expect("fuel is enabled on the engine");
}

/// The epoch ticker's side of the engine: how many guards are held, and its thread.
struct Ticker {
    active: AtomicUsize,
    stop: AtomicBool,
    thread: Thread,
}

/// Held while guest code may run; see [`Engine::ticking`].
pub(crate) struct Ticking<'a>(&'a Ticker);

impl Drop for Ticking<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Advances the epoch every tick while a [`Ticking`] guard is held, parks while none is,
/// and ends when the engine is dropped.
fn spawn_epoch_ticker(engine: &wasmtime::Engine) -> Arc<Ticker> {
    let weak = engine.weak();
    let (tx, rx) = std::sync::mpsc::channel::<Arc<Ticker>>();
    let thread = std::thread::Builder::new()
        .name("portcullis-epoch".into())
        .spawn(move || {
            let Ok(ticker) = rx.recv() else { return };
            while !ticker.stop.load(Ordering::SeqCst) {
                if ticker.active.load(Ordering::SeqCst) == 0 {
                    // An unpark that came before this park makes it return at once.
                    std::thread::park();
                    continue;
                }
                let Some(engine) = weak.upgrade() else { return };
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn the epoch ticker thread");
    let ticker = Arc::new(Ticker {
        active: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        thread: thread.thread().clone(),
    });
    tx.send(ticker.clone())
        .expect("the ticker thread waits for its state");
    ticker
}
