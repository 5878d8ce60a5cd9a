//! What only the PostgreSQL store has: migrations that replicas run at once, errors that
//! never show the database's password, and the notifications that carry revocations to
//! the other replicas (the contract both back ends share is in `store/tests`).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_test_upstreams::postgres;

use super::*;
use crate::store::tests::records::connector;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_migrating_at_once_apply_each_migration_once() {
    let options = parse_url(&postgres::fresh_database()).unwrap();
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let options = options.clone();
            tokio::spawn(async move { migrate(&options).await })
        })
        .collect();
    let mut versions = Vec::new();
    for run in runs {
        versions.push(run.await.unwrap().unwrap());
    }
    let newest = MIGRATOR.iter().map(|m| m.version).max().unwrap();
    assert_eq!(versions, [newest; 4]);
    let mut conn = options.connect().await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(applied as usize, MIGRATOR.iter().count());
}

#[tokio::test]
async fn errors_name_the_database_but_never_its_password() {
    let Err(err) = PgStore::open("postgres://user:hunter2@127.0.0.1:1/somedb").await else {
        panic!("nothing listens on port 1");
    };
    let text = err.to_string();
    assert!(text.contains("127.0.0.1:1/somedb"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let Err(err) = PgStore::open("postgres://user:hunter2@[::1/x").await else {
        panic!("not a URL");
    };
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let Err(err) =
        crate::store::open(Some("mysql://u:hunter2@h/d"), Path::new("/nonexistent")).await
    else {
        panic!("not PostgreSQL");
    };
    assert!(err.to_string().contains("postgres://"), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

/// Records what it is told.
#[derive(Default)]
struct Recorder(Mutex<Vec<Revocation>>);

#[async_trait::async_trait]
impl Revocations for Recorder {
    async fn revoke(&self, revocation: Revocation) {
        self.0.lock().unwrap().push(revocation);
    }
}

impl Recorder {
    fn take_if_seen(&self, expected: &Revocation) -> bool {
        let mut seen = self.0.lock().unwrap();
        let found = seen.contains(expected);
        if found {
            seen.clear();
        }
        found
    }

    /// Waits up to a second for `expected`, then forgets everything recorded so far.
    async fn expect(&self, expected: &Revocation) {
        for _ in 0..100 {
            if self.take_if_seen(expected) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "{expected:?} not received within 1 s; got {:?}",
            self.0.lock().unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replica_hears_of_every_revoking_change_and_of_lost_notifications() {
    let url = postgres::fresh_database();
    let (writer, follower) = (
        PgStore::open(&url).await.unwrap(),
        PgStore::open(&url).await.unwrap(),
    );
    let heard = Arc::new(Recorder::default());
    follower.follow(heard.clone());
    heard.expect(&Revocation::Everything).await;

    let mut c = connector("conn_1", "alice", 1);
    writer.insert_connector(&c).await.unwrap();
    c.revision = 2;
    writer.update_connector(&c).await.unwrap();
    let changed = Revocation::ConnectorChanged {
        connector: c.id.clone(),
    };
    heard.expect(&changed).await;
    assert!(writer.credential_rejected(&c.id).await.unwrap());
    heard.expect(&changed).await;
    assert!(writer.delete_connector(&c.id).await.unwrap());
    heard
        .expect(&Revocation::ConnectorDeleted {
            connector: c.id.clone(),
        })
        .await;
    let actor = ActorRecord {
        id: "a1".into(),
        input_schema: serde_json::json!({}),
        connector_fields: Vec::new(),
        created_at: 1,
        updated_at: 1,
    };
    writer.put_actor(&actor).await.unwrap();
    heard
        .expect(&Revocation::ActorChanged { actor: "a1".into() })
        .await;

    // A plugin made current, a plugin deleted, the chains changed: each one reloads.
    let version = PluginVersionRecord {
        name: "p".into(),
        sha256: "ab".repeat(32),
        version: "1.0.0".into(),
        installed_at: 1,
        signed_by: None,
        signature: None,
    };
    writer.put_plugin_version(&version, b"\0asm").await.unwrap();
    writer
        .set_plugin_current("p", &version.sha256, None, 5, None)
        .await
        .unwrap();
    heard.expect(&Revocation::PluginsChanged).await;
    writer.delete_plugin("p").await.unwrap();
    heard.expect(&Revocation::PluginsChanged).await;
    writer.set_chain_config("{}").await.unwrap();
    heard.expect(&Revocation::PluginsChanged).await;

    // The listening connection is killed: once listening again, everything is read anew.
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_one(&writer.pool)
    .await
    .unwrap();
    assert_eq!(killed, 1, "one listening connection");
    heard.expect(&Revocation::Everything).await;
    follower.close().await;
    writer.close().await;
}

/// Two replicas append at once, with records holding NUL: the log is one chain that
/// verifies, and editing a record breaks it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_appending_at_once_keep_one_chain() {
    let url = postgres::fresh_database();
    let (a, b) = (
        Arc::new(PgStore::open(&url).await.unwrap()),
        Arc::new(PgStore::open(&url).await.unwrap()),
    );
    let writers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .enumerate()
        .map(|(n, store)| {
            tokio::spawn(async move {
                for i in 0..40 {
                    let record = AuditRecord {
                        at_ms: i,
                        run: Some(format!("run_{n}")),
                        method: Some("tools/\0call".to_owned()),
                        decision: "allow".to_owned(),
                        ..AuditRecord::default()
                    };
                    store.append_audit(&vec![record; 5]).await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let verified = postgres_audit::verify(&a.pool).await.unwrap().unwrap();
    assert_eq!((verified.chained, verified.legacy), (400, 0));

    sqlx::query("UPDATE audit SET decision = 'deny' WHERE seq = (SELECT min(seq) + 7 FROM audit)")
        .execute(&a.pool)
        .await
        .unwrap();
    let broken = postgres_audit::verify(&a.pool).await.unwrap().unwrap_err();
    assert!(broken.why.contains("edited"), "{broken}");
    a.close().await;
    b.close().await;
}

/// Refreshes of one connector through two replicas never overlap; another connector's
/// lock is independent; a waiter that gives up leaves no lock behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_locks_hold_across_replicas() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let url = postgres::fresh_database();
    let (a, b) = (
        PgStore::open(&url).await.unwrap(),
        PgStore::open(&url).await.unwrap(),
    );
    let replicas = [a.refresh_locks(), b.refresh_locks()];
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let (locks, inside, most) = (replicas[n % 2].clone(), inside.clone(), most.clone());
            tokio::spawn(async move {
                let _guard = locks.lock("conn_a").await;
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(most.load(Ordering::SeqCst), 1, "one holder at a time");

    let held = replicas[0].lock("conn_a").await;
    let other = tokio::time::timeout(Duration::from_secs(2), replicas[1].lock("conn_b")).await;
    assert!(other.is_ok(), "another connector's lock is independent");
    drop(other);
    let waited = tokio::time::timeout(Duration::from_millis(300), replicas[1].lock("conn_a")).await;
    assert!(waited.is_err(), "held by the other replica");
    drop(held);
    let again = tokio::time::timeout(Duration::from_secs(2), replicas[1].lock("conn_a")).await;
    assert!(
        again.is_ok(),
        "free once released, the abandoned wait included"
    );
    drop(again);
    a.close().await;
    b.close().await;
}
