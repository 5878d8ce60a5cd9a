//! The seam that makes a refresh single-flight: one lock per connector, held while its
//! tokens are refreshed.
//!
//! [`RefreshLocks`] is storage-independent on purpose. [`InProcessLocks`] serialises the
//! refreshes of one process; a store shared by several replicas implements the same trait
//! with a lock the replicas share (`store::postgres_lock`: a PostgreSQL advisory lock held
//! for the guard's life). `Store::refresh_locks` gives the one that fits the store.
//! The lock alone is not the whole rule: whoever takes it re-reads the grant first, since
//! another holder may have refreshed it already (see `tokens`), and writes the new tokens
//! with a compare-and-swap on the grant's generation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Held while one connector's tokens are refreshed; dropping it releases the lock.
pub type RefreshGuard = Box<dyn Send>;

#[async_trait::async_trait]
pub trait RefreshLocks: Send + Sync {
    /// Waits until no one else refreshes `connector_id`'s tokens, then holds the lock.
    async fn lock(&self, connector_id: &str) -> RefreshGuard;
}

/// A `tokio` mutex per connector, created on first use and dropped with its last user.
#[derive(Default)]
pub struct InProcessLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

#[async_trait::async_trait]
impl RefreshLocks for InProcessLocks {
    async fn lock(&self, connector_id: &str) -> RefreshGuard {
        let mutex = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            // Forget the locks nobody holds any more, so the map stays as small as the
            // number of refreshes under way.
            locks.retain(|_, lock| lock.strong_count() > 0);
            match locks.get(connector_id).and_then(Weak::upgrade) {
                Some(mutex) => mutex,
                None => {
                    let mutex = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(connector_id.to_owned(), Arc::downgrade(&mutex));
                    mutex
                }
            }
        };
        Box::new(mutex.lock_owned().await)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_holder_per_connector_and_none_across() {
        let locks = Arc::new(InProcessLocks::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (locks, inside, most) = (locks.clone(), inside.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let _guard = locks.lock("conn_a").await;
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);

        let a = locks.lock("conn_a").await;
        let b = tokio::time::timeout(Duration::from_secs(1), locks.lock("conn_b")).await;
        assert!(b.is_ok(), "another connector's lock is independent");
        drop(a);
        assert!(locks.locks.lock().unwrap().len() <= 2);
    }
}
