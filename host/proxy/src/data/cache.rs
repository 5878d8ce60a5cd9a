//! The records the data plane keeps between requests, so that a request on a warm
//! session reads nothing from the store: the run behind a token hash, connectors and
//! actors. Also [`Table`], the keyed map every cache of the data plane is made of.
//!
//! Invariants, so that edits "take effect on the next request":
//! * only a live run is cached, and it leaves the cache the moment it finishes;
//! * a connector or an actor leaves the cache when the control plane changes it.
//!
//! A record is never patched in place: it is forgotten and read again.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::store::{ActorRecord, ConnectorRecord, RunRecord, Store, StoreError};

/// A map of shared values behind a lock that a panic elsewhere cannot poison for good.
pub struct Table<K, V> {
    map: RwLock<HashMap<K, Arc<V>>>,
}

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V> Table<K, V> {
    fn read(&self) -> RwLockReadGuard<'_, HashMap<K, Arc<V>>> {
        self.map
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<K, Arc<V>>> {
        self.map
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get<Q>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.read().get(key).cloned()
    }

    pub fn insert(&self, key: K, value: Arc<V>) {
        self.write().insert(key, value);
    }

    pub fn remove<Q>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.write().remove(key)
    }

    /// Removes and returns every value `pick` selects.
    pub fn take_where(&self, pick: impl Fn(&K, &V) -> bool) -> Vec<Arc<V>> {
        let mut taken = Vec::new();
        self.write().retain(|key, value| {
            let pick = pick(key, value);
            if pick {
                taken.push(value.clone());
            }
            !pick
        });
        taken
    }

    pub fn clear(&self) {
        self.write().clear();
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }
}

impl<V> Table<String, V> {
    /// The value under `key`, loading and keeping it on a miss; `None` when `load` finds
    /// nothing.
    async fn get_or_load<E>(
        &self,
        key: &str,
        load: impl Future<Output = Result<Option<V>, E>>,
    ) -> Result<Option<Arc<V>>, E> {
        if let Some(value) = self.get(key) {
            return Ok(Some(value));
        }
        let Some(value) = load.await? else {
            return Ok(None);
        };
        let value = Arc::new(value);
        self.insert(key.to_owned(), value.clone());
        Ok(Some(value))
    }
}

/// The store's records, as the data plane last read them.
#[derive(Default)]
pub struct RecordCache {
    runs_by_token: Table<[u8; 32], RunRecord>,
    connectors: Table<String, ConnectorRecord>,
    actors: Table<String, ActorRecord>,
}

impl RecordCache {
    /// The run whose token hashes to `token_hash`. A run that is live at `now` is kept
    /// for the next request; a finished or expired one is answered but never kept.
    pub async fn run(
        &self,
        store: &dyn Store,
        token_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<Arc<RunRecord>>, StoreError> {
        if let Some(run) = self.runs_by_token.get(token_hash) {
            return Ok(Some(run));
        }
        let Some(run) = store.run_by_token_hash(token_hash).await? else {
            return Ok(None);
        };
        let run = Arc::new(run);
        if run.is_live(now) {
            self.runs_by_token.insert(*token_hash, run.clone());
        }
        Ok(Some(run))
    }

    pub async fn connector(
        &self,
        store: &dyn Store,
        id: &str,
    ) -> Result<Option<Arc<ConnectorRecord>>, StoreError> {
        self.connectors.get_or_load(id, store.connector(id)).await
    }

    pub async fn actor(
        &self,
        store: &dyn Store,
        id: &str,
    ) -> Result<Option<Arc<ActorRecord>>, StoreError> {
        self.actors.get_or_load(id, store.actor(id)).await
    }

    pub fn forget_run(&self, run_id: &str) {
        self.runs_by_token.take_where(|_, run| run.id == run_id);
    }

    pub fn forget_connector(&self, connector_id: &str) {
        self.connectors.remove(connector_id);
    }

    pub fn forget_actor(&self, actor_id: &str) {
        self.actors.remove(actor_id);
    }
}
