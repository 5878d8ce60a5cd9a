//! What can go wrong when loading or calling a plugin, in words an operator can act on.

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
    #[error(
        "no plugin named `{0}` is loaded; load it with PUT /admin/v1/plugins/{0} or fix the chain configuration"
    )]
    Missing(String),
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
            Fault::Missing(_) => "plugin_missing",
        }
    }
}

/// Why a component was refused. The plugin that was loaded before, if any, stays.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the component is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error(
        "the bytes are not a WebAssembly component (a core module or something else); \
         build the plugin with `cargo build --target wasm32-wasip2`"
    )]
    NotAComponent,
    #[error("the component does not compile: {0}")]
    Compile(String),
    #[error(
        "the component implements neither the policy-plugin nor the provider-plugin world of \
         portcullis:plugin@0.1.0 (policy: {policy}; provider: {provider})"
    )]
    UnknownWorld { policy: String, provider: String },
    #[error("the component failed its admission call to `describe`: {0}")]
    Describe(Fault),
    #[error(
        "plugin `{name}` is a {current} plugin used by the {chain} chain; a {offered} plugin cannot replace it"
    )]
    KindChange {
        name: String,
        current: &'static str,
        offered: &'static str,
        chain: String,
    },
    #[error("the plugin name `{0}` is invalid: use 1 to 64 lower-case letters, digits and `-`")]
    InvalidName(String),
    #[error("no plugin named `{0}` is loaded")]
    NotFound(String),
    #[error("plugin `{0}` has no previous version to roll back to")]
    NoPrevious(String),
    #[error("the chain configuration is invalid: {0}")]
    Chain(String),
    #[error("the plugin runtime could not start: {0}")]
    Engine(String),
}
