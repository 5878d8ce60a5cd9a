//! How the runtime is set up: the `[plugins]` table of the proxy's configuration, and the
//! components to load at start.
//!
//! The provenance keys (`require_signature`, `trusted_keys`) are read by
//! [`TrustPolicy::from_config`](crate::TrustPolicy::from_config); `keep_versions` bounds the
//! version history the proxy keeps per plugin name.

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
    /// Refuse, at install and at start, any component that is not signed by one of
    /// `trusted_keys` (the built-in plugins, part of the binary, are exempt).
    pub require_signature: bool,
    /// minisign public keys whose signatures are trusted: each the base64 line of a
    /// `.pub` file (the whole two-line file is accepted too).
    pub trusted_keys: Vec<String>,
    /// How many installed versions of each plugin name are kept for rollback (the
    /// serving one, a shadow candidate and the built-in are always kept).
    pub keep_versions: usize,
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
            require_signature: false,
            trusted_keys: Vec::new(),
            keep_versions: 10,
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
