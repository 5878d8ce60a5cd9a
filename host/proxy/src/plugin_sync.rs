//! Keeps this replica's plugin registry in step with the store, for replicas that share
//! one PostgreSQL database: a plugin installed, rolled back or deleted, or the chains
//! changed, on one replica serves on every other one within a round trip and a load.
//!
//! The store announces each such change in its transaction
//! ([`Revocation::PluginsChanged`]); a lost notification connection, and the listener's
//! periodic backstop, announce [`Revocation::Everything`]. [`Follower`] passes every
//! revocation on to the data plane and, on those two, starts a [`reload`]: read which
//! version each name should serve and the chains from the store, load what differs, and
//! publish it all in one atomic swap of the runtime's registry. Requests in flight finish
//! on the registry they started with; sessions are untouched; the new generation keeps
//! memoized answers from being reused.
//!
//! Invariants:
//! - A replica never runs bytes it would refuse to install: a version loads only if it
//!   hashes to its digest, is signed as the trust policy requires, and passes admission
//!   (built-ins are the binary's own bytes). A version that fails is reported, and its
//!   name keeps serving what it served; if the chains then no longer resolve, nothing of
//!   the reload is applied.
//! - A reload holds [`PluginStore::lock`], so it never interleaves with an admin change
//!   on this replica; reloads are coalesced: one runs, at most one more waits, and the
//!   one waiting reads the store after every announcement that queued it.
//! - When the registry already matches the store, a reload costs two reads.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use portcullis_runtime::{Admitted, ChainConfig, Runtime};

use crate::plugin_store::{PluginStore, PluginStoreError};
use crate::revocation::{Revocation, Revocations};

/// What a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Names that now serve another version, or serve for the first time.
    pub loaded: Vec<String>,
    /// Names no longer loaded.
    pub removed: Vec<String>,
    /// Whether the chain configuration changed.
    pub chains: bool,
    /// Versions that may not serve, with why (reported, and their name left as it was).
    pub refused: Vec<String>,
}

impl Reloaded {
    fn changed(&self) -> bool {
        !self.loaded.is_empty() || !self.removed.is_empty() || self.chains
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Store(#[from] PluginStoreError),
    #[error(
        "the plugins and chains in the store do not resolve on this replica ({0}); it keeps \
         serving its current plugins and chains"
    )]
    Unresolved(portcullis_runtime::LoadError),
}

/// The registry of one replica and where its plugins are kept.
pub struct PluginSync {
    runtime: Arc<Runtime>,
    plugins: Arc<PluginStore>,
    /// A reload is queued and has not read the store yet.
    queued: AtomicBool,
    /// Versions admission refused, which are not compiled again (their bytes cannot
    /// change under their digest).
    inadmissible: Mutex<HashSet<(String, String)>>,
}

impl PluginSync {
    pub fn new(runtime: Arc<Runtime>, plugins: Arc<PluginStore>) -> Arc<Self> {
        Arc::new(Self {
            runtime,
            plugins,
            queued: AtomicBool::new(false),
            inadmissible: Mutex::new(HashSet::new()),
        })
    }

    /// Starts a reload in the background unless one is queued already.
    pub fn wake(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let sync = self.clone();
        tokio::spawn(async move {
            match sync.reload().await {
                Ok(reloaded) if reloaded.changed() => tracing::info!(
                    loaded = ?reloaded.loaded,
                    removed = ?reloaded.removed,
                    chains = reloaded.chains,
                    "plugin registry reloaded from the store (changed by another replica)"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "plugin registry not reloaded"),
            }
        });
    }

    /// Makes the registry serve what the store says, as far as this replica may.
    pub async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let _writer = self.plugins.lock().await;
        self.queued.store(false, Ordering::Release);
        let serving = self
            .plugins
            .serving()
            .await
            .map_err(PluginStoreError::from)?;
        let stored = self.plugins.stored_chains().await?;
        let loaded: BTreeMap<String, String> = self
            .runtime
            .plugins()
            .into_iter()
            .map(|p| (p.name, p.sha256))
            .collect();
        let mut reloaded = Reloaded::default();
        let mut admitted: Vec<Admitted> = Vec::new();
        for (name, digest) in &serving {
            if loaded.get(name) == Some(digest) {
                continue;
            }
            match self.admitted(name, digest).await? {
                Ok(plugin) => {
                    admitted.push(plugin);
                    reloaded.loaded.push(name.clone());
                }
                Err(why) => {
                    let refused = format!("plugin `{name}` version {digest} may not serve: {why}");
                    tracing::error!("{refused}; this replica keeps serving what it served");
                    reloaded.refused.push(refused);
                }
            }
        }
        reloaded.removed = loaded
            .keys()
            .filter(|name| !serving.contains_key(*name))
            .cloned()
            .collect();
        let chains: Option<ChainConfig> = stored.filter(|c| *c != self.runtime.chains());
        reloaded.chains = chains.is_some();
        if !reloaded.changed() {
            return Ok(reloaded);
        }
        self.runtime
            .change(|draft| {
                if let Some(chains) = chains {
                    draft.set_chains(chains);
                }
                for name in &reloaded.removed {
                    draft.remove(name)?;
                }
                for plugin in admitted {
                    draft.install(plugin)?;
                }
                Ok(())
            })
            .map_err(ReloadError::Unresolved)?;
        Ok(reloaded)
    }

    /// Version `digest` of `name`, checked and admitted, or why it may not serve.
    async fn admitted(
        &self,
        name: &str,
        digest: &str,
    ) -> Result<Result<Admitted, String>, PluginStoreError> {
        let key = (name.to_owned(), digest.to_owned());
        if self.inadmissible.lock().expect("lock").contains(&key) {
            return Ok(Err("admission refused it before".to_owned()));
        }
        let (wasm, builtin) = match self.plugins.loadable(name, digest).await? {
            Ok(loadable) => loadable,
            Err(why) => return Ok(Err(why)),
        };
        match self.runtime.admit(name, wasm, builtin).await {
            Ok(plugin) => Ok(Ok(plugin)),
            Err(e) => {
                self.inadmissible.lock().expect("lock").insert(key);
                Ok(Err(e.to_string()))
            }
        }
    }
}

/// Where a replica's store delivers what other replicas changed: the data plane, and on
/// plugin and chain changes (or anything missed) this replica's plugin registry.
pub struct Follower {
    pub data: Arc<dyn Revocations>,
    pub sync: Arc<PluginSync>,
}

#[async_trait::async_trait]
impl Revocations for Follower {
    async fn revoke(&self, revocation: Revocation) {
        if matches!(
            revocation,
            Revocation::PluginsChanged | Revocation::Everything
        ) {
            self.sync.wake();
        }
        self.data.revoke(revocation).await;
    }
}
