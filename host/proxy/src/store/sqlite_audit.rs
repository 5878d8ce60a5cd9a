//! The SQLite audit log: appending records to its hash chain, querying it, and reading it
//! whole for `portcullis audit verify`.
//!
//! Appending reads the hash of the last chained record and writes the batch in the same
//! transaction, so two writers can never fork the chain (SQLite serializes writing
//! transactions; the proxy also has a single audit writer task).

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqliteRow};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::audit_chain::{self, Broken, ChainRow, GENESIS, Verified, Verifier};
use super::codec;
use super::{AuditKind, AuditQuery, AuditRecord, StoreError};

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Rows per `INSERT` statement when a batch is appended (16 bound values each, far
/// below SQLite's limit of 32,766 per statement).
const ROWS_PER_INSERT: usize = 128;

pub(super) const COLUMNS: &str = "seq, at_ms, kind, run, connector, method, tool, decision, reason, \
                       plugins, actor, action, target, before, after, prev_hash, hash";

pub(super) fn chain_row(record: &AuditRecord) -> ChainRow {
    ChainRow {
        seq: 0,
        at_ms: record.at_ms,
        kind: record.kind.as_str().to_owned(),
        run: record.run.clone(),
        connector: record.connector.clone(),
        method: record.method.clone(),
        tool: record.tool.clone(),
        decision: record.decision.clone(),
        reason: record.reason.clone(),
        plugins: codec::stamps_to_json(&record.plugins),
        actor: record.actor.clone(),
        action: record.action.clone(),
        target: record.target.clone(),
        before: record.before.clone(),
        after: record.after.clone(),
        prev_hash: None,
        hash: None,
    }
}

fn raw_row(row: &SqliteRow) -> Result<ChainRow, StoreError> {
    Ok(ChainRow {
        seq: row.try_get("seq").map_err(backend)?,
        at_ms: row.try_get("at_ms").map_err(backend)?,
        kind: row.try_get("kind").map_err(backend)?,
        run: row.try_get("run").map_err(backend)?,
        connector: row.try_get("connector").map_err(backend)?,
        method: row.try_get("method").map_err(backend)?,
        tool: row.try_get("tool").map_err(backend)?,
        decision: row.try_get("decision").map_err(backend)?,
        reason: row.try_get("reason").map_err(backend)?,
        plugins: row.try_get("plugins").map_err(backend)?,
        actor: row.try_get("actor").map_err(backend)?,
        action: row.try_get("action").map_err(backend)?,
        target: row.try_get("target").map_err(backend)?,
        before: row.try_get("before").map_err(backend)?,
        after: row.try_get("after").map_err(backend)?,
        prev_hash: row.try_get("prev_hash").map_err(backend)?,
        hash: row.try_get("hash").map_err(backend)?,
    })
}

pub(super) fn record(row: ChainRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        seq: row.seq,
        at_ms: row.at_ms,
        kind: AuditKind::parse(&row.kind)
            .ok_or_else(|| codec::corrupt("audit record kind", &row.kind))?,
        run: row.run,
        connector: row.connector,
        method: row.method,
        tool: row.tool,
        decision: row.decision,
        reason: row.reason,
        plugins: codec::stamps_from_json(&row.plugins)?,
        actor: row.actor,
        action: row.action,
        target: row.target,
        before: row.before,
        after: row.after,
        prev_hash: row.prev_hash,
        hash: row.hash,
    })
}

