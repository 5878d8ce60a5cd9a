//! How the runtime is set up: the `[plugins]` table of the proxy's configuration, and the
//! components to load at start.

use std::path::PathBuf;

use portcullis_model::ChainConfig;

use crate::limits::Limits;

/// How the runtime is set up; every field has a default.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    pub limits: Limits,
    pub chains: ChainConfig,
    /// Whether callers may reuse an answer for the same plugin versions and inputs.
    /// Plugins are pure, so this only trades memory for speed; turning it off makes
    /// every request pay for its plugin calls (for benchmarks and debugging).
    pub memoize: bool,
    /// Where compiled components are kept across restarts (the proxy's
    /// `<data-dir>/cache`); `None` keeps them in memory only. Not read from a file.
    #[serde(skip)]
    pub cache_dir: Option<PathBuf>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            chains: ChainConfig::default(),
            memoize: true,
            cache_dir: None,
        }
    }
}

/// A component to load at start.
pub struct InitialPlugin<'a> {
    pub name: &'a str,
    pub wasm: &'a [u8],
    pub builtin: bool,
}

impl<'a> InitialPlugin<'a> {
    /// A component embedded in the binary, such as one of `portcullis-builtins`.
    pub fn builtin(name: &'a str, wasm: &'a [u8]) -> Self {
        Self {
            name,
            wasm,
            builtin: true,
        }
    }
}
