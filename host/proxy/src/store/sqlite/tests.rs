//! Durability settings and what start-up does to databases written by older versions.

use super::*;
use crate::store::ConnectorFieldSpec;

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

fn run(id: &str, fields: Option<Vec<ConnectorFieldSpec>>) -> RunRecord {
    RunRecord {
        id: id.to_owned(),
        actor: "actor".to_owned(),
        user: "alice".to_owned(),
        input: serde_json::json!({"conn": "conn_1"}),
        status: RunStatus::Running,
        created_at: 1,
        finished_at: None,
        expires_at: 10,
        connector_fields: fields,
    }
}

#[tokio::test]
async fn runs_keep_the_connector_fields_they_started_with() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("p.db")).await.unwrap();
    let fields = vec![ConnectorFieldSpec {
        name: "conn".to_owned(),
        kind: portcullis_model::FieldKind::Multiple,
        rules: vec![portcullis_model::ServerRule {
            url: "https://*.slack.com/*".to_owned(),
            tools: None,
        }],
    }];
    for (id, fields) in [("run_pinned", Some(fields)), ("run_before_0002", None)] {
        let run = run(id, fields);
        store.insert_run(&run, &[id.len() as u8; 32]).await.unwrap();
        assert_eq!(store.run(id).await.unwrap(), Some(run));
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
