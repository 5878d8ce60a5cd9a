//! Sandboxed calls, grouped in a [`Scope`]: the calls of one evaluation (one chain run,
//! or several asked together about one run on one connector), or a single call.
//!
//! The invariants a security reviewer can check here:
//!
//! * **A store never outlives its scope.** A scope makes a store the first time it calls
//!   a plugin and may call the same plugin version again in it; every store is dropped
//!   with the scope, so nothing a plugin keeps in its memory reaches another evaluation,
//!   another connector or another run. Plugins are pure functions of their records by
//!   contract; within one evaluation an instance may see the calls before it, never
//!   anything else.
//! * **A store that failed is never called again.** Any error (trap, CPU deadline,
//!   memory limit, wall-clock backstop) drops the store at once (a guest lock can stay
//!   held forever after a trap); the next call of that plugin in the scope instantiates
//!   afresh.
//! * **Every call gets its own budget.** Fuel and the epoch deadline are set before each
//!   instantiation and each call, the log budget and the memory-fault flag are reset per
//!   call; the memory cap holds for the instance's whole life.
//! * **Inline scopes give up rather than block.** A scope run on an async worker
//!   (`inline`) has a small budget of its own for all its calls together ([`INLINE_FUEL`],
//!   [`INLINE_TICKS`]). A call that runs out of it or reaches WASI's blocking I/O
//!   (`wasi_linker`), or a plugin that did so before, makes the scope give up: its answers are discarded and the caller runs the evaluation again
//!   on the blocking pool with the full budget. Plugins are pure, so the second run
//!   answers as the first would have; the log lines of an inline scope are held back and
//!   written only if it did not give up, so nothing is logged twice.
//!
//! A wasmtime error becomes the [`Fault`] to report, never a panic of the host.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use portcullis_model::Fault;
use wasmtime::{Store, Trap};

use crate::abi::{PolicyInstance, Pre, ProviderInstance};
use crate::answer::Description;
use crate::engine::{Budget, Engine, set_budget};
use crate::host_state::{HostState, LogLines};
use crate::plugin::Plugin;
use crate::wasi_linker::NeedsBlockingPool;

/// Fuel an inline scope may spend on all its calls together, instantiation included:
/// about a quarter of a millisecond of guest code. The built-in chains of one
/// (run, connector) need a small fraction of it.
pub(crate) const INLINE_FUEL: u64 = 500_000;

/// The wall-clock backstop of each call of an inline scope, in epoch ticks.
pub(crate) const INLINE_TICKS: u64 = 3;

/// The plugin versions (by digest) that ran out of an inline budget once: their
/// evaluations go to the blocking pool from the start.
#[derive(Default)]
pub(crate) struct SlowPlugins(Mutex<HashSet<Arc<str>>>);

impl SlowPlugins {
    fn contains(&self, digest: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(digest)
    }

    fn insert(&self, digest: Arc<str>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(digest);
    }
}

/// The calls of one evaluation; see the module header.
pub(crate) struct Scope<'e> {
    engine: &'e Engine,
    slow: &'e SlowPlugins,
    state: Mutex<State>,
}

/// A plugin instantiated in a scope's store.
enum Instance {
    Policy(PolicyInstance),
    Provider(ProviderInstance),
}

/// A store kept for further calls of the same plugin version in the scope.
struct Kept {
    key: usize,
    store: Store<HostState>,
    instance: Instance,
}

/// What a call is made on: a loaded plugin, or a component being admitted.
struct Target<'p> {
    /// Identifies the plugin version within the scope (its address: the chain holds
    /// every plugin it calls for the whole evaluation).
    key: usize,
    name: &'p Arc<str>,
    /// Absent for a component being admitted, which is never called inline.
    digest: Option<&'p Arc<str>>,
    pre: &'p Pre,
}

impl<'p> From<&'p Plugin> for Target<'p> {
    fn from(plugin: &'p Plugin) -> Self {
        Self {
            key: plugin as *const Plugin as usize,
            name: &plugin.name,
            digest: Some(&plugin.sha256),
            pre: &plugin.pre,
        }
    }
}

