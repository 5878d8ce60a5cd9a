//! What every decision answers: the value, the plugin versions that gave it, the fault
//! when a plugin failed rather than decided, and the registry generation it was computed on.

use std::sync::Arc;

use serde::Serialize;

/// An answer and the plugin versions that gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict<T> {
    pub value: T,
    /// Every plugin that was called, in order.
    pub plugins: Vec<Stamp>,
    /// Set when the answer is a deny because a plugin failed rather than decided.
    pub fault: Option<Fault>,
    /// The registry generation the answer was computed on.
    pub generation: u64,
}

impl<T> Verdict<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Verdict<U> {
        Verdict {
            value: f(self.value),
            plugins: self.plugins,
            fault: self.fault,
            generation: self.generation,
        }
    }
}

/// Identifies the plugin version that took part in a decision, for the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stamp {
    pub name: Arc<str>,
    pub version: Arc<str>,
    pub sha256: Arc<str>,
}

/// Why one plugin call gave no usable answer. Every fault is a deny: the runtime fails
/// closed, drops the instance and keeps serving.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("plugin `{0}` exceeded its CPU deadline and was interrupted")]
    CpuDeadline(String),
    #[error("plugin `{0}` exceeded its memory limit")]
    MemoryLimit(String),
    #[error("plugin `{plugin}` trapped: {detail}")]
    Trap { plugin: String, detail: String },
    #[error("plugin chain did not answer within its wall-clock timeout")]
    WallTimeout,
    #[error("plugin `{plugin}` gave a malformed answer: {detail}")]
    Malformed { plugin: String, detail: String },
}

impl Fault {
    /// The reason recorded in the audit log for a deny caused by this fault.
    pub fn reason(&self) -> &'static str {
        match self {
            Fault::CpuDeadline(_) => "plugin_cpu_deadline",
            Fault::MemoryLimit(_) => "plugin_memory_limit",
            Fault::Trap { .. } => "plugin_trap",
            Fault::WallTimeout => "plugin_timeout",
            Fault::Malformed { .. } => "plugin_malformed_answer",
        }
    }
}
