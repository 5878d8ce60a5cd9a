//! Keeps the plugins operators install, and the chain configuration, in the store, so
//! that every kept version and the chains survive a restart.
//!
//! * **Versions.** Every installed component is kept in the store with its digest, its
//!   install time and its signer (bounded by `plugins.keep_versions` per name; the
//!   serving, the previous and a shadow candidate's version are never forgotten). Each
//!   name has a head: the digest serving and the one before it. A built-in is a version
//!   too (its bytes are in the binary): rolling back to it records its digest.
//! * **Checked at load.** At start the built-ins load first, then each head's stored
//!   version over its built-in. The bytes must hash to the digest they are kept under
//!   and, with `plugins.require_signature`, carry a signature by a trusted key; a version
//!   that fails either, or that admission refuses, is reported and skipped (its built-in,
//!   if any, serves) instead of stopping the start.
//! * **Chains.** The configuration file's `[plugins.chains]` seeds an empty store only;
//!   from then on `PUT /admin/v1/chains` changes them.
//! * **Migration.** Plugins an older Portcullis kept as files in `<data-dir>/plugins`
//!   (`<name>.wasm`, `<name>.previous.wasm`) are moved in once; the directory is then
//!   renamed `plugins.migrated`.
//!
//! Admin changes hold [`PluginStore::lock`] across the runtime's swap and the matching
//! store write, so two changes never interleave.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::sync::Arc;

use cap_std::fs::Dir;
use portcullis_runtime::{ChainConfig, InitialPlugin, Provenance, TrustPolicy};
use sha2::{Digest, Sha256};

use crate::clock::now_ms;
use crate::store::{PluginVersionRecord, Store, StoreError};

const LEGACY_DIRECTORY: &str = "plugins";
const MIGRATED_DIRECTORY: &str = "plugins.migrated";

#[derive(Debug, thiserror::Error)]
pub enum PluginStoreError {
    #[error("the installed plugins could not be read or written: {0}")]
    Store(#[from] StoreError),
    #[error("migrating <data-dir>/plugins into the store failed at {file}: {detail}")]
    Migration { file: String, detail: String },
    #[error(
        "the stored chain configuration is not readable ({0}); set it again with PUT /admin/v1/chains"
    )]
    Chains(String),
}

/// A component to load at start, and where it came from.
pub struct StartPlugin {
    pub name: String,
    pub wasm: Vec<u8>,
    pub builtin: bool,
}

impl StartPlugin {
    pub fn initial(&self) -> InitialPlugin<'_> {
        InitialPlugin {
            name: &self.name,
            wasm: &self.wasm,
            builtin: self.builtin,
        }
    }
}

/// One kept version, as `GET /plugins/{name}/versions` lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VersionView {
    pub sha256: String,
    /// The version the component reports.
    pub version: String,
    /// Unix milliseconds; `None` for the built-in.
    pub installed_at: Option<i64>,
    pub signed_by: Option<String>,
    pub current: bool,
    /// Where `POST …/rollback` without a body goes.
    pub previous: bool,
    pub builtin: bool,
    /// The chains that name the plugin, for the version serving.
    pub chains: Vec<&'static str>,
}

pub struct PluginStore {
    store: Arc<dyn Store>,
    trust: TrustPolicy,
    keep: usize,
    /// Held across an admin change of plugins or chains: the runtime's swap and the
    /// store write.
    writer: tokio::sync::Mutex<()>,
}

/// Hex SHA-256.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The built-in of `name` and its digest.
pub fn builtin(name: &str) -> Option<(&'static [u8], String)> {
    portcullis_builtins::builtin(name).map(|b| (b.wasm, sha256(b.wasm)))
}

impl PluginStore {
    pub fn new(store: Arc<dyn Store>, trust: TrustPolicy, keep: usize) -> Self {
        Self {
            store,
            trust,
            keep,
            writer: tokio::sync::Mutex::new(()),
        }
    }

