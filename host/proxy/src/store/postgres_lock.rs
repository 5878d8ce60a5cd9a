//! OAuth refresh locks that replicas share: one PostgreSQL advisory lock per connector,
//! scoped to a transaction that lives exactly as long as the [`RefreshGuard`].
//!
//! A refresh on any replica holds `pg_advisory_xact_lock(REFRESH_LOCK, hashtext(id))`
//! (a hash collision only serializes two connectors' refreshes, it never lets two
//! refreshes of one connector overlap); whoever takes it next re-reads the grant
//! (`oauth::tokens`), finds the tokens rotated, and uses them instead of redeeming the
//! spent refresh token. Within one replica the in-process lock is taken first, so one
//! connection per connector and replica waits in the database, not one per request.
//!
//! The transaction is owned by a task of its own, never by the caller's future: a request
//! cancelled while waiting for the lock cannot leave a pooled connection holding it. The
//! task rolls back (releasing the lock) when the guard is dropped or its caller is gone.
//! If the database cannot give the lock within 30 s (`lock_timeout`; a token request
//! takes far less), the refresh goes ahead under the
//! in-process lock only, with a warning: the grant's compare-and-swap on its generation
//! still keeps one set of tokens, and a database that cannot lock cannot store them
//! either.

use std::sync::Arc;

use sqlx::postgres::PgPool;
use tokio::sync::oneshot;

use crate::oauth::lock::{InProcessLocks, RefreshGuard, RefreshLocks};

/// The first key of the advisory lock of a connector's refresh (the plugin heads use
/// `0x5043_0001`).
const REFRESH_LOCK: i32 = 0x5043_0002;

pub struct PgRefreshLocks {
    pool: PgPool,
    local: InProcessLocks,
}

impl PgRefreshLocks {
    pub fn new(pool: PgPool) -> Arc<Self> {
        Arc::new(Self {
            pool,
            local: InProcessLocks::default(),
        })
    }
}

/// Both locks; dropping it ends the transaction, then frees the in-process lock.
struct Held {
    _release: oneshot::Sender<()>,
    _local: RefreshGuard,
}

#[async_trait::async_trait]
impl RefreshLocks for PgRefreshLocks {
    async fn lock(&self, connector_id: &str) -> RefreshGuard {
        let local = self.local.lock(connector_id).await;
        let (locked, taken) = oneshot::channel();
        let (release, released) = oneshot::channel::<()>();
        let (pool, id) = (self.pool.clone(), connector_id.to_owned());
        tokio::spawn(async move {
            let tx = match lock_in_transaction(&pool, &id).await {
                Ok(tx) => tx,
                Err(e) => {
                    let _ = locked.send(Err(e));
                    return;
                }
            };
            if locked.send(Ok(())).is_ok() {
                // Resolves when the guard is dropped.
                let _ = released.await;
            }
            let _ = tx.rollback().await;
        });
        match taken.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(
                connector = %connector_id,
                error = %e,
                "the database did not give the refresh lock; refreshing under this \
                 replica's lock only"
            ),
            Err(_) => tracing::warn!(
                connector = %connector_id,
                "the refresh lock task ended; refreshing under this replica's lock only"
            ),
        }
        Box::new(Held {
            _release: release,
            _local: local,
        })
    }
}

async fn lock_in_transaction(
    pool: &PgPool,
    connector_id: &str,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL lock_timeout = '30s'")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(REFRESH_LOCK)
        .bind(connector_id)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}
