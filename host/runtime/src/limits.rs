//! The limits every plugin call runs under: the `[plugins.limits]` setting.
//!
//! Each field is one bound of the sandbox; `engine` turns them into the engine's
//! configuration (pooling slot size, instance count) and each call's budget (fuel and
//! epoch deadline), `host_state` into the store's memory limiter and log budget. The
//! defaults need no configuration.

use std::time::Duration;

/// How often the epoch advances; the wall-clock backstop is counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Fuel per millisecond of CPU budget. Cranelift code runs about one to two wasm
/// instructions per nanosecond here, so this is a generous millisecond; it is an
/// instruction count rather than a clock so that a decision's outcome is the same on an
/// idle machine and on an overloaded one.
const FUEL_PER_MS: u64 = 2_000_000;

/// The limits every plugin call runs under. The defaults need no configuration.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
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

    /// The CPU budget as wasmtime fuel.
    pub(crate) fn fuel(&self) -> u64 {
        self.cpu_deadline_ms.max(1).saturating_mul(FUEL_PER_MS)
    }

    /// The wall-clock backstop in epoch ticks.
    pub(crate) fn backstop_ticks(&self) -> u64 {
        (self.wall_timeout().as_micros() / EPOCH_TICK.as_micros()).max(1) as u64
    }
}
