//! Plugin faults are not decisions (issue 10, defect 5): a chain that faults denies the
//! request in front of it (fail closed), and the next request asks again. The faults
//! come from a decider wrapped around the sandbox, switched on and off by the test. The
//! same decider can also decide on the protocol version, to show that a memoized
//! decision is reused only under the version it was made for.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use portcullis_model::{
    Decision, DecisionContext, Denial, DenyCode, Fault, McpRequest, OAuthProfile, OAuthRequest,
    PlanRequest,
};
use portcullis_runtime::{Decider, Link, Plugin, RawPlan, RawToolSet};
use portcullis_test_upstreams as upstreams;
use portcullis_test_upstreams::wire;
use serde_json::json;

use crate::support::*;

const NONE: u8 = 0;
const ACCESS: u8 = 1;
const REQUEST: u8 = 2;
const PERMITTED: u8 = 3;
/// Not a fault: the request chain denies `tools/list` and `resources/list` sent as
/// [`OLD_VERSION`].
const VERSION: u8 = 4;
const OLD_VERSION: &str = "2025-03-26";

/// The sandbox's answers, except for the chain `mode` names, which times out (the request
/// chain answers `initialize` still, so that a session can be opened under the fault),
/// and `resources/list`, always allowed.
struct Faulty {
    inner: Arc<dyn Decider>,
    mode: Arc<AtomicU8>,
}

impl Faulty {
    fn faults(&self, chain: u8) -> bool {
        self.mode.load(Ordering::SeqCst) == chain
    }
}

impl Decider for Faulty {
    fn access(&self, link: &Link, ctx: &DecisionContext) -> Result<Decision, Fault> {
        if self.faults(ACCESS) {
            return Err(Fault::WallTimeout);
        }
        self.inner.access(link, ctx)
    }

    fn request(
        &self,
        link: &Link,
        ctx: &DecisionContext,
        request: &McpRequest,
    ) -> Result<Decision, Fault> {
        if self.faults(REQUEST) && request.method != "initialize" {
            return Err(Fault::WallTimeout);
        }
        if self.faults(VERSION)
            && ["tools/list", "resources/list"].contains(&request.method.as_str())
            && request.protocol_version == OLD_VERSION
        {
            return Ok(Decision::Deny(Denial {
                code: DenyCode::MethodNotAllowed,
                reason: "old_version".into(),
                message: "denied under the oldest version".into(),
            }));
        }
        if request.method == "resources/list" {
            // As an operator's `allow_methods` would: the capability stays when asked.
            return Ok(Decision::Allow);
        }
        self.inner.request(link, ctx, request)
    }

    fn permitted_tools(&self, link: &Link, ctx: &DecisionContext) -> Result<RawToolSet, Fault> {
        if self.faults(PERMITTED) {
            return Err(Fault::WallTimeout);
        }
        self.inner.permitted_tools(link, ctx)
    }

    fn plan(
        &self,
        provider: &Plugin,
        request: &PlanRequest,
    ) -> Result<Result<RawPlan, String>, Fault> {
        self.inner.plan(provider, request)
    }

    fn oauth(
        &self,
        provider: &Plugin,
        request: &OAuthRequest,
    ) -> Result<Result<OAuthProfile, String>, Fault> {
        self.inner.oauth(provider, request)
    }

    fn blocks(&self, plugin: &Plugin) -> bool {
        self.inner.blocks(plugin)
    }
}

/// A proxy whose decider is [`Faulty`] in `mode`, a hostile upstream, alice's connector
/// to it and a run given the connector.
struct Hooked {
    mode: Arc<AtomicU8>,
    env: Proxy,
    upstream: upstreams::Hostile,
    conn: String,
    run: Run,
}

