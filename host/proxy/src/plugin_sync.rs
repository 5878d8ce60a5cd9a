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

#[cfg(test)]
mod tests {
    use portcullis_runtime::{ChainEntry, InitialPlugin, RuntimeConfig, TrustPolicy};

    use super::*;
    use crate::plugin_store::sha256;
    use crate::store::{SqliteStore, Store};

    /// `connector-access` with a custom section appended: valid, with another digest.
    fn variant(tag: u8) -> Vec<u8> {
        let mut bytes = portcullis_builtins::builtin("connector-access")
            .unwrap()
            .wasm
            .to_vec();
        bytes.extend([0, 7, 5]);
        bytes.extend_from_slice(b"tests");
        bytes.push(tag);
        bytes
    }

    /// A replica of `store` that loaded the built-ins, under `trust`.
    async fn replica(store: Arc<dyn Store>, trust: TrustPolicy) -> Arc<PluginSync> {
        let runtime = tokio::task::spawn_blocking(|| {
            let plugins: Vec<InitialPlugin> = portcullis_builtins::BUILTINS
                .iter()
                .map(|b| InitialPlugin {
                    name: b.name,
                    wasm: b.wasm,
                    builtin: true,
                })
                .collect();
            Runtime::new(RuntimeConfig::default(), &plugins).unwrap()
        })
        .await
        .unwrap();
        PluginSync::new(
            Arc::new(runtime),
            Arc::new(PluginStore::new(store, trust, 5)),
        )
    }

    fn serving(sync: &PluginSync, name: &str) -> Option<String> {
        sync.runtime.plugin(name).map(|p| p.sha256)
    }

    /// What is served follows the store; what this replica would refuse to install is
    /// refused here too and its name keeps serving; nothing changed costs nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_registry_follows_the_store_as_far_as_this_replica_may() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("db")).await.unwrap());
        let permissive = replica(store.clone(), TrustPolicy::new(false, &[]).unwrap()).await;
        let strict = replica(store.clone(), TrustPolicy::new(true, &[]).unwrap()).await;
        for sync in [&permissive, &strict] {
            assert_eq!(sync.reload().await.unwrap(), Reloaded::default());
        }
        let builtin = serving(&permissive, "connector-access").unwrap();

        // Another replica installs an unsigned version and a new name, and changes the chains.
        let writer = PluginStore::new(store.clone(), TrustPolicy::new(false, &[]).unwrap(), 5);
        let installed = variant(1);
        let provenance = writer.trust().verify(&installed, None, None).unwrap();
        for name in ["connector-access", "extra-access"] {
            writer
                .keep(name, "0.1.0", &installed, &provenance, None)
                .await
                .unwrap();
            writer
                .made_current(name, &provenance.sha256, None)
                .await
                .unwrap();
        }
        let mut chains = permissive.runtime.chains();
        chains.access.push(ChainEntry::Name("extra-access".into()));
        writer.save_chains(&chains).await.unwrap();

        let reloaded = permissive.reload().await.unwrap();
        assert_eq!(reloaded.loaded, ["connector-access", "extra-access"]);
        assert!(reloaded.chains && reloaded.refused.is_empty());
        assert_eq!(
            serving(&permissive, "connector-access"),
            Some(sha256(&installed))
        );
        assert_eq!(permissive.runtime.chains(), chains);

        // Unsigned versions may not serve where signatures are required: the chains need
        // `extra-access`, so nothing of the reload is applied.
        let Err(ReloadError::Unresolved(_)) = strict.reload().await else {
            panic!("the chains name a plugin this replica refused");
        };
        assert_eq!(serving(&strict, "connector-access"), Some(builtin.clone()));
        assert_eq!(serving(&strict, "extra-access"), None);

        // The chains drop it again and it is deleted: the strict replica still refuses the
        // unsigned `connector-access` and keeps its built-in.
        chains
            .access
            .retain(|entry| *entry != ChainEntry::Name("extra-access".into()));
        writer.save_chains(&chains).await.unwrap();
        writer.deleted("extra-access").await.unwrap();
        let reloaded = strict.reload().await.unwrap();
        assert!(
            !reloaded.changed(),
            "the chains are back to its own: {reloaded:?}"
        );
        assert_eq!(reloaded.refused.len(), 1, "{reloaded:?}");
        assert_eq!(serving(&strict, "connector-access"), Some(builtin));
        let reloaded = permissive.reload().await.unwrap();
        assert_eq!(reloaded.removed, ["extra-access"]);

        // A notification wakes a reload and reaches the data plane.
        writer
            .made_current(
                "connector-access",
                &sha256(
                    portcullis_builtins::builtin("connector-access")
                        .unwrap()
                        .wasm,
                ),
                None,
            )
            .await
            .unwrap();
        let heard = Arc::new(Heard::default());
        let follower = Follower {
            data: heard.clone(),
            sync: permissive.clone(),
        };
        follower.revoke(Revocation::PluginsChanged).await;
        assert_eq!(*heard.0.lock().unwrap(), [Revocation::PluginsChanged]);
        for _ in 0..200 {
            if serving(&permissive, "connector-access") != Some(sha256(&installed)) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the notification did not reload the registry");
    }

    #[derive(Default)]
    struct Heard(Mutex<Vec<Revocation>>);

    #[async_trait::async_trait]
    impl Revocations for Heard {
        async fn revoke(&self, revocation: Revocation) {
            self.0.lock().unwrap().push(revocation);
        }
    }
}
