//! Which back end serves: [`open`] and [`migrate`] read `database_url` (a `postgres://`
//! URL, or unset for the embedded SQLite file in the data directory), so the rest of the
//! proxy never names a back end; and [`verify_url`] checks a PostgreSQL audit chain.

use std::path::Path;
use std::sync::Arc;

use sqlx::postgres::PgPoolOptions;

use super::audit_chain::{Broken, Verified};
use super::{SqliteStore, Store, StoreError, postgres, postgres_audit};

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Brings the schema of the database [`open`] would open up to date; answers its schema
/// version and the database's name for messages (never with a password).
pub async fn migrate(
    database_url: Option<&str>,
    sqlite_file: &Path,
) -> Result<(i64, String), StoreError> {
    match database_url {
        Some(url) if is_postgres_url(url) => {
            let options = postgres::parse_url(url)?;
            Ok((
                postgres::migrate(&options).await?,
                postgres::describe(&options),
            ))
        }
        None => {
            let store = SqliteStore::open(sqlite_file).await?;
            let version = store.schema_version().await;
            store.close().await;
            Ok((version?, sqlite_file.display().to_string()))
        }
        Some(_) => Err(not_postgres()),
    }
}

fn not_postgres() -> StoreError {
    StoreError::Backend(
        "the database URL must start with postgres:// (or postgresql://); leave database_url \
         unset for the embedded SQLite database in the data directory"
            .to_owned(),
    )
}

/// Opens the PostgreSQL database `database_url` names, or else the embedded SQLite file
/// `sqlite_file`, and brings its schema up to date.
pub async fn open(
    database_url: Option<&str>,
    sqlite_file: &Path,
) -> Result<Arc<dyn Store>, StoreError> {
    match database_url {
        None => Ok(Arc::new(SqliteStore::open(sqlite_file).await?)),
        Some(url) if is_postgres_url(url) => Ok(Arc::new(postgres::PgStore::open(url).await?)),
        Some(_) => Err(not_postgres()),
    }
}

/// Checks the chain of the database `url` names, read-only (`portcullis audit verify
/// --database-url`).
pub async fn verify_url(url: &str) -> Result<Result<Verified, Broken>, StoreError> {
    let options = postgres::parse_url(url)?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await
        .map_err(|e| {
            let name = postgres::describe(&options);
            StoreError::Backend(format!("cannot connect to the database {name}: {e}"))
        })?;
    let outcome = postgres_audit::verify(&pool).await;
    pool.close().await;
    outcome
}
