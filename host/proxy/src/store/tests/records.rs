//! Connectors, actors, runs, the audit log, the key check and resealing, on both back ends.

use std::sync::Arc;

use portcullis_model::{ConnectorStatus, FieldKind, ServerRule, Stamp};

use super::on_both_backends;
use crate::store::{
    ActorRecord, AuditQuery, AuditRecord, AuthMethod, ConnectorFieldSpec, ConnectorRecord,
    RunRecord, RunStatus, SealedValue, Store, StoreError,
};
use crate::vault::binding::Binding;

on_both_backends!(
    connectors_round_trip_in_creation_order,
    connector_updates_compare_and_swap_on_the_revision,
    a_rejected_credential_marks_a_static_connector_once,
    deletes_answer_whether_there_was_one,
    actors_keep_their_first_creation_time,
    concurrent_puts_of_one_new_actor_all_succeed,
    runs_finish_once_and_keep_their_fields,
    the_audit_reads_newest_first_with_filters,
    a_large_batch_is_appended_whole_in_order_on_one_chain,
    the_first_key_check_stays,
    every_sealed_value_is_resealed_for_its_binding,
    keys_holding_nul_find_nothing_and_audit_text_keeps_the_rest,
);

pub fn connector(id: &str, owner: &str, created_at: i64) -> ConnectorRecord {
    ConnectorRecord {
        id: id.to_owned(),
        owner: owner.to_owned(),
        name: format!("name of {id} ✓"),
        server_url: "https://mcp.example.com/mcp".to_owned(),
        provider: "bearer".to_owned(),
        config: serde_json::json!({"b": 1, "a": [true, null]}),
        auth: AuthMethod::ApiKey,
        sealed_secret: Some(vec![0, 1, 2, 255]),
        status: ConnectorStatus::Authorized,
        tools: vec![crate::store::DiscoveredTool {
            name: "search".to_owned(),
            title: None,
            description: Some("finds".to_owned()),
            annotations: Some(serde_json::json!({"readOnlyHint": true})),
        }],
        allowed_tools: Some(vec!["search".to_owned()]),
        created_at,
        authorized_at: created_at,
        revision: 1,
    }
}

