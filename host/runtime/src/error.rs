//! What can go wrong when loading a plugin or asking for a plan, in words an operator can
//! act on. (A plugin call that gives no answer is a `Fault`, a record of the model: it
//! travels in the verdict.)

use portcullis_model::Fault;

use crate::abi::CONTRACTS;

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
         {contracts} (policy: {policy}; provider: {provider})",
        contracts = CONTRACTS
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
    #[error(
        "plugin `{name}` is used by the {} chain{}; remove it from them first",
        chains.join(", "),
        if chains.len() == 1 { "" } else { "s" }
    )]
    InUse { name: String, chains: Vec<String> },
    #[error(
        "the {chain} chain's link `{plugin}` refused its settings in a trial call: {detail}; \
         fix the settings or the plugin"
    )]
    Settings {
        chain: &'static str,
        plugin: String,
        detail: String,
    },
    #[error(
        "plugin `{0}` cannot have a shadow: shadow rollout compares policy plugins, and both \
         the live plugin and the candidate must be policy plugins"
    )]
    ShadowUnsupported(String),
    #[error("plugin `{0}` has no shadow candidate")]
    NoShadow(String),
    #[error("the plugin runtime could not start: {0}")]
    Engine(String),
}

/// Why no injection plan is available for a connector.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no provider plugin is configured for provider `{0}`")]
    UnknownProvider(String),
    #[error("the provider plugin refused the connector's configuration: {0}")]
    Refused(String),
    #[error(transparent)]
    Fault(Fault),
}
