//! What other replicas changed, applied here: one task per replica listens on the
//! PostgreSQL channel [`CHANNEL`] and turns each notification into a [`Revocation`] of
//! this process's data plane (and, for plugins and chains, of its plugin registry).
//!
//! The store sends a notification with [`notify`] in the same transaction as the change
//! (`postgres.rs`, `postgres_plugins.rs`, `postgres_oauth.rs`), so it arrives, within a round trip of the commit, exactly when the change is visible.
//! A notification sent while the listening connection is down is lost for good, so:
//! - the task uses `try_recv`, which reports a lost connection, never `recv`, which hides
//!   it; after a loss (once listening again) everything cached is read again
//!   ([`Revocation::Everything`]);
//! - with no traffic for [`HEARTBEAT`], it sends itself a notification and expects it back
//!   within another [`HEARTBEAT`], which detects a half-open connection;
//! - every [`CACHE_TTL`] it forgets everything cached anyway: the bound on how long any
//!   replica can serve a revoked run or connector if all of the above failed.
//!
//! Payloads are `run:<id>`, `connector:<id>`, `connector-deleted:<id>`, `actor:<id>`,
//! `plugins` (see [`payload`]) and this task's own `hb:<n>`; anything else is ignored. A replica also
//! receives its own notifications; applying a revocation twice is harmless.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use sqlx::{Postgres, Transaction};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

use super::StoreError;
use super::codec::backend;
use crate::revocation::{Revocation, Revocations};

/// The channel every replica listens on.
pub const CHANNEL: &str = "portcullis";

/// How long the channel may stay silent before the task checks it with a heartbeat.
pub const HEARTBEAT: Duration = Duration::from_millis(500);
/// Everything cached is forgotten at least this often.
pub const CACHE_TTL: Duration = Duration::from_secs(30);

/// The notification payload of a revocation.
pub fn payload(revocation: &Revocation) -> String {
    match revocation {
        Revocation::RunFinished { run } => format!("run:{run}"),
        Revocation::ConnectorChanged { connector } => format!("connector:{connector}"),
        Revocation::ConnectorDeleted { connector } => format!("connector-deleted:{connector}"),
        Revocation::ActorChanged { actor } => format!("actor:{actor}"),
        Revocation::PluginsChanged => "plugins".to_owned(),
        Revocation::Everything => "everything".to_owned(),
    }
}

/// The revocation a payload names, if it names one.
pub fn parse(payload: &str) -> Option<Revocation> {
    if payload == "plugins" {
        return Some(Revocation::PluginsChanged);
    }
    let (kind, id) = payload.split_once(':')?;
    let id = id.to_owned();
    Some(match kind {
        "run" => Revocation::RunFinished { run: id },
        "connector" => Revocation::ConnectorChanged { connector: id },
        "connector-deleted" => Revocation::ConnectorDeleted { connector: id },
        "actor" => Revocation::ActorChanged { actor: id },
        _ => return None,
    })
}

/// Tells every replica about `revocation` when `tx` commits (and never if it rolls back).
pub async fn notify(
    tx: &mut Transaction<'_, Postgres>,
    revocation: Revocation,
) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload(&revocation))
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Starts the task; it runs until the pool closes.
pub fn spawn(pool: PgPool, revocations: Arc<dyn Revocations>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        while !pool.is_closed() {
            match listen(&pool, &*revocations).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "lost the database's change notifications; reconnecting, and \
                         reading every cached record again once listening"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    })
}

/// Listens until the pool closes (`Ok`) or the connection fails in a way `try_recv`
/// cannot recover from by itself (`Err`, and the caller starts again).
async fn listen(pool: &PgPool, revocations: &dyn Revocations) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    // Whatever was sent before this point may be lost: start from the store.
    revocations.revoke(Revocation::Everything).await;
    let mut beats = 0u64;
    let mut awaited: Option<(String, Instant)> = None;
    let mut refreshed = Instant::now();
    loop {
        if pool.is_closed() {
            return Ok(());
        }
        if refreshed.elapsed() >= CACHE_TTL {
            revocations.revoke(Revocation::Everything).await;
            refreshed = Instant::now();
        }
        match timeout(HEARTBEAT, listener.try_recv()).await {
            Ok(Ok(Some(notification))) => {
                let text = notification.payload();
                if awaited.as_ref().is_some_and(|(beat, _)| beat == text) {
                    awaited = None;
                } else if let Some(revocation) = parse(text) {
                    revocations.revoke(revocation).await;
                }
            }
            // Lost and listening again (eager reconnect): anything may have been missed.
            Ok(Ok(None)) => {
                revocations.revoke(Revocation::Everything).await;
                awaited = None;
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => match &awaited {
                Some((_, sent)) if sent.elapsed() >= HEARTBEAT => {
                    return Err(sqlx::Error::Protocol(format!(
                        "a heartbeat did not come back within {} ms",
                        HEARTBEAT.as_millis()
                    )));
                }
                Some(_) => {}
                None => {
                    beats += 1;
                    let beat = format!("hb:{}:{beats}", std::process::id());
                    sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(CHANNEL)
                        .bind(&beat)
                        .execute(pool)
                        .await?;
                    awaited = Some((beat, Instant::now()));
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_their_revocation() {
        for revocation in [
            Revocation::RunFinished {
                run: "run_1".into(),
            },
            Revocation::ConnectorChanged {
                connector: "conn:1".into(),
            },
            Revocation::ConnectorDeleted {
                connector: "conn_2".into(),
            },
            Revocation::ActorChanged { actor: "a".into() },
            Revocation::PluginsChanged,
        ] {
            assert_eq!(parse(&payload(&revocation)), Some(revocation));
        }
        for other in ["everything", "hb:1:2", "run", "nonsense:x", ""] {
            assert_eq!(parse(other), None, "{other}");
        }
    }
}