async fn hooked(mode: u8) -> Hooked {
    let mode = Arc::new(AtomicU8::new(mode));
    let switch = mode.clone();
    let env = Proxy::start_hooked(Box::new(move |runtime| {
        let inner = runtime.decider();
        runtime.with_decider(Arc::new(Faulty {
            inner,
            mode: switch,
        }))
    }))
    .await;
    let upstream = upstreams::hostile().await;
    let conn = env.connector("alice", &upstream.url(), None).await;
    env.actor("actor", any_loopback(None)).await;
    let run = env.run("actor", "alice", json!({ "conn": conn })).await;
    Hooked {
        mode,
        env,
        upstream,
        conn,
        run,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_are_retried_not_remembered() {
    let Hooked {
        mode,
        env,
        upstream: _upstream,
        conn,
        run,
    } = hooked(NONE).await;
    let set = |m: u8| mode.store(m, Ordering::SeqCst);

    // A faulted access decision refuses this request only.
    set(ACCESS);
    let refused = env
        .post(&conn, Some(&run.token), None, &wire::initialize(1))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    set(NONE);
    env.initialize(&conn, &run.token).await;

    // A faulted capability probe strips the capability from this answer only, and a
    // faulted request decision denies this request only.
    let run = env.run("actor", "alice", json!({ "conn": conn })).await;
    set(REQUEST);
    let stripped = env
        .post(&conn, Some(&run.token), None, &wire::initialize(2))
        .await;
    assert_eq!(stripped.status, 200, "{}", stripped.text);
    let capabilities = &stripped.response(2)["result"]["capabilities"];
    assert!(capabilities.get("resources").is_none(), "{}", stripped.text);
    assert!(capabilities.get("logging").is_none(), "{}", stripped.text);
    let session = stripped.header("mcp-session-id").unwrap().to_owned();
    let list = wire::request(3, "tools/list", json!({}));
    let denied = env
        .post(&conn, Some(&run.token), Some(&session), &list)
        .await;
    assert!(denied.response(3).get("error").is_some(), "{}", denied.text);
    set(NONE);
    let whole = env
        .post(&conn, Some(&run.token), None, &wire::initialize(4))
        .await;
    let capabilities = &whole.response(4)["result"]["capabilities"];
    assert!(capabilities.get("resources").is_some(), "{}", whole.text);
    let listed = env
        .post(&conn, Some(&run.token), Some(&session), &list)
        .await;
    assert!(!listed.tool_names(3).is_empty(), "{}", listed.text);

    // A faulted permitted-tools verdict empties this answer only (a fresh run, so that
    // its policy is computed under the fault).
    let other = env.run("actor", "alice", json!({ "conn": conn })).await;
    set(PERMITTED);
    let other_session = env.initialize(&conn, &other.token).await;
    let list = wire::request(5, "tools/list", json!({}));
    let emptied = env
        .post(&conn, Some(&other.token), Some(&other_session), &list)
        .await;
    assert!(
        emptied
            .messages
            .first()
            .is_some_and(|m| m["result"]["tools"].as_array().is_none_or(Vec::is_empty)),
        "{}",
        emptied.text
    );
    set(NONE);
    let listed = env
        .post(&conn, Some(&other.token), Some(&other_session), &list)
        .await;
    assert!(!listed.tool_names(5).is_empty(), "{}", listed.text);
}

/// A request decision is memoized per protocol version: `tools/list` allowed under one
/// version is asked again, and denied, under another; the capabilities an `initialize`
/// answer keeps are judged under its own version too.
#[tokio::test(flavor = "multi_thread")]
async fn a_memoized_decision_serves_only_its_protocol_version() {
    let Hooked {
        env,
        upstream: _upstream,
        conn,
        run,
        ..
    } = hooked(VERSION).await;
    let list = |id: i64| wire::request(id, "tools/list", json!({}));
    // Sends `body` as `version`, in `session` if one is named.
    let send = |body: serde_json::Value, session: Option<String>, version: &'static str| {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "mcp-protocol-version",
            reqwest::header::HeaderValue::from_static(version),
        );
        let (env, conn, token) = (&env, &conn, &run.token);
        async move {
            env.post_with(conn, Some(token), session.as_deref(), &body, headers)
                .await
        }
    };
    let session = env.initialize(&conn, &run.token).await;
    let allowed = send(list(1), Some(session.clone()), "2025-06-18").await;
    assert!(!allowed.tool_names(1).is_empty(), "{}", allowed.text);
    let denied = send(list(2), Some(session), OLD_VERSION).await;
    assert_eq!(
        denied.response(2)["error"]["code"],
        -32601,
        "{}",
        denied.text
    );

    let old = send(wire::initialize(3), None, OLD_VERSION).await;
    let capabilities = &old.response(3)["result"]["capabilities"];
    assert!(capabilities.get("resources").is_none(), "{}", old.text);
    let new = send(wire::initialize(4), None, "2025-06-18").await;
    let capabilities = &new.response(4)["result"]["capabilities"];
    assert!(capabilities.get("resources").is_some(), "{}", new.text);
}