    pub fn trust(&self) -> &TrustPolicy {
        &self.trust
    }

    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writer.lock().await
    }

    /// Moves the plugin files of an older Portcullis into the store, once.
    pub async fn migrate_files(&self, data_dir: &Dir) -> Result<usize, PluginStoreError> {
        let failed = |file: &str| {
            let file = format!("{LEGACY_DIRECTORY}/{file}");
            move |e: std::io::Error| PluginStoreError::Migration {
                file,
                detail: e.to_string(),
            }
        };
        let dir = match data_dir.open_dir(LEGACY_DIRECTORY) {
            Ok(dir) => dir,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(failed("")(e)),
        };
        let mut names = Vec::new();
        for entry in dir.entries().map_err(failed(""))? {
            let file = entry.map_err(failed(""))?.file_name();
            let file = file.to_string_lossy();
            if let Some(name) = file.strip_suffix(".wasm")
                && !name.ends_with(".previous")
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        for name in &names {
            for file in [format!("{name}.previous.wasm"), format!("{name}.wasm")] {
                let bytes = match dir.read(&file) {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(failed(&file)(e)),
                };
                let digest = sha256(&bytes);
                let record = PluginVersionRecord {
                    name: name.clone(),
                    sha256: digest.clone(),
                    version: "unknown".to_owned(),
                    installed_at: now_ms(),
                    signed_by: None,
                    signature: None,
                };
                self.store.put_plugin_version(&record, &bytes).await?;
                self.made_current(name, &digest, None).await?;
            }
        }
        data_dir
            .rename(LEGACY_DIRECTORY, data_dir, MIGRATED_DIRECTORY)
            .map_err(failed(""))?;
        tracing::info!(
            plugins = names.len(),
            "moved the installed plugins of <data-dir>/plugins into the store; the files \
             are kept in <data-dir>/plugins.migrated"
        );
        Ok(names.len())
    }

    /// The chain configuration to start with: the stored one, or `seed` (the
    /// configuration file's), which is then stored.
    pub async fn chains(&self, seed: &ChainConfig) -> Result<ChainConfig, PluginStoreError> {
        match self.stored_chains().await? {
            Some(chains) => Ok(chains),
            None => {
                self.save_chains(seed).await?;
                Ok(seed.clone())
            }
        }
    }

    /// The stored chain configuration, once one was saved.
    pub async fn stored_chains(&self) -> Result<Option<ChainConfig>, PluginStoreError> {
        self.store
            .chain_config()
            .await?
            .map(|json| {
                serde_json::from_str(&json).map_err(|e| PluginStoreError::Chains(e.to_string()))
            })
            .transpose()
    }

    pub async fn save_chains(&self, chains: &ChainConfig) -> Result<(), StoreError> {
        let json = serde_json::to_string(chains).expect("a chain configuration serializes");
        self.store.set_chain_config(&json).await
    }

    /// The digest each name serves as the store says: each built-in's (but deleted
    /// ones), replaced by its head's current version where it has one.
    pub async fn serving(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let heads = self.store.plugin_heads().await?;
        let mut serving: BTreeMap<String, String> = portcullis_builtins::BUILTINS
            .iter()
            .map(|b| (b.name.to_owned(), sha256(b.wasm)))
            .collect();
        for head in heads {
            match head.current {
                Some(current) => serving.insert(head.name, current),
                None => serving.remove(&head.name),
            };
        }
        Ok(serving)
    }

    /// What to load at start: each built-in (but deleted ones), then over it the stored
    /// version its head names; and the versions skipped, with why.
    pub async fn start_plugins(&self) -> Result<(Vec<StartPlugin>, Vec<String>), StoreError> {
        let serving = self.serving().await?;
        let mut plugins: Vec<StartPlugin> = portcullis_builtins::BUILTINS
            .iter()
            .filter(|b| serving.contains_key(b.name))
            .map(|b| StartPlugin {
                name: b.name.to_owned(),
                wasm: b.wasm.to_vec(),
                builtin: true,
            })
            .collect();
        let mut skipped = Vec::new();
        for (name, current) in &serving {
            if builtin(name).is_some_and(|(_, digest)| digest == *current) {
                continue;
            }
            match self.checked(name, current).await? {
                Ok(wasm) => plugins.push(StartPlugin {
                    name: name.clone(),
                    wasm,
                    builtin: false,
                }),
                Err(why) => skipped.push(format!(
                    "plugin `{name}` version {current} was skipped: {why}"
                )),
            }
        }
        Ok((plugins, skipped))
    }

    /// The bytes of version `digest` of `name` if they may serve, and whether they are
    /// the built-in's: the built-in, or a kept version that passes the checks of a start
    /// (see [`PluginStore::start_plugins`]); otherwise why not.
    pub async fn loadable(
        &self,
        name: &str,
        digest: &str,
    ) -> Result<Result<(Vec<u8>, bool), String>, StoreError> {
        if let Some((wasm, builtin_digest)) = builtin(name)
            && builtin_digest == digest
        {
            return Ok(Ok((wasm.to_vec(), true)));
        }
        Ok(self.checked(name, digest).await?.map(|wasm| (wasm, false)))
    }

    /// The stored bytes of version `sha256` of `name`, if they are sound: present,
    /// hashing to their digest, and signed as the trust policy requires.
    async fn checked(
        &self,
        name: &str,
        digest: &str,
    ) -> Result<Result<Vec<u8>, String>, StoreError> {
        let Some(wasm) = self.store.plugin_component(name, digest).await? else {
            return Ok(Err("the store has no such version".to_owned()));
        };
        if sha256(&wasm) != digest {
            return Ok(Err(
                "its bytes do not hash to its digest: the stored component was changed".to_owned(),
            ));
        }
        let record = self
            .store
            .plugin_versions(name)
            .await?
            .into_iter()
            .find(|v| v.sha256 == digest);
        let signature = record.and_then(|r| r.signature);
        if let Err(rejection) = self.trust.verify(&wasm, None, signature.as_deref()) {
            return Ok(Err(rejection.to_string()));
        }
        Ok(Ok(wasm))
    }

    /// The bytes of version `digest` of `name` (a kept version or the built-in), and
    /// whether they are the built-in's.
    pub async fn component(
        &self,
        name: &str,
        digest: &str,
    ) -> Result<Option<(Vec<u8>, bool)>, StoreError> {
        if let Some((wasm, builtin_digest)) = builtin(name)
            && builtin_digest == digest
        {
            return Ok(Some((wasm.to_vec(), true)));
        }
        Ok(self
            .store
            .plugin_component(name, digest)
            .await?
            .map(|wasm| (wasm, false)))
    }

    /// The digest a rollback without a target returns to.
    pub async fn previous(&self, name: &str) -> Result<Option<String>, StoreError> {
        let heads = self.store.plugin_heads().await?;
        Ok(heads
            .into_iter()
            .find(|h| h.name == name)
            .and_then(|h| h.previous))
    }

    /// The signer recorded for version `digest` of `name`.
    pub async fn signer(&self, name: &str, digest: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .store
            .plugin_versions(name)
            .await?
            .into_iter()
            .find(|v| v.sha256 == digest)
            .and_then(|v| v.signed_by))
    }

    /// Keeps `wasm` as a version of `name` without making it serve (a shadow candidate,
    /// or the first half of an install).
    pub async fn keep(
        &self,
        name: &str,
        version: &str,
        wasm: &[u8],
        provenance: &Provenance,
        signature: Option<&str>,
    ) -> Result<(), StoreError> {
        let record = PluginVersionRecord {
            name: name.to_owned(),
            sha256: provenance.sha256.clone(),
            version: version.to_owned(),
            installed_at: now_ms(),
            signed_by: provenance.signed_by.clone(),
            signature: provenance
                .signed_by
                .as_ref()
                .and(signature.map(str::to_owned)),
        };
        self.store.put_plugin_version(&record, wasm).await
    }

    /// Records that version `digest` now serves as `name`.
    pub async fn made_current(
        &self,
        name: &str,
        digest: &str,
        protect: Option<&str>,
    ) -> Result<(), StoreError> {
        let builtin = builtin(name).map(|(_, digest)| digest);
        self.store
            .set_plugin_current(name, digest, builtin.as_deref(), self.keep, protect)
            .await
    }

    pub async fn deleted(&self, name: &str) -> Result<(), StoreError> {
        self.store.delete_plugin(name).await
    }

    /// Every kept version of `name`, the built-in first if there is one.
    pub async fn versions(
        &self,
        name: &str,
        current: Option<&str>,
        builtin_version: Option<&str>,
        chains: &[&'static str],
    ) -> Result<Vec<VersionView>, StoreError> {
        let previous = self.previous(name).await?;
        let view = |sha256: String, version: String, installed_at, signed_by, builtin| {
            let is_current = current == Some(sha256.as_str());
            VersionView {
                current: is_current,
                previous: previous.as_deref() == Some(sha256.as_str()),
                chains: if is_current {
                    chains.to_vec()
                } else {
                    Vec::new()
                },
                sha256,
                version,
                installed_at,
                signed_by,
                builtin,
            }
        };
        let mut versions = Vec::new();
        if let Some((_, digest)) = builtin(name) {
            let version = builtin_version.unwrap_or("built-in").to_owned();
            versions.push(view(digest, version, None, None, true));
        }
        for v in self.store.plugin_versions(name).await? {
            versions.push(view(
                v.sha256,
                v.version,
                Some(v.installed_at),
                v.signed_by,
                false,
            ));
        }
        Ok(versions)
    }
}
