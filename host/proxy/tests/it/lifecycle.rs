//! Sessions and streams against the authorization behind them and the caps of
//! `[limits]` (issue 10): rates, session and stream caps, streams ended by a run's
//! lifetime and by connector changes, the idle reaper and open streams, refusals that
//! carry the request's id.

use std::time::Duration;

use portcullis::config::Config;
use portcullis_test_upstreams as upstreams;
use portcullis_test_upstreams::wire;
use reqwest::Method;
use serde_json::json;

use crate::support::*;

async fn scenario(
    configure: impl FnOnce(&mut Config) + 'static,
) -> (upstreams::Upstream, Scenario) {
    let upstream = upstreams::sessions().await;
    let s = Scenario::on(&upstream.url())
        .configure(configure)
        .session()
        .start()
        .await;
    (upstream, s)
}

/// Opens a GET stream on the scenario's session; answers the response once its headers
/// arrived.
async fn open_stream(s: &Scenario, session: &str) -> reqwest::Response {
    s.env
        .http
        .get(s.env.mcp_url(&s.conn))
        .headers(wire::mcp_headers(Some(session)))
        .header("accept", "text/event-stream")
        .bearer_auth(&s.run.token)
        .send()
        .await
        .unwrap()
}

/// Whether the stream's body ends within `within`.
async fn ends_within(response: reqwest::Response, within: Duration) -> bool {
    tokio::time::timeout(within, drain(response)).await.is_ok()
}

