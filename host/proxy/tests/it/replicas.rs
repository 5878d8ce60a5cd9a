//! Several replicas on one PostgreSQL database (issue 14): real `portcullis serve`
//! processes, each with a data directory of its own, sharing a fresh database on the test
//! binary's PostgreSQL cluster (`portcullis_test_upstreams::postgres`, which fails the test
//! when PostgreSQL cannot be started). Also `/healthz` and the migration at start on
//! PostgreSQL, with in-process servers where no process is needed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use portcullis_test_upstreams::{postgres, wire};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::process::{Api, Process, serve_with};
use crate::support::*;

/// The time the issue allows for a change on one replica to take effect on another.
const PROPAGATION: Duration = Duration::from_secs(1);
/// How long a replica may take to compile a plugin it never ran, in a debug build on
/// shared cores.
const FIRST_COMPILATION: Duration = Duration::from_secs(20);

/// A replica: its process, its API and its data directory.
struct Replica {
    process: Process,
    api: Api,
    _dir: TempDir,
}

fn replica(database_url: &str) -> Replica {
    let dir = tempfile::tempdir().unwrap();
    let (process, api) = serve_with(dir.path(), &[("PORTCULLIS_DATABASE_URL", database_url)]);
    Replica {
        process,
        api,
        _dir: dir,
    }
}

/// Two replicas started at once on a fresh database: both migrate at start, one waits.
async fn two_replicas() -> (String, Replica, Replica) {
    let url = postgres::fresh_database();
    let (a, b) = {
        let (u1, u2) = (url.clone(), url.clone());
        let a = std::thread::spawn(move || replica(&u1));
        let b = std::thread::spawn(move || replica(&u2));
        (a.join().unwrap(), b.join().unwrap())
    };
    (url, a, b)
}

/// A connector of alice's on `upstream`, and an actor `a` whose field `conn` takes it.
async fn connector_and_actor(api: &Api, upstream: &str) -> String {
    let body = json!({"owner": "alice", "server_url": upstream, "auth": {"method": "none"}});
    let (status, made) = api
        .call(Method::POST, "/connectors", Some(body))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let properties = json!({"conn": field("string", any_loopback(None))});
    let schema = json!({"input_schema": {"title": "A", "type": "object", "schemaVersion": 1, "properties": properties}});
    let (status, answer) = api
        .call(Method::PUT, "/actors/a", Some(schema))
        .await
        .unwrap();
    assert!(status.is_success(), "{status} {answer}");
    id(&made)
}

/// Starts a run of `a` for alice with `connector`; answers its id and token.
async fn start_run(api: &Api, connector: &str) -> (String, String) {
    let start = json!({"actor": "a", "user": "alice", "input": {"conn": connector}});
    let (status, run) = api.call(Method::POST, "/runs", Some(start)).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{run}");
    (id(&run), run["token"].as_str().unwrap().to_owned())
}

/// One MCP message through `api`'s data plane.
async fn mcp(
    api: &Api,
    connector: &str,
    token: &str,
    session: Option<&str>,
    body: &Value,
) -> reqwest::Result<Answer> {
    let response = api
        .http
        .post(format!("{}/mcp/{connector}", api.base))
        .headers(wire::mcp_headers(session))
        .bearer_auth(token)
        .body(body.to_string())
        .timeout(Duration::from_secs(20))
        .send()
        .await?;
    Ok(Answer::read(response).await)
}

/// `initialize` and `notifications/initialized` through `api`; answers the session id.
async fn open_session(api: &Api, connector: &str, token: &str) -> String {
    let answer = mcp(api, connector, token, None, &wire::initialize(1))
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "initialize: {}", answer.text);
    let session = answer.header("mcp-session-id").unwrap().to_owned();
    let note = wire::notification("notifications/initialized");
    let accepted = mcp(api, connector, token, Some(&session), &note)
        .await
        .unwrap();
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    session
}

