//! The data plane against real MCP upstreams and clients on loopback: the acceptance
//! scenarios of the specification's section 6 and the error catalogue.

use std::time::{Duration, Instant};

use portcullis_test_upstreams as upstreams;
use portcullis_test_upstreams::wire;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

/// Scenario 1: the upstream gets the owner's credential and never the run token; the
/// client gets the proxy's own session id.
#[tokio::test(flavor = "multi_thread")]
async fn happy_path_injects_the_credential_and_keeps_the_run_token() {
    let upstream = upstreams::recording().await;
    let s = Scenario::on(&upstream.url()).start().await;

    let client = s.client().await;
    let whoami = client
        .call_tool(rmcp::model::CallToolRequestParams::new("whoami"))
        .await
        .unwrap();
    // The upstream saw the credential; the client sees it redacted (SEC-4).
    let seen = upstreams::client::text(&whoami);
    assert!(
        seen.contains("Bearer [REDACTED]") && !seen.contains(SECRET),
        "{seen}"
    );
    client.cancel().await.unwrap();

    let requests = upstream.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert!(
            !request.contains(&s.run.token),
            "the run token reached the upstream: {request:?}"
        );
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {SECRET}").as_str())
        );
    }
    let upstream_session = requests
        .iter()
        .find_map(|r| r.header("mcp-session-id"))
        .map(str::to_owned);
    let session = s.initialize().await;
    assert_ne!(
        Some(session),
        upstream_session,
        "the proxy must mint its own session id"
    );
}

