//! `/admin/v1/connectors` against a real server, a real SQLite file and real upstreams.

use std::sync::{Arc, Mutex};

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const DEMO_TOOLS: [&str; 7] = [
    "create_item",
    "delete_item",
    "get_item",
    "list_items",
    "send_message",
    "update_item",
    "whoami",
];

#[tokio::test(flavor = "multi_thread")]
async fn create_show_list_restrict_and_delete() {
    let h = Proxy::start().await;
    let demo = demo().await;
    let created = h.add_connector("alice", &demo.url, Some("sk-demo")).await;

    let mut keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "allowed_tools",
            "authorized_at",
            "created_at",
            "id",
            "name",
            "owner",
            "provider",
            "server_url",
            "status",
            "tools"
        ]
    );
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("conn_"), "{id}");
    assert_eq!(created["owner"], "alice");
    assert_eq!(created["name"], "127.0.0.1");
    assert_eq!(created["provider"], "bearer");
    assert_eq!(created["status"], "authorized");
    assert_eq!(created["server_url"], demo.url.as_str());
    assert_eq!(created["allowed_tools"], Value::Null);
    let mut names = tool_names(&created);
    names.sort();
    assert_eq!(names, DEMO_TOOLS);
    let delete = created["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "delete_item")
        .unwrap();
    assert_eq!(delete["annotations"]["destructiveHint"], true);
    assert!(delete["description"].as_str().unwrap().contains("Delete"));
    let send = created["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "send_message")
        .unwrap();
    assert!(
        send.get("annotations")
            .is_none_or(|a| a.get("readOnlyHint").is_none()),
        "{send}"
    );

    let (status, shown) = h.api(Method::GET, &format!("/connectors/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown, created);

    h.add_connector("bob", &demo.url, None).await;
    let (_, alice) = h.api(Method::GET, "/connectors?owner=alice", None).await;
    assert_eq!(alice.as_array().unwrap().len(), 1);
    assert_eq!(alice[0]["id"], id);
    assert_eq!(h.connectors().await.as_array().unwrap().len(), 2);
    let (_, nobody) = h.api(Method::GET, "/connectors?owner=carol", None).await;
    assert_eq!(nobody, json!([]));

    let (status, patched) = h
        .api(
            Method::PATCH,
            &format!("/connectors/{id}"),
            Some(json!({"allowed_tools": ["list_items", "whoami", "list_items"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["allowed_tools"], json!(["list_items", "whoami"]));

    let refused = h
        .api(
            Method::PATCH,
            &format!("/connectors/{id}"),
            Some(json!({"allowed_tools": ["list_items", "drop_table"]})),
        )
        .await;
    assert_error(&refused, StatusCode::UNPROCESSABLE_ENTITY, "unknown_tools");
    assert!(
        refused.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("drop_table")
    );
    let (_, unchanged) = h.api(Method::GET, &format!("/connectors/{id}"), None).await;
    assert_eq!(unchanged["allowed_tools"], json!(["list_items", "whoami"]));

    let (_, renamed) = h
        .api(
            Method::PATCH,
            &format!("/connectors/{id}"),
            Some(json!({"name": "Demo"})),
        )
        .await;
    assert_eq!(renamed["name"], "Demo");
    assert_eq!(
        renamed["allowed_tools"],
        json!(["list_items", "whoami"]),
        "a name change keeps the allowlist"
    );
    let (_, cleared) = h
        .api(
            Method::PATCH,
            &format!("/connectors/{id}"),
            Some(json!({"allowed_tools": null})),
        )
        .await;
    assert_eq!(cleared["allowed_tools"], Value::Null);
    assert_error(
        &h.api(
            Method::PATCH,
            &format!("/connectors/{id}"),
            Some(json!({"allowed_tools": "all"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    );
    assert_error(
        &h.api(
            Method::PATCH,
            &format!("/connectors/{id}"),
            Some(json!({"name": ""})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_error(
        &h.api(
            Method::PATCH,
            "/connectors/conn_missing",
            Some(json!({"name": "x"})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let (status, body) = h
        .api(Method::DELETE, &format!("/connectors/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    assert_error(
        &h.api(Method::GET, &format!("/connectors/{id}"), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &h.api(Method::DELETE, &format!("/connectors/{id}"), None)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(h.connectors().await.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_create_requests_change_nothing() {
    let h = Proxy::start().await;
    let demo = demo().await;
    let locked = demo_requiring("right-token").await;
    let html = html_upstream().await;
    let closed = closed_url().await;
    let valid =
        |url: &str| json!({"owner": "alice", "server_url": url, "auth": {"method": "none"}});

    let cases: Vec<(&str, (StatusCode, Value), StatusCode, &str)> = vec![
        ("malformed JSON", h.raw(Method::POST, "/connectors", "{\"owner\": ").await, StatusCode::BAD_REQUEST, "malformed_json"),
        ("not an object", h.raw(Method::POST, "/connectors", "[1, 2]").await, StatusCode::BAD_REQUEST, "invalid_body"),
        ("unknown field", h.api(Method::POST, "/connectors", Some(json!({"owner": "a", "server_url": demo.url, "auth": {"method": "none"}, "colour": "red"}))).await, StatusCode::BAD_REQUEST, "invalid_body"),
        ("unknown auth field", h.api(Method::POST, "/connectors", Some(json!({"owner": "a", "server_url": demo.url, "auth": {"method": "none", "scope": "x"}}))).await, StatusCode::BAD_REQUEST, "invalid_body"),
        ("wrong type", h.api(Method::POST, "/connectors", Some(json!({"owner": 5, "server_url": demo.url, "auth": {"method": "none"}}))).await, StatusCode::BAD_REQUEST, "invalid_body"),
        ("missing auth", h.api(Method::POST, "/connectors", Some(json!({"owner": "a", "server_url": demo.url}))).await, StatusCode::BAD_REQUEST, "invalid_body"),
        ("unknown method", h.api(Method::POST, "/connectors", Some(json!({"owner": "a", "server_url": demo.url, "auth": {"method": "password"}}))).await, StatusCode::BAD_REQUEST, "invalid_body"),
        ("oversized body", h.oversized("POST", "/connectors", 5 << 20).await, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        ("ftp URL", h.api(Method::POST, "/connectors", Some(valid("ftp://example.com/mcp"))).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_server_url"),
        ("not a URL", h.api(Method::POST, "/connectors", Some(valid("mcp.example.com"))).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_server_url"),
        ("credentials in the URL", h.api(Method::POST, "/connectors", Some(valid(&demo.url.replace("://", "://user:wrong-token@")))).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_server_url"),
        ("port 0", h.api(Method::POST, "/connectors", Some(valid("http://127.0.0.1:0/mcp"))).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_server_url"),
        ("IPv6 zone id", h.api(Method::POST, "/connectors", Some(valid("http://[fe80::1%25lo]:9/mcp"))).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_server_url"),
        ("cleartext to a public host", h.api(Method::POST, "/connectors", Some(valid("http://1.1.1.1/mcp"))).await, StatusCode::UNPROCESSABLE_ENTITY, "server_url_refused"),
        ("unknown provider", h.api(Method::POST, "/connectors", Some(json!({"owner": "a", "server_url": demo.url, "provider": "gitlab", "auth": {"method": "none"}}))).await, StatusCode::UNPROCESSABLE_ENTITY, "unknown_provider"),
        ("api key without secret", h.api(Method::POST, "/connectors", Some(json!({"owner": "a", "server_url": demo.url, "auth": {"method": "api_key"}}))).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        ("none with secret", h.api(Method::POST, "/connectors", Some(json!({"owner": "a", "server_url": demo.url, "auth": {"method": "none", "secret": "s"}}))).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        ("blank owner", h.api(Method::POST, "/connectors", Some(json!({"owner": " ", "server_url": demo.url, "auth": {"method": "none"}}))).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        ("config not an object", h.api(Method::POST, "/connectors", Some(json!({"owner": "a", "server_url": demo.url, "auth": {"method": "none"}, "config": [1]}))).await, StatusCode::BAD_REQUEST, "invalid_body"),
        ("unknown field before a syntax error", h.raw(Method::POST, "/connectors", "{\"bogus\": 1,,, this is not JSON").await, StatusCode::BAD_REQUEST, "malformed_json"),
        ("missing field before trailing garbage", h.raw(Method::POST, "/connectors", "{} trailing").await, StatusCode::BAD_REQUEST, "malformed_json"),
        ("unreachable upstream", h.api(Method::POST, "/connectors", Some(valid(&closed))).await, StatusCode::UNPROCESSABLE_ENTITY, "upstream_unreachable"),
        ("unresolvable host", h.api(Method::POST, "/connectors", Some(valid("https://no-such-host.invalid/mcp"))).await, StatusCode::UNPROCESSABLE_ENTITY, "upstream_unreachable"),
        ("not MCP", h.api(Method::POST, "/connectors", Some(valid(&html.url))).await, StatusCode::UNPROCESSABLE_ENTITY, "upstream_not_mcp"),
        ("wrong path", h.api(Method::POST, "/connectors", Some(valid(&demo.url.replace("/mcp", "/nope")))).await, StatusCode::UNPROCESSABLE_ENTITY, "upstream_not_mcp"),
        ("upstream 401", h.api(Method::POST, "/connectors", Some(json!({"owner": "a", "server_url": locked.url, "auth": {"method": "api_key", "secret": "wrong-token"}}))).await, StatusCode::UNPROCESSABLE_ENTITY, "upstream_unauthorized"),
        ("upstream 401 without credential", h.api(Method::POST, "/connectors", Some(valid(&locked.url))).await, StatusCode::UNPROCESSABLE_ENTITY, "upstream_unauthorized"),
    ];
    for (name, answer, status, code) in &cases {
        assert_eq!(answer.0, *status, "{name}: {}", answer.1);
        assert_error(answer, *status, code);
        let message = answer.1["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains("wrong-token"),
            "{name} leaks the secret: {message}"
        );
    }
    assert_eq!(h.connectors().await, json!([]));
    assert_eq!(h.count("connectors").await, 0);

    // The locked demo accepts the right token, which proves the 401 above was the key's.
    h.add_connector("alice", &locked.url, Some("right-token"))
        .await;
    assert_eq!(h.count("connectors").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stored_url_is_normalized() {
    let h = Proxy::start().await;
    let demo = demo().await;
    let given = format!(
        "{}#fragment",
        demo.url
            .replace("http://", "HTTP://")
            .replace("/mcp", "/x/../mcp")
    );
    let created = h.add_connector("alice", &given, None).await;
    assert_eq!(created["server_url"], demo.url.as_str());
    let (_, shown) = h
        .api(
            Method::GET,
            &format!("/connectors/{}", created["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(shown["server_url"], demo.url.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn ssrf_check_refuses_private_targets_by_default() {
    let h = Proxy::start_with(|c| c.upstream.allow_private = false).await;
    let demo = demo().await;
    for url in [
        "https://169.254.169.254/mcp".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        demo.url.clone(),
        demo.url.replace("127.0.0.1", "localhost"),
        "http://[::1]:9/mcp".to_owned(),
        "http://10.0.0.5/mcp".to_owned(),
        "https://[::ffff:127.0.0.1]:9/mcp".to_owned(),
        "https://[64:ff9b::a9fe:a9fe]/mcp".to_owned(),
        "https://[fd00:ec2::254]/mcp".to_owned(),
        "https://100.100.100.200/mcp".to_owned(),
        "http://1.1.1.1/mcp".to_owned(),
    ] {
        let answer = h
            .api(
                Method::POST,
                "/connectors",
                Some(json!({"owner": "a", "server_url": url, "auth": {"method": "none"}})),
            )
            .await;
        assert_error(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "server_url_refused",
        );
        assert!(
            answer.1["error"]["message"]
                .as_str()
                .unwrap()
                .contains("PORTCULLIS_ALLOW_PRIVATE_UPSTREAMS")
        );
    }
    assert_eq!(h.connectors().await, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_follows_every_page_and_reauthorization_keeps_the_allowlist() {
    let h = Proxy::start().await;
    let script = Arc::new(Mutex::new(Script {
        tools: ["a", "b", "c", "d", "e"].map(String::from).to_vec(),
        page_size: 2,
        ..Script::default()
    }));
    let upstream = scripted_upstream(script.clone()).await;
    let created = h
        .add_connector("alice", &upstream.url, Some("key-one"))
        .await;
    assert_eq!(tool_names(&created), ["a", "b", "c", "d", "e"]);
    assert!(
        script
            .lock()
            .unwrap()
            .seen_auth
            .iter()
            .all(|a| a == "Bearer key-one")
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, restricted) = h
        .api(
            Method::PATCH,
            &format!("/connectors/{id}"),
            Some(json!({"allowed_tools": ["a", "b", "c"]})),
        )
        .await;
    assert_eq!(restricted["allowed_tools"], json!(["a", "b", "c"]));

    // The upstream drops `b` and adds `f`.
    script.lock().unwrap().tools = ["a", "c", "d", "e", "f"].map(String::from).to_vec();
    script.lock().unwrap().seen_auth.clear();
    let (status, again) = h
        .api(Method::POST, &format!("/connectors/{id}/reauthorize"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(tool_names(&again), ["a", "c", "d", "e", "f"]);
    assert_eq!(
        again["allowed_tools"],
        json!(["a", "c"]),
        "b is gone and f is not added (AUTH-9)"
    );
    assert!(again["authorized_at"].as_i64() >= created["authorized_at"].as_i64());
    assert!(
        script
            .lock()
            .unwrap()
            .seen_auth
            .iter()
            .all(|a| a == "Bearer key-one"),
        "the stored key is reused"
    );

    // A new key replaces the stored one.
    script.lock().unwrap().seen_auth.clear();
    let (status, rekeyed) = h
        .api(
            Method::POST,
            &format!("/connectors/{id}/reauthorize"),
            Some(json!({"auth": {"method": "api_key", "secret": "key-two"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rekeyed}");
    assert!(
        script
            .lock()
            .unwrap()
            .seen_auth
            .iter()
            .all(|a| a == "Bearer key-two")
    );
    script.lock().unwrap().seen_auth.clear();
    h.api(
        Method::POST,
        &format!("/connectors/{id}/reauthorize"),
        Some(json!({})),
    )
    .await;
    assert!(
        script
            .lock()
            .unwrap()
            .seen_auth
            .iter()
            .all(|a| a == "Bearer key-two")
    );

    // Without an allowlist, new tools are visible after re-authorization.
    h.api(
        Method::PATCH,
        &format!("/connectors/{id}"),
        Some(json!({"allowed_tools": null})),
    )
    .await;
    script.lock().unwrap().tools.push("g".to_owned());
    let (_, open) = h
        .api(Method::POST, &format!("/connectors/{id}/reauthorize"), None)
        .await;
    assert_eq!(open["allowed_tools"], Value::Null);
    assert!(tool_names(&open).contains(&"g".to_owned()));

    // A failed re-authorization changes nothing.
    let before = h.connectors().await;
    drop(upstream);
    let failed = h
        .api(Method::POST, &format!("/connectors/{id}/reauthorize"), None)
        .await;
    assert_error(
        &failed,
        StatusCode::UNPROCESSABLE_ENTITY,
        "upstream_unreachable",
    );
    let bad_body = h
        .api(
            Method::POST,
            &format!("/connectors/{id}/reauthorize"),
            Some(json!({"secret": "x"})),
        )
        .await;
    assert_error(&bad_body, StatusCode::BAD_REQUEST, "invalid_body");
    assert_eq!(h.connectors().await, before);
    assert_error(
        &h.api(Method::POST, "/connectors/conn_missing/reauthorize", None)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reauthorize_with_a_rejected_key_keeps_the_old_one() {
    let h = Proxy::start().await;
    let locked = demo_requiring("good").await;
    let created = h.add_connector("alice", &locked.url, Some("good")).await;
    let id = created["id"].as_str().unwrap();
    let answer = h
        .api(
            Method::POST,
            &format!("/connectors/{id}/reauthorize"),
            Some(json!({"auth": {"method": "api_key", "secret": "bad"}})),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "upstream_unauthorized",
    );
    let (status, _) = h
        .api(Method::POST, &format!("/connectors/{id}/reauthorize"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "the stored key still works");
}