struct State {
    kept: Vec<Kept>,
    /// The most stores kept at once: the instance slots the scope's caller holds.
    capacity: usize,
    /// What an inline scope has left to spend; `None` on the blocking pool.
    inline_fuel: Option<u64>,
    gave_up: bool,
    /// Log lines held back until the scope ends (inline scopes only).
    held: Vec<LogLines>,
}

impl<'e> Scope<'e> {
    /// A scope that keeps up to `capacity` stores; `inline` when it runs on an async
    /// worker (see the module header).
    pub(crate) fn new(
        engine: &'e Engine,
        slow: &'e SlowPlugins,
        capacity: usize,
        inline: bool,
    ) -> Self {
        Self {
            engine,
            slow,
            state: Mutex::new(State {
                kept: Vec::new(),
                capacity: capacity.max(1),
                inline_fuel: inline.then_some(INLINE_FUEL),
                gave_up: false,
                held: Vec::new(),
            }),
        }
    }

    pub(crate) fn policy<T>(
        &self,
        plugin: &Plugin,
        f: impl FnOnce(&mut Store<HostState>, &PolicyInstance) -> wasmtime::Result<T>,
    ) -> Result<T, Fault> {
        let Pre::Policy(_) = &plugin.pre else {
            return Err(wrong_kind(plugin, "a provider plugin in a policy chain"));
        };
        self.call(plugin.into(), |store, instance| match instance {
            Instance::Policy(instance) => f(store, instance),
            Instance::Provider(_) => Err(mixed_kinds()),
        })
    }

    pub(crate) fn provider<T>(
        &self,
        plugin: &Plugin,
        f: impl FnOnce(&mut Store<HostState>, &ProviderInstance) -> wasmtime::Result<T>,
    ) -> Result<T, Fault> {
        let Pre::Provider(_) = &plugin.pre else {
            return Err(wrong_kind(plugin, "a policy plugin named as a provider"));
        };
        self.call(plugin.into(), |store, instance| match instance {
            Instance::Provider(instance) => f(store, instance),
            Instance::Policy(_) => Err(mixed_kinds()),
        })
    }

    /// One call of `target`, on the store the scope kept for it or on a fresh one.
    fn call<T>(
        &self,
        target: Target<'_>,
        f: impl FnOnce(&mut Store<HostState>, &Instance) -> wasmtime::Result<T>,
    ) -> Result<T, Fault> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let full = self.engine.full_budget();
        let slow =
            state.inline_fuel.is_some() && target.digest.is_some_and(|d| self.slow.contains(d));
        if state.gave_up || slow {
            // Never an answer: the caller discards a scope that gave up.
            state.gave_up = true;
            return Err(Fault::WallTimeout);
        }
        let _ticking = self.engine.ticking();
        let mut kept = match state.take(target.key) {
            Some(kept) => kept,
            None => {
                state.make_room();
                let budget = state.budget(full);
                let inline = state.inline_fuel.is_some();
                let mut store = self.engine.store(target.name.clone(), budget, inline);
                let instance = match target.pre {
                    Pre::Policy(pre) => pre.instantiate(&mut store).map(Instance::Policy),
                    Pre::Provider(pre) => pre.instantiate(&mut store).map(Instance::Provider),
                };
                state.charge(&store, budget);
                match instance {
                    Ok(instance) => Kept {
                        key: target.key,
                        store,
                        instance,
                    },
                    Err(error) => return Err(self.failed(&mut state, &target, store, error)),
                }
            }
        };
        let budget = state.budget(full);
        set_budget(&mut kept.store, budget);
        kept.store.data_mut().begin_call();
        let result = f(&mut kept.store, &kept.instance);
        state.charge(&kept.store, budget);
        match result {
            Ok(value) => {
                state.logs(&mut kept.store);
                state.keep(kept);
                Ok(value)
            }
            Err(error) => Err(self.failed(&mut state, &target, kept.store, error)),
        }
    }

    /// The fault a failed instantiation or call stands for; the store is dropped. A call
    /// stopped by the inline budget rather than the full one makes the scope give up.
    fn failed(
        &self,
        state: &mut State,
        target: &Target<'_>,
        mut store: Store<HostState>,
        error: wasmtime::Error,
    ) -> Fault {
        let blocking_io = error.downcast_ref::<NeedsBlockingPool>().is_some();
        let fault = fault(&store, target.name, error);
        state.logs(&mut store);
        // Whether the inline budget or the full one stopped it, the blocking pool decides;
        // so it does for a plugin that reached blocking I/O.
        let stopped = matches!(fault, Fault::CpuDeadline(_) | Fault::WallTimeout);
        if (stopped || blocking_io) && state.inline_fuel.is_some() {
            state.gave_up = true;
            if let Some(digest) = target.digest {
                self.slow.insert(digest.clone());
            }
        }
        fault
    }
}