pub async fn append(pool: &SqlitePool, records: &[AuditRecord]) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    // IMMEDIATE: a deferred transaction that reads the head and then writes fails with
    // SQLITE_BUSY when another writer committed in between (WAL snapshots).
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let conn: &mut SqliteConnection = &mut tx;
    let head: String = sqlx::query_scalar(
        "SELECT hash FROM audit WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?
    .unwrap_or_else(|| GENESIS.to_owned());
    let rows = audit_chain::link(records.iter().map(chain_row), head);
    // Several rows per statement: each statement is a round trip to sqlx's SQLite
    // thread, which cost more than the insert itself when a batch went row by row.
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO audit (at_ms, kind, run, connector, method, tool, decision, reason, \
             plugins, actor, action, target, before, after, prev_hash, hash) ",
        );
        insert.push_values(chunk, |mut values, row| {
            values
                .push_bind(row.at_ms)
                .push_bind(&row.kind)
                .push_bind(&row.run)
                .push_bind(&row.connector)
                .push_bind(&row.method)
                .push_bind(&row.tool)
                .push_bind(&row.decision)
                .push_bind(&row.reason)
                .push_bind(&row.plugins)
                .push_bind(&row.actor)
                .push_bind(&row.action)
                .push_bind(&row.target)
                .push_bind(&row.before)
                .push_bind(&row.after)
                .push_bind(&row.prev_hash)
                .push_bind(&row.hash);
        });
        // One text per chunk size: not worth a slot in the statement cache.
        insert
            .build()
            .persistent(false)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)
}

pub async fn query(pool: &SqlitePool, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
    let order = if q.ascending { "ASC" } else { "DESC" };
    let sql = format!(
        "SELECT {COLUMNS} FROM audit \
         WHERE (?1 IS NULL OR run = ?1) AND (?2 IS NULL OR connector = ?2) \
         AND (?3 IS NULL OR decision = ?3) AND (?4 IS NULL OR method = ?4) \
         AND (?5 IS NULL OR EXISTS (SELECT 1 FROM json_each(audit.plugins) \
              WHERE json_extract(json_each.value, '$.name') = ?5)) \
         AND (?6 IS NULL OR kind = ?6) AND (?7 IS NULL OR at_ms >= ?7) \
         AND (?8 IS NULL OR at_ms < ?8) AND (?9 IS NULL OR seq > ?9) \
         ORDER BY seq {order} LIMIT ?10"
    );
    // Only the sort order is spliced in, from two constants; every value is bound.
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(q.run.as_deref())
        .bind(q.connector.as_deref())
        .bind(q.decision.as_deref())
        .bind(q.method.as_deref())
        .bind(q.plugin.as_deref())
        .bind(q.kind.map(AuditKind::as_str))
        .bind(q.since_ms)
        .bind(q.until_ms)
        .bind(q.after_seq)
        .bind(i64::from(q.limit))
        .fetch_all(pool)
        .await
        .map_err(backend)?;
    rows.iter().map(|r| record(raw_row(r)?)).collect()
}

/// Checks the hash chain of the audit log of the database at `path`, reading it in pages
/// without writing to it (no migration, no journal change): `portcullis audit verify`
/// runs on copies.
pub async fn verify_file(path: &Path) -> Result<Result<Verified, Broken>, StoreError> {
    const PAGE: i64 = 10_000;
    let options = SqliteConnectOptions::from_str("sqlite:")
        .map_err(backend)?
        .filename(path)
        .read_only(true);
    let pool = SqlitePool::connect_with(options)
        .await
        .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
    let outcome = verify_pool(&pool, PAGE).await;
    pool.close().await;
    outcome.map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))
}

async fn verify_pool(pool: &SqlitePool, page: i64) -> Result<Result<Verified, Broken>, StoreError> {
    let has_chain: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM pragma_table_info('audit') WHERE name = 'hash'")
            .fetch_one(pool)
            .await
            .map_err(backend)?;
    if has_chain == 0 {
        return Err(StoreError::Backend(
            "the database has no hash-chained audit log; start this version of Portcullis on \
             it once"
                .to_owned(),
        ));
    }
    let mut verifier = Verifier::default();
    let mut after = i64::MIN;
    loop {
        let sql = format!("SELECT {COLUMNS} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(page)
            .fetch_all(pool)
            .await
            .map_err(backend)?;
        for row in &rows {
            let row = raw_row(row)?;
            if let Err(broken) = verifier.push(&row) {
                return Ok(Err(broken));
            }
            after = row.seq;
        }
        if (rows.len() as i64) < page {
            return Ok(Ok(verifier.finish()));
        }
    }
}
