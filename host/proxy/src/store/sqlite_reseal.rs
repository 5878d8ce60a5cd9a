//! [`super::Store::reseal_all`] on the embedded SQLite database: every sealed value, the
//! vault's key check, each connector's credential and the OAuth grants, pending
//! authorizations and registrations (migration 0003), rewritten in one `BEGIN IMMEDIATE`
//! transaction, so a rotation or the 0.1 upgrade changes all of them or none.
//!
//! Each value is handed over with the [`Binding`] it was sealed for: a connector's
//! credential, grant and pending authorization are bound to the connector and its owner,
//! a registration to its issuer. A new table with a sealed column must be listed in
//! [`SEALED`], or rotating the master key would leave its values unopenable.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use super::codec::backend;
use super::{Reseal, SealedValue, StoreError};
use crate::vault::binding::Binding;

/// The `meta` key of the vault's key check.
pub const KEY_CHECK: &str = "vault_key_check";

/// A table that holds sealed values.
struct Sealed {
    /// Selects `row_id`, what [`Self::binding`] reads, and the sealed `columns`.
    select: &'static str,
    /// Sets the sealed `columns`, in their order, of the row `rowid = ?`.
    update: &'static str,
    /// NULL stays NULL.
    columns: &'static [&'static str],
    binding: for<'r> fn(&'r SqliteRow) -> Result<Binding<'r>, sqlx::Error>,
}

const SEALED: [Sealed; 4] = [
    Sealed {
        select: "SELECT rowid AS row_id, id AS bound_id, owner AS bound_owner, sealed_secret \
                 FROM connectors",
        update: "UPDATE connectors SET sealed_secret = ? WHERE rowid = ?",
        columns: &["sealed_secret"],
        binding: connector,
    },
    Sealed {
        select: "SELECT t.rowid AS row_id, t.connector_id AS bound_id, c.owner AS bound_owner, \
                 t.sealed_client_secret, t.sealed_access_token, t.sealed_refresh_token \
                 FROM oauth_grants t JOIN connectors c ON c.id = t.connector_id",
        update: "UPDATE oauth_grants SET sealed_client_secret = ?, sealed_access_token = ?, \
                 sealed_refresh_token = ? WHERE rowid = ?",
        columns: &[
            "sealed_client_secret",
            "sealed_access_token",
            "sealed_refresh_token",
        ],
        binding: connector,
    },
    Sealed {
        select: "SELECT t.rowid AS row_id, t.connector_id AS bound_id, c.owner AS bound_owner, \
                 t.sealed_client_secret, t.sealed_verifier \
                 FROM oauth_pending t JOIN connectors c ON c.id = t.connector_id",
        update: "UPDATE oauth_pending SET sealed_client_secret = ?, sealed_verifier = ? \
                 WHERE rowid = ?",
        columns: &["sealed_client_secret", "sealed_verifier"],
        binding: connector,
    },
    Sealed {
        select: "SELECT rowid AS row_id, issuer AS bound_issuer, sealed_client_secret, \
                 sealed_response FROM oauth_registrations",
        update: "UPDATE oauth_registrations SET sealed_client_secret = ?, sealed_response = ? \
                 WHERE rowid = ?",
        columns: &["sealed_client_secret", "sealed_response"],
        binding: registration,
    },
];

fn connector(row: &SqliteRow) -> Result<Binding<'_>, sqlx::Error> {
    Ok(Binding::Connector {
        id: row.try_get("bound_id")?,
        owner: row.try_get("bound_owner")?,
    })
}

fn registration(row: &SqliteRow) -> Result<Binding<'_>, sqlx::Error> {
    Ok(Binding::Registration {
        issuer: row.try_get("bound_issuer")?,
    })
}

fn failed(e: String) -> StoreError {
    StoreError::Backend(format!("a sealed value could not be rewritten: {e}"))
}

/// Rewrites every sealed value with what `reseal` makes of it; answers how many values it
/// rewrote, the key check aside.
pub async fn reseal_all(pool: &SqlitePool, reseal: &Reseal<'_>) -> Result<usize, StoreError> {
    // IMMEDIATE: the write lock from the start, so no other writer slips in between
    // the reads and the writes.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let check: Option<Vec<u8>> = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
        .bind(KEY_CHECK)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
    if let Some(check) = check {
        let resealed = reseal(SealedValue {
            binding: Binding::KeyCheck,
            sealed: &check,
        })
        .map_err(failed)?;
        sqlx::query("UPDATE meta SET value = ? WHERE key = ?")
            .bind(resealed)
            .bind(KEY_CHECK)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    let mut count = 0;
    for table in &SEALED {
        count += reseal_table(&mut tx, reseal, table).await?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(count)
}

async fn reseal_table(
    tx: &mut Transaction<'_, Sqlite>,
    reseal: &Reseal<'_>,
    sealed: &Sealed,
) -> Result<usize, StoreError> {
    let rows = sqlx::query(sealed.select)
        .fetch_all(&mut **tx)
        .await
        .map_err(backend)?;
    let mut count = 0;
    for row in &rows {
        let binding = (sealed.binding)(row).map_err(backend)?;
        let mut query = sqlx::query(sealed.update);
        for column in sealed.columns {
            let value: Option<Vec<u8>> = row.try_get(*column).map_err(backend)?;
            let resealed = value
                .map(|value| {
                    reseal(SealedValue {
                        binding,
                        sealed: &value,
                    })
                })
                .transpose()
                .map_err(failed)?;
            count += usize::from(resealed.is_some());
            query = query.bind(resealed);
        }
        let row_id: i64 = row.try_get("row_id").map_err(backend)?;
        query
            .bind(row_id)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    Ok(count)
}
