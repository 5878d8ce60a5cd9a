//! Dynamic registrations: one per authorization server, reused by every connector on it
//! whatever client authentication method the server registered, and never presented to
//! another server.

use portcullis_test_upstreams::wire;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

const DYNAMIC: fn() -> Value = || json!({"method": "oauth", "registration": "dynamic"});

/// The authorization server's count of successful registrations (all clients).
async fn registrations(pair: &Pair) -> u64 {
    let all: Value = reqwest::get(pair.control("/counters"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    all["registrations"].as_u64().unwrap()
}

/// `(issuer, client_id)` of every registration in the proxy's database.
async fn stored_registrations(h: &Proxy) -> Vec<(String, String)> {
    let path = h.dir.path().join(portcullis::app::DATABASE_FILE);
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", path.display()))
        .await
        .unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT issuer, client_id FROM oauth_registrations ORDER BY issuer")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn one_registration_per_issuer_whatever_method_the_server_registered() {
    // This server registers every client as `client_secret_post`, though Portcullis asks
    // for a public client (`none`, which it lists).
    let post = peers_registering_post().await;
    let other = peers().await;
    let h = Proxy::start().await;
    let first = create(&h, "alice", &post.mcp_url, DYNAMIC()).await;
    let second = create(&h, "bob", &post.mcp_url, DYNAMIC()).await;
    assert_eq!(second.client_id(), first.client_id());
    assert_eq!(registrations(post).await, 1);

    // Both authorize with the registered method, and a run uses the second.
    let mut pages = String::new();
    for (pending, owner) in [(&first, "alice"), (&second, "bob")] {
        let landing = land(&visit(&h, &pending.authorization_url, owner).await).await;
        assert_eq!(landing.status, StatusCode::OK, "{}", landing.page);
        pages.push_str(&landing.page);
    }
    let client = first.client_id();
    let seen = counters(post, &client).await;
    assert_eq!(
        seen["token_client_auth_methods"],
        json!({"client_secret_post": 2}),
        "{seen}"
    );
    let run = run_with(&h, "bob", &second.id).await;
    let session = h.initialize(&second.id, &run.token).await;
    let call = wire::call_tool(2, "whoami", json!({}));
    let answer = h
        .post(&second.id, Some(&run.token), Some(&session), &call)
        .await;
    assert!(answer.text.contains("mcp:tools"), "{}", answer.text);

    // Another authorization server gets a registration of its own.
    let elsewhere = create(&h, "alice", &other.mcp_url, DYNAMIC()).await;
    assert_ne!(elsewhere.client_id(), client);
    let mut expected = vec![
        (post.issuer.clone(), client.clone()),
        (other.issuer.clone(), elsewhere.client_id()),
    ];
    expected.sort();
    assert_eq!(stored_registrations(&h).await, expected);
    assert_eq!(registrations(post).await, 1);

    let secrets = issued_tokens(post, &client).await;
    assert!(!secrets.is_empty());
    let answers = format!("{}{}{pages}", h.connectors().await, answer.text);
    for secret in &secrets {
        assert!(
            !answers.contains(secret.as_str()),
            "a token is in an answer"
        );
    }
    assert_nowhere(&h, &secrets);
}
