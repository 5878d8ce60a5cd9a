//! The PostgreSQL side of installed plugins and the chain configuration, with the
//! semantics of `sqlite_plugins.rs`: kept versions with their bytes, each name's head,
//! and the one chain configuration row. Every change of a head and its pruning is one
//! transaction; replicas changing one name at once are serialized by a transaction-scoped
//! advisory lock on the name, so neither loses the other's `previous`. Every change of a
//! head or of the chains sends `plugins` on the notification channel in its transaction,
//! so that every replica reloads its plugin registry once the change is visible.

use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};

use super::codec::backend;
use super::postgres_listen::notify;
use super::{PluginHead, PluginVersionRecord, StoreError};
use crate::clock::now_ms;
use crate::revocation::Revocation;

/// The first key of the advisory lock that serializes changes of one plugin name.
const HEAD_LOCK: i32 = 0x5043_0001;

fn version(row: &PgRow) -> Result<PluginVersionRecord, StoreError> {
    Ok(PluginVersionRecord {
        name: row.try_get("name").map_err(backend)?,
        sha256: row.try_get("sha256").map_err(backend)?,
        version: row.try_get("version").map_err(backend)?,
        installed_at: row.try_get("installed_at").map_err(backend)?,
        signed_by: row.try_get("signed_by").map_err(backend)?,
        signature: row.try_get("signature").map_err(backend)?,
    })
}

pub async fn put_version(
    pool: &PgPool,
    r: &PluginVersionRecord,
    component: &[u8],
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO plugin_versions (name, sha256, component, version, installed_at, \
         signed_by, signature) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (name, sha256) DO UPDATE SET \
         signed_by = COALESCE(plugin_versions.signed_by, EXCLUDED.signed_by), \
         signature = COALESCE(plugin_versions.signature, EXCLUDED.signature)",
    )
    .bind(&r.name)
    .bind(&r.sha256)
    .bind(component)
    .bind(&r.version)
    .bind(r.installed_at)
    .bind(&r.signed_by)
    .bind(&r.signature)
    .execute(pool)
    .await
    .map_err(backend)?;
    Ok(())
}

pub async fn versions(pool: &PgPool, name: &str) -> Result<Vec<PluginVersionRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT name, sha256, version, installed_at, signed_by, signature \
         FROM plugin_versions WHERE name = $1 ORDER BY installed_at DESC, sha256",
    )
    .bind(name)
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    rows.iter().map(version).collect()
}

pub async fn component(
    pool: &PgPool,
    name: &str,
    sha256: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    sqlx::query_scalar("SELECT component FROM plugin_versions WHERE name = $1 AND sha256 = $2")
        .bind(name)
        .bind(sha256)
        .fetch_optional(pool)
        .await
        .map_err(backend)
}

pub async fn heads(pool: &PgPool) -> Result<Vec<PluginHead>, StoreError> {
    let rows = sqlx::query("SELECT name, current, previous FROM plugin_heads ORDER BY name")
        .fetch_all(pool)
        .await
        .map_err(backend)?;
    rows.iter()
        .map(|row| {
            Ok(PluginHead {
                name: row.try_get("name").map_err(backend)?,
                current: row.try_get("current").map_err(backend)?,
                previous: row.try_get("previous").map_err(backend)?,
            })
        })
        .collect()
}

/// Serializes the changes of `name`'s head until `tx` ends.
async fn lock_name(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    name: &str,
) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(HEAD_LOCK)
        .bind(name)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}

pub async fn set_current(
    pool: &PgPool,
    name: &str,
    current: &str,
    builtin: Option<&str>,
    keep: usize,
    protect: Option<&str>,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    lock_name(&mut tx, name).await?;
    let old: Option<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT current, previous FROM plugin_heads WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
    let (old_current, old_previous) = match old {
        Some(head) => head,
        None => (builtin.map(str::to_owned), None),
    };
    let previous = match old_current {
        Some(old) if old != current => Some(old),
        _ => old_previous,
    };
    sqlx::query(
        "INSERT INTO plugin_heads (name, current, previous, changed_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET current = EXCLUDED.current, \
         previous = EXCLUDED.previous, changed_at = EXCLUDED.changed_at",
    )
    .bind(name)
    .bind(current)
    .bind(&previous)
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    sqlx::query(
        "DELETE FROM plugin_versions WHERE name = $1 AND sha256 NOT IN \
         (SELECT sha256 FROM plugin_versions WHERE name = $1 \
          ORDER BY COALESCE(sha256 = $2 OR sha256 = $3 OR sha256 = $4, false) DESC, \
          installed_at DESC LIMIT GREATEST($5, 3))",
    )
    .bind(name)
    .bind(current)
    .bind(&previous)
    .bind(protect)
    .bind(keep)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    notify(&mut tx, Revocation::PluginsChanged).await?;
    tx.commit().await.map_err(backend)
}

pub async fn delete(pool: &PgPool, name: &str) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    lock_name(&mut tx, name).await?;
    sqlx::query("DELETE FROM plugin_versions WHERE name = $1")
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    sqlx::query(
        "INSERT INTO plugin_heads (name, current, previous, changed_at) VALUES ($1, NULL, NULL, $2) \
         ON CONFLICT (name) DO UPDATE SET current = NULL, previous = NULL, \
         changed_at = EXCLUDED.changed_at",
    )
    .bind(name)
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    notify(&mut tx, Revocation::PluginsChanged).await?;
    tx.commit().await.map_err(backend)
}

pub async fn chain_config(pool: &PgPool) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar("SELECT config FROM chain_config WHERE id = 1")
        .fetch_optional(pool)
        .await
        .map_err(backend)
}

pub async fn set_chain_config(pool: &PgPool, json: &str) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::query(
        "INSERT INTO chain_config (id, config, changed_at) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO UPDATE SET config = EXCLUDED.config, \
         changed_at = EXCLUDED.changed_at",
    )
    .bind(json)
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    notify(&mut tx, Revocation::PluginsChanged).await?;
    tx.commit().await.map_err(backend)
}
