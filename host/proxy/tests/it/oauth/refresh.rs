//! Tokens at run time: refresh before expiry and on a 401, single flight, a revoked grant
//! (spec scenario 9), re-authorization, and revocation at the authorization server on
//! delete.

use std::time::Duration;

use portcullis_test_upstreams::wire;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::*;

const DYNAMIC: fn() -> Value = || json!({"method": "oauth", "registration": "dynamic"});

/// One `tools/call` of `whoami` in `session`.
async fn call_whoami(h: &Proxy, conn: &str, run: &Run, session: &str, id: i64) -> Answer {
    let call = wire::call_tool(id, "whoami", json!({}));
    h.post(conn, Some(&run.token), Some(session), &call).await
}

/// The JSON-RPC answer of one `whoami` in `session`.
async fn whoami(h: &Proxy, conn: &str, run: &Run, session: &str, id: i64) -> Value {
    call_whoami(h, conn, run, session, id)
        .await
        .response(id)
        .clone()
}

/// Starts a dynamic re-authorization of `conn`, asserting the 202; answers its body.
async fn reauthorize(h: &Proxy, conn: &str) -> Value {
    let (status, body) = h
        .api(
            Method::POST,
            &format!("/connectors/{conn}/reauthorize"),
            Some(json!({"auth": DYNAMIC()})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body
}

fn ok(answer: &Value) -> bool {
    answer["result"]["content"][0]["text"]
        .as_str()
        .is_some_and(|t| t.contains("mcp:tools"))
}

/// An authorized connector whose first access token lives `ttl` seconds (later ones an
/// hour), a run of alice's with it, and an MCP session.
async fn arranged(pair: &Pair, h: &Proxy, ttl: u64) -> (String, String, Run, String) {
    let pending = create(h, "alice", &pair.mcp_url, DYNAMIC()).await;
    let client = pending.client_id();
    control(
        pair,
        "/config",
        json!({"client_id": client, "access_token_ttl": ttl}),
    )
    .await;
    let landing = land(&visit(h, &pending.authorization_url, "alice").await).await;
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.page);
    control(
        pair,
        "/config",
        json!({"client_id": client, "access_token_ttl": 3600}),
    )
    .await;
    let run = run_with(h, "alice", &pending.id).await;
    let session = h.initialize(&pending.id, &run.token).await;
    (pending.id, client, run, session)
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_requests_on_an_expired_token_cause_one_refresh() {
    let pair = peers().await;
    let h = Proxy::start_with(|config| {
        config.oauth.refresh_skew_secs = 1;
        // All fifty at once, in one session (the default caps its open streams at 16).
        config.limits.streams_per_session = 64;
    })
    .await;
    let (conn, client, run, session) = arranged(pair, &h, 3).await;
    tokio::time::sleep(Duration::from_millis(3200)).await;

    let calls = (0..50).map(|i| {
        let (h, conn, run, session) = (&h, &conn, &run, &session);
        async move { whoami(h, conn, run, session, 100 + i).await }
    });
    let answers = futures_util::future::join_all(calls).await;
    for answer in &answers {
        assert!(ok(answer), "{answer}");
    }
    let seen = counters(pair, &client).await;
    assert_eq!(
        seen["token_requests"],
        json!({"authorization_code": 1, "refresh_token": 1}),
        "{seen}"
    );
    assert_eq!(seen["token_requests_without_resource"], json!({}), "{seen}");
    assert_eq!(connector(&h, &conn).await["status"], "authorized");
    let metrics = reqwest::get(h.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("portcullis_oauth_refreshes_total{outcome=\"ok\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_401_refreshes_once_and_retries() {
    let pair = peers().await;
    let h = Proxy::start().await;
    let (conn, client, run, session) = arranged(pair, &h, 3600).await;
    assert!(ok(&whoami(&h, &conn, &run, &session, 1).await));
    // The access token dies early; the refresh token lives on.
    control(pair, "/revoke-access-tokens", json!({"client_id": client})).await;
    let answer = whoami(&h, &conn, &run, &session, 2).await;
    assert!(ok(&answer), "{answer}");
    let seen = counters(pair, &client).await;
    assert_eq!(seen["token_requests"]["refresh_token"], 1, "{seen}");
    assert!(ok(&whoami(&h, &conn, &run, &session, 3).await));
    assert_eq!(
        counters(pair, &client).await["token_requests"]["refresh_token"],
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_grant_needs_reauthorization_and_reauthorizing_brings_it_back() {
    crate::admin_secrets::capture_logs();
    let pair = peers().await;
    let h = Proxy::start().await;
    let (conn, client, run, session) = arranged(pair, &h, 3600).await;
    assert!(ok(&whoami(&h, &conn, &run, &session, 1).await));

    // The user revokes the app at the provider: the token is refused, the refresh too.
    control(pair, "/revoke-all", json!({"client_id": client})).await;
    let answer = whoami(&h, &conn, &run, &session, 2).await;
    assert_eq!(answer["error"]["code"], -32004, "{answer}");
    assert_eq!(answer["error"]["data"]["connectorId"], conn.as_str());
    assert_eq!(
        answer["error"]["data"]["reason"], "invalid_grant",
        "{answer}"
    );
    assert_eq!(
        connector(&h, &conn).await["status"],
        "needs_reauthorization"
    );
    // The audit is written in the background.
    h.audit_once(&run, |r| {
        r["reason"] == "needs_reauthorization:invalid_grant" && r["decision"] == "deny"
    })
    .await;
    let refused = h
        .api(
            Method::POST,
            "/runs",
            Some(json!({"actor": "actor", "user": "alice", "input": {"conn": conn}})),
        )
        .await;
    assert_error(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "connector_not_available",
    );
    // The failed grant is not tried again.
    let refreshes = counters(pair, &client).await["token_requests"]["refresh_token"].clone();
    assert_eq!(refreshes, 1);
    // Every later message of the run gets the same ERR-8, and nothing reaches the AS.
    let later = call_whoami(&h, &conn, &run, &session, 3).await;
    assert_reauthorization(&later, 200, Some(3), &conn, "invalid_grant");
    let again = h
        .post(&conn, Some(&run.token), None, &wire::initialize(7))
        .await;
    assert_reauthorization(&again, 200, Some(7), &conn, "invalid_grant");
    h.audit_once(&run, |r| {
        r["method"] == "initialize" && r["reason"] == "needs_reauthorization:invalid_grant"
    })
    .await;
    assert_eq!(
        counters(pair, &client).await["token_requests"]["refresh_token"],
        refreshes
    );

    // Re-authorization (AUTH-9) brings it back.
    let body = reauthorize(&h, &conn).await;
    assert_eq!(body["connector"]["status"], "needs_reauthorization");
    let url = body["authorization_url"].as_str().unwrap();
    let landing = land(&visit(&h, url, "alice").await).await;
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.page);
    assert_eq!(connector(&h, &conn).await["status"], "authorized");
    let run = h.run("actor", "alice", json!({"conn": conn})).await;
    let session = h.initialize(&conn, &run.token).await;
    assert!(ok(&whoami(&h, &conn, &run, &session, 4).await));

    // A re-authorization in progress leaves the current grant working.
    let body = reauthorize(&h, &conn).await;
    assert_eq!(body["connector"]["status"], "authorized");
    assert!(ok(&whoami(&h, &conn, &run, &session, 5).await));
    let without = h
        .api(
            Method::POST,
            &format!("/connectors/{conn}/reauthorize"),
            Some(json!({})),
        )
        .await;
    assert_error(&without, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_nowhere(&h, &issued_tokens(pair, &client).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_revokes_the_tokens_and_ends_sessions() {
    let pair = peers().await;
    let h = Proxy::start().await;
    let (conn, client, run, session) = arranged(pair, &h, 3600).await;
    assert!(ok(&whoami(&h, &conn, &run, &session, 1).await));
    let (status, _) = h
        .api(Method::DELETE, &format!("/connectors/{conn}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let seen = counters(pair, &client).await;
    assert_eq!(seen["revocations"]["refresh_token"], 1, "{seen}");
    assert_eq!(seen["revocation_requests"], 2, "{seen}");
    let after = call_whoami(&h, &conn, &run, &session, 2).await;
    assert_eq!(after.status, 403, "{}", after.text);
    assert_eq!(after.messages[0]["error"]["code"], -32002);
}

/// The client's grants at the authorization server.
async fn grants(pair: &Pair, client: &str) -> usize {
    let all: Vec<Value> = reqwest::get(pair.control("/grants"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    all.iter().filter(|g| g["client_id"] == client).count()
}

/// Re-authorization does not revoke the old grant, and this is why: an authorization
/// server that keeps one grant per user and client (oidc-provider, as Google or GitHub do)
/// answers a re-authorization from the owner's still logged-in browser with new tokens of
/// the same grant, and revoking a token revokes its whole grant (RFC 7009 section 2.1), so
/// revoking the old tokens would kill the new ones. Shown here on the real AS.
#[tokio::test(flavor = "multi_thread")]
async fn reauthorization_keeps_the_old_grant_which_may_be_the_new_one() {
    let pair = peers().await;
    let h = Proxy::start().await;
    let callback = h.url("/oauth/callback");
    let mut browser = Browser::new("alice");
    let pending = create(&h, "alice", &pair.mcp_url, DYNAMIC()).await;
    let (conn, client) = (pending.id.clone(), pending.client_id());
    let landing = land(
        &browser
            .authorize(&pending.authorization_url, &callback)
            .await,
    )
    .await;
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.page);
    let old_refresh = issued(pair, &client)
        .await
        .into_iter()
        .find_map(|(kind, value)| (kind == "refresh_token").then_some(value))
        .expect("a refresh token");

    let body = reauthorize(&h, &conn).await;
    let url = body["authorization_url"].as_str().unwrap();
    let landing = land(&browser.authorize(url, &callback).await).await;
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.page);
    let seen = counters(pair, &client).await;
    assert_eq!(seen["token_requests"]["authorization_code"], 2, "{seen}");
    assert_eq!(seen["revocation_requests"], 0, "{seen}");
    let run = run_with(&h, "alice", &conn).await;
    let session = h.initialize(&conn, &run.token).await;
    assert!(ok(&whoami(&h, &conn, &run, &session, 1).await));

    // The AS gave the new tokens under the old grant: revoking the old refresh token, as
    // RFC 7009 revocation of the old grant would, takes the new tokens with it.
    assert_eq!(grants(pair, &client).await, 1);
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("token", old_refresh.as_str()),
            ("token_type_hint", "refresh_token"),
            ("client_id", client.as_str()),
        ])
        .finish();
    let revoked = reqwest::Client::new()
        .post(format!("{}/token/revocation", pair.issuer))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let answer = call_whoami(&h, &conn, &run, &session, 2).await;
    assert_reauthorization(&answer, 200, Some(2), &conn, "invalid_grant");
}
