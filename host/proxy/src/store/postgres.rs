//! The shared store: one PostgreSQL database that several proxy replicas use at once.
//!
//! It keeps the embedded store's semantics (see `sqlite.rs`) with PostgreSQL's means:
//! - Versioned migrations under `migrations/postgres/`, numbered as their SQLite twins,
//!   applied by [`migrate`] on a connection of its own under sqlx's advisory lock, so
//!   replicas that start together migrate once and the others wait (`lock_timeout`
//!   bounds the wait). The connection is closed afterwards, failure or not: sqlx does not
//!   unlock after a failed migration.
//! - Writes that race between replicas are single statements (`ON CONFLICT`, compare and
//!   swap on `revision`), never a read then a write.
//! - Every write that revokes something (a run finished, a connector changed or deleted)
//!   sends `NOTIFY portcullis` in its own transaction: other replicas learn of it exactly
//!   when it is visible to them (`postgres_listen.rs` sends and listens).
//! - PostgreSQL's default `synchronous_commit = on` makes a commit durable, as SQLite's
//!   `synchronous=FULL` does.
//! - PostgreSQL text cannot hold NUL: a lookup by a key holding one finds nothing, and
//!   audit text holding one is stored with U+FFFD in its place.
//! - An OAuth refresh is single-flight across replicas (`postgres_lock.rs`).
//! - The audit (`postgres_audit.rs`) is one hash chain for all replicas; plugin versions
//!   and the chain configuration are in `postgres_plugins.rs`.
//!
//! Errors name the database by host, port and name only, never by its password.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Connection, Postgres, Row, Transaction};

use super::codec::{self, backend, corrupt, decode, storable};
use super::postgres_listen::{self, notify};
use super::postgres_lock::PgRefreshLocks;
use super::sqlite_reseal::KEY_CHECK;
use super::{
    ActorRecord, AuditQuery, AuditRecord, AuthMethod, ConnectorRecord, PluginHead,
    PluginVersionRecord, Reseal, RunRecord, RunStatus, Store, StoreError,
};
use super::{postgres_audit, postgres_plugins};
use crate::oauth::lock::RefreshLocks;
use crate::revocation::{Revocation, Revocations};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a replica waits for another one's migration before it gives up.
const MIGRATION_LOCK_TIMEOUT: &str = "60s";

pub struct PgStore {
    pub(super) pool: PgPool,
}

/// What a `postgres://` URL names, for messages: host, port and database, never the user's
/// password.
pub fn describe(options: &PgConnectOptions) -> String {
    format!(
        "postgres://{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("")
    )
}

/// Reads a `postgres://` URL; the error never repeats the URL (it may hold a password).
pub fn parse_url(url: &str) -> Result<PgConnectOptions, StoreError> {
    PgConnectOptions::from_str(url)
        .map(|options| options.application_name("portcullis"))
        .map_err(|_| {
            StoreError::Backend(
                "the database URL is not a valid postgres:// URL; use \
                 postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
                    .to_owned(),
            )
        })
}

/// Applies every pending migration; answers the schema version afterwards. Safe to run
/// from several replicas at once.
pub async fn migrate(options: &PgConnectOptions) -> Result<i64, StoreError> {
    let name = describe(options);
    let mut conn = options
        .connect()
        .await
        .map_err(|e| StoreError::Backend(format!("cannot connect to the database {name}: {e}")))?;
    let result = migrate_on(&mut conn, &name).await;
    // Closed whatever happened, which releases sqlx's session lock even after a failure.
    let _ = conn.close().await;
    result
}

async fn migrate_on(conn: &mut PgConnection, name: &str) -> Result<i64, StoreError> {
    // The same value as MIGRATION_LOCK_TIMEOUT: sqlx takes only literal SQL.
    sqlx::query("SET lock_timeout = '60s'")
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    // `run_direct`, not `run`: `run`'s `Acquire` bound makes the future not `Send`.
    MIGRATOR.run_direct(None, conn, false).await.map_err(|e| {
        StoreError::Backend(format!(
            "cannot migrate the database {name}: {e}; was it written by a newer Portcullis, \
             or is another replica's migration stuck (waited at most {MIGRATION_LOCK_TIMEOUT})?"
        ))
    })?;
    schema_version(conn).await
}

async fn schema_version(conn: &mut PgConnection) -> Result<i64, StoreError> {
    let version: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut *conn)
            .await
            .map_err(backend)?;
    Ok(version.unwrap_or(0))
}

