//! OAuth connectors against a real authorization server (issue 12): the probe, dynamic and
//! own-client authorizations driven headless through the server's own forms, the callback's
//! checks, runs through the proxy with the injected token, refresh (single flight), a
//! revoked grant and re-authorization, and revocation on delete.
//!
//! | module | what it covers |
//! |---|---|
//! | `peers` | the authorization server and protected MCP server of `tests/oauth/`, started once |
//! | `browser` | the owner's browser: login and consent forms, cookies, redirects |
//! | `probe` | `POST /connectors/probe` on no-auth, API-key and OAuth servers; no PKCE S256 |
//! | `flow` | create → authorize → callback → run; own clients; bad, expired, replayed `state`; wrong `iss` |
//! | `refresh` | expiry, single flight, revoked grants and ERR-8, re-authorization, delete |
//! | `registration` | one dynamic registration per issuer, reused whatever method the AS registered |
//! | `cli` | `portcullis connector probe` and `connector add --oauth`, as the binary |

mod browser;
mod cli;
mod flow;
mod peers;
mod probe;
mod refresh;
mod registration;

use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

use crate::support::*;
pub use browser::Browser;
pub use peers::{Pair, peers, peers_registering_post, peers_without_pkce};

/// A connector waiting for its authorization.
pub struct PendingConnector {
    pub id: String,
    pub authorization_url: String,
}

impl PendingConnector {
    /// The `client_id` the authorization URL names.
    pub fn client_id(&self) -> String {
        query(&self.authorization_url, "client_id").expect("a client_id")
    }
}

/// The value of the query parameter `name` of `url`.
pub fn query(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// Creates an OAuth connector of `owner` to `url` with `auth`, asserting the 202.
pub async fn create(h: &Proxy, owner: &str, url: &str, auth: Value) -> PendingConnector {
    let (status, body) = h
        .api(
            Method::POST,
            "/connectors",
            Some(json!({"owner": owner, "server_url": url, "auth": auth})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        body["connector"]["status"], "pending_authorization",
        "{body}"
    );
    assert_eq!(body["connector"]["tools"], json!([]), "{body}");
    PendingConnector {
        id: body["connector"]["id"].as_str().unwrap().to_owned(),
        authorization_url: body["authorization_url"].as_str().unwrap().to_owned(),
    }
}

/// The owner's browser visit: from the authorization URL to the redirect back to the proxy.
pub async fn visit(h: &Proxy, authorization_url: &str, login: &str) -> String {
    Browser::new(login)
        .authorize(authorization_url, &h.url("/oauth/callback"))
        .await
}

/// What the callback answered.
pub struct Landing {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub page: String,
}

/// The browser lands on the proxy's callback at `url`.
pub async fn land(url: &str) -> Landing {
    let response = reqwest::get(url).await.unwrap();
    Landing {
        status: response.status(),
        headers: response.headers().clone(),
        page: response.text().await.unwrap(),
    }
}

/// Create, visit, land: an authorized connector; answers it and its client id.
pub async fn authorized(h: &Proxy, owner: &str, url: &str, auth: Value) -> (String, String) {
    let pending = create(h, owner, url, auth).await;
    let landing = land(&visit(h, &pending.authorization_url, owner).await).await;
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.page);
    (pending.id.clone(), pending.client_id())
}

/// The connector as the API shows it.
pub async fn connector(h: &Proxy, id: &str) -> Value {
    let (status, body) = h.api(Method::GET, &format!("/connectors/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The authorization server's counters of one client.
pub async fn counters(pair: &Pair, client_id: &str) -> Value {
    reqwest::get(format!(
        "{}?client_id={client_id}",
        pair.control("/counters")
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap()
}

/// Every token the authorization server issued to `client_id`, oldest first, as
/// `(kind, value)`: kind `access_token` or `refresh_token`.
pub async fn issued(pair: &Pair, client_id: &str) -> Vec<(String, String)> {
    let tokens: Vec<Value> =
        reqwest::get(format!("{}?client_id={client_id}", pair.control("/tokens")))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    tokens
        .iter()
        .map(|t| {
            (
                t["kind"].as_str().unwrap().to_owned(),
                t["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Every token value the authorization server issued to `client_id`.
pub async fn issued_tokens(pair: &Pair, client_id: &str) -> Vec<String> {
    issued(pair, client_id)
        .await
        .into_iter()
        .map(|(_, value)| value)
        .collect()
}

/// POSTs JSON to the authorization server's test control.
pub async fn control(pair: &Pair, path: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(pair.control(path))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// An actor whose field `conn` accepts any loopback server, and a run of `owner` with the
/// connector `id`.
pub async fn run_with(h: &Proxy, owner: &str, id: &str) -> Run {
    h.actor("actor", any_loopback(None)).await;
    h.run("actor", owner, json!({ "conn": id })).await
}

/// Asserts that none of `secrets` is in the database file, its WAL, or a log line (the
/// log capture of `admin_secrets`, started here if it was not).
pub fn assert_nowhere(h: &Proxy, secrets: &[String]) {
    crate::admin_secrets::capture_logs();
    let places = [
        (
            "the database file",
            crate::support::database_bytes(h.dir.path()),
        ),
        ("the log", crate::admin_secrets::logs().into_bytes()),
    ];
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        for (place, bytes) in &places {
            assert!(
                !crate::support::contains(bytes, secret),
                "a secret ({}…) is in {place}",
                &secret[..4]
            );
        }
    }
}
