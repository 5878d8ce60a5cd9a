//! Operating plugins: the chain configuration changed live (validated, audited, kept
//! across a restart, under load without a failed request or a lost session), every
//! installed version kept, rolled back to and deleted, and provenance refusals.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use portcullis_test_upstreams as upstreams;
use portcullis_test_upstreams::wire;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

/// `wasm` with a custom section appended: valid, with another digest.
fn variant(wasm: &[u8], tag: u8) -> Vec<u8> {
    let name = b"portcullis-test-variant";
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.push(tag);
    let mut bytes = wasm.to_vec();
    bytes.push(0);
    bytes.push(section.len() as u8);
    bytes.extend_from_slice(&section);
    bytes
}

fn access_wasm(tag: u8) -> Vec<u8> {
    variant(
        portcullis_builtins::builtin("connector-access")
            .unwrap()
            .wasm,
        tag,
    )
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

async fn admin_records(proxy: &Proxy, action: &str, count: usize) -> Vec<Value> {
    for _ in 0..200 {
        let (_, records) = proxy
            .api(Method::GET, "/audit?kind=admin&limit=1000", None)
            .await;
        let found: Vec<Value> = records
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == action)
            .cloned()
            .collect();
        if found.len() >= count {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("fewer than {count} audit records of {action}");
}

/// `GET /plugins/{name}/versions`.
async fn versions(proxy: &Proxy, name: &str) -> Vec<Value> {
    let path = format!("/plugins/{name}/versions");
    let (status, answer) = proxy.api(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["versions"].as_array().unwrap().clone()
}

/// The request chain with declared-tools' settings naming `methods`.
fn chains_with(methods: &[&str]) -> Value {
    json!({
        "access": ["connector-access"],
        "request": [{"plugin": "declared-tools", "settings": {"allow_methods": methods}}, "connector-allowlist"],
        "tools": ["declared-tools", "connector-allowlist"],
        "providers": {"bearer": "provider-bearer", "sentry": "provider-sentry", "github": "provider-github"}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_request_chain_changes_under_load_without_a_failure_and_survives_a_restart() {
    let upstream = upstreams::sessions().await;
    let s = Arc::new(Scenario::on(&upstream.url()).start().await);
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            let stop = stop.clone();
            let calls = calls.clone();
            tokio::spawn(async move {
                let session = s.initialize().await;
                let mut id = 10;
                while !stop.load(Ordering::Relaxed) {
                    id += 1;
                    let body = wire::call_tool(id, "list_channels", json!({}));
                    let answer = s
                        .env
                        .post(&s.conn, Some(&s.run.token), Some(&session), &body)
                        .await;
                    assert_eq!(answer.status, 200, "{}", answer.text);
                    let response = answer.response(id);
                    assert!(response.get("result").is_some(), "{response}");
                    calls.fetch_add(1, Ordering::Relaxed);
                }
                session
            })
        })
        .collect();

    let wait_for = |target: usize| {
        let calls = calls.clone();
        let clients = &clients;
        async move {
            while calls.load(Ordering::Relaxed) < target {
                // A client that stopped has failed: its panic is reported at its join.
                if clients
                    .iter()
                    .any(|c: &tokio::task::JoinHandle<_>| c.is_finished())
                {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    };
    wait_for(8).await;
    let mut last = Value::Null;
    for round in 0..12 {
        let methods: &[&str] = if round % 2 == 0 {
            &["resources/*"]
        } else {
            &["prompts/*"]
        };
        let (status, answer) = s
            .env
            .api(Method::PUT, "/chains", Some(chains_with(methods)))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer, chains_with(methods));
        last = answer;
    }
    let during = calls.load(Ordering::Relaxed);
    wait_for(during + 8).await;
    stop.store(true, Ordering::Relaxed);
    let mut sessions = Vec::new();
    for client in clients {
        sessions.push(client.await.expect("no request failed"));
    }
    // Every session still works after the changes.
    for (i, session) in sessions.iter().enumerate() {
        let id = 1000 + i as i64;
        let body = wire::call_tool(id, "list_channels", json!({}));
        let answer = s
            .env
            .post(&s.conn, Some(&s.run.token), Some(session), &body)
            .await;
        assert!(
            answer.response(id).get("result").is_some(),
            "{}",
            answer.text
        );
    }
    admin_records(&s.env, "chains.set", 12).await;

    let s = Arc::into_inner(s).expect("the clients are done");
    let Proxy { server, dir, .. } = s.env;
    server.shutdown().await;
    let restarted = Proxy::on(config(dir.path()), dir).await;
    let (_, chains) = restarted.api(Method::GET, "/chains", None).await;
    assert_eq!(chains, last, "the chains survive a restart");
    restarted.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chain_configuration_is_checked_before_it_serves_and_every_change_is_audited() {
    let upstream = upstreams::sessions().await;
    let s = Scenario::on(&upstream.url()).start().await;
    let h = &s.env;
    let (_, before) = h.api(Method::GET, "/chains", None).await;
    let mut unknown = before.clone();
    unknown["request"] = json!(["nope"]);
    let mut wrong_kind = before.clone();
    wrong_kind["access"] = json!(["provider-bearer"]);
    let mut bad_settings = before.clone();
    bad_settings["request"] =
        json!([{"plugin": "declared-tools", "settings": {"allow_methods": 5}}]);
    let mut no_provider = before.clone();
    no_provider["providers"] = json!({"sentry": "provider-sentry"});
    for body in [unknown, wrong_kind, bad_settings, no_provider] {
        let answer = h.api(Method::PUT, "/chains", Some(body.clone())).await;
        assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_chains");
    }
    let misspelt = json!({"request": [{"plugin": "declared-tools", "setings": {}}]});
    let (status, _) = h.api(Method::PUT, "/chains", Some(misspelt)).await;
    assert!(status.is_client_error());
    let (_, after) = h.api(Method::GET, "/chains", None).await;
    assert_eq!(after, before, "a refused configuration changes nothing");

    let (status, _) = h
        .api(Method::PUT, "/chains", Some(chains_with(&["resources/*"])))
        .await;
    assert_eq!(status, StatusCode::OK);
    let records = admin_records(h, "chains.set", 5).await;
    let allowed: Vec<&Value> = records
        .iter()
        .filter(|r| r["decision"] == "allow")
        .collect();
    assert_eq!(allowed.len(), 1);
    let record = allowed[0];
    assert!(record["actor"].as_str().unwrap().starts_with("admin:"));
    assert_eq!(record["actor"].as_str().unwrap().len(), "admin:".len() + 16);
    let after: Value = serde_json::from_str(record["after"].as_str().unwrap()).unwrap();
    assert_eq!(after, chains_with(&["resources/*"]));
    let before_text: Value = serde_json::from_str(record["before"].as_str().unwrap()).unwrap();
    assert_eq!(before_text, before);
    assert_eq!(records.len() - 1, 4, "each refusal is audited: {records:?}");
    let text = serde_json::to_string(&records).unwrap();
    assert!(!text.contains(ADMIN_TOKEN), "the admin token never appears");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_version_is_kept_rolled_back_to_and_deleted_and_survives_a_restart() {
    let h = Proxy::start_with(|c| c.plugins.keep_versions = 3).await;
    let [v1, v2, v3, v4] = [1, 2, 3, 4].map(access_wasm);
    for wasm in [&v1, &v2, &v1] {
        let (status, answer) = h.raw(Method::PUT, "/plugins/extra", wasm.clone()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let listed = versions(&h, "extra").await;
    assert_eq!(
        listed.len(),
        2,
        "the same bytes twice are one version: {listed:?}"
    );
    let find =
        |list: &[Value], sha: &str| list.iter().find(|v| v["sha256"] == sha).cloned().unwrap();
    assert_eq!(find(&listed, &sha256(&v1))["current"], true);
    assert_eq!(
        find(&listed, &sha256(&v2))["previous"],
        true,
        "uploading v1 again keeps v2 as the rollback target"
    );
    assert!(
        find(&listed, &sha256(&v1))["installed_at"]
            .as_i64()
            .unwrap()
            > 0
    );

    let (status, rolled) = h.api(Method::POST, "/plugins/extra/rollback", None).await;
    assert_eq!(status, StatusCode::OK, "{rolled}");
    assert_eq!(rolled["sha256"], sha256(&v2));
    let body = json!({"sha256": sha256(&v1)});
    let (_, rolled) = h
        .api(Method::POST, "/plugins/extra/rollback", Some(body))
        .await;
    assert_eq!(rolled["sha256"], sha256(&v1));
    assert_error(
        &h.api(
            Method::POST,
            "/plugins/extra/rollback",
            Some(json!({"sha256": "00"})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // Bounded: at most keep_versions are kept, the serving and the previous among them.
    for wasm in [&v3, &v4] {
        h.raw(Method::PUT, "/plugins/extra", wasm.clone()).await;
    }
    let listed = versions(&h, "extra").await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert_eq!(find(&listed, &sha256(&v4))["current"], true);
    assert_eq!(find(&listed, &sha256(&v3))["previous"], true);

    // In a chain: refused, naming the chain; the list says which chains use it.
    let (_, mut chains) = h.api(Method::GET, "/chains", None).await;
    chains["access"]
        .as_array_mut()
        .unwrap()
        .push(json!("extra"));
    let (status, _) = h.api(Method::PUT, "/chains", Some(chains.clone())).await;
    assert_eq!(status, StatusCode::OK);
    let in_use = h.api(Method::DELETE, "/plugins/extra", None).await;
    assert_error(&in_use, StatusCode::CONFLICT, "plugin_in_use");
    assert!(
        in_use.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("access")
    );
    let (_, list) = h.api(Method::GET, "/plugins", None).await;
    let extra = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "extra")
        .unwrap();
    assert_eq!(extra["chains"], json!(["access"]));

    // A restart keeps the chains, the versions and the serving version.
    let Proxy { server, dir, .. } = h;
    server.shutdown().await;
    let mut restarted = config(dir.path());
    restarted.plugins.keep_versions = 3;
    let h = Proxy::on(restarted, dir).await;
    let digests =
        |list: &[Value]| -> Vec<Value> { list.iter().map(|v| v["sha256"].clone()).collect() };
    assert_eq!(digests(&versions(&h, "extra").await), digests(&listed));
    let (_, shown) = h.api(Method::GET, "/plugins/extra", None).await;
    assert_eq!(shown["sha256"], sha256(&v4));
    assert_eq!(shown["chains"], json!(["access"]));

    chains["access"] = json!(["connector-access"]);
    h.api(Method::PUT, "/chains", Some(chains)).await;
    let (status, _) = h.api(Method::DELETE, "/plugins/extra", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_error(
        &h.api(Method::GET, "/plugins/extra", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    admin_records(&h, "plugin.delete", 2).await;
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unsigned_and_mismatched_components_are_refused_and_audited() {
    let key = include_str!("../../../runtime/tests/vectors/minisign.pub");
    let h = Proxy::start_with(|c| {
        c.plugins.require_signature = true;
        c.plugins.trusted_keys = vec![key.to_owned()];
    })
    .await;
    let wasm = access_wasm(1);
    let unsigned = h.raw(Method::PUT, "/plugins/extra", wasm.clone()).await;
    assert_error(
        &unsigned,
        StatusCode::UNPROCESSABLE_ENTITY,
        "plugin_rejected",
    );
    assert_eq!(unsigned.1["error"]["reason"], "signature_required");

    let pinned = format!("/plugins/extra?sha256={}", "0".repeat(64));
    let mismatch = h.raw(Method::PUT, &pinned, wasm.clone()).await;
    assert_eq!(mismatch.1["error"]["reason"], "digest_mismatch");

    // A signature over other bytes: the key is trusted, the signature does not verify.
    let other = include_str!("../../../runtime/tests/vectors/message.txt.minisig");
    let encoded: String = url::form_urlencoded::byte_serialize(
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, other).as_bytes(),
    )
    .collect();
    let forged = h
        .raw(
            Method::PUT,
            &format!("/plugins/extra?signature={encoded}"),
            wasm,
        )
        .await;
    assert_eq!(forged.1["error"]["reason"], "signature_invalid");

    let records = admin_records(&h, "plugin.install", 3).await;
    let mut reasons: Vec<&str> = records
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        ["digest_mismatch", "signature_invalid", "signature_required"]
    );
    assert!(records.iter().all(|r| r["decision"] == "deny"));
    assert_error(
        &h.api(Method::GET, "/plugins/extra", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    h.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shadow_disagrees_on_exactly_the_deletes_and_never_answers() {
    let upstream = upstreams::sessions().await;
    // The run declares every tool but delete_channel.
    let declared = json!({"required": ["list_*", "get_*", "send_*", "archive_*"]});
    let s = Scenario::on(&upstream.url())
        .tools(declared)
        .session()
        .start()
        .await;
    let h = &s.env;
    // Live: connector-allowlist alone decides requests (the connector allows every tool).
    let (_, mut chains) = h.api(Method::GET, "/chains", None).await;
    chains["request"] = json!(["connector-allowlist"]);
    chains["tools"] = json!([]);
    let (status, answer) = h.api(Method::PUT, "/chains", Some(chains)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // The candidate: declared-tools' component in the shadow of connector-allowlist; it
    // denies what the run did not declare, delete_channel.
    let candidate = portcullis_builtins::builtin("declared-tools").unwrap().wasm;
    let (status, report) = h
        .raw(
            Method::PUT,
            "/plugins/connector-allowlist/shadow",
            candidate.to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["candidate"]["sha256"], sha256(candidate));

    let tools = [
        "list_channels",
        "delete_channel",
        "send_message",
        "delete_channel",
        "get_channel",
        "delete_channel",
    ];
    for (i, tool) in tools.iter().enumerate() {
        let id = 10 + i as i64;
        let answer = s.call(id, tool, json!({"channel": "c1"})).await;
        let response = answer.response(id);
        assert!(
            response.get("result").is_some(),
            "{tool}: the live plugin answers: {response}"
        );
    }
    let report = loop {
        let (_, report) = h
            .api(Method::GET, "/plugins/connector-allowlist/shadow", None)
            .await;
        let seen =
            report["agreements"].as_u64().unwrap() + report["disagreements"].as_u64().unwrap();
        if seen >= tools.len() as u64 {
            break report;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(report["disagreements"], 3, "{report}");
    assert_eq!(report["agreements"], 3, "{report}");
    let samples = report["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 3);
    for sample in samples {
        assert_eq!(sample["tool"], "delete_channel");
        assert_eq!(sample["method"], "tools/call");
        assert_eq!(sample["live"]["decision"], "allow");
        assert_eq!(sample["candidate"]["decision"], "deny");
    }
    assert!(
        !report.to_string().contains("c1"),
        "no arguments in samples"
    );

    // Every answer came from the live plugin: the audit names its digest.
    let (_, live) = h
        .api(Method::GET, "/plugins/connector-allowlist", None)
        .await;
    let mut records = Vec::new();
    for _ in 0..200 {
        records = s.env.audit_once(&s.run, |_| true).await;
        records.retain(|r| r["method"] == "tools/call");
        if records.len() == tools.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let calls: Vec<&Value> = records.iter().collect();
    assert_eq!(calls.len(), tools.len());
    for record in calls {
        assert_eq!(record["decision"], "allow");
        let stamps = record["plugins"].as_array().unwrap();
        assert!(
            stamps.iter().any(|p| p["name"] == "connector-access"),
            "access named: {record}"
        );
        assert!(
            stamps.iter().any(|p| p["sha256"] == live["sha256"]),
            "{record}"
        );
        assert!(
            !stamps
                .iter()
                .any(|p| p["sha256"] == report["candidate"]["sha256"])
        );
    }

    let (status, promoted) = h
        .api(
            Method::POST,
            "/plugins/connector-allowlist/shadow/promote",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{promoted}");
    assert_eq!(promoted["sha256"], sha256(candidate));
    let denied = s.call(99, "delete_channel", json!({})).await;
    assert!(
        denied.response(99).get("error").is_some(),
        "the promoted version decides"
    );
    assert_error(
        &h.api(Method::GET, "/plugins/connector-allowlist/shadow", None)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}