impl PgStore {
    /// Connects to the database of `url`, brings its schema up to date, and opens a pool.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = parse_url(url)?;
        migrate(&options).await?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(|e| {
                StoreError::Backend(format!(
                    "cannot connect to the database {}: {e}",
                    describe(&options)
                ))
            })?;
        Ok(Self { pool })
    }

    pub(super) async fn begin(&self) -> Result<Transaction<'_, Postgres>, StoreError> {
        self.pool.begin().await.map_err(backend)
    }
}

// Macros rather than constants: sqlx takes only literal SQL, which `concat!` builds.
/// Every column of a connector but its id, in the order [`bind_connector`] binds them.
macro_rules! connector_fields {
    () => {
        "owner, name, server_url, provider, config, auth_method, sealed_secret, status, tools, \
         allowed_tools, created_at, authorized_at, revision"
    };
}

macro_rules! connector_columns {
    () => {
        concat!("id, ", connector_fields!())
    };
}

fn connector_from_row(row: &PgRow) -> Result<ConnectorRecord, StoreError> {
    let get_text = |col: &str| row.try_get::<String, _>(col).map_err(backend);
    let auth = get_text("auth_method")?;
    let allowed: Option<String> = row.try_get("allowed_tools").map_err(backend)?;
    Ok(ConnectorRecord {
        id: get_text("id")?,
        owner: get_text("owner")?,
        name: get_text("name")?,
        server_url: get_text("server_url")?,
        provider: get_text("provider")?,
        config: decode(&get_text("config")?, "connector config")?,
        auth: AuthMethod::parse(&auth).ok_or_else(|| corrupt("auth method", &auth))?,
        sealed_secret: row.try_get("sealed_secret").map_err(backend)?,
        status: codec::status_from_str(&get_text("status")?)?,
        tools: decode(&get_text("tools")?, "connector tools")?,
        allowed_tools: allowed
            .map(|text| decode(&text, "connector allowlist"))
            .transpose()?,
        created_at: row.try_get("created_at").map_err(backend)?,
        authorized_at: row.try_get("authorized_at").map_err(backend)?,
        revision: row.try_get("revision").map_err(backend)?,
    })
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

/// Binds the values of [`connector_fields`] as `$1`…`$13`, then the id as `$14`: an insert
/// and an update share this one list.
fn bind_connector<'q>(query: PgQuery<'q>, c: &ConnectorRecord) -> PgQuery<'q> {
    let tools = serde_json::to_string(&c.tools).expect("tools serialize");
    let allowed = c
        .allowed_tools
        .as_ref()
        .map(|names| serde_json::to_string(names).expect("names serialize"));
    query
        .bind(&c.owner)
        .bind(&c.name)
        .bind(&c.server_url)
        .bind(&c.provider)
        .bind(c.config.to_string())
        .bind(c.auth.as_str())
        .bind(c.sealed_secret.as_deref())
        .bind(codec::status_to_str(c.status))
        .bind(tools)
        .bind(allowed)
        .bind(c.created_at)
        .bind(c.authorized_at)
        .bind(c.revision)
        .bind(&c.id)
}

