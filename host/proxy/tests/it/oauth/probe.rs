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
