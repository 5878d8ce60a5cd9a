//! The set of loaded plugins, the chain configuration, the chains resolved from them and
//! the shadow candidates, swapped as one value.
//!
//! A [`Registry`] is immutable. Every change (an install, a rollback, a removal, a new
//! chain configuration, a shadow) is made on a [`Draft`], a mutable copy; the runtime
//! builds the next registry from it off the request path and publishes it with one
//! atomic pointer swap. A chain evaluation takes the registry current when it starts and
//! finishes on it, so a request in flight completes on the versions and the chains it
//! started with and is never half old, half new. The generation grows with every swap;
//! callers that memoize answers key them by it. A draft whose chains do not resolve never
//! becomes a registry, so the current one keeps serving.

use std::collections::BTreeMap;
use std::sync::Arc;

use portcullis_model::ChainConfig;

use crate::chain::{self, Chains};
use crate::error::LoadError;
use crate::plugin::{Admitted, Plugin, PluginKind, PluginSummary};
use crate::shadow::{Shadow, ShadowStats};

pub(crate) struct Registry {
    pub current: BTreeMap<Arc<str>, Arc<Plugin>>,
    /// The version each name had before its last install or rollback.
    pub previous: BTreeMap<Arc<str>, Arc<Plugin>>,
    /// The chain configuration `chains` was resolved from.
    pub config: ChainConfig,
    /// The chains, resolved against `current`; they carry the generation.
    pub chains: Chains,
    /// Shadow candidates, by the name of the live plugin they shadow.
    pub shadows: BTreeMap<Arc<str>, Arc<Shadow>>,
}

/// A candidate as a draft holds it: its counts survive every rebuild.
#[derive(Clone)]
struct Candidate {
    plugin: Arc<Plugin>,
    stats: Arc<ShadowStats>,
}

/// A mutable copy of the registry, to change and then publish with
/// [`Runtime::change`](crate::Runtime::change).
pub struct Draft {
    current: BTreeMap<Arc<str>, Arc<Plugin>>,
    previous: BTreeMap<Arc<str>, Arc<Plugin>>,
    config: ChainConfig,
    shadows: BTreeMap<Arc<str>, Candidate>,
}

impl Draft {
    /// Makes `plugin` the serving version of its name (the one it replaces becomes the
    /// previous one). A plugin cannot take a name a chain uses for the other kind.
    pub fn install(&mut self, plugin: Admitted) -> Result<(), LoadError> {
        let plugin = plugin.0;
        if let Some(chain) = chain::conflicting_use(&self.config, &plugin.name, plugin.kind) {
            return Err(LoadError::KindChange {
                name: plugin.name.to_string(),
                current: other(plugin.kind).as_str(),
                offered: plugin.kind.as_str(),
                chain: chain.to_owned(),
            });
        }
        if let Some(candidate) = self.shadows.get(&plugin.name)
            && candidate.plugin.kind != plugin.kind
        {
            return Err(LoadError::KindChange {
                name: plugin.name.to_string(),
                current: candidate.plugin.kind.as_str(),
                offered: plugin.kind.as_str(),
                chain: "shadow".to_owned(),
            });
        }
        if let Some(old) = self.current.insert(plugin.name.clone(), plugin.clone()) {
            self.previous.insert(plugin.name.clone(), old);
        }
        Ok(())
    }

    /// Unloads plugin `name` and its shadow; refused while a chain names it.
    pub fn remove(&mut self, name: &str) -> Result<(), LoadError> {
        let chains = self.config.chains_using(name);
        if !chains.is_empty() {
            return Err(LoadError::InUse {
                name: name.to_owned(),
                chains: chains.into_iter().map(str::to_owned).collect(),
            });
        }
        if self.current.remove(name).is_none() {
            return Err(LoadError::NotFound(name.to_owned()));
        }
        self.previous.remove(name);
        self.shadows.remove(name);
        Ok(())
    }

    /// The chain configuration the draft will resolve.
    pub fn chains(&self) -> &ChainConfig {
        &self.config
    }