/// Replaces a connector inside `tx` and tells the other replicas; its `revision` must be
/// one more than the stored one.
pub(super) async fn update_connector_in(
    tx: &mut Transaction<'_, Postgres>,
    c: &ConnectorRecord,
) -> Result<(), StoreError> {
    let update = sqlx::query(concat!(
        "UPDATE connectors SET (",
        connector_fields!(),
        ") = ROW($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         WHERE id = $14 AND revision = $15"
    ));
    let done = bind_connector(update, c)
        .bind(c.revision - 1)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    if done.rows_affected() == 1 {
        let connector = c.id.clone();
        return notify(tx, Revocation::ConnectorChanged { connector }).await;
    }
    let exists = sqlx::query("SELECT 1 FROM connectors WHERE id = $1")
        .bind(&c.id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(backend)?;
    match exists {
        Some(_) => Err(StoreError::Conflict(format!(
            "a newer revision of connector {}",
            c.id
        ))),
        None => Err(StoreError::NotFound(format!("connector {}", c.id))),
    }
}

macro_rules! run_columns {
    () => {
        "id, actor, user_id, input, status, created_at, finished_at, expires_at, \
         connector_fields"
    };
}

fn run_from_row(row: &PgRow) -> Result<RunRecord, StoreError> {
    let status: String = row.try_get("status").map_err(backend)?;
    let input: String = row.try_get("input").map_err(backend)?;
    let fields: Option<String> = row.try_get("connector_fields").map_err(backend)?;
    Ok(RunRecord {
        id: row.try_get("id").map_err(backend)?,
        actor: row.try_get("actor").map_err(backend)?,
        user: row.try_get("user_id").map_err(backend)?,
        input: decode(&input, "run input")?,
        status: RunStatus::parse(&status).ok_or_else(|| corrupt("run status", &status))?,
        created_at: row.try_get("created_at").map_err(backend)?,
        finished_at: row.try_get("finished_at").map_err(backend)?,
        expires_at: row.try_get("expires_at").map_err(backend)?,
        connector_fields: fields
            .map(|text| codec::fields_from_json(&text))
            .transpose()?,
    })
}

fn actor_from_row(row: &PgRow) -> Result<ActorRecord, StoreError> {
    let schema: String = row.try_get("input_schema").map_err(backend)?;
    let fields: String = row.try_get("connector_fields").map_err(backend)?;
    Ok(ActorRecord {
        id: row.try_get("id").map_err(backend)?,
        input_schema: decode(&schema, "actor input schema")?,
        connector_fields: codec::fields_from_json(&fields)?,
        created_at: row.try_get("created_at").map_err(backend)?,
        updated_at: row.try_get("updated_at").map_err(backend)?,
    })
}

pub(super) fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn insert_connector(&self, c: &ConnectorRecord) -> Result<(), StoreError> {
        let insert = sqlx::query(concat!(
            "INSERT INTO connectors (",
            connector_fields!(),
            ", id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ));
        bind_connector(insert, c)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if unique_violation(&e) {
                    StoreError::Conflict(format!("connector {}", c.id))
                } else {
                    backend(e)
                }
            })?;
        Ok(())
    }

    async fn update_connector(&self, c: &ConnectorRecord) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        update_connector_in(&mut tx, c).await?;
        tx.commit().await.map_err(backend)
    }

    async fn connector(&self, id: &str) -> Result<Option<ConnectorRecord>, StoreError> {
        if !storable(id) {
            return Ok(None);
        }
        let row = sqlx::query(concat!(
            "SELECT ",
            connector_columns!(),
            " FROM connectors WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(connector_from_row).transpose()
    }

    async fn connectors(&self, owner: Option<&str>) -> Result<Vec<ConnectorRecord>, StoreError> {
        if !owner.is_none_or(storable) {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(concat!(
            "SELECT ",
            connector_columns!(),
            " FROM connectors WHERE $1::text IS NULL OR owner = $1 ORDER BY created_at, id"
        ))
        .bind(owner)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(connector_from_row).collect()
    }

    async fn credential_rejected(&self, id: &str) -> Result<bool, StoreError> {
        if !storable(id) {
            return Ok(false);
        }
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE connectors SET status = 'needs_reauthorization', revision = revision + 1 \
             WHERE id = $1 AND status = 'authorized' AND auth_method <> 'oauth'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let marked = done.rows_affected() == 1;
        if marked {
            let connector = id.to_owned();
            notify(&mut tx, Revocation::ConnectorChanged { connector }).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(marked)
    }

    async fn delete_connector(&self, id: &str) -> Result<bool, StoreError> {
        if !storable(id) {
            return Ok(false);
        }
        let mut tx = self.begin().await?;
        let done = sqlx::query("DELETE FROM connectors WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let deleted = done.rows_affected() == 1;
        if deleted {
            let connector = id.to_owned();
            notify(&mut tx, Revocation::ConnectorDeleted { connector }).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(deleted)
    }

    async fn put_actor(&self, actor: &ActorRecord) -> Result<bool, StoreError> {
        // One statement: replicas that create the same actor at once cannot both insert.
        // The creation time is the first PUT's, whatever the caller passes.
        let mut tx = self.begin().await?;
        let inserted = sqlx::query_scalar(
            "INSERT INTO actors (id, input_schema, connector_fields, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET \
             input_schema = EXCLUDED.input_schema, \
             connector_fields = EXCLUDED.connector_fields, \
             updated_at = EXCLUDED.updated_at RETURNING (xmax = 0)",
        )
        .bind(&actor.id)
        .bind(actor.input_schema.to_string())
        .bind(codec::fields_to_json(&actor.connector_fields))
        .bind(actor.created_at)
        .bind(actor.updated_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        let changed = Revocation::ActorChanged {
            actor: actor.id.clone(),
        };
        notify(&mut tx, changed).await?;
        tx.commit().await.map_err(backend)?;
        Ok(inserted)
    }

    async fn actor(&self, id: &str) -> Result<Option<ActorRecord>, StoreError> {
        if !storable(id) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT id, input_schema, connector_fields, created_at, updated_at \
             FROM actors WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(actor_from_row).transpose()
    }

    async fn insert_run(&self, run: &RunRecord, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO runs (id, actor, user_id, input, status, created_at, finished_at, \
             expires_at, connector_fields, token_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&run.id)
        .bind(&run.actor)
        .bind(&run.user)
        .bind(run.input.to_string())
        .bind(run.status.as_str())
        .bind(run.created_at)
        .bind(run.finished_at)
        .bind(run.expires_at)
        .bind(run.connector_fields.as_deref().map(codec::fields_to_json))
        .bind(&token_hash[..])
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                StoreError::Conflict(format!("run {}", run.id))
            } else {
                backend(e)
            }
        })?;
        Ok(())
    }

    async fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        if !storable(id) {
            return Ok(None);
        }
        let row = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn run_by_token_hash(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE token_hash = $1"
        ))
        .bind(&token_hash[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn finish_run(&self, id: &str, status: RunStatus, at: i64) -> Result<bool, StoreError> {
        if !storable(id) {
            return Err(StoreError::NotFound(format!("run {id}")));
        }
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE runs SET status = $1, finished_at = $2 WHERE id = $3 AND status = 'running'",
        )
        .bind(status.as_str())
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 1 {
            notify(&mut tx, Revocation::RunFinished { run: id.to_owned() }).await?;
            tx.commit().await.map_err(backend)?;
            return Ok(true);
        }
        tx.rollback().await.map_err(backend)?;
        match self.run(id).await? {
            Some(_) => Ok(false),
            None => Err(StoreError::NotFound(format!("run {id}"))),
        }
    }

    async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        postgres_audit::append(&self.pool, records).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        postgres_audit::query(&self.pool, query).await
    }

    async fn put_plugin_version(
        &self,
        record: &PluginVersionRecord,
        component: &[u8],
    ) -> Result<(), StoreError> {
        postgres_plugins::put_version(&self.pool, record, component).await
    }

    async fn plugin_versions(&self, name: &str) -> Result<Vec<PluginVersionRecord>, StoreError> {
        postgres_plugins::versions(&self.pool, name).await
    }

    async fn plugin_component(
        &self,
        name: &str,
        sha256: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        postgres_plugins::component(&self.pool, name, sha256).await
    }

    async fn plugin_heads(&self) -> Result<Vec<PluginHead>, StoreError> {
        postgres_plugins::heads(&self.pool).await
    }

    async fn set_plugin_current(
        &self,
        name: &str,
        current: &str,
        builtin: Option<&str>,
        keep: usize,
        protect: Option<&str>,
    ) -> Result<(), StoreError> {
        postgres_plugins::set_current(&self.pool, name, current, builtin, keep, protect).await
    }

    async fn delete_plugin(&self, name: &str) -> Result<(), StoreError> {
        postgres_plugins::delete(&self.pool, name).await
    }

    async fn chain_config(&self) -> Result<Option<String>, StoreError> {
        postgres_plugins::chain_config(&self.pool).await
    }

    async fn set_chain_config(&self, json: &str) -> Result<(), StoreError> {
        postgres_plugins::set_chain_config(&self.pool, json).await
    }

    async fn key_check(&self) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(KEY_CHECK)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
    }

    async fn reseal_all(&self, reseal: &Reseal<'_>) -> Result<usize, StoreError> {
        super::postgres_reseal::reseal_all(&self.pool, reseal).await
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn follow(&self, revocations: Arc<dyn Revocations>) {
        postgres_listen::spawn(self.pool.clone(), revocations);
    }

    fn refresh_locks(&self) -> Arc<dyn RefreshLocks> {
        PgRefreshLocks::new(self.pool.clone())
    }

    async fn set_key_check(&self, sealed: &[u8]) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(KEY_CHECK)
            .bind(sealed)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