impl State {
    /// The budget of what runs next: the full one, or what an inline scope has left.
    fn budget(&self, full: Budget) -> Budget {
        match self.inline_fuel {
            None => full,
            Some(left) => Budget {
                fuel: full.fuel.min(left),
                ticks: full.ticks.min(INLINE_TICKS),
            },
        }
    }

    /// Charges what ran in `store` under `budget` to an inline scope.
    fn charge(&mut self, store: &Store<HostState>, budget: Budget) {
        if let Some(left) = &mut self.inline_fuel {
            let used = budget.fuel - store.get_fuel().unwrap_or(0).min(budget.fuel);
            *left = left.saturating_sub(used);
        }
    }

    fn take(&mut self, key: usize) -> Option<Kept> {
        let index = self.kept.iter().position(|k| k.key == key)?;
        Some(self.kept.swap_remove(index))
    }

    /// Drops the oldest kept store if the scope holds as many as its slots allow, before
    /// it instantiates another: the pooling allocator fails rather than waits.
    fn make_room(&mut self) {
        if self.kept.len() >= self.capacity {
            self.kept.remove(0);
        }
    }

    /// Keeps `kept` for the next call of its plugin (room was made when it was created).
    fn keep(&mut self, kept: Kept) {
        self.kept.push(kept);
    }

    /// Takes the lines the last call logged: written now, or held back by an inline scope.
    fn logs(&mut self, store: &mut Store<HostState>) {
        let lines = store.data_mut().take_log();
        match self.inline_fuel {
            Some(_) => self.held.push(lines),
            None => lines.write(),
        }
    }
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if !state.gave_up {
            for lines in state.held.drain(..) {
                lines.write();
            }
        }
    }
}

impl Scope<'_> {
    /// Whether the scope gave up (see the module header): its answers are to be discarded.
    pub(crate) fn gave_up(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .gave_up
    }
}

/// The `describe` answer of a component being admitted as `name`, in a scope of its own.
pub(crate) fn describe(engine: &Engine, name: &Arc<str>, pre: &Pre) -> Result<Description, Fault> {
    let slow = SlowPlugins::default();
    let scope = Scope::new(engine, &slow, 1, false);
    let target = Target {
        key: 0,
        name,
        digest: None,
        pre,
    };
    scope.call(target, |store, instance| match instance {
        Instance::Policy(instance) => instance.describe(store),
        Instance::Provider(instance) => instance.describe(store),
    })
}

/// A plugin asked for a call of the other kind's world. Chains are resolved by kind, so
/// this is a host bug; it is still a fault, never a panic.
fn wrong_kind(plugin: &Plugin, detail: &str) -> Fault {
    Fault::Malformed {
        plugin: plugin.name.to_string(),
        detail: detail.to_owned(),
    }
}

/// A kept store answered for a plugin of the other kind: a host bug, reported as a trap.
fn mixed_kinds() -> wasmtime::Error {
    wasmtime::format_err!("the instance kept for this plugin is of the other kind")
}

/// Turns a wasmtime error from instantiating or calling a plugin into the fault to report.
fn fault(store: &Store<HostState>, plugin: &str, error: wasmtime::Error) -> Fault {
    let plugin = plugin.to_owned();
    if store.data().memory_denied() {
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