/// Whether `holds` becomes true within five seconds.
async fn eventually(holds: impl Fn() -> bool) -> bool {
    for _ in 0..50 {
        if holds() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn ping(id: i64) -> serde_json::Value {
    wire::request(id, "ping", json!({}))
}

/// Issue 10, defect 6 (ERR-13): past the run's rate, 429 with `Retry-After`.
#[tokio::test(flavor = "multi_thread")]
async fn the_run_rate_limit_answers_429() {
    let (_upstream, s) = scenario(|c| c.limits.requests_per_second_per_run = 3).await;
    let mut limited = None;
    for id in 0..20 {
        let answer = s.send(&ping(id)).await;
        if answer.status == 429 {
            limited = Some(answer);
            break;
        }
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let answer = limited.expect("20 requests at once passed a rate of 3 per second");
    let retry: u64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1);
    let error = &answer.messages[0]["error"];
    assert_eq!(error["code"], -32007, "{}", answer.text);
    assert_eq!(error["message"], "Rate limited");
    assert_eq!(error["data"]["reason"], "run_rate");
}

/// Issue 10, defect 6: the connector's rate counts every run.
#[tokio::test(flavor = "multi_thread")]
async fn the_connector_rate_limit_counts_every_run() {
    let (_upstream, s) = scenario(|c| {
        c.limits.requests_per_second_per_run = 0;
        c.limits.requests_per_second_per_connector = 3;
    })
    .await;
    let mut reasons = Vec::new();
    for id in 0..20 {
        let answer = s.send(&ping(id)).await;
        if answer.status == 429 {
            reasons.push(answer.messages[0]["error"]["data"]["reason"].clone());
            break;
        }
    }
    assert_eq!(reasons, [json!("connector_rate")]);
}

/// Issue 10, defect 6: a run has at most `sessions_per_run` sessions; the upstream session
/// opened by a refused `initialize` gets its DELETE.
#[tokio::test(flavor = "multi_thread")]
async fn sessions_per_run_are_capped() {
    let (upstream, s) = scenario(|c| c.limits.sessions_per_run = 2).await;
    let _second = s.initialize().await;
    let refused = s
        .env
        .post(&s.conn, Some(&s.run.token), None, &wire::initialize(9))
        .await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(
        refused.response(9)["error"]["data"]["reason"],
        "sessions_per_run"
    );
    assert_eq!(s.env.server.state.data.open_sessions(), 2);
    let mut deleted = false;
    for _ in 0..50 {
        if upstream
            .requests()
            .iter()
            .any(|r| r.method == Method::DELETE)
        {
            deleted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(deleted, "the refused session was not closed upstream");
}

/// Issue 10, defect 6: a session has at most `streams_per_session` open streams.
#[tokio::test(flavor = "multi_thread")]
async fn streams_per_session_are_capped() {
    let (_upstream, s) = scenario(|c| c.limits.streams_per_session = 1).await;
    let held = open_stream(&s, s.session()).await;
    assert_eq!(held.status(), 200);
    let refused = Answer::read(open_stream(&s, s.session()).await).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(
        refused.messages[0]["error"]["data"]["reason"],
        "streams_per_session"
    );
    drop(held);
    // The slot is given back when the stream ends.
    let mut reopened = false;
    for _ in 0..50 {
        let again = open_stream(&s, s.session()).await;
        if again.status() == 200 {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened);
}

/// Issue 10, defect 17: a session whose GET stream is open is in use; the idle reaper
/// passes it by.
#[tokio::test(flavor = "multi_thread")]
async fn an_open_stream_keeps_its_session() {
    let (_upstream, s) = scenario(|c| c.sessions.idle_timeout_secs = 1).await;
    let held = open_stream(&s, s.session()).await;
    assert_eq!(held.status(), 200);
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let answer = s.send(&ping(1)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    drop(held);
}

/// Issue 10, defects 9 and 19: a run's streams end when it passes
/// `runs.max_lifetime_secs`, and its entries in the run and token tables are freed.
#[tokio::test(flavor = "multi_thread")]
async fn streams_end_with_the_run_lifetime() {
    let (_upstream, s) = scenario(|c| c.runs.max_lifetime_secs = 3).await;
    let held = open_stream(&s, s.session()).await;
    assert_eq!(held.status(), 200);
    assert!(ends_within(held, Duration::from_secs(15)).await);
    let data = &s.env.server.state.data;
    let freed = || {
        let footprint = data.footprint();
        data.open_sessions() == 0 && footprint.runs == 0 && footprint.cached_runs == 0
    };
    assert!(eventually(freed).await, "{:?}", data.footprint());
}

/// Issue 10, defect 9: changing a connector's allowlist ends its open streams; deleting
/// it also ends its sessions.
#[tokio::test(flavor = "multi_thread")]
async fn connector_changes_end_streams_and_deletes_end_sessions() {
    let (_upstream, s) = scenario(|_| {}).await;
    let path = format!("/connectors/{}", s.conn);
    let held = open_stream(&s, s.session()).await;
    assert_eq!(held.status(), 200);
    let (status, body) = s
        .env
        .api(
            Method::PATCH,
            &path,
            Some(json!({"allowed_tools": ["list_channels"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(ends_within(held, Duration::from_secs(10)).await);
    assert_eq!(s.send(&ping(1)).await.status, 200, "the session was kept");

    let held = open_stream(&s, s.session()).await;
    let (status, body) = s.env.api(Method::DELETE, &path, None).await;
    assert!(status.is_success(), "{body}");
    assert!(ends_within(held, Duration::from_secs(10)).await);
    let data = &s.env.server.state.data;
    assert!(eventually(|| data.open_sessions() == 0).await);
}

/// Issue 10, defect 23: ERR-4 and ERR-5 answer with the request's id.
#[tokio::test(flavor = "multi_thread")]
async fn session_errors_carry_the_request_id() {
    let (_upstream, s) = scenario(|_| {}).await;
    let missing = s
        .env
        .post(&s.conn, Some(&s.run.token), None, &ping(41))
        .await;
    assert_eq!(missing.status, 400, "{}", missing.text);
    assert_eq!(missing.response(41)["error"]["code"], -32600);
    let unknown = s
        .env
        .post(
            &s.conn,
            Some(&s.run.token),
            Some("no-such-session"),
            &ping(42),
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert_eq!(unknown.response(42)["error"]["code"], -32003);
}

/// Issue 10, defect 10: a message with a duplicate key at any depth is refused and
/// never forwarded.
#[tokio::test(flavor = "multi_thread")]
async fn duplicate_keys_are_refused() {
    let (upstream, s) = scenario(|_| {}).await;
    let before = upstream.requests().len();
    let bodies = [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_channels","name":"send_message"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":1,"\u0061":2}}}"#,
    ];
    for body in bodies {
        let response = s.post_raw(body).await;
        let answer = Answer::read(response).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text);
        assert_eq!(
            answer.messages[0]["error"]["code"], -32600,
            "{}",
            answer.text
        );
    }
    assert_eq!(
        upstream.requests().len(),
        before,
        "a refused message was forwarded"
    );
}

/// Issue 10, defect 9: an `initialize` upstream while its run finishes opens no session:
/// the client gets ERR-1 and the upstream session is closed.
#[tokio::test(flavor = "multi_thread")]
async fn an_initialize_across_a_finish_opens_nothing() {
    let upstream = upstreams::hostile().await;
    let s = Scenario::on(&upstream.url()).start().await;
    upstream.delay_initialize(Duration::from_millis(1_500));
    let body = wire::initialize(1);
    let initialize = s.env.post(&s.conn, Some(&s.run.token), None, &body);
    let finish = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.env.finish(&s.run).await;
    };
    let (answer, ()) = tokio::join!(initialize, finish);
    assert_eq!(answer.status, 401, "{}", answer.text);
    assert_eq!(
        answer.messages[0]["error"]["data"]["reason"],
        "run_finished"
    );
    assert!(answer.header("mcp-session-id").is_none());
    assert_eq!(s.env.server.state.data.open_sessions(), 0);
    let deleted = || {
        upstream
            .requests()
            .iter()
            .any(|r| r.method == Method::DELETE)
    };
    assert!(
        eventually(deleted).await,
        "the upstream session was left open"
    );
}
