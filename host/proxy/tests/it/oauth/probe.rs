//! `POST /admin/v1/connectors/probe` (AUTH-2) on the four kinds of server an owner meets.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::*;

async fn probe(h: &Proxy, url: &str) -> (StatusCode, Value) {
    h.api(
        Method::POST,
        "/connectors/probe",
        Some(json!({"server_url": url})),
    )
    .await
}

fn methods(report: &Value) -> Vec<String> {
    report["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| match m["registration"].as_str() {
            Some(r) => format!("{}:{r}", m["method"].as_str().unwrap()),
            None => m["method"].as_str().unwrap().to_owned(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn open_and_api_key_servers() {
    let h = Proxy::start().await;
    let open = demo().await;
    let (status, report) = probe(&h, &open.url).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["auth_required"], false);
    assert_eq!(methods(&report), ["none", "api_key"]);
    assert_eq!(report["authorization_server"], Value::Null);
    assert_eq!(report["pkce_supported"], false);

    let locked = demo_requiring("right-token").await;
    let (status, report) = probe(&h, &locked.url).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["auth_required"], true);
    assert_eq!(methods(&report), ["api_key"]);
    assert_eq!(report["authorization_server"], Value::Null);
    assert_eq!(report["resource"], Value::Null);

    assert_error(
        &probe(&h, &closed_url().await).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "upstream_unreachable",
    );
    assert_error(
        &probe(&h, "ftp://x/mcp").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_server_url",
    );
    let html = html_upstream().await;
    assert_error(
        &probe(&h, &html.url).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "upstream_not_mcp",
    );
    let unknown = h
        .api(
            Method::POST,
            "/connectors/probe",
            Some(json!({"server_url": open.url, "x": 1})),
        )
        .await;
    assert_error(&unknown, StatusCode::BAD_REQUEST, "invalid_body");
    assert_eq!(h.count("connectors").await, 0, "a probe stores nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oauth_server() {
    let pair = peers().await;
    let h = Proxy::start().await;
    let (status, report) = probe(&h, &pair.mcp_url).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["server_url"], pair.mcp_url);
    assert_eq!(report["auth_required"], true);
    assert_eq!(methods(&report), ["api_key", "oauth:dynamic", "oauth:own"]);
    assert_eq!(report["resource"], pair.mcp_url);
    assert_eq!(report["scopes"], json!(["mcp:tools"]));
    assert_eq!(report["pkce_supported"], true);
    let server = &report["authorization_server"];
    assert_eq!(server["issuer"], pair.issuer);
    assert_eq!(server["token_endpoint"], format!("{}/token", pair.issuer));
    assert_eq!(
        server["registration_endpoint"],
        format!("{}/reg", pair.issuer)
    );
    assert_eq!(
        server["revocation_endpoint"],
        format!("{}/token/revocation", pair.issuer)
    );
    assert_eq!(
        server["authorization_response_iss_parameter_supported"],
        true
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_pkce_s256_dynamic_registration_is_not_offered() {
    let pair = peers_without_pkce().await;
    let h = Proxy::start().await;
    let (status, report) = probe(&h, &pair.mcp_url).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["pkce_supported"], false);
    assert_eq!(methods(&report), ["api_key", "oauth:own"]);
    assert_eq!(report["authorization_server"]["issuer"], pair.issuer);

    let refused = h
        .api(
            Method::POST,
            "/connectors",
            Some(json!({"owner": "alice", "server_url": pair.mcp_url,
                        "auth": {"method": "oauth", "registration": "dynamic"}})),
        )
        .await;
    assert_error(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "pkce_not_supported",
    );
    assert_eq!(h.count("connectors").await, 0);
    let registrations = counters(pair, "(none)").await;
    assert_eq!(
        registrations["authorization_requests"], 0,
        "{registrations}"
    );
}

/// A protected server whose metadata lies: `/mcp1` names an authorization server that
/// states another issuer, `/mcp2` metadata for another resource, `/mcp3` metadata too
/// large to read.
async fn lying_server() -> (String, tokio::task::JoinHandle<()>) {
    use axum::routing::{get, post};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let challenge = |n: u8| {
        let header = format!("Bearer resource_metadata=\"{{base}}/prm{n}\"");
        move |axum::extract::State(base): axum::extract::State<String>| async move {
            (
                StatusCode::UNAUTHORIZED,
                [("www-authenticate", header.replace("{base}", &base))],
            )
        }
    };
    let app = axum::Router::new()
        .route("/mcp1", post(challenge(1)))
        .route("/mcp2", post(challenge(2)))
        .route("/mcp3", post(challenge(3)))
        .route(
            "/prm1",
            get(|axum::extract::State(base): axum::extract::State<String>| async move {
                axum::Json(json!({"resource": format!("{base}/mcp1"), "authorization_servers": [format!("{base}/as")]}))
            }),
        )
        .route(
            "/.well-known/oauth-authorization-server/as",
            get(|| async {
                axum::Json(json!({"issuer": "https://evil.example", "authorization_endpoint": "https://evil.example/a",
                                  "token_endpoint": "https://evil.example/t", "registration_endpoint": "https://evil.example/r",
                                  "code_challenge_methods_supported": ["S256"]}))
            }),
        )
        .route(
            "/prm2",
            get(|| async { axum::Json(json!({"resource": "https://other.example/mcp2", "authorization_servers": ["https://other.example"]})) }),
        )
        .route("/prm3", get(|| async { "x".repeat(2 << 20) }))
        .with_state(base.clone());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn lying_metadata_is_not_believed() {
    let (base, server) = lying_server().await;
    let h = Proxy::start().await;

    let (status, report) = probe(&h, &format!("{base}/mcp1")).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["authorization_server"], Value::Null, "{report}");
    assert_eq!(methods(&report), ["api_key", "oauth:own"]);
    let refused = h
        .api(
            Method::POST,
            "/connectors",
            Some(
                json!({"owner": "alice", "server_url": format!("{base}/mcp1"),
                        "auth": {"method": "oauth", "registration": "dynamic"}}),
            ),
        )
        .await;
    assert_error(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "oauth_not_supported",
    );
    assert!(
        refused.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("evil.example"),
        "{}",
        refused.1
    );

    for path in ["/mcp2", "/mcp3"] {
        let (status, report) = probe(&h, &format!("{base}{path}")).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(methods(&report), ["api_key"], "{path}: {report}");
        assert_eq!(report["resource"], Value::Null, "{path}: {report}");
    }
    assert_eq!(h.count("connectors").await, 0);
    server.abort();
}