/// A `tools/call` of the demo upstream's `list_items` in `session`; answers the status.
async fn call(api: &Api, connector: &str, token: &str, session: &str, id: i64) -> u16 {
    let body = wire::call_tool(id, "list_items", json!({}));
    match mcp(api, connector, token, Some(session), &body).await {
        Ok(answer) if answer.status == 200 => {
            let result = answer.response(id);
            if result.get("error").is_some() {
                0
            } else {
                200
            }
        }
        Ok(answer) => answer.status,
        Err(_) => 0,
    }
}

/// How long until `refused` holds, polling every 20 ms for at most 5 s.
async fn time_until<F: Future<Output = bool>>(mut refused: impl FnMut() -> F) -> Duration {
    let start = Instant::now();
    while !refused().await {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still not refused after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_started_on_one_replica_is_served_and_revoked_on_the_other() {
    let upstream = demo().await;
    let (_url, a, b) = two_replicas().await;
    let connector = connector_and_actor(&a.api, &upstream.url).await;

    // Started through A, used through B (B warms its caches with it).
    let (run, token) = start_run(&a.api, &connector).await;
    let session = open_session(&b.api, &connector, &token).await;
    assert_eq!(call(&b.api, &connector, &token, &session, 2).await, 200);

    // Finished on A: refused on B within a second, its session included.
    let (status, _) = a
        .api
        .call(
            Method::POST,
            &format!("/runs/{run}/finish"),
            Some(json!({})),
        )
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let took =
        time_until(|| async { call(&b.api, &connector, &token, &session, 3).await == 401 }).await;
    assert!(
        took < PROPAGATION,
        "a finished run served on B for {took:?}"
    );

    // A connector deleted on A: refused on B within a second.
    let (_, token) = start_run(&a.api, &connector).await;
    let session = open_session(&b.api, &connector, &token).await;
    assert_eq!(call(&b.api, &connector, &token, &session, 2).await, 200);
    let (status, _) = a
        .api
        .call(Method::DELETE, &format!("/connectors/{connector}"), None)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT);
    let took = time_until(|| async {
        let status = call(&b.api, &connector, &token, &session, 3).await;
        status != 200 && status != 0
    })
    .await;
    assert!(
        took < PROPAGATION,
        "a deleted connector served on B for {took:?}"
    );
    assert_ne!(
        b.api.initialize(&connector, &token).await.unwrap(),
        StatusCode::OK
    );
    drop((a.process, b.process));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_minted_on_one_replica_continues_on_another_after_a_sigkill() {
    let upstream = demo().await;
    let (_url, a, b) = two_replicas().await;
    let connector = connector_and_actor(&a.api, &upstream.url).await;
    let (_, token) = start_run(&a.api, &connector).await;
    let session = open_session(&a.api, &connector, &token).await;
    assert_eq!(call(&a.api, &connector, &token, &session, 2).await, 200);
    drop(a.process); // SIGKILL

    // The client retries on B with the same session id and continues.
    assert_eq!(call(&b.api, &connector, &token, &session, 3).await, 200);
    assert_eq!(call(&b.api, &connector, &token, &session, 4).await, 200);
    // The id opens only with its own run's token.
    let (_, other) = start_run(&b.api, &connector).await;
    assert_eq!(call(&b.api, &connector, &other, &session, 5).await, 404);
    // DELETE on B ends it there.
    let deleted = b
        .api
        .http
        .delete(format!("{}/mcp/{connector}", b.api.base))
        .headers(wire::mcp_headers(Some(&session)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    drop(b.process);
}

/// Eight clients on each replica call tools for the whole time; afterwards every call
/// succeeded and every call has its audit record in the one shared table.
#[tokio::test(flavor = "multi_thread")]
async fn under_load_on_both_replicas_nothing_fails_and_no_audit_record_is_lost() {
    const CLIENTS: usize = 8;
    let seconds = std::env::var("PORTCULLIS_REPLICA_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let upstream = demo().await;
    let (url, a, b) = two_replicas().await;
    let connector = connector_and_actor(&a.api, &upstream.url).await;
    let (run, token) = start_run(&b.api, &connector).await;

    let calls = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut clients = Vec::new();
    for (n, api) in [&a.api, &b.api]
        .into_iter()
        .flat_map(|api| std::iter::repeat_n(api, CLIENTS))
        .enumerate()
    {
        let (api, connector, token, calls) =
            (api.clone(), connector.clone(), token.clone(), calls.clone());
        clients.push(tokio::spawn(async move {
            let session = open_session(&api, &connector, &token).await;
            let mut id = 2;
            while Instant::now() < until {
                let status = call(&api, &connector, &token, &session, id).await;
                assert_eq!(status, 200, "client {n}, call {id} failed");
                calls.fetch_add(1, Ordering::Relaxed);
                id += 1;
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    let calls = calls.load(Ordering::Relaxed);
    assert!(calls > 2 * CLIENTS, "only {calls} calls in {seconds} s");

    // The audit is written off the request path: wait for it to settle.
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let count = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM audit WHERE run = $1 AND method = 'tools/call'",
        )
        .bind(&run)
        .fetch_one(&db)
        .await
        .unwrap()
    };
    let start = Instant::now();
    while count().await < calls as i64 && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        count().await,
        calls as i64,
        "one audit record per tools/call"
    );
    db.close().await;
    drop((a.process, b.process));
}

/// `wasm` with a custom section appended: valid, with another digest.
fn variant(wasm: &[u8], tag: u8) -> Vec<u8> {
    let name = b"portcullis-replica-variant";
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.push(tag);
    let mut bytes = wasm.to_vec();
    bytes.extend([0, section.len() as u8]);
    bytes.extend_from_slice(&section);
    bytes
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `GET /admin/v1{path}` on `api`, expecting 200.
async fn get(api: &Api, path: &str) -> Value {
    let (status, body) = api.call(Method::GET, path, None).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// How long until `api`'s answer to `GET /admin/v1{path}` satisfies `holds`, polling
/// every 20 ms for at most `limit`.
async fn time_until_shown(
    api: &Api,
    path: &str,
    limit: Duration,
    holds: impl Fn(StatusCode, &Value) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let (status, body) = api.call(Method::GET, path, None).await.unwrap();
        if holds(status, &body) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{path} still not as expected after {limit:?}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The audit record of the `n`th (counting from 1) `method` message of `run`, once written.
async fn nth_record(api: &Api, run: &str, method: &str, n: usize) -> Value {
    let path = format!("/audit?run={run}&method={method}&limit=1000");
    for _ in 0..250 {
        let records = get(api, &path).await;
        let records = records.as_array().unwrap();
        if records.len() >= n {
            // Newest first.
            return records[records.len() - n].clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no audit record of {method} number {n} for {run}");
}

/// Plugins installed, rolled back and deleted, and the chains changed, through replica A
/// serve on replica B within a second, while a client of B calls tools without a failure;
/// B loads only what it would install itself.
#[tokio::test(flavor = "multi_thread")]
async fn plugins_and_chains_changed_on_one_replica_decide_on_the_other() {
    let upstream = demo().await;
    let (url, a, b) = two_replicas().await;
    let connector = connector_and_actor(&a.api, &upstream.url).await;
    let (run, token) = start_run(&a.api, &connector).await;
    let session = open_session(&b.api, &connector, &token).await;

    // A client of B calls tools the whole time, in a run of its own: no failure, no lost
    // session.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let (_, token) = start_run(&a.api, &connector).await;
        let session = open_session(&b.api, &connector, &token).await;
        let (api, connector, stop) = (b.api.clone(), connector.clone(), stop.clone());
        tokio::spawn(async move {
            let mut id = 1000;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                assert_eq!(
                    call(&api, &connector, &token, &session, id).await,
                    200,
                    "call {id}"
                );
            }
            id - 1000
        })
    };

    // The chains: `resources/list` is denied on B until A allows it.
    let list = |id| wire::request(id, "resources/list", json!({}));
    mcp(&b.api, &connector, &token, Some(&session), &list(2))
        .await
        .unwrap();
    assert_eq!(
        nth_record(&b.api, &run, "resources/list", 1).await["decision"],
        "deny"
    );
    let mut chains = get(&a.api, "/chains").await;
    chains["request"][0] =
        json!({"plugin": "declared-tools", "settings": {"allow_methods": ["resources/*"]}});
    let (status, answer) = a
        .api
        .call(Method::PUT, "/chains", Some(chains.clone()))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");
    let took = time_until_shown(&b.api, "/chains", PROPAGATION, |_, shown| *shown == chains).await;
    assert!(
        took < PROPAGATION,
        "chains changed on A served on B after {took:?}"
    );
    mcp(&b.api, &connector, &token, Some(&session), &list(3))
        .await
        .unwrap();
    assert_eq!(
        nth_record(&b.api, &run, "resources/list", 2).await["decision"],
        "allow"
    );

    // A new version of connector-access installed on A decides on B. B first compiles
    // the new bytes, as A's install did: about 0.4 s in a release build
    // (docs/benchmarks.md), seconds in this debug build on shared cores, so the first
    // load is only bounded loosely; every later change below, with bytes B has compiled
    // once, is held to the second.
    let builtin = portcullis_builtins::builtin("connector-access")
        .unwrap()
        .wasm;
    let installed = variant(builtin, 1);
    let digest = sha256(&installed);
    let install = || async {
        let (status, answer) = a
            .api
            .upload(Method::PUT, "/plugins/connector-access", installed.clone())
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK, "{answer}");
    };
    install().await;
    let serving = |digest: String| {
        move |status: StatusCode, shown: &Value| {
            status == StatusCode::OK && shown["sha256"] == digest.as_str()
        }
    };
    let plugin = "/plugins/connector-access";
    time_until_shown(&b.api, plugin, FIRST_COMPILATION, serving(digest.clone())).await;
    let before = get(
        &b.api,
        &format!("/audit?run={run}&method=tools/call&limit=1000"),
    )
    .await;
    let calls = before.as_array().unwrap().len();
    assert_eq!(call(&b.api, &connector, &token, &session, 4).await, 200);
    let record = nth_record(&b.api, &run, "tools/call", calls + 1).await;
    let stamps = record["plugins"].as_array().unwrap();
    assert!(
        stamps
            .iter()
            .any(|p| p["name"] == "connector-access" && p["sha256"] == digest.as_str()),
        "B's decision names the version installed on A: {record}"
    );

    // Rolled back on A: B serves the built-in again; installed again: the new version.
    let (status, answer) = a
        .api
        .call(Method::POST, &format!("{plugin}/rollback"), Some(json!({})))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");
    let took = time_until_shown(&b.api, plugin, PROPAGATION, serving(sha256(builtin))).await;
    assert!(
        took < PROPAGATION,
        "a rollback on A served on B after {took:?}"
    );
    install().await;
    let took = time_until_shown(&b.api, plugin, PROPAGATION, serving(digest.clone())).await;
    assert!(
        took < PROPAGATION,
        "an install on A served on B after {took:?}"
    );

    // A new name installed on A, then deleted there.
    let (status, answer) = a
        .api
        .upload(Method::PUT, "/plugins/extra-access", installed.clone())
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");
    let extra = "/plugins/extra-access";
    let took = time_until_shown(&b.api, extra, PROPAGATION, |status, _| {
        status == StatusCode::OK
    })
    .await;
    assert!(
        took < PROPAGATION,
        "a new plugin on A loaded on B after {took:?}"
    );
    let (status, _) = a.api.call(Method::DELETE, extra, None).await.unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT);
    let took = time_until_shown(&b.api, extra, PROPAGATION, |status, _| {
        status == StatusCode::NOT_FOUND
    })
    .await;
    assert!(
        took < PROPAGATION,
        "a plugin deleted on A served on B for {took:?}"
    );

    // Bytes that do not hash to their digest are made current behind the replicas' backs:
    // neither loads them; a later chain change still reaches B.
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let forged = variant(builtin, 3);
    sqlx::query(
        "INSERT INTO plugin_versions (name, sha256, component, version, installed_at) \
         VALUES ('connector-access', $1, $2, '9.9.9', 1)",
    )
    .bind(sha256(&forged))
    .bind(variant(builtin, 4))
    .execute(&db)
    .await
    .unwrap();
    sqlx::query("UPDATE plugin_heads SET current = $1 WHERE name = 'connector-access'")
        .bind(sha256(&forged))
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("SELECT pg_notify('portcullis', 'plugins')")
        .execute(&db)
        .await
        .unwrap();
    chains["request"][0] = json!("declared-tools");
    let (status, answer) = a
        .api
        .call(Method::PUT, "/chains", Some(chains.clone()))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");
    time_until_shown(&b.api, "/chains", PROPAGATION, |_, shown| *shown == chains).await;
    for replica in [&a, &b] {
        let shown = get(&replica.api, plugin).await;
        assert_eq!(shown["sha256"], digest.as_str(), "still the version before");
    }
    assert_eq!(call(&b.api, &connector, &token, &session, 5).await, 200);
    db.close().await;

    stop.store(true, Ordering::Relaxed);
    let calls = client.await.unwrap();
    assert!(calls > 0, "the client of B called");
    drop((a.process, b.process));
}

/// Two replicas (in-process servers, each with its own refresh lock) on one database
/// use one OAuth connector whose access token expired: fifty calls at once, half through
/// each, and the authorization server sees one redemption of the refresh token.
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_refreshed_once_across_replicas() {
    use crate::oauth::{control, counters, create, land, peers, run_with, visit};
    let pair = peers().await;
    let url = postgres::fresh_database();
    let replica = || {
        Proxy::start_with(|config| {
            config.database_url = Some(portcullis::config::Secret::new(url.clone()));
            config.oauth.refresh_skew_secs = 1;
            config.limits.streams_per_session = 64;
        })
    };
    let (a, b) = (replica().await, replica().await);
    let dynamic = json!({"method": "oauth", "registration": "dynamic"});
    let pending = create(&a, "alice", &pair.mcp_url, dynamic).await;
    let client = pending.client_id();
    let ttl = |seconds: u64| json!({"client_id": client, "access_token_ttl": seconds});
    control(pair, "/config", ttl(3)).await;
    let landing = land(&visit(&a, &pending.authorization_url, "alice").await).await;
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.page);
    control(pair, "/config", ttl(3600)).await;
    let run = run_with(&a, "alice", &pending.id).await;
    let sessions = [
        a.initialize(&pending.id, &run.token).await,
        b.initialize(&pending.id, &run.token).await,
    ];
    tokio::time::sleep(Duration::from_millis(3200)).await;

    let calls = (0..50).map(|i| {
        let (proxy, session) = if i % 2 == 0 {
            (&a, &sessions[0])
        } else {
            (&b, &sessions[1])
        };
        let (conn, token) = (&pending.id, &run.token);
        async move {
            let body = wire::call_tool(100 + i, "whoami", json!({}));
            let answer = proxy.post(conn, Some(token), Some(session), &body).await;
            answer.response(100 + i).clone()
        }
    });
    for answer in futures_util::future::join_all(calls).await {
        assert!(
            answer["result"]["content"][0]["text"]
                .as_str()
                .is_some_and(|t| t.contains("mcp:tools")),
            "{answer}"
        );
    }
    let seen = counters(pair, &client).await;
    assert_eq!(
        seen["token_requests"],
        json!({"authorization_code": 1, "refresh_token": 1}),
        "{seen}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_says_whether_the_database_answers() {
    let sqlite = Proxy::start().await;
    let (status, body) = answer(
        sqlite
            .http
            .get(sqlite.url("/healthz"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"status": "ok", "database": {"backend": "sqlite", "reachable": true}})
    );

    let url = postgres::fresh_database();
    let name = url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let pg = Proxy::start_with(|config| {
        config.database_url = Some(portcullis::config::Secret::new(url.clone()));
    })
    .await;
    let (status, body) = answer(pg.http.get(pg.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"status": "ok", "database": {"backend": "postgres", "reachable": true}})
    );

    // The database goes away under it.
    postgres::cluster().psql(&format!("DROP DATABASE {name} WITH (FORCE)"));
    let (status, body) = answer(pg.http.get(pg.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["database"]["backend"], "postgres");
    assert_eq!(body["database"]["reachable"], false);
    let error = body["database"]["error"].as_str().unwrap();
    assert!(
        !error.is_empty() && !error.contains("postgres://"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_starting_together_migrate_once() {
    let (url, a, b) = two_replicas().await;
    for replica in [&a, &b] {
        let health = replica
            .api
            .http
            .get(format!("{}/healthz", replica.api.base))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::OK);
    }
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&db)
            .await
            .unwrap();
    let on_disk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .count();
    assert_eq!(versions.len(), on_disk, "each migration applied once");
    assert_eq!(versions, (1..=on_disk as i64).collect::<Vec<_>>());
    db.close().await;
    drop((a.process, b.process));
}

/// Runs the real binary with `args` and `env` (nothing else of the test's `PORTCULLIS_*`);
/// answers whether it succeeded, and its standard output, then its standard error.
fn portcullis(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env_remove("PORTCULLIS_CONFIG")
        .env_remove("PORTCULLIS_MASTER_KEY")
        .env_remove("PORTCULLIS_DATABASE_URL")
        .env("PORTCULLIS_DATA_DIR", dir.path())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_and_vault_rotate_work_on_postgres() {
    let url = postgres::fresh_database();
    let newest = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .count();
    let (ok, text) = portcullis(&["migrate", "--database-url", &url], &[]);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!(": schema version {newest}")),
        "{text}"
    );
    assert!(text.starts_with("postgres://127.0.0.1:"), "{text}");
    let (ok, text) = portcullis(
        &["migrate"],
        &[(
            "PORTCULLIS_DATABASE_URL",
            "postgres://u:hunter2@127.0.0.1:1/x",
        )],
    );
    assert!(!ok, "nothing listens on port 1: {text}");
    assert!(
        text.contains("127.0.0.1:1/x") && !text.contains("hunter2"),
        "{text}"
    );

    // A credential stored through a replica; the key rotated with every replica stopped.
    let locked = demo_requiring(SECRET).await;
    let on_postgres = |config: &mut portcullis::config::Config| {
        config.database_url = Some(portcullis::config::Secret::new(url.clone()));
    };
    let first = Proxy::start_with(on_postgres).await;
    let connector = first
        .add_connector("alice", &locked.url, Some(SECRET))
        .await;
    let connector = id(&connector);
    first.server.shutdown().await;
    let database = [("PORTCULLIS_DATABASE_URL", url.as_str())];
    let (ok, text) = portcullis(&["vault", "rotate"], &database);
    assert!(!ok && text.contains("PORTCULLIS_MASTER_KEY"), "{text}");
    let wrong = [database[0], ("PORTCULLIS_MASTER_KEY", OTHER_MASTER_KEY)];
    let (ok, text) = portcullis(&["vault", "rotate"], &wrong);
    assert!(!ok && text.contains("does not match"), "{text}");
    let right = [database[0], ("PORTCULLIS_MASTER_KEY", MASTER_KEY)];
    let (ok, text) = portcullis(&["vault", "rotate"], &right);
    assert!(ok, "{text}");
    assert!(
        !text.contains(SECRET) && !text.contains(MASTER_KEY),
        "{text}"
    );
    let mut printed = text
        .lines()
        .skip_while(|line| !line.starts_with("rotated: "));
    let new_key = printed.nth(1).unwrap().trim().to_owned();
    let second = Proxy::start_with(|config| {
        on_postgres(config);
        config.master_key = Some(portcullis::config::Secret::new(new_key.as_str()));
    })
    .await;
    let path = format!("/connectors/{connector}/reauthorize");
    let (status, body) = second.api(Method::POST, &path, None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the credential opens under the new key: {body}"
    );
}
