//! `/admin/v1/actors` and `/admin/v1/runs` against a real server, store and upstream.

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn actors_are_created_updated_and_validated() {
    let h = Proxy::start().await;
    let properties = json!({
        "slack": field("string", json!([{"url": "https://mcp.slack.com/mcp", "tools": {"required": ["list_*"], "readOnly": true}}])),
        "many": field("array", json!([{"url": "*"}])),
        "query": {"title": "Query", "type": "string", "description": "free text", "editor": "textfield"},
    });
    let (status, created) = h.put_actor("my-actor", properties.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["id"], "my-actor");
    assert_eq!(created["input_schema"]["properties"], properties);
    assert_eq!(
        created["connector_fields"],
        json!([{"name": "many", "type": "array"}, {"name": "slack", "type": "string"}])
    );

    let (status, shown) = h.api(Method::GET, "/actors/my-actor", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown, created);

    let smaller = json!({"many": field("array", json!([{"url": "*"}]))});
    let (status, updated) = h.put_actor("my-actor", smaller.clone()).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["created_at"], created["created_at"]);
    assert_eq!(updated["input_schema"]["properties"], smaller);
    assert_eq!(h.count("actors").await, 1);

    let invalid = [
        (
            "type",
            json!({"slack": field("object", json!([{"url": "*"}]))}),
        ),
        (
            "empty servers",
            json!({"slack": field("string", json!([]))}),
        ),
        (
            "missing servers",
            json!({"slack": {"title": "t", "description": "d", "type": "string", "resourceType": "mcpConnector"}}),
        ),
        (
            "entry without url",
            json!({"slack": field("string", json!([{"tools": {"readOnly": true}}]))}),
        ),
        (
            "empty url",
            json!({"slack": field("string", json!([{"url": ""}]))}),
        ),
        (
            "unknown entry key",
            json!({"slack": field("string", json!([{"url": "*", "auth": "x"}]))}),
        ),
        (
            "empty required",
            json!({"slack": field("string", json!([{"url": "*", "tools": {"required": []}}]))}),
        ),
        (
            "duplicate required",
            json!({"slack": field("string", json!([{"url": "*", "tools": {"required": ["a", "a"]}}]))}),
        ),
        (
            "non-boolean hint",
            json!({"slack": field("string", json!([{"url": "*", "tools": {"destructive": "no"}}]))}),
        ),
        (
            "unknown tools key",
            json!({"slack": field("string", json!([{"url": "*", "tools": {"readonly": true}}]))}),
        ),
        (
            "array key on a string",
            json!({"slack": {"title": "t", "description": "d", "type": "string", "resourceType": "mcpConnector", "mcpServers": [{"url": "*"}], "minItems": 1}}),
        ),
        (
            "missing title",
            json!({"slack": {"description": "d", "type": "string", "resourceType": "mcpConnector", "mcpServers": [{"url": "*"}]}}),
        ),
    ];
    for (name, properties) in invalid {
        let answer = h.put_actor("my-actor", properties).await;
        assert_error(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input_schema",
        );
        assert!(
            answer.1["error"]["message"]
                .as_str()
                .unwrap()
                .contains("`slack`"),
            "{name}: {}",
            answer.1
        );
    }
    let (_, unchanged) = h.api(Method::GET, "/actors/my-actor", None).await;
    assert_eq!(unchanged, updated, "rejected PUTs left the actor alone");

    assert_error(
        &h.api(
            Method::PUT,
            "/actors/other",
            Some(json!({"input_schema": {"properties": {}}, "build": 1})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    );
    assert_error(
        &h.api(
            Method::PUT,
            "/actors/other",
            Some(json!({"input_schema": "x"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    );
    assert_error(
        &h.raw(Method::PUT, "/actors/other", "{").await,
        StatusCode::BAD_REQUEST,
        "malformed_json",
    );
    assert_error(
        &h.api(
            Method::PUT,
            "/actors/bad%20id",
            Some(json!({"input_schema": {"properties": {}}})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_error(
        &h.api(Method::GET, "/actors/other", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(h.count("actors").await, 1);
}

/// An actor whose `demo` field accepts the demo server with a `list_*` tool.
async fn setup(h: &Proxy, demo_url: &str) -> (String, String) {
    let mine = id(&h.add_connector("alice", demo_url, Some("sk-alice")).await);
    let rules = json!([{"url": demo_url, "tools": {"required": ["list_*"]}}]);
    let (status, body) = h
        .put_actor("demo-actor", json!({
            "demo": field("string", rules.clone()),
            "several": field("array", rules),
            "slack": field("string", json!([{"url": "https://mcp.slack.com/mcp"}])),
            "writer": field("string", json!([{"url": "*", "tools": {"required": ["write_*"]}}])),
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (mine, "demo-actor".to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_start_show_and_finish() {
    let h = Proxy::start().await;
    let demo = demo().await;
    let (conn, actor) = setup(&h, &demo.url).await;
    let second = id(&h.add_connector("alice", &demo.url, None).await);

    let (status, started) = h
        .api(Method::POST, "/runs", Some(json!({"actor": actor, "user": "alice", "input": {"demo": conn, "several": [conn, second], "other": 1}})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let mut keys: Vec<&str> = started
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["env", "id", "status", "token"]);
    assert_eq!(started["status"], "running");
    let token = started["token"].as_str().unwrap();
    assert_eq!(token.len(), 43, "256 bits in base64url");
    let base = format!("{}/mcp", h.server.base_url);
    assert_eq!(
        started["env"],
        json!({"ACTOR_MCP_CONNECTOR_BASE_URL": base, "APIFY_MCP_PROXY_URL": base, "APIFY_TOKEN": token})
    );
    let id = started["id"].as_str().unwrap();
    assert!(id.starts_with("run_"));
    let cached_runs = || h.server.state.data.footprint().cached_runs;
    assert_eq!(
        cached_runs(),
        1,
        "a new run is handed to the data plane: its first message reads no store"
    );

    let (status, shown) = h.api(Method::GET, &format!("/runs/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !shown.to_string().contains(token),
        "GET /runs never shows the token"
    );
    assert_eq!(shown["status"], "running");
    assert_eq!(shown["actor"], actor);
    assert_eq!(shown["user"], "alice");
    assert_eq!(shown["input"]["demo"], conn.as_str());
    assert_eq!(shown["finished_at"], Value::Null);
    assert_eq!(
        shown["expires_at"].as_i64().unwrap() - shown["created_at"].as_i64().unwrap(),
        86_400
    );

    assert_eq!(
        h.mcp_initialize(&conn, token).await,
        StatusCode::OK,
        "the token works on the data plane"
    );

    let (status, finished) = h
        .api(
            Method::POST,
            &format!("/runs/{id}/finish"),
            Some(json!({"status": "failed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{finished}");
    assert_eq!(cached_runs(), 0, "a finished run is forgotten");
    assert_eq!(finished["status"], "failed");
    assert!(finished["finished_at"].is_i64());
    assert_eq!(
        h.mcp_initialize(&conn, token).await,
        StatusCode::UNAUTHORIZED,
        "the token stops at once"
    );

    let (status, again) = h
        .api(Method::POST, &format!("/runs/{id}/finish"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "finishing twice is harmless");
    assert_eq!(again, finished, "and changes nothing");

    assert_error(
        &h.api(
            Method::POST,
            &format!("/runs/{id}/finish"),
            Some(json!({"status": "running"})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_error(
        &h.api(
            Method::POST,
            &format!("/runs/{id}/finish"),
            Some(json!({"status": "done"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    );
    assert_error(
        &h.api(Method::POST, "/runs/run_missing/finish", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &h.api(Method::GET, "/runs/run_missing", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (_, after) = h.api(Method::GET, &format!("/runs/{id}"), None).await;
    assert_eq!(after, finished);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_run_requests_start_nothing() {
    let h = Proxy::start().await;
    let demo = demo().await;
    let (mine, actor) = setup(&h, &demo.url).await;
    let bobs = id(&h.add_connector("bob", &demo.url, None).await);
    let start = |body: Value| h.api(Method::POST, "/runs", Some(body));

    let cases = [
        (
            "unknown actor",
            start(json!({"actor": "nope", "user": "alice", "input": {}})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_actor",
            "nope",
        ),
        (
            "another user's connector",
            start(json!({"actor": actor, "user": "alice", "input": {"demo": bobs}})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "connector_not_available",
            "`demo`",
        ),
        (
            "unknown connector",
            start(
                json!({"actor": actor, "user": "alice", "input": {"several": [mine, "conn_nope"]}}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "connector_not_available",
            "`several`",
        ),
        (
            "ineligible server",
            start(json!({"actor": actor, "user": "alice", "input": {"slack": mine}})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "connector_not_eligible",
            "`slack`",
        ),
        (
            "ineligible tools",
            start(
                json!({"actor": actor, "user": "alice", "input": {"demo": mine, "writer": mine}}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "connector_not_eligible",
            "`writer`",
        ),
        (
            "array for a string field",
            start(json!({"actor": actor, "user": "alice", "input": {"demo": [mine]}})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "`demo`",
        ),
        (
            "number in an array field",
            start(json!({"actor": actor, "user": "alice", "input": {"several": [mine, 3]}})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "`several`",
        ),
        (
            "input not an object",
            start(json!({"actor": actor, "user": "alice", "input": [mine]})).await,
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "input",
        ),
        (
            "input missing",
            start(json!({"actor": actor, "user": "alice"})).await,
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "input",
        ),
        (
            "valid fields before a syntax error",
            h.raw(
                Method::POST,
                "/runs",
                "{\"actor\": \"a\", \"user\": \"u\", \"input\": {},,}",
            )
            .await,
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "JSON",
        ),
        (
            "blank user",
            start(json!({"actor": actor, "user": "", "input": {}})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "user",
        ),
        (
            "unknown field",
            start(json!({"actor": actor, "user": "alice", "input": {}, "token": "x"})).await,
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "token",
        ),
        (
            "wrong type",
            start(json!({"actor": 7, "user": "alice", "input": {}})).await,
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "actor",
        ),
        (
            "malformed JSON",
            h.raw(Method::POST, "/runs", "{\"actor\"").await,
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "JSON",
        ),
    ];
    for (name, answer, status, code, named) in &cases {
        assert_eq!(answer.0, *status, "{name}: {}", answer.1);
        assert_error(answer, *status, code);
        assert!(
            answer.1["error"]["message"]
                .as_str()
                .unwrap()
                .contains(named),
            "{name}: {}",
            answer.1
        );
    }
    assert_eq!(h.count("runs").await, 0, "no bad request started a run");

    // An allowlist that hides every `list_*` tool makes the connector ineligible.
    h.api(
        Method::PATCH,
        &format!("/connectors/{mine}"),
        Some(json!({"allowed_tools": ["whoami"]})),
    )
    .await;
    let answer = start(json!({"actor": actor, "user": "alice", "input": {"demo": mine}})).await;
    assert_error(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "connector_not_eligible",
    );
    h.api(
        Method::PATCH,
        &format!("/connectors/{mine}"),
        Some(json!({"allowed_tools": null})),
    )
    .await;
    let (status, _) =
        start(json!({"actor": actor, "user": "alice", "input": {"demo": mine}})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(h.count("runs").await, 1);
}

/// Item 7 of the renovation: `POST /runs` asks only the access chain. The built-in
/// `connector-access` refuses another user's connector, and the 422 carries its reason;
/// with it swapped for a policy that allows every connector (the `connector-allowlist`
/// component, whose access answer is always allow), the same run starts, and the data
/// plane, asking the same chain, lets its token in. A connector that does not exist is
/// still the host's answer, since there is nothing to ask about; a rollback brings the
/// built-in's refusal back.
#[tokio::test(flavor = "multi_thread")]
async fn runs_ask_only_the_access_chain() {
    let h = Proxy::start().await;
    let demo = demo().await;
    let (mine, actor) = setup(&h, &demo.url).await;
    let bobs = id(&h.add_connector("bob", &demo.url, None).await);
    let start = |input: Value| {
        let body = json!({"actor": actor, "user": "alice", "input": input});
        h.api(Method::POST, "/runs", Some(body))
    };
    let refused_as = |answer: &(StatusCode, Value), code: &str, reason: &str, named: &str| {
        assert_error(answer, StatusCode::UNPROCESSABLE_ENTITY, code);
        assert_eq!(answer.1["error"]["reason"], reason, "{}", answer.1);
        let message = answer.1["error"]["message"].as_str().unwrap();
        assert!(message.contains(named), "{message}");
    };

    let foreign = start(json!({"demo": bobs})).await;
    refused_as(
        &foreign,
        "connector_not_available",
        "not_owner",
        "input field `demo`: connector",
    );
    assert!(
        foreign.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not belong to user `alice`")
    );
    let ineligible = start(json!({"slack": mine})).await;
    refused_as(
        &ineligible,
        "connector_not_eligible",
        "no_matching_rule",
        "`slack`",
    );

    let (status, swapped) = h.install("connector-access", "connector-allowlist").await;
    assert_eq!(status, StatusCode::OK, "{swapped}");
    let (status, started) = start(json!({"demo": bobs})).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    assert_eq!(
        h.mcp_initialize(&bobs, started["token"].as_str().unwrap())
            .await,
        StatusCode::OK,
        "the data plane asks the same chain"
    );
    let missing = start(json!({"demo": "conn_nope"})).await;
    assert_error(
        &missing,
        StatusCode::UNPROCESSABLE_ENTITY,
        "connector_not_available",
    );
    assert!(
        missing.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`conn_nope` does not exist"),
        "{}",
        missing.1
    );
    assert_eq!(
        missing.1["error"].get("reason"),
        None,
        "no plugin was asked"
    );

    let (status, rolled) = h
        .api(Method::POST, "/plugins/connector-access/rollback", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{rolled}");
    refused_as(
        &start(json!({"demo": bobs})).await,
        "connector_not_available",
        "not_owner",
        "`demo`",
    );
    assert_eq!(h.count("runs").await, 1, "only the permitted run started");
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_expire_after_their_lifetime() {
    let h = Proxy::start_with(|c| c.runs.max_lifetime_secs = 1).await;
    let demo = demo().await;
    let (conn, actor) = setup(&h, &demo.url).await;
    let run = h.run(&actor, "alice", json!({"demo": conn})).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (_, shown) = h.api(Method::GET, &format!("/runs/{}", run.id), None).await;
    assert_eq!(shown["status"], "timed_out");
    let token = &run.token;
    assert_eq!(
        h.mcp_initialize(&conn, token).await,
        StatusCode::UNAUTHORIZED
    );
}

/// The tool names `tools/list` shows the run with `token` on `conn`, in a new session.
async fn listed(env: &Proxy, conn: &str, token: &str, id: i64) -> Vec<String> {
    let session = env.initialize(conn, token).await;
    let request = portcullis_test_upstreams::wire::request(id, "tools/list", json!({}));
    env.post(conn, Some(token), Some(&session), &request)
        .await
        .tool_names(id)
}

/// Spec FR-6: a run is judged by the input schema it started with. Changing the actor's
/// schema mid-run neither widens what a live run sees nor narrows it; a run started
/// after the change gets the new schema.
#[tokio::test(flavor = "multi_thread")]
async fn a_live_run_keeps_the_schema_it_started_with() {
    let upstream = portcullis_test_upstreams::sessions().await;
    let s = Scenario::on(&upstream.url())
        .tools(json!({ "required": ["list_*"] }))
        .start()
        .await;
    let (env, conn, token) = (&s.env, s.conn.as_str(), s.run.token.as_str());
    assert_eq!(listed(env, conn, token, 1).await, ["list_channels"]);

    // Wider: every tool of the connector.
    env.actor("actor", any_loopback(Some(json!({ "required": ["*"] }))))
        .await;
    assert_eq!(
        listed(env, conn, token, 2).await,
        ["list_channels"],
        "widened a live run"
    );
    let wider = env.run("actor", "alice", json!({ "conn": conn })).await;
    assert!(
        listed(env, conn, &wider.token, 3).await.len() > 1,
        "a new run gets the new schema"
    );

    // Narrower: no field, no server rule matches any more.
    let nothing = json!([{"url": "https://nothing.example/*"}]);
    env.actor_schema("actor", json!({ "other": field("string", nothing) }))
        .await;
    assert_eq!(
        listed(env, conn, token, 4).await,
        ["list_channels"],
        "narrowed a live run"
    );
    let session = env.initialize(conn, token).await;
    let call = portcullis_test_upstreams::wire::call_tool(5, "list_channels", json!({}));
    let call = env.post(conn, Some(token), Some(&session), &call).await;
    assert!(call.response(5).get("result").is_some(), "{}", call.text);
    let narrower = env.run("actor", "alice", json!({ "conn": conn })).await;
    assert_eq!(
        env.mcp_initialize(conn, &narrower.token).await,
        StatusCode::FORBIDDEN,
        "a new run gets the new schema"
    );
}
