//! The set of loaded plugins and the chains that use them, swapped as one value.
//!
//! A [`Registry`] is immutable. Installing or rolling back a plugin builds the next one off
//! the request path and the runtime publishes it with one atomic pointer swap; a chain
//! evaluation takes the registry current when it starts and finishes on it, so a request
//! in flight completes on the versions it started with and is never half old, half new.
//! The generation grows with every swap; callers that memoize answers key them by it. A
//! registry whose chains do not resolve is never built, so the current one keeps serving.

use std::collections::BTreeMap;
use std::sync::Arc;

use portcullis_model::ChainConfig;

use crate::chain::{self, Chains};
use crate::error::LoadError;
use crate::plugin::{Plugin, PluginKind, PluginSummary};

pub(crate) struct Registry {
    pub current: BTreeMap<Arc<str>, Arc<Plugin>>,
    /// The version each name had before its last install or rollback.
    pub previous: BTreeMap<Arc<str>, Arc<Plugin>>,
    /// The chains, resolved against `current`; they carry the generation.
    pub chains: Chains,
}

impl Registry {
    /// Generation 1: `plugins`, with `config`'s chains resolved against them.
    pub fn new(plugins: Vec<Arc<Plugin>>, config: &ChainConfig) -> Result<Self, LoadError> {
        let current: BTreeMap<_, _> = plugins.into_iter().map(|p| (p.name.clone(), p)).collect();
        Self::at(1, current, BTreeMap::new(), config)
    }

    pub fn generation(&self) -> u64 {
        self.chains.generation
    }

    /// The registry after `plugin` replaces the version of the same name, if any. A plugin
    /// cannot take a name a chain uses for the other kind.
    pub fn with_installed(
        &self,
        plugin: Arc<Plugin>,
        config: &ChainConfig,
    ) -> Result<Self, LoadError> {
        if let Some(chain) = chain::conflicting_use(config, &plugin.name, plugin.kind) {
            let current = match plugin.kind {
                PluginKind::Policy => PluginKind::Provider,
                PluginKind::Provider => PluginKind::Policy,
            };
            return Err(LoadError::KindChange {
                name: plugin.name.to_string(),
                current: current.as_str(),
                offered: plugin.kind.as_str(),
                chain: chain.to_owned(),
            });
        }
        let mut current = self.current.clone();
        let mut previous = self.previous.clone();
        if let Some(old) = current.insert(plugin.name.clone(), plugin.clone()) {
            previous.insert(plugin.name.clone(), old);
        }
        Self::at(self.generation() + 1, current, previous, config)
    }

    /// The registry after the current and previous versions of `name` trade places.
    pub fn with_rolled_back(&self, name: &str, config: &ChainConfig) -> Result<Self, LoadError> {
        let newer = self
            .current
            .get(name)
            .ok_or_else(|| LoadError::NotFound(name.to_owned()))?
            .clone();
        let older = self
            .previous
            .get(name)
            .ok_or_else(|| LoadError::NoPrevious(name.to_owned()))?
            .clone();
        let mut current = self.current.clone();
        let mut previous = self.previous.clone();
        current.insert(older.name.clone(), older);
        previous.insert(newer.name.clone(), newer);
        Self::at(self.generation() + 1, current, previous, config)
    }

    fn at(
        generation: u64,
        current: BTreeMap<Arc<str>, Arc<Plugin>>,
        previous: BTreeMap<Arc<str>, Arc<Plugin>>,
        config: &ChainConfig,
    ) -> Result<Self, LoadError> {
        let chains = Chains::resolve(config, &current, generation).map_err(LoadError::Chain)?;
        Ok(Self {
            current,
            previous,
            chains,
        })
    }

    pub fn summaries(&self) -> Vec<PluginSummary> {
        self.current
            .values()
            .map(|p| p.summary(self.previous.get(&p.name).map(|p| &**p)))
            .collect()
    }

    pub fn summary(&self, name: &str) -> Option<PluginSummary> {
        let plugin = self.current.get(name)?;
        Some(plugin.summary(self.previous.get(name).map(|p| &**p)))
    }
}
