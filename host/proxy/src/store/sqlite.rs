//! The embedded store: one SQLite database file in the data directory.
//!
//! WAL journaling lets the data plane read while the admin API writes; migrations are
//! versioned files under `migrations/`, embedded at build time and applied at start.
//! Every commit is synced to disk (`synchronous=FULL`): with WAL's default `NORMAL` a
//! power loss can drop the last commits, and a lost run finish or connector delete
//! revives a revoked token or credential. It costs one WAL fsync per commit (about 3.4 ms
//! more per write on the CI disk); the data plane writes only the batched audit.
//! Structured values without a column of their own are JSON text (see `codec`).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use super::codec::{self, backend, corrupt, decode};
use super::sqlite_reseal::{self, KEY_CHECK};
use super::{
    ActorRecord, AuditQuery, AuditRecord, AuthMethod, ConnectorRecord, PluginHead,
    PluginVersionRecord, Reseal, RunRecord, RunStatus, Store, StoreError, sqlite_audit,
    sqlite_plugins,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct SqliteStore {
    pub(super) pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(backend)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|e| {
                StoreError::Backend(format!("cannot open the database {}: {e}", path.display()))
            })?;
        MIGRATOR.run(&pool).await.map_err(|e| {
            StoreError::Backend(format!(
                "cannot migrate the database {}: {e}; was it written by a newer Portcullis?",
                path.display()
            ))
        })?;
        Ok(Self { pool })
    }

    /// The newest migration applied.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await
                .map_err(backend)?;
        Ok(version.unwrap_or(0))
    }

    /// Closes every connection, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(super) async fn begin(&self) -> Result<Transaction<'_, Sqlite>, StoreError> {
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

/// As many placeholders as [`connector_fields`] has columns.
macro_rules! connector_placeholders {
    () => {
        "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
    };
}

macro_rules! connector_columns {
    () => {
        concat!("id, ", connector_fields!())
    };
}

fn connector_from_row(row: &SqliteRow) -> Result<ConnectorRecord, StoreError> {
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

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments>;

/// Binds the values of [`connector_fields`], then the id: an insert and an update share
/// this one list.
fn bind_connector<'q>(query: SqliteQuery<'q>, c: &ConnectorRecord) -> SqliteQuery<'q> {
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

