//! The set of loaded plugins and the chains that use them, swapped as one value.
//!
//! A [`Registry`] is immutable. Installing or rolling back a plugin builds a new one off
//! the request path and publishes it with one atomic pointer swap; a chain evaluation
//! takes the registry current when it starts and finishes on it, so a request in flight
//! completes on the versions it started with and is never half old, half new. The
//! `generation` grows with every swap; callers that memoize answers key them by it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::abi::v0_1_0::{policy::PolicyPluginPre, provider::ProviderPluginPre};
use crate::chain::{ChainConfig, ResolvedChains};
use crate::sandbox::HostState;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    Policy,
    Provider,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Policy => "policy",
            PluginKind::Provider => "provider",
        }
    }
}

/// The pre-instantiated, shareable form of a plugin: linked once, instantiated per call.
pub(crate) enum Pre {
    Policy(PolicyPluginPre<HostState>),
    Provider(ProviderPluginPre<HostState>),
}

/// One loaded plugin version.
pub struct Plugin {
    /// The registry name chains refer to.
    pub name: Arc<str>,
    pub kind: PluginKind,
    /// The name and version the component reports about itself.
    pub reported_name: String,
    pub version: Arc<str>,
    /// Hex sha256 of the component bytes.
    pub sha256: Arc<str>,
    pub loaded_at: SystemTime,
    /// Embedded in the binary rather than loaded by an operator.
    pub builtin: bool,
    /// Whether `request` needs tool arguments (policy plugins only).
    pub reads_arguments: bool,
    pub(crate) pre: Pre,
}

/// A plugin as the admin API lists it.
#[derive(Clone, Debug, Serialize)]
pub struct PluginSummary {
    pub name: String,
    pub kind: PluginKind,
    pub version: String,
    pub reported_name: String,
    pub sha256: String,
    #[serde(with = "unix_seconds")]
    pub loaded_at: SystemTime,
    pub builtin: bool,
    pub reads_arguments: bool,
    pub previous: Option<PreviousVersion>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PreviousVersion {
    pub version: String,
    pub sha256: String,
    #[serde(with = "unix_seconds")]
    pub loaded_at: SystemTime,
}

mod unix_seconds {
    use std::time::{SystemTime, UNIX_EPOCH};

    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        s.serialize_u64(secs)
    }
}

/// Identifies the plugin version that took part in a decision, for the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stamp {
    pub name: Arc<str>,
    pub version: Arc<str>,
    pub sha256: Arc<str>,
}

impl Plugin {
    pub fn stamp(&self) -> Stamp {
        Stamp {
            name: self.name.clone(),
            version: self.version.clone(),
            sha256: self.sha256.clone(),
        }
    }

    fn summary(&self, previous: Option<&Arc<Plugin>>) -> PluginSummary {
        PluginSummary {
            name: self.name.to_string(),
            kind: self.kind,
            version: self.version.to_string(),
            reported_name: self.reported_name.clone(),
            sha256: self.sha256.to_string(),
            loaded_at: self.loaded_at,
            builtin: self.builtin,
            reads_arguments: self.reads_arguments,
            previous: previous.map(|p| PreviousVersion {
                version: p.version.to_string(),
                sha256: p.sha256.to_string(),
                loaded_at: p.loaded_at,
            }),
        }
    }
}

pub(crate) struct Registry {
    pub generation: u64,
    pub current: BTreeMap<Arc<str>, Arc<Plugin>>,
    pub previous: BTreeMap<Arc<str>, Arc<Plugin>>,
    pub chains: ResolvedChains,
}

impl Registry {
    /// A registry holding `plugins`, with `config`'s chains resolved against them.
    pub fn new(plugins: Vec<Arc<Plugin>>, config: &ChainConfig) -> Result<Self, String> {
        let current: BTreeMap<_, _> = plugins.into_iter().map(|p| (p.name.clone(), p)).collect();
        let chains = ResolvedChains::resolve(config, &current)?;
        Ok(Self {
            generation: 1,
            current,
            previous: BTreeMap::new(),
            chains,
        })
    }

    /// The registry after `plugin` replaces the version of the same name, if any.
    pub fn with_installed(
        &self,
        plugin: Arc<Plugin>,
        config: &ChainConfig,
    ) -> Result<Self, String> {
        let mut current = self.current.clone();
        let mut previous = self.previous.clone();
        if let Some(old) = current.insert(plugin.name.clone(), plugin.clone()) {
            previous.insert(plugin.name.clone(), old);
        }
        self.next(current, previous, config)
    }

    /// The registry after the current and previous versions of `name` trade places.
    pub fn with_rolled_back(
        &self,
        name: &str,
        config: &ChainConfig,
    ) -> Option<Result<Self, String>> {
        let older = self.previous.get(name)?.clone();
        let newer = self.current.get(name)?.clone();
        let mut current = self.current.clone();
        let mut previous = self.previous.clone();
        current.insert(older.name.clone(), older);
        previous.insert(newer.name.clone(), newer);
        Some(self.next(current, previous, config))
    }

    fn next(
        &self,
        current: BTreeMap<Arc<str>, Arc<Plugin>>,
        previous: BTreeMap<Arc<str>, Arc<Plugin>>,
        config: &ChainConfig,
    ) -> Result<Self, String> {
        let chains = ResolvedChains::resolve(config, &current)?;
        Ok(Self {
            generation: self.generation + 1,
            current,
            previous,
            chains,
        })
    }

    pub fn summaries(&self) -> Vec<PluginSummary> {
        self.current
            .values()
            .map(|p| p.summary(self.previous.get(&p.name)))
            .collect()
    }

    pub fn summary(&self, name: &str) -> Option<PluginSummary> {
        let plugin = self.current.get(name)?;
        Some(plugin.summary(self.previous.get(name)))
    }
}
