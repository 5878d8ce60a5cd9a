//! The admin API's surface: authentication, unknown routes, plugins, audit, and the
//! operational endpoints.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn every_route_needs_the_admin_token() {
    let h = Proxy::start().await;
    let demo = demo().await;
    let body = json!({"owner": "alice", "server_url": demo.url, "auth": {"method": "none"}});
    for token in [
        None,
        Some("wrong"),
        Some(""),
        Some("test-admin-token-012345678"),
    ] {
        for (method, path) in [
            (Method::POST, "/connectors"),
            (Method::GET, "/connectors"),
            (Method::DELETE, "/connectors/conn_x"),
            (Method::PUT, "/actors/a"),
            (Method::POST, "/runs"),
            (Method::GET, "/plugins"),
            (Method::GET, "/audit"),
            (Method::GET, "/no-such-route"),
        ] {
            let mut request = h
                .http
                .request(method.clone(), h.url(&format!("/admin/v1{path}")))
                .json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let answer = answer(response).await;
            assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
            assert!(!answer.1.to_string().contains(ADMIN_TOKEN));
        }
    }
    let response = h
        .http
        .get(h.url("/admin/v1/connectors"))
        .header("authorization", format!("Basic {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        h.connectors().await,
        json!([]),
        "nothing was created without the token"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let h = Proxy::start().await;
    assert_error(
        &h.api(Method::GET, "/nothing", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &h.api(Method::GET, "/connectors/a/b/c", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    for root in ["", "/"] {
        assert_error(
            &h.api(Method::GET, root, None).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
    assert_error(
        &h.api(Method::PUT, "/connectors", Some(json!({}))).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    assert_error(
        &h.api(Method::DELETE, "/runs", None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    assert_error(
        &h.api(Method::GET, "/connectors?owner=a&x=1", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_list_install_and_roll_back() {
    let h = Proxy::start().await;
    let (status, plugins) = h.api(Method::GET, "/plugins", None).await;
    assert_eq!(status, StatusCode::OK);
    let list = plugins.as_array().unwrap();
    assert_eq!(list.len(), portcullis_builtins::BUILTINS.len());
    for plugin in list {
        for key in ["name", "kind", "version", "sha256", "loaded_at", "previous"] {
            assert!(plugin.get(key).is_some(), "{key} missing in {plugin}");
        }
        assert_eq!(plugin["sha256"].as_str().unwrap().len(), 64);
        assert_eq!(plugin["previous"], Value::Null);
    }
    let bearer = list
        .iter()
        .find(|p| p["name"] == "provider-bearer")
        .unwrap()
        .clone();
    assert_eq!(bearer["kind"], "provider");

    let garbage = h
        .raw(Method::PUT, "/plugins/provider-bearer", "not a component")
        .await;
    assert_error(
        &garbage,
        StatusCode::UNPROCESSABLE_ENTITY,
        "plugin_rejected",
    );
    assert_error(
        &h.raw(Method::PUT, "/plugins/provider-bearer", "").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "plugin_rejected",
    );
    let (_, still) = h.api(Method::GET, "/plugins", None).await;
    assert_eq!(still, plugins, "a refused component changes nothing");
    assert_error(
        &h.oversized("PUT", "/plugins/provider-bearer", 33 << 20)
            .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    );

    // A policy component cannot take a provider's place.
    let kind_change = h.install("provider-bearer", "connector-access").await;
    assert_error(
        &kind_change,
        StatusCode::UNPROCESSABLE_ENTITY,
        "plugin_rejected",
    );

    assert_error(
        &h.api(Method::POST, "/plugins/provider-bearer/rollback", None)
            .await,
        StatusCode::CONFLICT,
        "no_previous_version",
    );
    assert_error(
        &h.api(Method::POST, "/plugins/nothing/rollback", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &h.api(Method::GET, "/plugins/nothing", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let (status, installed) = h.install("provider-bearer", "provider-bearer").await;
    assert_eq!(status, StatusCode::OK, "{installed}");
    assert_eq!(installed["name"], "provider-bearer");
    assert_eq!(installed["sha256"], bearer["sha256"]);
    assert_eq!(installed["builtin"], false);
    assert_eq!(installed["previous"]["sha256"], bearer["sha256"]);
    assert_eq!(installed["chains"], json!(["providers"]));
    let (status, shown) = h.api(Method::GET, "/plugins/provider-bearer", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["sha256"], installed["sha256"]);
    assert_eq!(
        shown["inspection"]["world"],
        "portcullis:plugin/provider-plugin"
    );
    assert_eq!(shown["inspection"]["sha256"], installed["sha256"]);
    assert!(shown["limits"]["cpu_deadline_ms"].as_u64().is_some());

    // The built-in's own bytes are the built-in's version: there is none to go back to.
    assert_error(
        &h.api(Method::POST, "/plugins/provider-bearer/rollback", None)
            .await,
        StatusCode::CONFLICT,
        "no_previous_version",
    );

    // The swapped-in provider still serves connectors.
    let demo = demo().await;
    h.add_connector("alice", &demo.url, Some("k")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_lists_data_plane_decisions() {
    let h = Proxy::start().await;
    let (status, empty) = h.api(Method::GET, "/audit", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty, json!([]));
    for query in [
        "?limit=0",
        "?limit=5000",
        "?limit=many",
        "?run=a&colour=red",
    ] {
        assert_error(
            &h.api(Method::GET, &format!("/audit{query}"), None).await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        );
    }

    let demo = demo().await;
    let conn = h.add_connector("alice", &demo.url, Some("sk-audit")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rules = json!([{"url": "*"}]);
    h.put_actor("auditor", json!({"c": {"title": "c", "description": "c", "type": "string", "resourceType": "mcpConnector", "mcpServers": rules}})).await;
    let run = h.run("auditor", "alice", json!({"c": conn})).await;
    let run_id = run.id.as_str();
    assert_eq!(h.mcp_initialize(&conn, &run.token).await, StatusCode::OK);

    // The data plane writes audit records in the background.
    let mut records = Value::Null;
    for _ in 0..50 {
        records = h
            .api(Method::GET, &format!("/audit?run={run_id}&limit=10"), None)
            .await
            .1;
        if !records.as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let first = &records.as_array().expect("records")[0];
    assert_eq!(first["run"], run_id);
    assert_eq!(first["connector"], conn.as_str());
    assert!(first["decision"].is_string());
    assert!(
        first["plugins"].as_array().is_some_and(|p| !p.is_empty()),
        "{first}"
    );
    let (_, other) = h.api(Method::GET, "/audit?run=run_other", None).await;
    assert_eq!(other, json!([]));
    let (_, by_connector) = h
        .api(
            Method::GET,
            &format!("/audit?connector={conn}&limit=1"),
            None,
        )
        .await;
    assert_eq!(by_connector.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_metrics_endpoints() {
    let h = Proxy::start().await;
    let health = h.http.get(h.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    h.api(Method::GET, "/connectors", None).await;
    h.api(Method::GET, "/nothing", None).await;
    let metrics = h.http.get(h.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("portcullis_admin_requests_total{status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("portcullis_admin_requests_total{status=\"404\"} 1"),
        "{text}"
    );
}