async fn connectors_round_trip_in_creation_order(store: Arc<dyn Store>) {
    let (a, b, c) = (
        connector("conn_b", "alice", 2),
        connector("conn_a", "bob", 2),
        connector("conn_c", "alice", 1),
    );
    for record in [&a, &b, &c] {
        store.insert_connector(record).await.unwrap();
    }
    assert_eq!(store.connector("conn_b").await.unwrap().as_ref(), Some(&a));
    let none = ConnectorRecord {
        id: "conn_none".to_owned(),
        auth: AuthMethod::None,
        sealed_secret: None,
        allowed_tools: None,
        ..connector("", "carol", 3)
    };
    store.insert_connector(&none).await.unwrap();
    assert_eq!(store.connector("conn_none").await.unwrap(), Some(none));
    assert_eq!(store.connector("conn_missing").await.unwrap(), None);

    let ids = |records: Vec<ConnectorRecord>| -> Vec<String> {
        records.into_iter().map(|c| c.id).collect()
    };
    assert_eq!(
        ids(store.connectors(None).await.unwrap()),
        ["conn_c", "conn_a", "conn_b", "conn_none"],
        "by creation time, then id (bytewise)"
    );
    assert_eq!(
        ids(store.connectors(Some("alice")).await.unwrap()),
        ["conn_c", "conn_b"]
    );
    assert!(store.connectors(Some("nobody")).await.unwrap().is_empty());
    assert!(matches!(
        store.insert_connector(&a).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn connector_updates_compare_and_swap_on_the_revision(store: Arc<dyn Store>) {
    let mut c = connector("conn_1", "alice", 1);
    store.insert_connector(&c).await.unwrap();
    c.revision = 2;
    c.allowed_tools = None;
    c.name = "renamed".to_owned();
    store.update_connector(&c).await.unwrap();
    assert_eq!(store.connector("conn_1").await.unwrap().as_ref(), Some(&c));
    assert!(
        matches!(
            store.update_connector(&c).await,
            Err(StoreError::Conflict(_))
        ),
        "a writer that read revision 1 loses"
    );
    let missing = ConnectorRecord {
        id: "conn_missing".to_owned(),
        ..c.clone()
    };
    assert!(matches!(
        store.update_connector(&missing).await,
        Err(StoreError::NotFound(_))
    ));

    // Eight writers race from the same revision: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (store, mut next) = (store.clone(), c.clone());
        next.revision = 3;
        next.name = format!("writer {i}");
        tasks.push(tokio::spawn(
            async move { store.update_connector(&next).await },
        ));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("a racing update failed otherwise: {e}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(
        store.connector("conn_1").await.unwrap().unwrap().revision,
        3
    );
}

async fn a_rejected_credential_marks_a_static_connector_once(store: Arc<dyn Store>) {
    store
        .insert_connector(&connector("conn_1", "alice", 1))
        .await
        .unwrap();
    let oauth = ConnectorRecord {
        auth: AuthMethod::OAuth,
        sealed_secret: None,
        ..connector("conn_2", "alice", 1)
    };
    store.insert_connector(&oauth).await.unwrap();
    assert!(store.credential_rejected("conn_1").await.unwrap());
    assert!(!store.credential_rejected("conn_1").await.unwrap());
    assert!(!store.credential_rejected("conn_2").await.unwrap(), "OAuth");
    assert!(!store.credential_rejected("conn_missing").await.unwrap());
    let marked = store.connector("conn_1").await.unwrap().unwrap();
    assert_eq!(
        (marked.status, marked.revision),
        (ConnectorStatus::NeedsReauthorization, 2)
    );
}

async fn deletes_answer_whether_there_was_one(store: Arc<dyn Store>) {
    store
        .insert_connector(&connector("conn_1", "alice", 1))
        .await
        .unwrap();
    assert!(store.delete_connector("conn_1").await.unwrap());
    assert!(!store.delete_connector("conn_1").await.unwrap());
    assert_eq!(store.connector("conn_1").await.unwrap(), None);
}

fn fields() -> Vec<ConnectorFieldSpec> {
    vec![ConnectorFieldSpec {
        name: "conn".to_owned(),
        kind: FieldKind::Multiple,
        rules: vec![ServerRule {
            url: "https://*.slack.com/*".to_owned(),
            tools: None,
        }],
    }]
}

fn actor(id: &str, at: i64) -> ActorRecord {
    ActorRecord {
        id: id.to_owned(),
        input_schema: serde_json::json!({"properties": {"conn": {"type": "string"}}}),
        connector_fields: fields(),
        created_at: at,
        updated_at: at,
    }
}

async fn actors_keep_their_first_creation_time(store: Arc<dyn Store>) {
    assert!(store.put_actor(&actor("a1", 5)).await.unwrap());
    let mut changed = actor("a1", 9);
    changed.connector_fields.clear();
    assert!(!store.put_actor(&changed).await.unwrap());
    let stored = store.actor("a1").await.unwrap().unwrap();
    assert_eq!((stored.created_at, stored.updated_at), (5, 9));
    assert!(stored.connector_fields.is_empty());
    assert_eq!(store.actor("a2").await.unwrap(), None);
}

async fn concurrent_puts_of_one_new_actor_all_succeed(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.put_actor(&actor("racing", i)).await })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        created += usize::from(task.await.unwrap().expect("no put fails"));
    }
    assert_eq!(created, 1, "exactly one put created the actor");
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

async fn runs_finish_once_and_keep_their_fields(store: Arc<dyn Store>) {
    for (id, fields) in [("run_pinned", Some(fields())), ("run_before_0002", None)] {
        let run = run(id, fields);
        store.insert_run(&run, &[id.len() as u8; 32]).await.unwrap();
        assert_eq!(store.run(id).await.unwrap(), Some(run));
    }
    assert!(matches!(
        store.insert_run(&run("run_pinned", None), &[1; 32]).await,
        Err(StoreError::Conflict(_))
    ));
    let by_hash = store.run_by_token_hash(&[10; 32]).await.unwrap().unwrap();
    assert_eq!(by_hash.id, "run_pinned");
    assert_eq!(store.run_by_token_hash(&[0; 32]).await.unwrap(), None);

    assert!(
        store
            .finish_run("run_pinned", RunStatus::Aborted, 7)
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_run("run_pinned", RunStatus::Succeeded, 8)
            .await
            .unwrap()
    );
    let finished = store.run("run_pinned").await.unwrap().unwrap();
    assert_eq!(
        (finished.status, finished.finished_at),
        (RunStatus::Aborted, Some(7))
    );
    assert!(!finished.is_live(2));
    assert!(matches!(
        store.finish_run("run_missing", RunStatus::Failed, 1).await,
        Err(StoreError::NotFound(_))
    ));
}

fn decision(at_ms: i64, run: &str, connector: &str, method: &str) -> AuditRecord {
    AuditRecord {
        at_ms,
        run: Some(run.to_owned()),
        connector: Some(connector.to_owned()),
        method: Some(method.to_owned()),
        tool: None,
        decision: "allow".to_owned(),
        reason: None,
        plugins: vec![Stamp {
            name: "access".into(),
            version: "0.1.0".into(),
            sha256: "ab".repeat(32).into(),
        }],
        ..AuditRecord::default()
    }
}

/// What was appended, without what the store adds (position and chain).
fn as_appended(records: Vec<AuditRecord>) -> Vec<AuditRecord> {
    records
        .into_iter()
        .map(|r| AuditRecord {
            seq: 0,
            prev_hash: None,
            hash: None,
            ..r
        })
        .collect()
}

async fn the_audit_reads_newest_first_with_filters(store: Arc<dyn Store>) {
    store.append_audit(&[]).await.unwrap();
    let records = [
        decision(1, "r1", "c1", "initialize"),
        AuditRecord {
            tool: Some("search".to_owned()),
            decision: "deny".to_owned(),
            reason: Some("not declared".to_owned()),
            plugins: Vec::new(),
            ..decision(2, "r1", "c2", "tools/call")
        },
        decision(3, "r2", "c1", "tools/list"),
    ];
    store.append_audit(&records).await.unwrap();
    let query = |run: Option<&str>, connector: Option<&str>, limit| AuditQuery {
        run: run.map(str::to_owned),
        connector: connector.map(str::to_owned),
        limit,
        ..AuditQuery::default()
    };
    let read = |query| {
        let store = store.clone();
        async move { as_appended(store.audit(&query).await.unwrap()) }
    };
    let mut newest_first = records.to_vec();
    newest_first.reverse();
    assert_eq!(read(query(None, None, 10)).await, newest_first);
    assert_eq!(
        read(query(Some("r1"), None, 10)).await,
        [records[1].clone(), records[0].clone()]
    );
    assert_eq!(
        read(query(Some("r1"), Some("c1"), 10)).await,
        [records[0].clone()]
    );
    assert_eq!(read(query(None, None, 1)).await, [records[2].clone()]);
    let by_plugin = AuditQuery {
        plugin: Some("access".to_owned()),
        ascending: true,
        ..query(None, None, 10)
    };
    assert_eq!(
        read(by_plugin).await,
        [records[0].clone(), records[2].clone()]
    );
    let denied = AuditQuery {
        decision: Some("deny".to_owned()),
        method: Some("tools/call".to_owned()),
        ..query(None, None, 10)
    };
    assert_eq!(read(denied).await, [records[1].clone()]);
    let window = AuditQuery {
        since_ms: Some(2),
        until_ms: Some(3),
        ..query(None, None, 10)
    };
    assert_eq!(read(window).await, [records[1].clone()]);

    // One chain, in order.
    let oldest_first = AuditQuery {
        ascending: true,
        ..query(None, None, 10)
    };
    let mut prev = crate::store::audit_chain::GENESIS.to_owned();
    for r in store.audit(&oldest_first).await.unwrap() {
        assert_eq!(r.prev_hash.as_deref(), Some(prev.as_str()));
        prev = r.hash.unwrap();
    }
}

/// A batch longer than one `INSERT` statement takes (and than one page of the
/// query) keeps its order and its single chain across statements.
async fn a_large_batch_is_appended_whole_in_order_on_one_chain(store: Arc<dyn Store>) {
    let records: Vec<AuditRecord> = (0..700)
        .map(|i| decision(i, &format!("r{}", i % 7), "c1", "tools/call"))
        .collect();
    store.append_audit(&records[..1]).await.unwrap();
    store.append_audit(&records[1..]).await.unwrap();
    let mut read = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .audit(&AuditQuery {
                ascending: true,
                after_seq: after,
                limit: 1000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        read.extend(page);
    }
    let mut prev = crate::store::audit_chain::GENESIS.to_owned();
    for r in &read {
        assert_eq!(r.prev_hash.as_deref(), Some(prev.as_str()), "seq {}", r.seq);
        prev = r.hash.clone().unwrap();
    }
    assert_eq!(as_appended(read), records);
}

async fn the_first_key_check_stays(store: Arc<dyn Store>) {
    assert_eq!(store.key_check().await.unwrap(), None);
    store.set_key_check(&[1, 2, 3]).await.unwrap();
    store.set_key_check(&[4, 5, 6]).await.unwrap();
    assert_eq!(store.key_check().await.unwrap(), Some(vec![1, 2, 3]));
}

async fn every_sealed_value_is_resealed_for_its_binding(store: Arc<dyn Store>) {
    let (key, secret, grant) = super::oauth::sealed_everything(store.as_ref()).await;
    let count = store
        .reseal_all(&|value: SealedValue<'_>| {
            let mut out = match value.binding {
                Binding::Connector { id, owner } => format!("{id}/{owner}:"),
                Binding::Registration { issuer } => format!("{issuer}:"),
                Binding::KeyCheck => "check:".to_owned(),
                Binding::Session { .. } => unreachable!("sessions are not stored"),
            }
            .into_bytes();
            out.extend_from_slice(value.sealed);
            Ok(out)
        })
        .await
        .unwrap();
    assert_eq!(
        count, 8,
        "secret; grant client secret, access and refresh token; pending client secret and \
         verifier; registration client secret and response"
    );
    let mut expected = b"check:".to_vec();
    expected.extend_from_slice(&key);
    assert_eq!(store.key_check().await.unwrap(), Some(expected));
    let connector = store.connector(&secret.0).await.unwrap().unwrap();
    let mut expected = format!("{}/{}:", secret.0, secret.1).into_bytes();
    expected.extend_from_slice(&secret.2);
    assert_eq!(connector.sealed_secret, Some(expected));
    let stored = store.grant(&grant.connector_id).await.unwrap().unwrap();
    assert!(
        stored
            .tokens
            .access_token
            .starts_with(grant.connector_id.as_bytes())
    );

    // A failing reseal changes nothing.
    let before = store.connector(&secret.0).await.unwrap();
    let failed = store
        .reseal_all(&|value: SealedValue<'_>| match value.binding {
            Binding::Registration { .. } => Err("refused".to_owned()),
            _ => Ok(b"changed".to_vec()),
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(store.connector(&secret.0).await.unwrap(), before);
}

async fn keys_holding_nul_find_nothing_and_audit_text_keeps_the_rest(store: Arc<dyn Store>) {
    assert_eq!(store.connector("conn\0x").await.unwrap(), None);
    assert!(store.connectors(Some("a\0")).await.unwrap().is_empty());
    assert_eq!(store.actor("a\0").await.unwrap(), None);
    assert_eq!(store.run("r\0").await.unwrap(), None);
    assert!(!store.delete_connector("c\0").await.unwrap());
    assert!(store.grant("c\0").await.unwrap().is_none());
    let hostile = decision(1, "r\0", "c1", "tools/\0call");
    store.append_audit(&[hostile]).await.unwrap();
    let read = store
        .audit(&AuditQuery {
            limit: 5,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(read[0].hash.is_some(), "chained");
    let method = read[0].method.as_deref().unwrap();
    assert!(
        method == "tools/\0call" || method == "tools/\u{FFFD}call",
        "{method:?}"
    );
}
