//! Authorizations: dynamic and own clients through the real authorization server, the
//! callback's checks, and a run through the proxy with the injected token.

use portcullis_test_upstreams::wire;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::*;

const DYNAMIC: fn() -> Value = || json!({"method": "oauth", "registration": "dynamic"});

/// Calls `tool` in a new session of `run` on `conn`; answers the JSON-RPC answer.
async fn call(h: &Proxy, conn: &str, run: &Run, tool: &str, arguments: Value) -> Value {
    let session = h.initialize(conn, &run.token).await;
    let answer = h
        .post(
            conn,
            Some(&run.token),
            Some(&session),
            &wire::call_tool(7, tool, arguments),
        )
        .await;
    answer.response(7).clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamic_registration_authorizes_and_runs_use_the_token() {
    crate::admin_secrets::capture_logs();
    let pair = peers().await;
    let h = Proxy::start().await;
    let pending = create(&h, "alice", &pair.mcp_url, DYNAMIC()).await;
    let url = &pending.authorization_url;
    assert!(url.starts_with(&format!("{}/auth?", pair.issuer)), "{url}");
    assert_eq!(query(url, "response_type").as_deref(), Some("code"));
    assert_eq!(query(url, "code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(query(url, "code_challenge").map(|c| c.len()), Some(43));
    assert_eq!(
        query(url, "resource").as_deref(),
        Some(pair.mcp_url.as_str())
    );
    assert_eq!(query(url, "scope").as_deref(), Some("mcp:tools"));
    assert_eq!(query(url, "redirect_uri"), Some(h.url("/oauth/callback")));
    let state = query(url, "state").unwrap();
    assert!(state.len() >= 43);

    // Not usable before its authorization.
    h.actor("actor", any_loopback(None)).await;
    let early = h
        .api(
            Method::POST,
            "/runs",
            Some(json!({"actor": "actor", "user": "alice", "input": {"conn": pending.id}})),
        )
        .await;
    assert_error(
        &early,
        StatusCode::UNPROCESSABLE_ENTITY,
        "connector_not_available",
    );

    let back = visit(&h, url, "alice").await;
    assert_eq!(query(&back, "iss").as_deref(), Some(pair.issuer.as_str()));
    assert_eq!(query(&back, "state").as_deref(), Some(state.as_str()));
    let code = query(&back, "code").unwrap();
    let landing = land(&back).await;
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.page);
    assert_eq!(landing.headers["x-frame-options"], "DENY");
    let csp = landing.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(landing.headers["cache-control"], "no-store");
    assert!(landing.page.contains("is authorized"), "{}", landing.page);
    assert!(!landing.page.contains(&code) && !landing.page.contains(&state));

    let shown = connector(&h, &pending.id).await;
    assert_eq!(shown["status"], "authorized", "{shown}");
    let mut tools = tool_names(&shown);
    tools.sort();
    assert_eq!(tools, ["add", "delete_thing", "echo", "whoami"]);

    // The state is used once.
    let replay = land(&back).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(replay.page.contains("already used"), "{}", replay.page);
    assert_eq!(connector(&h, &pending.id).await["status"], "authorized");

    // A run through the proxy: the upstream sees the token, the run never does.
    let run = h.run("actor", "alice", json!({"conn": pending.id})).await;
    let whoami = call(&h, &pending.id, &run, "whoami", json!({})).await;
    let text = whoami["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        text.contains(&pending.client_id()) && text.contains("mcp:tools"),
        "{whoami}"
    );

    // An rmcp client of the run, as an actor would use it.
    let rmcp =
        portcullis_test_upstreams::client::connect(&h.mcp_url(&pending.id), Some(&run.token))
            .await
            .unwrap();
    let sum = rmcp
        .call_tool(
            rmcp::model::CallToolRequestParams::new("add").with_arguments(
                portcullis_test_upstreams::client::arguments(json!({"a": 2, "b": 3})),
            ),
        )
        .await
        .unwrap();
    assert_eq!(portcullis_test_upstreams::client::text(&sum), "5");
    rmcp.cancel().await.unwrap();

    // The token is redacted from whatever the upstream sends back.
    let (_, token) = issued(pair, &pending.client_id())
        .await
        .into_iter()
        .rfind(|(kind, _)| kind == "access_token")
        .unwrap();
    let echoed = call(
        &h,
        &pending.id,
        &run,
        "echo",
        json!({"text": format!("token={token}")}),
    )
    .await;
    let echoed = echoed.to_string();
    assert!(
        !echoed.contains(&token) && echoed.contains("[REDACTED]"),
        "{echoed}"
    );

    // Step-up (ERR-9): the upstream's 403 insufficient_scope, with the scopes it wants.
    let denied = call(
        &h,
        &pending.id,
        &run,
        "delete_thing",
        json!({"thing_id": "t1"}),
    )
    .await;
    assert_eq!(denied["error"]["code"], -32005, "{denied}");
    let required = denied["error"]["data"]["requiredScopes"].as_str().unwrap();
    assert!(required.contains("mcp:admin"), "{denied}");

    // RFC 8707 on every request, a public client (PKCE alone), one registration.
    let seen = counters(pair, &pending.client_id()).await;
    assert_eq!(seen["authorization_requests_without_resource"], 0, "{seen}");
    assert_eq!(seen["token_requests_without_resource"], json!({}), "{seen}");
    assert_eq!(
        seen["token_requests"],
        json!({"authorization_code": 1}),
        "{seen}"
    );
    assert_eq!(
        seen["token_client_auth_methods"],
        json!({"none": 1}),
        "{seen}"
    );

    // A second connector of the same proxy reuses the registration (same issuer).
    let second = create(&h, "bob", &pair.mcp_url, DYNAMIC()).await;
    assert_eq!(second.client_id(), pending.client_id());

    let mut secrets = issued_tokens(pair, &pending.client_id()).await;
    assert!(!secrets.is_empty());
    let answers = format!("{shown}{}{}", h.connectors().await, landing.page);
    for secret in &secrets {
        assert!(
            !answers.contains(secret.as_str()),
            "a token is in an answer"
        );
    }
    secrets.extend([code, state]);
    assert_nowhere(&h, &secrets);
}

/// Registers a confidential client at the authorization server, as an owner creates an
/// OAuth app at a provider: answers its id and secret.
async fn own_app(pair: &Pair, h: &Proxy, method: &str) -> (String, String) {
    let registered: Value = reqwest::Client::new()
        .post(format!("{}/reg", pair.issuer))
        .json(&json!({
            "redirect_uris": [h.url("/oauth/callback")],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": method,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        registered["client_id"].as_str().unwrap().to_owned(),
        registered["client_secret"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn own_client_with_client_secret_post_and_a_refused_method() {
    crate::admin_secrets::capture_logs();
    let pair = peers().await;
    let h = Proxy::start().await;
    let (client_id, secret) = own_app(pair, &h, "client_secret_post").await;
    let own = |method: &str| {
        json!({"method": "oauth", "registration": "own", "client_id": client_id,
               "client_secret": secret, "token_endpoint_auth_method": method})
    };
    let (id, used) = authorized(&h, "alice", &pair.mcp_url, own("client_secret_post")).await;
    assert_eq!(used, client_id);
    assert_eq!(connector(&h, &id).await["status"], "authorized");
    let seen = counters(pair, &client_id).await;
    assert_eq!(
        seen["token_client_auth_methods"],
        json!({"client_secret_post": 1}),
        "{seen}"
    );

    // The app accepts client_secret_post only: Basic is refused at the code exchange, and
    // the connector stays pending.
    let basic = create(&h, "alice", &pair.mcp_url, own("client_secret_basic")).await;
    let landing = land(&visit(&h, &basic.authorization_url, "alice").await).await;
    assert_eq!(landing.status, StatusCode::BAD_REQUEST, "{}", landing.page);
    assert!(landing.page.contains("invalid_client"), "{}", landing.page);
    assert_eq!(
        connector(&h, &basic.id).await["status"],
        "pending_authorization"
    );
    assert_eq!(
        counters(pair, &client_id).await["client_auth_method_rejections"],
        1
    );

    // The owner's endpoints, without discovery's.
    let explicit = json!({"method": "oauth", "registration": "own", "client_id": client_id,
        "client_secret": secret, "authorization_url": format!("{}/auth", pair.issuer),
        "token_url": format!("{}/token", pair.issuer)});
    let (explicit_id, _) = authorized(&h, "carol", &pair.mcp_url, explicit).await;
    assert_eq!(connector(&h, &explicit_id).await["status"], "authorized");

    // Bad own-client requests store nothing.
    let before = h.count("connectors").await;
    for (auth, code) in [
        (
            json!({"method": "oauth", "registration": "own"}),
            "invalid_field",
        ),
        (
            json!({"method": "oauth", "registration": "own", "client_id": "x", "token_endpoint_auth_method": "client_secret_post"}),
            "invalid_field",
        ),
        (
            json!({"method": "oauth", "registration": "own", "client_id": "x", "client_secret": "y", "token_endpoint_auth_method": "none"}),
            "invalid_field",
        ),
        (json!({"method": "oauth", "secret": "s"}), "invalid_field"),
        (
            json!({"method": "api_key", "secret": "s", "registration": "own"}),
            "invalid_field",
        ),
        (
            json!({"method": "oauth", "scopes": ["a b"]}),
            "invalid_field",
        ),
        (
            json!({"method": "oauth", "registration": "own", "client_id": "x", "authorization_url": "javascript:alert(1)", "token_url": "http://127.0.0.1:1/t"}),
            "invalid_field",
        ),
    ] {
        let answer = h
            .api(
                Method::POST,
                "/connectors",
                Some(json!({"owner": "alice", "server_url": pair.mcp_url, "auth": auth})),
            )
            .await;
        assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, code);
        assert!(!answer.1.to_string().contains(&secret));
    }
    assert_eq!(h.count("connectors").await, before);

    let answers = format!("{}", h.connectors().await);
    assert!(
        !answers.contains(&secret),
        "the client secret is in an answer"
    );
    let mut secrets = issued_tokens(pair, &client_id).await;
    secrets.push(secret);
    assert_nowhere(&h, &secrets);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_callback_checks_state_and_issuer() {
    let pair = peers().await;
    let h = Proxy::start().await;
    let callback = h.url("/oauth/callback");
    let refused = |landing: &Landing, words: &str| {
        assert_eq!(landing.status, StatusCode::BAD_REQUEST, "{}", landing.page);
        assert!(landing.page.contains(words), "{words}: {}", landing.page);
        assert_eq!(landing.headers["x-frame-options"], "DENY");
    };
    refused(
        &land(&format!("{callback}?code=c&state=not-a-state")).await,
        "unknown",
    );
    refused(&land(&format!("{callback}?code=c")).await, "no `state`");
    refused(
        &land(&format!("{callback}?code=c&state=a&state=b")).await,
        "more than once",
    );

    // A wrong issuer (a mix-up attack): refused, and the state is spent.
    let pending = create(&h, "alice", &pair.mcp_url, DYNAMIC()).await;
    let back = visit(&h, &pending.authorization_url, "alice").await;
    let forged = back.replace(
        &format!(
            "iss={}",
            url::form_urlencoded::byte_serialize(pair.issuer.as_bytes()).collect::<String>()
        ),
        "iss=http%3A%2F%2F127.0.0.1%3A1",
    );
    assert_ne!(forged, back);
    refused(&land(&forged).await, "not");
    refused(&land(&back).await, "already used");
    assert_eq!(
        connector(&h, &pending.id).await["status"],
        "pending_authorization"
    );

    // No `iss` although the server promises one (RFC 9207).
    let again = create(&h, "alice", &pair.mcp_url, DYNAMIC()).await;
    let back = visit(&h, &again.authorization_url, "alice").await;
    let code = query(&back, "code").unwrap();
    let state = query(&back, "state").unwrap();
    refused(
        &land(&format!("{callback}?code={code}&state={state}")).await,
        "(none)",
    );

    // The authorization server's own refusal.
    let declined = create(&h, "alice", &pair.mcp_url, DYNAMIC()).await;
    let state = query(&declined.authorization_url, "state").unwrap();
    let iss = url::form_urlencoded::byte_serialize(pair.issuer.as_bytes()).collect::<String>();
    refused(
        &land(&format!(
            "{callback}?error=access_denied&error_description=no%3Cb%3E&state={state}&iss={iss}"
        ))
        .await,
        "declined: access_denied: no&lt;b&gt;",
    );
    assert_eq!(
        connector(&h, &declined.id).await["status"],
        "pending_authorization"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_state_is_refused() {
    let pair = peers().await;
    let h = Proxy::start_with(|config| config.oauth.state_ttl_secs = 1).await;
    let pending = create(&h, "alice", &pair.mcp_url, DYNAMIC()).await;
    let back = visit(&h, &pending.authorization_url, "alice").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let landing = land(&back).await;
    assert_eq!(landing.status, StatusCode::BAD_REQUEST, "{}", landing.page);
    assert!(landing.page.contains("expired"), "{}", landing.page);
    assert_eq!(
        connector(&h, &pending.id).await["status"],
        "pending_authorization"
    );
    let seen = counters(pair, &pending.client_id()).await;
    assert_eq!(
        seen["token_requests"],
        json!({}),
        "no code was redeemed: {seen}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_owners_scopes_reach_the_provider_plugin_which_places_them() {
    let pair = peers().await;
    let h = Proxy::start().await;
    let own = |scopes: &[&str]| {
        json!({"method": "oauth", "registration": "own", "client_id": "app-1",
               "client_secret": "app-secret", "token_endpoint_auth_method": "client_secret_post",
               "scopes": scopes})
    };
    // The standard profile requests the owner's scopes in `scope`.
    let standard = create(&h, "alice", &pair.mcp_url, own(&["read", "write"])).await;
    let url = &standard.authorization_url;
    assert_eq!(query(url, "scope").as_deref(), Some("read write"), "{url}");
    assert_eq!(query(url, "user_scope"), None, "{url}");

    // Slack reads `scope` as bot scopes: its plugin moves the owner's to `user_scope`.
    let (status, body) = h
        .api(
            Method::POST,
            "/connectors",
            Some(
                json!({"owner": "alice", "server_url": pair.mcp_url, "provider": "slack",
                        "auth": own(&["channels:history", "chat:write"])}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let url = body["authorization_url"].as_str().unwrap();
    assert_eq!(query(url, "scope"), None, "{url}");
    assert_eq!(
        query(url, "user_scope").as_deref(),
        Some("channels:history,chat:write"),
        "{url}"
    );
}
