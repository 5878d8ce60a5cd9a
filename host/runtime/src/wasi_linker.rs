//! The WASI a plugin is linked against: wasmtime-wasi's synchronous WASI 0.2, with the
//! functions below replaced. Plugins import WASI only because Rust's standard library
//! does; what they reach through it is empty (`host_state`) or replaced here.
//!
//! * **Timers trap.** `subscribe-duration` and `subscribe-instant` wait on the host's real
//!   clock, and a wait inside a host call is invisible to epoch interruption: a plugin
//!   calling `std::thread::sleep` would hold its thread and its instance slot long after
//!   the caller's wall-clock timeout gave up on it. With the clocks frozen a timer has no
//!   meaning anyway.
//! * **No sockets.** Creating a TCP or UDP socket answers `access-denied`, so no socket
//!   resource (and no pollable of one) ever exists, whatever the context's address check
//!   would later say.
//! * **No blocking I/O on an async worker.** wasmtime-wasi's synchronous streams and
//!   `poll` block on tokio (`in_tokio`), which panics on a thread that drives async
//!   tasks: exactly where an inline scope runs (`call`). A plugin that prints (a panic
//!   message goes to standard error) or polls could panic the host's request task. So in
//!   an inline store the standard streams and `poll` fail with [`NeedsBlockingPool`]
//!   before any of that runs; the scope gives up and the evaluation runs again on the
//!   blocking pool, where they behave as WASI says (the streams are empty sinks). The
//!   standard streams and sockets are the only sources of a stream or a pollable a plugin
//!   can use (the timers trap, no directory is preopened), so nothing else reaches them.

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::WasiCliView;
use wasmtime_wasi::p2::bindings::cli::{stderr, stdin, stdout};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sync::io::poll;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, TcpSocket, UdpSocket};

use crate::host_state::HostState;

/// The WASI release wasmtime-wasi defines; the linker also offers it to guests importing
/// an earlier 0.2 release.
const WASI: &str = "0.2.12";

/// A plugin on an async worker reached WASI I/O that blocks; see the module header.
#[derive(Debug, thiserror::Error)]
#[error("the plugin uses blocking WASI I/O, so it runs on the blocking pool")]
pub(crate) struct NeedsBlockingPool;

type Context<'a> = StoreContextMut<'a, HostState>;

/// A linker with WASI as the module header describes.
pub(crate) fn wasi_linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    linker.allow_shadowing(true);

    let mut clock = linker.instance(&format!("wasi:clocks/monotonic-clock@{WASI}"))?;
    clock.func_wrap("subscribe-duration", |_, (_,): (u64,)| {
        Err::<(Resource<DynPollable>,), _>(timer_denied())
    })?;
    clock.func_wrap("subscribe-instant", |_, (_,): (u64,)| {
        Err::<(Resource<DynPollable>,), _>(timer_denied())
    })?;

    linker
        .instance(&format!("wasi:sockets/tcp-create-socket@{WASI}"))?
        .func_wrap("create-tcp-socket", |_, (_,): (IpAddressFamily,)| {
            Ok((Err::<Resource<TcpSocket>, _>(ErrorCode::AccessDenied),))
        })?;
    linker
        .instance(&format!("wasi:sockets/udp-create-socket@{WASI}"))?
        .func_wrap("create-udp-socket", |_, (_,): (IpAddressFamily,)| {
            Ok((Err::<Resource<UdpSocket>, _>(ErrorCode::AccessDenied),))
        })?;

    linker
        .instance(&format!("wasi:cli/stdin@{WASI}"))?
        .func_wrap("get-stdin", |mut store: Context<'_>, (): ()| {
            let state = off_async_workers(&mut store)?;
            let stream: Resource<DynInputStream> = stdin::Host::get_stdin(&mut state.cli())?;
            Ok((stream,))
        })?;
    linker
        .instance(&format!("wasi:cli/stdout@{WASI}"))?
        .func_wrap("get-stdout", |mut store: Context<'_>, (): ()| {
            let state = off_async_workers(&mut store)?;
            let stream: Resource<DynOutputStream> = stdout::Host::get_stdout(&mut state.cli())?;
            Ok((stream,))
        })?;
    linker
        .instance(&format!("wasi:cli/stderr@{WASI}"))?
        .func_wrap("get-stderr", |mut store: Context<'_>, (): ()| {
            let state = off_async_workers(&mut store)?;
            let stream: Resource<DynOutputStream> = stderr::Host::get_stderr(&mut state.cli())?;
            Ok((stream,))
        })?;
    linker
        .instance(&format!("wasi:io/poll@{WASI}"))?
        .func_wrap(
            "poll",
            |mut store: Context<'_>, (pollables,): (Vec<Resource<DynPollable>>,)| {
                let state = off_async_workers(&mut store)?;
                Ok((poll::Host::poll(state.ctx().table, pollables)?,))
            },
        )?;

    linker.allow_shadowing(false);
    Ok(linker)
}

/// The store's data, unless the store is an inline one ([`NeedsBlockingPool`]).
fn off_async_workers<'a>(store: &'a mut Context<'_>) -> wasmtime::Result<&'a mut HostState> {
    let state = store.data_mut();
    if state.inline() {
        return Err(wasmtime::Error::new(NeedsBlockingPool));
    }
    Ok(state)
}

fn timer_denied() -> wasmtime::Error {
    wasmtime::format_err!(
        "plugins may not wait on a timer (sleep or timeout): their clocks are frozen"
    )
}
