//! What only the embedded store has: its durability settings and its write concurrency
//! under WAL (the contract both back ends share is in `store/tests`).

use super::*;

#[tokio::test]
async fn every_connection_syncs_fully() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("p.db")).await.unwrap();
    // Hold several connections at once so that more than one is checked.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut conn = store.pool.acquire().await.unwrap();
        let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(
            level, 2,
            "synchronous=FULL (2), so a committed write survives power loss"
        );
        held.push(conn);
    }
}

/// A PUT of an actor while another connection writes (the audit writer) must not fail
/// with SQLITE_BUSY, as a read-then-write transaction does in WAL mode.
#[tokio::test(flavor = "multi_thread")]
async fn actors_are_stored_while_the_audit_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(&dir.path().join("p.db")).await.unwrap());
    let writer = store.clone();
    let audit = tokio::spawn(async move {
        let record = AuditRecord {
            at_ms: 0,
            run: None,
            connector: None,
            method: Some("tools/list".to_owned()),
            tool: None,
            decision: "allow".to_owned(),
            reason: None,
            plugins: Vec::new(),
            ..AuditRecord::default()
        };
        for _ in 0..200 {
            writer
                .append_audit(&[record.clone(), record.clone()])
                .await
                .unwrap();
        }
    });
    for i in 0..200 {
        let actor = ActorRecord {
            id: format!("actor{}", i % 3),
            input_schema: serde_json::json!({}),
            connector_fields: Vec::new(),
            created_at: i,
            updated_at: i,
        };
        let created = store.put_actor(&actor).await.unwrap();
        assert_eq!(created, i < 3);
        assert_eq!(
            store.actor(&actor.id).await.unwrap().unwrap().created_at,
            i % 3
        );
    }
    audit.await.unwrap();
}
