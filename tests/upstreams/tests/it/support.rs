//! What several modules send and read on the wire.

use reqwest::header::HeaderMap;
use serde_json::Value;

use portcullis_test_upstreams::wire::{self, mcp_headers};

/// POSTs `body` with `headers`.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
    body: &Value,
) -> reqwest::Response {
    http.post(url)
        .headers(headers)
        .body(body.to_string())
        .send()
        .await
        .expect("the upstream answers")
}

pub fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Initializes a session by hand and returns its id.
pub async fn open_session(http: &reqwest::Client, url: &str) -> String {
    let init = post(http, url, mcp_headers(None), &wire::initialize(0)).await;
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    init.text().await.unwrap();
    let initialized = post(
        http,
        url,
        mcp_headers(Some(&session)),
        &wire::notification("notifications/initialized"),
    )
    .await;
    assert_eq!(initialized.status(), 202);
    session
}