/// Replaces a connector inside `tx`; its `revision` must be one more than the stored one.
pub(super) async fn update_connector_in(
    tx: &mut Transaction<'_, Sqlite>,
    c: &ConnectorRecord,
) -> Result<(), StoreError> {
    let update = sqlx::query(concat!(
        "UPDATE connectors SET (",
        connector_fields!(),
        ") = (",
        connector_placeholders!(),
        ") WHERE id = ? AND revision = ?"
    ));
    let done = bind_connector(update, c)
        .bind(c.revision - 1)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    if done.rows_affected() == 1 {
        return Ok(());
    }
    let exists = sqlx::query("SELECT 1 FROM connectors WHERE id = ?")
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

fn run_from_row(row: &SqliteRow) -> Result<RunRecord, StoreError> {
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

fn actor_from_row(row: &SqliteRow) -> Result<ActorRecord, StoreError> {
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

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn insert_connector(&self, c: &ConnectorRecord) -> Result<(), StoreError> {
        let insert = sqlx::query(concat!(
            "INSERT INTO connectors (",
            connector_fields!(),
            ", id) VALUES (",
            connector_placeholders!(),
            ", ?)"
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
        let row = sqlx::query(concat!(
            "SELECT ",
            connector_columns!(),
            " FROM connectors WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(connector_from_row).transpose()
    }

    async fn connectors(&self, owner: Option<&str>) -> Result<Vec<ConnectorRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            connector_columns!(),
            " FROM connectors WHERE ?1 IS NULL OR owner = ?1 ORDER BY created_at, id"
        ))
        .bind(owner)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(connector_from_row).collect()
    }

    async fn credential_rejected(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE connectors SET status = 'needs_reauthorization', revision = revision + 1 \
             WHERE id = ? AND status = 'authorized' AND auth_method <> 'oauth'",
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_connector(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM connectors WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_actor(&self, actor: &ActorRecord) -> Result<bool, StoreError> {
        // Two statements, each atomic, rather than a read-then-write transaction: in WAL
        // mode that one fails at once (SQLITE_BUSY, no busy wait) when another
        // connection, such as the audit writer, commits between its read and its write.
        let schema = actor.input_schema.to_string();
        let fields = codec::fields_to_json(&actor.connector_fields);
        let inserted = sqlx::query(
            "INSERT INTO actors (input_schema, connector_fields, updated_at, id, created_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&schema)
        .bind(&fields)
        .bind(actor.updated_at)
        .bind(&actor.id)
        .bind(actor.created_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if inserted.rows_affected() == 1 {
            return Ok(true);
        }
        // The creation time is the first PUT's, whatever the caller passes.
        sqlx::query(
            "UPDATE actors SET input_schema = ?, connector_fields = ?, updated_at = ? \
             WHERE id = ?",
        )
        .bind(&schema)
        .bind(&fields)
        .bind(actor.updated_at)
        .bind(&actor.id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(false)
    }

    async fn actor(&self, id: &str) -> Result<Option<ActorRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, input_schema, connector_fields, created_at, updated_at \
             FROM actors WHERE id = ?",
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
             expires_at, connector_fields, token_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        let row = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE id = ?"
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
            " FROM runs WHERE token_hash = ?"
        ))
        .bind(&token_hash[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn finish_run(&self, id: &str, status: RunStatus, at: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE runs SET status = ?, finished_at = ? WHERE id = ? AND status = 'running'",
        )
        .bind(status.as_str())
        .bind(at)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        match self.run(id).await? {
            Some(_) => Ok(false),
            None => Err(StoreError::NotFound(format!("run {id}"))),
        }
    }

    async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        sqlite_audit::append(&self.pool, records).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        sqlite_audit::query(&self.pool, query).await
    }

    async fn put_plugin_version(
        &self,
        record: &PluginVersionRecord,
        component: &[u8],
    ) -> Result<(), StoreError> {
        sqlite_plugins::put_version(&self.pool, record, component).await
    }

    async fn plugin_versions(&self, name: &str) -> Result<Vec<PluginVersionRecord>, StoreError> {
        sqlite_plugins::versions(&self.pool, name).await
    }

    async fn plugin_component(
        &self,
        name: &str,
        sha256: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        sqlite_plugins::component(&self.pool, name, sha256).await
    }

    async fn plugin_heads(&self) -> Result<Vec<PluginHead>, StoreError> {
        sqlite_plugins::heads(&self.pool).await
    }

    async fn set_plugin_current(
        &self,
        name: &str,
        current: &str,
        builtin: Option<&str>,
        keep: usize,
        protect: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlite_plugins::set_current(&self.pool, name, current, builtin, keep, protect).await
    }

    async fn delete_plugin(&self, name: &str) -> Result<(), StoreError> {
        sqlite_plugins::delete(&self.pool, name).await
    }

    async fn chain_config(&self) -> Result<Option<String>, StoreError> {
        sqlite_plugins::chain_config(&self.pool).await
    }

    async fn set_chain_config(&self, json: &str) -> Result<(), StoreError> {
        sqlite_plugins::set_chain_config(&self.pool, json).await
    }

    async fn key_check(&self) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(KEY_CHECK)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
    }

    async fn reseal_all(&self, reseal: &Reseal<'_>) -> Result<usize, StoreError> {
        sqlite_reseal::reseal_all(&self.pool, reseal).await
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn close(&self) {
        SqliteStore::close(self).await;
    }

    async fn set_key_check(&self, sealed: &[u8]) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING")
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
