//! What one call's store holds: the WASI context a plugin sees, the memory limiter and the
//! log budget. A fresh one is made for every call and dropped with its store.
//!
//! **No ambient authority.** WASI is linked only because Rust's standard library imports
//! it; the context built here grants no preopened directory, environment, argument,
//! socket or standard input, its clocks are frozen at the Unix epoch and its entropy is a
//! fixed sequence, so a decision is a pure function of the records it is given. (Its
//! timers are replaced in the linker: see `engine`.)
//!
//! **Bounded.** The store's [`ResourceLimiter`] refuses memory growth past the limit and
//! records that it did, so the caller can report a memory fault rather than a bare trap;
//! log lines beyond the per-call budget are dropped, counted and reported once. A store
//! may serve several calls of one evaluation (`call`): each call has its own log budget
//! (the lines a call logged are taken after it, [`HostState::take_log`], and written by
//! the caller, who may hold them back) and memory-fault flag ([`HostState::begin_call`]).

use std::sync::Arc;
use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::limits::Limits;

/// The most random bytes one WASI call may ask for: enough to seed anything.
const MAX_RANDOM_BYTES: u64 = 4096;

/// The longest log line a plugin may write, in characters; the rest is cut.
const MAX_LOG_LINE: usize = 1024;

/// Everything one call's store holds.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory_bytes: usize,
    memory_denied: bool,
    max_log_lines: u32,
    log: LogLines,
    /// Calls run on an async worker, where WASI's blocking I/O must not run (`wasi_linker`).
    inline: bool,
}

/// The lines one plugin call logged, and how many it logged past its budget.
pub(crate) struct LogLines {
    plugin: Arc<str>,
    lines: Vec<(tracing::Level, String)>,
    dropped: u32,
}

impl HostState {
    pub(crate) fn new(plugin: Arc<str>, limits: &Limits, inline: bool) -> Self {
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
            memory_bytes: limits.memory_bytes,
            memory_denied: false,
            max_log_lines: limits.max_log_lines,
            log: LogLines {
                plugin,
                lines: Vec::new(),
                dropped: 0,
            },
            inline,
        }
    }

    /// Whether this store's calls run on an async worker.
    pub(crate) fn inline(&self) -> bool {
        self.inline
    }

    /// Starts a call on this store: a fresh memory-fault flag. The log budget is fresh
    /// too, since the lines of the call before were taken; lines logged while the store
    /// was instantiated count against its first call, as they always did.
    pub(crate) fn begin_call(&mut self) {
        self.memory_denied = false;
    }

    /// The lines logged since the call began, for the caller to write.
    pub(crate) fn take_log(&mut self) -> LogLines {
        LogLines {
            plugin: self.log.plugin.clone(),
            lines: std::mem::take(&mut self.log.lines),
            dropped: std::mem::replace(&mut self.log.dropped, 0),
        }
    }

    /// Whether the call tried to grow its memory past the limit.
    pub(crate) fn memory_denied(&self) -> bool {
        self.memory_denied
    }

    /// Keeps one line a plugin logged, within the per-call budget, cut to its length.
    pub(crate) fn plugin_log(&mut self, level: tracing::Level, message: &str) {
        if self.log.lines.len() >= self.max_log_lines as usize {
            self.log.dropped += 1;
            return;
        }
        let line = match message.char_indices().nth(MAX_LOG_LINE) {
            Some((cut, _)) => &message[..cut],
            None => message,
        };
        self.log.lines.push((level, line.to_owned()));
    }
}

impl LogLines {
    /// Writes the lines to the host's log, and says once how many were dropped.
    pub(crate) fn write(self) {
        let plugin = &*self.plugin;
        for (level, line) in &self.lines {
            match *level {
                tracing::Level::ERROR => {
                    tracing::error!(target: "portcullis::plugin", plugin, "{line}")
                }
                tracing::Level::WARN => {
                    tracing::warn!(target: "portcullis::plugin", plugin, "{line}")
                }
                tracing::Level::INFO => {
                    tracing::info!(target: "portcullis::plugin", plugin, "{line}")
                }
                tracing::Level::DEBUG => {
                    tracing::debug!(target: "portcullis::plugin", plugin, "{line}")
                }
                tracing::Level::TRACE => {
                    tracing::trace!(target: "portcullis::plugin", plugin, "{line}")
                }
            }
        }
        if self.dropped > 0 {
            tracing::warn!(
                target: "portcullis::plugin",
                plugin,
                dropped = self.dropped,
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