/// Scenario 2 and ERR-3: a connector the run was not given, another user's connector
/// and a connector that does not exist all get the same 403.
#[tokio::test(flavor = "multi_thread")]
async fn connectors_outside_the_input_are_indistinguishable() {
    let upstream = upstreams::sessions().await;
    let s = Scenario::on(&upstream.url()).start().await;
    let not_given = s.env.connector("alice", &upstream.url(), None).await;
    let foreign = s.env.connector("bob", &upstream.url(), None).await;

    let mut bodies = Vec::new();
    for connector in [not_given.as_str(), foreign.as_str(), "conn_missing"] {
        let answer = s
            .env
            .post(connector, Some(&s.run.token), None, &wire::initialize(1))
            .await;
        assert_eq!(answer.status, 403, "{connector}: {}", answer.text);
        assert_eq!(answer.messages[0]["error"]["code"], -32002);
        bodies.push(answer.messages[0]["error"]["message"].clone());
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    let before = upstream.requests().len();
    let _ = s
        .env
        .post(&not_given, Some(&s.run.token), None, &wire::initialize(1))
        .await;
    assert_eq!(
        upstream.requests().len(),
        before,
        "a refused request reached the upstream"
    );
}

/// ERR-6's `data.reason` names the first layer that leaves the tool out, whichever plugin
/// of the request chain the operator put first.
#[tokio::test(flavor = "multi_thread")]
async fn a_denied_call_names_why_the_tool_is_not_permitted() {
    let upstream = upstreams::sessions().await;
    let s = Scenario::on(&upstream.url()).session().start().await;
    let (status, answer) = s
        .env
        .api(
            Method::PATCH,
            &format!("/connectors/{}", s.conn),
            Some(json!({"allowed_tools": ["list_channels"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let calls_before = count_calls(&upstream);
    for (id, tool, reason) in [
        (3, "send_message", "not_allowed_by_connector"),
        (4, "no_such_tool", "unknown_tool"),
    ] {
        let denied = s.call(id, tool, json!({})).await;
        let error = &denied.response(id)["error"];
        assert_eq!(error["code"], -32602, "{tool}: {}", denied.text);
        assert_eq!(error["data"]["reason"], reason, "{tool}: {}", denied.text);
    }
    assert_eq!(count_calls(&upstream), calls_before);
}

/// Scenario 3 and ERR-6: `tools/list` shows only the declared tools and a call outside
/// them is answered by the proxy without contacting the upstream.
#[tokio::test(flavor = "multi_thread")]
async fn declared_tools_filter_lists_and_guard_calls() {
    let upstream = upstreams::sessions().await;
    let s = Scenario::on(&upstream.url())
        .tools(json!({ "required": ["list_*"] }))
        .session()
        .start()
        .await;

    assert_eq!(s.list(2).await.tool_names(2), ["list_channels"]);

    let calls_before = count_calls(&upstream);
    let denied = s.call(3, "send_message", json!({"text": "hi"})).await;
    assert_eq!(denied.status, 200);
    let error = &denied.response(3)["error"];
    assert_eq!(error["code"], -32602);
    assert_eq!(error["message"], "Tool not permitted: send_message");
    assert_eq!(error["data"]["reason"], "not_declared");
    assert_eq!(
        count_calls(&upstream),
        calls_before,
        "a denied call reached the upstream"
    );

    let allowed = s.call(4, "list_channels", json!({})).await;
    assert!(
        allowed.response(4).get("result").is_some(),
        "{}",
        allowed.text
    );
    assert_eq!(count_calls(&upstream), calls_before + 1);

    let audit = s
        .env
        .audit_once(&s.run, |r| r["tool"] == "send_message")
        .await;
    let denial = audit
        .iter()
        .find(|r| r["tool"] == "send_message")
        .expect("the denied call is audited");
    assert_eq!(denial["decision"], "deny");
    assert_eq!(denial["reason"], "not_declared");
    assert!(
        denial["plugins"]
            .as_array()
            .is_some_and(|p| p.iter().any(|s| s["name"] == "declared-tools"))
    );
    assert!(
        !serde_json::to_string(&audit).unwrap().contains("\"hi\""),
        "tool arguments were audited"
    );
}

fn count_calls(upstream: &upstreams::Upstream) -> usize {
    upstream
        .requests()
        .iter()
        .filter(|r| r.rpc_method().as_deref() == Some("tools/call"))
        .count()
}

/// Scenario 5: `readOnly: true` hides a tool without annotations (MCP default false).
#[tokio::test(flavor = "multi_thread")]
async fn read_only_rule_hides_unannotated_tools() {
    let upstream = upstreams::sessions().await;
    let s = Scenario::on(&upstream.url())
        .tools(json!({ "readOnly": true }))
        .session()
        .start()
        .await;
    assert_eq!(
        s.list(2).await.tool_names(2),
        ["get_channel", "list_channels"]
    );
}

/// Scenario 6: a tool the upstream adds after authorization stays hidden and uncallable.
#[tokio::test(flavor = "multi_thread")]
async fn tools_added_after_authorization_stay_hidden() {
    let tools = upstreams::ToolSet::channels();
    let upstream = upstreams::McpUpstream::with_sessions()
        .tools(tools.clone())
        .start()
        .await;
    let s = Scenario::on(&upstream.url()).session().start().await;
    tools.add(upstreams::catalogue::numbered(8).pop().unwrap());

    let names = s.list(2).await.tool_names(2);
    assert!(!names.contains(&"tool_007".to_owned()), "{names:?}");
    assert!(names.contains(&"list_channels".to_owned()));
    let call = s.call(3, "tool_007", json!({})).await;
    assert_eq!(call.response(3)["error"]["code"], -32602);
}

/// Scenario 7: when the run finishes its token stops working at once, its session is
/// gone and the upstream session gets a DELETE.
#[tokio::test(flavor = "multi_thread")]
async fn finishing_the_run_ends_access_and_sessions() {
    let upstream = upstreams::sessions().await;
    let s = Scenario::on(&upstream.url()).session().start().await;
    let stream = s.open_stream().await;
    assert_eq!(stream.status(), 200);

    s.env.finish(&s.run).await;
    let answer = s.list(2).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    assert_eq!(answer.messages[0]["error"]["code"], -32001);
    assert_eq!(
        answer.messages[0]["error"]["data"]["reason"],
        "run_finished"
    );
    assert_eq!(s.env.server.state.data.open_sessions(), 0);

    let ended = tokio::time::timeout(Duration::from_secs(5), stream.bytes()).await;
    assert!(
        ended.is_ok(),
        "the open GET stream was not closed when the run finished"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !upstream
        .requests()
        .iter()
        .any(|r| r.method == reqwest::Method::DELETE)
    {
        assert!(
            Instant::now() < deadline,
            "no upstream DELETE after the run finished"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// ERR-1: no token, a wrong token.
#[tokio::test(flavor = "multi_thread")]
async fn requests_without_a_live_run_token_get_401() {
    let env = Proxy::start().await;
    for token in [None, Some("not-a-run-token")] {
        let answer = env.post("conn_x", token, None, &wire::initialize(1)).await;
        assert_eq!(answer.status, 401);
        assert_eq!(
            answer.messages[0]["error"]["data"]["reason"],
            "invalid_run_token"
        );
    }
}

/// Scenario 10: three pages over SSE; the filtered pages keep their cursors and the
/// client's loop ends.
#[tokio::test(flavor = "multi_thread")]
async fn paging_keeps_cursors_through_the_filter() {
    let upstream = upstreams::paging(30, 10).await;
    let s = Scenario::on(&upstream.url())
        .tools(json!({ "required": ["tool_00?"] }))
        .session()
        .start()
        .await;

    let mut cursor: Option<String> = None;
    let mut seen = Vec::new();
    for page in 0.. {
        assert!(page < 10, "the cursor loop did not end");
        let params = cursor
            .as_ref()
            .map_or(json!({}), |c| json!({ "cursor": c }));
        let answer = s
            .send(&wire::request(10 + page, "tools/list", params))
            .await;
        assert_eq!(answer.header("content-type"), Some("text/event-stream"));
        seen.extend(answer.tool_names(10 + page));
        cursor = answer.response(10 + page)["result"]["nextCursor"]
            .as_str()
            .map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    let expected: Vec<String> = (0..10).map(|i| format!("tool_{i:03}")).collect();
    assert_eq!(seen, expected);
}

/// Scenario 11: a progress notification reaches the client before the result, so the
/// proxy streams SSE rather than buffering it.
#[tokio::test(flavor = "multi_thread")]
async fn progress_arrives_before_the_result() {
    let upstream = upstreams::progress().await;
    let s = Scenario::on(&upstream.url()).start().await;
    let client = s.client().await;
    let call = rmcp::model::CallToolRequestParams::new("slow_count").with_arguments(
        upstreams::client::arguments(json!({ "count": 3, "delay_ms": 100 })),
    );
    let result = client.call_tool(call).await.unwrap();
    let finished = Instant::now();
    let progress = client.service().progress();
    assert_eq!(progress.len(), 3, "{progress:?}");
    assert!(
        progress[0].at + Duration::from_millis(150) < finished,
        "progress was buffered until the result"
    );
    assert!(!upstreams::client::text(&result).is_empty());
    client.cancel().await.unwrap();
}

/// Scenario 12 and ERR-11.
#[tokio::test(flavor = "multi_thread")]
async fn unsupported_protocol_version_gets_400() {
    let upstream = upstreams::sessions().await;
    let s = Scenario::on(&upstream.url()).start().await;
    let mut headers = HeaderMap::new();
    headers.insert(
        "mcp-protocol-version",
        HeaderValue::from_static("1999-01-01"),
    );
    let answer = s.send_with(&wire::initialize(1), headers).await;
    assert_eq!(answer.status, 400);
    let error = &answer.messages[0]["error"];
    assert_eq!(error["code"], -32602);
    assert_eq!(error["data"]["requested"], "1999-01-01");
    assert!(
        error["data"]["supported"]
            .as_array()
            .unwrap()
            .contains(&json!("2025-11-25"))
    );
}

/// Scenario 14: a Sentry connector sends `Sentry-Bearer`, chosen by the provider plugin.
#[tokio::test(flavor = "multi_thread")]
async fn sentry_connectors_use_sentry_bearer() {
    let upstream = upstreams::recording().await;
    let _scenario = Scenario::on(&upstream.url())
        .provider("sentry")
        .session()
        .start()
        .await;
    let last = upstream.requests().pop().unwrap();
    assert_eq!(
        last.header("authorization"),
        Some(format!("Sentry-Bearer {SECRET}").as_str())
    );
}

/// Scenario 15 and session isolation: two connectors of an array field give two
/// independent sessions, and a session id is unknown to another run.
#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_bound_to_their_run_and_connector() {
    let first = upstreams::sessions().await;
    let second = upstreams::stateless().await;
    let env = Proxy::start().await;
    let a = env.connector("alice", &first.url(), None).await;
    let b = env.connector("alice", &second.url(), None).await;
    env.actor_schema(
        "actor",
        json!({ "conns": field("array", any_loopback(None)) }),
    )
    .await;
    let run = env.run("actor", "alice", json!({ "conns": [a, b] })).await;
    let other = env.run("actor", "alice", json!({ "conns": [a] })).await;

    let session_a = env.initialize(&a, &run.token).await;
    let session_b = env.initialize(&b, &run.token).await;
    assert_ne!(session_a, session_b);
    assert_eq!(list(&env, &a, &run, Some(&session_a)).await.status, 200);
    assert_eq!(list(&env, &b, &run, Some(&session_b)).await.status, 200);
    // The session of one connector is unknown on the other, and to another run.
    assert_eq!(list(&env, &b, &run, Some(&session_a)).await.status, 404);
    let stolen = list(&env, &a, &other, Some(&session_a)).await;
    assert_eq!(stolen.status, 404);
    assert_eq!(stolen.messages[0]["error"]["code"], -32003);
    // ERR-4: after initialize a session id is required.
    assert_eq!(list(&env, &a, &run, None).await.status, 400);
}

/// `tools/list` on `connector` with `run`'s token.
async fn list(env: &Proxy, connector: &str, run: &Run, session: Option<&str>) -> Answer {
    let list = wire::request(2, "tools/list", json!({}));
    env.post(connector, Some(&run.token), session, &list).await
}

/// ERR-10: an upstream that is down fails fast; one that hangs times out.
#[tokio::test(flavor = "multi_thread")]
async fn unreachable_and_hanging_upstreams_give_err_10() {
    let upstream = upstreams::hangs_on_call().await;
    let s = Scenario::on(&upstream.url())
        .configure(|c| c.upstream.idle_timeout_ms = 500)
        .session()
        .start()
        .await;
    let started = Instant::now();
    let answer = s.call(2, "echo", json!({})).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        matches!(answer.status, 502 | 504),
        "{} {}",
        answer.status,
        answer.text
    );
    assert_eq!(answer.messages[0]["error"]["code"], -32006);

    upstream.shutdown().await;
    let started = Instant::now();
    let answer = s.call(3, "echo", json!({})).await;
    assert_eq!(answer.status, 502, "{}", answer.text);
    assert_eq!(answer.messages[0]["error"]["code"], -32006);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a down upstream took {:?}",
        started.elapsed()
    );
}

/// An upstream that drops the connection mid-stream leaves the client a clean error.
#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_closing_mid_stream_gives_a_clean_error() {
    let upstream = upstreams::closes_mid_stream().await;
    let s = Scenario::on(&upstream.url()).session().start().await;
    let answer = s.call(2, "echo", json!({})).await;
    assert_eq!(
        answer.response(2)["error"]["code"],
        -32006,
        "{}",
        answer.text
    );
}

/// SEC-4 and FR-35: the credential never reaches the client, in results, errors or SSE,
/// and upstream auth challenges are not forwarded.
#[tokio::test(flavor = "multi_thread")]
async fn the_secret_never_reaches_the_client() {
    let upstream = upstreams::leaky(SECRET).await;
    let s = Scenario::on(&upstream.url()).session().start().await;
    for (id, tool) in [(2, "leak"), (3, "leak_error"), (4, "leak_sse")] {
        let answer = s.call(id, tool, json!({})).await;
        assert!(
            !answer.text.contains(SECRET),
            "{tool} leaked the secret: {}",
            answer.text
        );
        assert!(
            answer.text.contains("[REDACTED]"),
            "{tool}: {}",
            answer.text
        );
    }
}

/// ERR-8: the upstream rejects the credential; its challenge is not forwarded.
#[tokio::test(flavor = "multi_thread")]
async fn upstream_401_becomes_err_8_without_the_challenge() {
    let upstream = upstreams::unauthorized_on_call().await;
    let s = Scenario::on(&upstream.url()).session().start().await;
    let answer = s.call(2, "echo", json!({})).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.response(2)["error"]["code"], -32004);
    assert!(answer.header("www-authenticate").is_none());
    assert!(answer.header("set-cookie").is_none());
    // FR-34: the key must be replaced; until then the connector is not available.
    let (_, shown) = s
        .env
        .api(Method::GET, &format!("/connectors/{}", s.conn), None)
        .await;
    assert_eq!(shown["status"], "needs_reauthorization", "{shown}");
    let seen = upstream.requests().len();
    // Every later message of the run gets ERR-8 too, without reaching the upstream: a
    // call in the ended session, a new `initialize`, a notification, and the GET stream.
    let later = s.call(3, "echo", json!({})).await;
    assert_reauthorization(&later, 200, Some(3), &s.conn, "credential_rejected");
    let again = s
        .env
        .post(&s.conn, Some(&s.run.token), None, &wire::initialize(4))
        .await;
    assert_reauthorization(&again, 200, Some(4), &s.conn, "credential_rejected");
    let notification = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let notified = s.send(&notification).await;
    assert_reauthorization(&notified, 502, None, &s.conn, "credential_rejected");
    let stream = s.open_stream().await;
    let stream = Answer::read(stream).await;
    assert_reauthorization(&stream, 502, None, &s.conn, "credential_rejected");
    assert_eq!(
        upstream.requests().len(),
        seen,
        "a refused message went upstream"
    );
    s.env
        .audit_once(&s.run, |r| {
            r["method"] == "tools/call"
                && r["tool"] == "echo"
                && r["reason"] == "needs_reauthorization:credential_rejected"
        })
        .await;
    // A run the access chain would not let use the connector learns nothing of its state.
    let other = s.env.connector("alice", &upstream.url(), None).await;
    let stranger = s.env.run("actor", "alice", json!({ "conn": other })).await;
    let refused = s
        .env
        .post(&s.conn, Some(&stranger.token), None, &wire::initialize(1))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(refused.messages[0]["error"]["code"], -32002);
    let run = json!({"actor": "actor", "user": "alice", "input": {"conn": s.conn}});
    let refused = s.env.api(Method::POST, "/runs", Some(run)).await;
    assert_error(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "connector_not_available",
    );
    for answer in [&later, &again, &notified, &stream] {
        assert!(!answer.text.contains(SECRET), "{}", answer.text);
    }
}

/// ERR-2, ERR-7, ERR-12, FR-13 and DELETE.
#[tokio::test(flavor = "multi_thread")]
async fn transport_rules() {
    let upstream = upstreams::sessions().await;
    let s = Scenario::on(&upstream.url()).session().start().await;
    let (env, conn, run, session) = (&s.env, &s.conn, &s.run, s.session());

    let batch = s.send(&json!([wire::request(2, "ping", json!({}))])).await;
    assert_eq!(batch.status, 400);
    assert_eq!(batch.messages[0]["error"]["code"], -32600);

    let denied = s.send(&wire::request(3, "resources/list", json!({}))).await;
    assert_eq!(denied.status, 200);
    assert_eq!(denied.response(3)["error"]["code"], -32601);

    let mut origin = HeaderMap::new();
    origin.insert("origin", HeaderValue::from_static("https://evil.example"));
    let answer = s
        .send_with(&wire::request(4, "ping", json!({})), origin)
        .await;
    assert_eq!(answer.status, 403);

    let wrong_accept = env
        .http
        .post(env.mcp_url(conn))
        .bearer_auth(&run.token)
        .header("mcp-session-id", session)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(wire::request(5, "ping", json!({})).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_accept.status(), 406);

    let put = env
        .http
        .put(env.mcp_url(conn))
        .bearer_auth(&run.token)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 405);
    assert_eq!(put.headers()["allow"], "GET, POST, DELETE");

    let deleted = env
        .http
        .delete(env.mcp_url(conn))
        .bearer_auth(&run.token)
        .header("mcp-session-id", session)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let after = s.send(&wire::request(6, "ping", json!({}))).await;
    assert_eq!(after.status, 404);
}

/// 2026-07-28: `server/discover` passes without a session, with the same enforcement;
/// `Mcp-Method` must agree with the body.
#[tokio::test(flavor = "multi_thread")]
async fn stateless_revision_requests_pass_with_enforcement() {
    let upstream = upstreams::stateless().await;
    let s = Scenario::on(&upstream.url())
        .tools(json!({ "required": ["list_*"] }))
        .start()
        .await;
    let send = |id: i64, method: &str, name: Option<&str>, params: serde_json::Value| {
        let body = wire::stateless_request(id, method, params);
        let headers = wire::stateless_headers(method, name);
        let s = &s;
        async move { s.send_with(&body, headers).await }
    };
    let discover = send(1, "server/discover", None, json!({})).await;
    assert_eq!(discover.status, 200, "{}", discover.text);
    let list = send(2, "tools/list", None, json!({})).await;
    assert_eq!(list.tool_names(2), ["list_channels"]);
    let denied = send(
        3,
        "tools/call",
        Some("send_message"),
        json!({ "name": "send_message", "arguments": {} }),
    )
    .await;
    assert_eq!(denied.response(3)["error"]["code"], -32602);

    let body = wire::stateless_request(4, "tools/list", json!({}));
    let mismatch = s
        .send_with(&body, wire::stateless_headers("tools/call", None))
        .await;
    assert_eq!(mismatch.status, 400);
    assert_eq!(mismatch.messages[0]["error"]["code"], -32020);
}

/// FR-28: a session unused for longer than the idle timeout is closed; the client gets
/// 404 and can initialize again.
#[tokio::test(flavor = "multi_thread")]
async fn idle_sessions_time_out() {
    let upstream = upstreams::sessions().await;
    let s = Scenario::on(&upstream.url())
        .configure(|c| c.sessions.idle_timeout_secs = 1)
        .session()
        .start()
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.env.server.state.data.open_sessions() != 0 {
        assert!(
            Instant::now() < deadline,
            "the idle session was never closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = s.send(&wire::request(2, "ping", json!({}))).await;
    assert_eq!(answer.status, 404);
    s.initialize().await;
}

/// FR-4: bodies over the limit are refused before anything is parsed or forwarded.
#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_are_refused() {
    let upstream = upstreams::sessions().await;
    let s = Scenario::on(&upstream.url())
        .configure(|c| c.http.max_body_bytes = 64 * 1024)
        .session()
        .start()
        .await;
    let before = upstream.requests().len();
    let answer = s
        .call(2, "echo", json!({ "text": "x".repeat(100 * 1024) }))
        .await;
    assert_eq!(answer.status, 413, "{}", answer.text);
    assert_eq!(upstream.requests().len(), before);
}

/// A server-to-client request reaches the client only if it declared the capability;
/// otherwise the proxy declines it upstream with -32601 on the client's behalf.
#[tokio::test(flavor = "multi_thread")]
async fn server_requests_need_the_client_capability() {
    let sampling = sampling_upstream().await;
    let s = Scenario::on(&sampling.upstream.url).start().await;

    for (id, declares_sampling) in [(10, false), (20, true)] {
        let mut init = wire::initialize(id);
        if declares_sampling {
            init["params"]["capabilities"]["sampling"] = json!({});
        }
        let answer = s.send(&init).await;
        let session = answer.header("mcp-session-id").unwrap().to_owned();
        let call = s
            .env
            .post(
                &s.conn,
                Some(&s.run.token),
                Some(&session),
                &wire::call_tool(id + 1, "echo", json!({})),
            )
            .await;
        let forwarded = call
            .messages
            .iter()
            .any(|m| m["method"] == "sampling/createMessage");
        assert_eq!(forwarded, declares_sampling, "{}", call.text);
        assert!(call.response(id + 1).get("result").is_some());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let declined = sampling
            .posts
            .lock()
            .unwrap()
            .iter()
            .any(|body| body["id"] == "s-1" && body["error"]["code"] == -32601);
        if declined {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy never declined the sampling request upstream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let declines = sampling
        .posts
        .lock()
        .unwrap()
        .iter()
        .filter(|b| b.get("error").is_some())
        .count();
    assert_eq!(
        declines, 1,
        "only the client without the capability is declined for"
    );
}
