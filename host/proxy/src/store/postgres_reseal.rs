//! [`super::Store::reseal_all`] on PostgreSQL: the same tables and bindings as
//! `sqlite_reseal.rs`, rewritten in one transaction that first locks every table holding
//! a sealed value against writes (`SHARE ROW EXCLUSIVE`), so no replica slips a value
//! sealed under the old key in between. Rows are addressed by `ctid`, stable while the
//! lock is held. Every replica holds the master key in memory: stop them all first.

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::codec::backend;
use super::sqlite_reseal::KEY_CHECK;
use super::{Reseal, SealedValue, StoreError};
use crate::vault::binding::Binding;

/// A table that holds sealed values.
struct Sealed {
    /// Selects `row_id` (the `ctid` as text), what [`Self::binding`] reads, and the sealed
    /// `columns`.
    select: &'static str,
    /// Sets the sealed `columns`, in their order (`$1`…), of the row whose `ctid` is last.
    update: &'static str,
    /// NULL stays NULL.
    columns: &'static [&'static str],
    binding: for<'r> fn(&'r PgRow) -> Result<Binding<'r>, sqlx::Error>,
}

const SEALED: [Sealed; 4] = [
    Sealed {
        select: "SELECT ctid::text AS row_id, id AS bound_id, owner AS bound_owner, \
                 sealed_secret FROM connectors",
        update: "UPDATE connectors SET sealed_secret = $1 WHERE ctid = $2::tid",
        columns: &["sealed_secret"],
        binding: connector,
    },
    Sealed {
        select: "SELECT t.ctid::text AS row_id, t.connector_id AS bound_id, \
                 c.owner AS bound_owner, t.sealed_client_secret, t.sealed_access_token, \
                 t.sealed_refresh_token \
                 FROM oauth_grants t JOIN connectors c ON c.id = t.connector_id",
        update: "UPDATE oauth_grants SET sealed_client_secret = $1, sealed_access_token = $2, \
                 sealed_refresh_token = $3 WHERE ctid = $4::tid",
        columns: &[
            "sealed_client_secret",
            "sealed_access_token",
            "sealed_refresh_token",
        ],
        binding: connector,
    },
    Sealed {
        select: "SELECT t.ctid::text AS row_id, t.connector_id AS bound_id, \
                 c.owner AS bound_owner, t.sealed_client_secret, t.sealed_verifier \
                 FROM oauth_pending t JOIN connectors c ON c.id = t.connector_id",
        update: "UPDATE oauth_pending SET sealed_client_secret = $1, sealed_verifier = $2 \
                 WHERE ctid = $3::tid",
        columns: &["sealed_client_secret", "sealed_verifier"],
        binding: connector,
    },
    Sealed {
        select: "SELECT ctid::text AS row_id, issuer AS bound_issuer, sealed_client_secret, \
                 sealed_response FROM oauth_registrations",
        update: "UPDATE oauth_registrations SET sealed_client_secret = $1, \
                 sealed_response = $2 WHERE ctid = $3::tid",
        columns: &["sealed_client_secret", "sealed_response"],
        binding: registration,
    },
];

fn connector(row: &PgRow) -> Result<Binding<'_>, sqlx::Error> {
    Ok(Binding::Connector {
        id: row.try_get("bound_id")?,
        owner: row.try_get("bound_owner")?,
    })
}

fn registration(row: &PgRow) -> Result<Binding<'_>, sqlx::Error> {
    Ok(Binding::Registration {
        issuer: row.try_get("bound_issuer")?,
    })
}

fn failed(e: String) -> StoreError {
    StoreError::Backend(format!("a sealed value could not be rewritten: {e}"))
}

/// Rewrites every sealed value with what `reseal` makes of it; answers how many values it
/// rewrote, the key check aside.
pub async fn reseal_all(pool: &PgPool, reseal: &Reseal<'_>) -> Result<usize, StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::query(
        "LOCK TABLE meta, connectors, oauth_grants, oauth_pending, oauth_registrations \
         IN SHARE ROW EXCLUSIVE MODE",
    )
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    let check: Option<Vec<u8>> = sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
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
        sqlx::query("UPDATE meta SET value = $1 WHERE key = $2")
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
    tx: &mut Transaction<'_, Postgres>,
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
        let row_id: String = row.try_get("row_id").map_err(backend)?;
        query
            .bind(row_id)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    Ok(count)
}
