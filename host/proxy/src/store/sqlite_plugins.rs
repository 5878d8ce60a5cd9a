//! The SQLite side of installed plugins and the chain configuration: kept versions with
//! their bytes, each name's head (serving and previous digest), and the one chain
//! configuration row. Every change of a head and its pruning is one transaction, so a
//! crash leaves either the old state or the new one.

use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use super::{PluginHead, PluginVersionRecord, StoreError};
use crate::clock::now_ms;

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn version(row: &SqliteRow) -> Result<PluginVersionRecord, StoreError> {
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
    pool: &SqlitePool,
    r: &PluginVersionRecord,
    component: &[u8],
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO plugin_versions (name, sha256, component, version, installed_at, \
         signed_by, signature) VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (name, sha256) DO UPDATE SET \
         signed_by = COALESCE(plugin_versions.signed_by, excluded.signed_by), \
         signature = COALESCE(plugin_versions.signature, excluded.signature)",
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

pub async fn versions(
    pool: &SqlitePool,
    name: &str,
) -> Result<Vec<PluginVersionRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT name, sha256, version, installed_at, signed_by, signature \
         FROM plugin_versions WHERE name = ? ORDER BY installed_at DESC, sha256",
    )
    .bind(name)
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    rows.iter().map(version).collect()
}

pub async fn component(
    pool: &SqlitePool,
    name: &str,
    sha256: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    sqlx::query_scalar("SELECT component FROM plugin_versions WHERE name = ? AND sha256 = ?")
        .bind(name)
        .bind(sha256)
        .fetch_optional(pool)
        .await
        .map_err(backend)
}

pub async fn heads(pool: &SqlitePool) -> Result<Vec<PluginHead>, StoreError> {
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

pub async fn set_current(
    pool: &SqlitePool,
    name: &str,
    current: &str,
    builtin: Option<&str>,
    keep: usize,
    protect: Option<&str>,
) -> Result<(), StoreError> {
    // IMMEDIATE: it reads the head, then writes (see `sqlite_audit::append`).
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let old: Option<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT current, previous FROM plugin_heads WHERE name = ?")
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
        "INSERT INTO plugin_heads (name, current, previous, changed_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (name) DO UPDATE SET current = excluded.current, \
         previous = excluded.previous, changed_at = excluded.changed_at",
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
        "DELETE FROM plugin_versions WHERE name = ?1 AND sha256 NOT IN \
         (SELECT sha256 FROM plugin_versions WHERE name = ?1 \
          ORDER BY (sha256 = ?2 OR sha256 = ?3 OR sha256 = ?4) DESC, installed_at DESC \
          LIMIT max(?5, 3))",
    )
    .bind(name)
    .bind(current)
    .bind(&previous)
    .bind(protect)
    .bind(keep)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)
}

pub async fn delete(pool: &SqlitePool, name: &str) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::query("DELETE FROM plugin_versions WHERE name = ?")
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    sqlx::query(
        "INSERT INTO plugin_heads (name, current, previous, changed_at) VALUES (?, NULL, NULL, ?) \
         ON CONFLICT (name) DO UPDATE SET current = NULL, previous = NULL, \
         changed_at = excluded.changed_at",
    )
    .bind(name)
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)
}

pub async fn chain_config(pool: &SqlitePool) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar("SELECT config FROM chain_config WHERE id = 1")
        .fetch_optional(pool)
        .await
        .map_err(backend)
}

pub async fn set_chain_config(pool: &SqlitePool, json: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO chain_config (id, config, changed_at) VALUES (1, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET config = excluded.config, \
         changed_at = excluded.changed_at",
    )
    .bind(json)
    .bind(now_ms())
    .execute(pool)
    .await
    .map_err(backend)?;
    Ok(())
}
