//! The records the data plane keeps between requests, so that a request on a warm
//! session reads nothing from the store: the run behind a token hash, connectors and
//! actors. Also [`Table`], the keyed map every cache of the data plane is made of.
//!
//! Invariants, so that edits "take effect on the next request":
//! * only a live run is cached, and it leaves the cache the moment it finishes or
//!   expires;
//! * a connector or an actor leaves the cache when the control plane changes it;
//! * a record read before a revocation is never kept after it (`generation`).
//!
//! A record is never patched in place: it is forgotten and read again.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::data::generation::{Generations, Seen};
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

    /// Inserts unless `still_valid`, asked under the table's lock, says no (see
    /// `generation`); answers whether it inserted.
    pub fn insert_if(&self, key: K, value: Arc<V>, still_valid: impl FnOnce() -> bool) -> bool {
        let mut map = self.write();
        let valid = still_valid();
        if valid {
            map.insert(key, value);
        }
        valid
    }

    /// The value under `key`, or `make()` inserted there; answers whether it inserted.
    pub fn get_or_insert(&self, key: K, make: impl FnOnce() -> Arc<V>) -> (Arc<V>, bool) {
        let mut map = self.write();
        if let Some(value) = map.get(&key) {
            return (value.clone(), false);
        }
        let value = make();
        map.insert(key, value.clone());
        (value, true)
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

    /// Every value, for counting what a table holds.
    pub fn values(&self) -> Vec<Arc<V>> {
        self.read().values().cloned().collect()
    }

    pub fn clear(&self) {
        self.write().clear();
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }
}

impl<V> Table<String, V> {
    /// The value under `key`, loading it on a miss and keeping it while `still_valid`;
    /// `None` when `load` finds nothing.
    async fn get_or_load<E>(
        &self,
        key: &str,
        load: impl Future<Output = Result<Option<V>, E>>,
        still_valid: impl FnOnce() -> bool,
    ) -> Result<Option<Arc<V>>, E> {
        if let Some(value) = self.get(key) {
            return Ok(Some(value));
        }
        let Some(value) = load.await? else {
            return Ok(None);
        };
        let value = Arc::new(value);
        self.insert_if(key.to_owned(), value.clone(), still_valid);
        Ok(Some(value))
    }
}

/// The store's records, as the data plane last read them.
pub struct RecordCache {
    generations: Arc<Generations>,
    runs_by_token: Table<[u8; 32], RunRecord>,
    connectors: Table<String, ConnectorRecord>,
    actors: Table<String, ActorRecord>,
}

impl RecordCache {
    /// A cache whose fills check `generations`.
    pub fn new(generations: Arc<Generations>) -> Self {
        Self {
            generations,
            runs_by_token: Table::default(),
            connectors: Table::default(),
            actors: Table::default(),
        }
    }

    /// The run whose token hashes to `token_hash`. A run that is live at `now` is kept
    /// for the next request; a finished or expired one is answered but never kept.
    pub async fn run(
        &self,
        store: &dyn Store,
        token_hash: &[u8; 32],
        now: i64,
        seen: Seen,
    ) -> Result<Option<Arc<RunRecord>>, StoreError> {
        if let Some(run) = self.runs_by_token.get(token_hash) {
            return Ok(Some(run));
        }
        let Some(run) = store.run_by_token_hash(token_hash).await? else {
            return Ok(None);
        };
        let run = Arc::new(run);
        self.keep_run(*token_hash, run.clone(), now, seen);
        Ok(Some(run))
    }

    /// Keeps `run` under `token_hash` when it is live at `now` and no revocation came
    /// since `seen`, taken before the run was read from (or written to) the store.
    pub fn keep_run(&self, token_hash: [u8; 32], run: Arc<RunRecord>, now: i64, seen: Seen) {
        if run.is_live(now) {
            self.runs_by_token
                .insert_if(token_hash, run, || self.generations.unchanged(seen));
        }
    }

    pub async fn connector(
        &self,
        store: &dyn Store,
        id: &str,
        seen: Seen,
    ) -> Result<Option<Arc<ConnectorRecord>>, StoreError> {
        self.connectors
            .get_or_load(id, store.connector(id), || self.generations.unchanged(seen))
            .await
    }

    pub async fn actor(
        &self,
        store: &dyn Store,
        id: &str,
        seen: Seen,
    ) -> Result<Option<Arc<ActorRecord>>, StoreError> {
        self.actors
            .get_or_load(id, store.actor(id), || self.generations.unchanged(seen))
            .await
    }

    pub fn forget_run(&self, run_id: &str) {
        self.runs_by_token.take_where(|_, run| run.id == run_id);
    }

    /// Forgets the runs expired at `now`.
    pub fn forget_expired(&self, now: i64) {
        self.runs_by_token.take_where(|_, run| !run.is_live(now));
    }

    /// How many runs are cached.
    pub fn runs(&self) -> usize {
        self.runs_by_token.len()
    }

    pub fn forget_connector(&self, connector_id: &str) {
        self.connectors.remove(connector_id);
    }

    pub fn forget_actor(&self, actor_id: &str) {
        self.actors.remove(actor_id);
    }

    /// Forgets every record: each is read from the store again on its next use.
    pub fn forget_all(&self) {
        self.runs_by_token.clear();
        self.connectors.clear();
        self.actors.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::generation::Kind;

    /// A run handed over by `POST /runs` is kept only while live and when no revocation
    /// came since the versions taken before it was written.
    #[test]
    fn a_run_is_kept_only_when_live_and_unrevoked() {
        let generations = Arc::new(Generations::default());
        let cache = RecordCache::new(generations.clone());
        let run = |id: &str, expires_at| {
            Arc::new(RunRecord {
                id: id.into(),
                actor: "a".into(),
                user: "u".into(),
                input: serde_json::Value::Null,
                status: crate::store::RunStatus::Running,
                created_at: 0,
                finished_at: None,
                expires_at,
                connector_fields: None,
            })
        };
        let seen = generations.seen();
        cache.keep_run([1; 32], run("expired", 10), 10, seen);
        assert_eq!(cache.runs(), 0);
        generations.bump(Kind::Runs);
        cache.keep_run([2; 32], run("raced", 100), 10, seen);
        assert_eq!(cache.runs(), 0);
        cache.keep_run([3; 32], run("kept", 100), 10, generations.seen());
        assert_eq!(cache.runs(), 1);
        assert!(cache.runs_by_token.get(&[3; 32]).is_some());
    }

    /// Issue 10, defect 12: a value read before a revocation and kept after it is not
    /// kept; one read after it is.
    #[test]
    fn a_fill_that_raced_a_revocation_is_dropped() {
        let generations = Generations::default();
        let table: Table<String, u32> = Table::default();
        let seen = generations.seen();
        generations.bump(Kind::Connectors);
        let stale = table.insert_if("c".into(), Arc::new(1), || generations.unchanged(seen));
        assert!(!stale && table.get("c").is_none());
        let seen = generations.seen();
        assert!(table.insert_if("c".into(), Arc::new(2), || generations.unchanged(seen)));
        assert_eq!(table.get("c").as_deref(), Some(&2));
    }
}