    pub fn set_chains(&mut self, config: ChainConfig) {
        self.config = config;
    }

    /// Whether plugin `name` is loaded in the draft.
    pub fn contains(&self, name: &str) -> bool {
        self.current.contains_key(name)
    }

    /// Puts `candidate` in the shadow of the live policy plugin of the same name.
    pub fn set_shadow(&mut self, candidate: Admitted) -> Result<(), LoadError> {
        let candidate = candidate.0;
        let live = self
            .current
            .get(&candidate.name)
            .ok_or_else(|| LoadError::NotFound(candidate.name.to_string()))?;
        if live.kind != PluginKind::Policy || candidate.kind != PluginKind::Policy {
            return Err(LoadError::ShadowUnsupported(candidate.name.to_string()));
        }
        self.shadows.insert(
            candidate.name.clone(),
            Candidate {
                plugin: candidate,
                stats: ShadowStats::new(),
            },
        );
        Ok(())
    }

    /// Ends the shadow of `name`; answers whether there was one.
    pub fn remove_shadow(&mut self, name: &str) -> bool {
        self.shadows.remove(name).is_some()
    }

    /// Makes the shadow candidate of `name` its serving version, and ends the shadow.
    pub fn promote_shadow(&mut self, name: &str) -> Result<(), LoadError> {
        let candidate = self
            .shadows
            .remove(name)
            .ok_or_else(|| LoadError::NoShadow(name.to_owned()))?;
        self.install(Admitted(candidate.plugin))
    }
}

fn other(kind: PluginKind) -> PluginKind {
    match kind {
        PluginKind::Policy => PluginKind::Provider,
        PluginKind::Provider => PluginKind::Policy,
    }
}

impl Registry {
    /// Generation 1: `plugins`, with `config`'s chains resolved against them.
    pub fn new(plugins: Vec<Arc<Plugin>>, config: &ChainConfig) -> Result<Self, LoadError> {
        let draft = Draft {
            current: plugins.into_iter().map(|p| (p.name.clone(), p)).collect(),
            previous: BTreeMap::new(),
            config: config.clone(),
            shadows: BTreeMap::new(),
        };
        Self::build(1, draft)
    }

    pub fn generation(&self) -> u64 {
        self.chains.generation
    }

    /// A draft holding what this registry holds.
    pub fn draft(&self) -> Draft {
        Draft {
            current: self.current.clone(),
            previous: self.previous.clone(),
            config: self.config.clone(),
            shadows: self
                .shadows
                .iter()
                .map(|(name, shadow)| {
                    let candidate = Candidate {
                        plugin: shadow.candidate.clone(),
                        stats: shadow.stats.clone(),
                    };
                    (name.clone(), candidate)
                })
                .collect(),
        }
    }

    /// The registry after this one: `draft` resolved at the next generation.
    pub fn next(&self, draft: Draft) -> Result<Self, LoadError> {
        Self::build(self.generation() + 1, draft)
    }

    /// The registry after the current and previous versions of `name` trade places.
    pub fn with_rolled_back(&self, name: &str) -> Result<Self, LoadError> {
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
        let mut draft = self.draft();
        draft.current.insert(older.name.clone(), older);
        draft.previous.insert(newer.name.clone(), newer);
        self.next(draft)
    }

    fn build(generation: u64, draft: Draft) -> Result<Self, LoadError> {
        let Draft {
            current,
            previous,
            config,
            shadows,
        } = draft;
        let chains = Chains::resolve(&config, &current, generation).map_err(LoadError::Chain)?;
        let shadows = shadows
            .into_iter()
            .filter_map(|(name, candidate)| {
                let live = current.get(&name)?;
                let shadow =
                    Shadow::new(live, candidate.plugin, candidate.stats, &config, generation);
                Some(
                    shadow
                        .map(|s| (name, Arc::new(s)))
                        .map_err(LoadError::Chain),
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            current,
            previous,
            config,
            chains,
            shadows,
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
