//! One sandboxed call: a fresh store, a fresh instance from the plugin's pre-instantiated
//! form, the deadline restarted, one export called, and the store dropped whatever
//! happened. A wasmtime error becomes the [`Fault`] to report (CPU deadline, memory
//! limit, wall-clock backstop, trap), never a panic of the host.
//!
//! These functions block for as long as the guest runs; the chain runs them on the
//! blocking pool, never on an async worker.

use std::sync::Arc;

use portcullis_model::Fault;
use wasmtime::{Store, Trap};

use crate::abi::{PolicyInstance, Pre, ProviderInstance};
use crate::answer::Description;
use crate::engine::Engine;
use crate::host_state::HostState;
use crate::plugin::Plugin;

/// Calls `f` on a fresh instance of policy plugin `plugin`.
pub(crate) fn policy<T>(
    engine: &Engine,
    plugin: &Plugin,
    f: impl FnOnce(&mut Store<HostState>, &PolicyInstance) -> wasmtime::Result<T>,
) -> Result<T, Fault> {
    let Pre::Policy(pre) = &plugin.pre else {
        return Err(wrong_kind(plugin, "a provider plugin in a policy chain"));
    };
    sandboxed(engine, &plugin.name, |store| pre.instantiate(store), f)
}

/// Calls `f` on a fresh instance of provider plugin `plugin`.
pub(crate) fn provider<T>(
    engine: &Engine,
    plugin: &Plugin,
    f: impl FnOnce(&mut Store<HostState>, &ProviderInstance) -> wasmtime::Result<T>,
) -> Result<T, Fault> {
    let Pre::Provider(pre) = &plugin.pre else {
        return Err(wrong_kind(plugin, "a policy plugin named as a provider"));
    };
    sandboxed(engine, &plugin.name, |store| pre.instantiate(store), f)
}

/// The `describe` answer of a component being admitted as `name`.
pub(crate) fn describe(engine: &Engine, name: &Arc<str>, pre: &Pre) -> Result<Description, Fault> {
    match pre {
        Pre::Policy(pre) => sandboxed(
            engine,
            name,
            |store| pre.instantiate(store),
            |store, instance| instance.describe(store),
        ),
        Pre::Provider(pre) => sandboxed(
            engine,
            name,
            |store| pre.instantiate(store),
            |store, instance| instance.describe(store),
        ),
    }
}

fn sandboxed<I, T>(
    engine: &Engine,
    name: &Arc<str>,
    instantiate: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<I>,
    call: impl FnOnce(&mut Store<HostState>, &I) -> wasmtime::Result<T>,
) -> Result<T, Fault> {
    let mut store = engine.store(name.clone());
    let instance = instantiate(&mut store).map_err(|e| fault(&store, name, e))?;
    engine.restart_deadline(&mut store);
    call(&mut store, &instance).map_err(|e| fault(&store, name, e))
}

/// A plugin asked for a call of the other kind's world. Chains are resolved by kind, so
/// this is a host bug; it is still a fault, never a panic.
fn wrong_kind(plugin: &Plugin, detail: &str) -> Fault {
    Fault::Malformed {
        plugin: plugin.name.to_string(),
        detail: detail.to_owned(),
    }
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
