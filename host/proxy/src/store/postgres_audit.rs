//! The PostgreSQL audit log: one table and one hash chain for every replica, ordered by
//! the database.
//!
//! An append takes a transaction-scoped advisory lock first, then reads the hash of the
//! last chained record and writes the batch in one statement, in order: appends of all
//! replicas are serialized, so the chain never forks and `seq` follows it (identity
//! values are taken under the lock, in the batch's order). The encoding is
//! `audit_chain`'s, on the text as stored (NUL, which PostgreSQL text cannot hold, is
//! stored and hashed as U+FFFD). [`verify`] checks the chain as `audit verify` does a
//! SQLite file's.

use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};

use super::audit_chain::{self, Broken, ChainRow, GENESIS, Verified, Verifier};
use super::codec::{audit_text, backend};
use super::sqlite_audit::{COLUMNS, chain_row, record};
use super::{AuditKind, AuditQuery, AuditRecord, StoreError};

/// The key of the advisory lock every append holds.
const CHAIN_LOCK: i64 = 0x5043_4155_4449_5400;

fn raw_row(row: &PgRow) -> Result<ChainRow, StoreError> {
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

/// A record's row as PostgreSQL keeps it.
fn storable_row(r: &AuditRecord) -> ChainRow {
    let text = |v: &Option<String>| v.as_deref().map(|t| audit_text(t).into_owned());
    let row = chain_row(r);
    ChainRow {
        kind: audit_text(&row.kind).into_owned(),
        run: text(&row.run),
        connector: text(&row.connector),
        method: text(&row.method),
        tool: text(&row.tool),
        decision: audit_text(&row.decision).into_owned(),
        reason: text(&row.reason),
        plugins: audit_text(&row.plugins).into_owned(),
        actor: text(&row.actor),
        action: text(&row.action),
        target: text(&row.target),
        before: text(&row.before),
        after: text(&row.after),
        ..row
    }
}

pub async fn append(pool: &PgPool, records: &[AuditRecord]) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CHAIN_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let head: String = sqlx::query_scalar(
        "SELECT hash FROM audit WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1",
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(backend)?
    .unwrap_or_else(|| GENESIS.to_owned());
    let mut at_ms = Vec::with_capacity(records.len());
    let mut texts: [Vec<Option<String>>; 15] = Default::default();
    for row in audit_chain::link(records.iter().map(storable_row), head) {
        at_ms.push(row.at_ms);
        let values = [
            Some(row.kind),
            row.run,
            row.connector,
            row.method,
            row.tool,
            Some(row.decision),
            row.reason,
            Some(row.plugins),
            row.actor,
            row.action,
            row.target,
            row.before,
            row.after,
            row.prev_hash,
            row.hash,
        ];
        for (column, value) in texts.iter_mut().zip(values) {
            column.push(value);
        }
    }
    let mut insert = sqlx::query(
        "INSERT INTO audit (at_ms, kind, run, connector, method, tool, decision, reason, \
         plugins, actor, action, target, before, after, prev_hash, hash) \
         SELECT a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p FROM UNNEST($1::bigint[], \
         $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
         $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], \
         $15::text[], $16::text[]) WITH ORDINALITY \
         AS t(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, ord) ORDER BY ord",
    )
    .bind(at_ms);
    for column in texts {
        insert = insert.bind(column);
    }
    insert.execute(&mut *tx).await.map_err(backend)?;
    tx.commit().await.map_err(backend)
}

pub async fn query(pool: &PgPool, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
    let order = if q.ascending { "ASC" } else { "DESC" };
    let sql = format!(
        "SELECT {COLUMNS} FROM audit \
         WHERE ($1::text IS NULL OR run = $1) AND ($2::text IS NULL OR connector = $2) \
         AND ($3::text IS NULL OR decision = $3) AND ($4::text IS NULL OR method = $4) \
         AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM json_array_elements(audit.plugins::json) \
              AS p WHERE p->>'name' = $5)) \
         AND ($6::text IS NULL OR kind = $6) AND ($7::bigint IS NULL OR at_ms >= $7) \
         AND ($8::bigint IS NULL OR at_ms < $8) AND ($9::bigint IS NULL OR seq > $9) \
         ORDER BY seq {order} LIMIT $10"
    );
    let text = |v: &Option<String>| v.as_deref().map(|t| audit_text(t).into_owned());
    // Only the sort order is spliced in, from two constants; every value is bound.
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(text(&q.run))
        .bind(text(&q.connector))
        .bind(text(&q.decision))
        .bind(text(&q.method))
        .bind(text(&q.plugin))
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

/// Checks the whole chain, reading it in pages.
pub async fn verify(pool: &PgPool) -> Result<Result<Verified, Broken>, StoreError> {
    const PAGE: i64 = 10_000;
    let mut verifier = Verifier::default();
    let mut after = i64::MIN;
    loop {
        let sql = format!("SELECT {COLUMNS} FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(PAGE)
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
        if (rows.len() as i64) < PAGE {
            return Ok(Ok(verifier.finish()));
        }
    }
}
