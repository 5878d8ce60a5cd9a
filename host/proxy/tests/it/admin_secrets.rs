//! Secrets and tokens stay secret: not in API answers after creation, not in log lines,
//! not in the database file. The data directory survives restarts, and a wrong master
//! key stops the start instead of damaging anything.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use crate::support::*;
use portcullis::app::spawn;
use portcullis::config::Secret;
use portcullis_test_upstreams::wire;
use reqwest::{Method, StatusCode};
use serde_json::json;

const SECRET: &str = "sk-live-SECRET-7f3a9c41";
const WRONG_SECRET: &str = "sk-wrong-SECRET-0b2d";

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this test binary, at debug level and finer for the proxy. `rmcp`
/// is left out: only the in-process demo upstream uses it, and that upstream logs what
/// it received, the injected credential included, as any upstream may.
pub(crate) fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_env_filter("debug,portcullis=trace,rmcp=off,cranelift_codegen=warn,cranelift_frontend=warn,wasmtime=info,wasmtime_cranelift=warn,regalloc2=warn")
            .with_ansi(false)
            .with_writer(|| Capture)
            .init();
    });
}

pub(crate) fn logs() -> String {
    String::from_utf8_lossy(&LOG.lock().unwrap()).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_and_tokens_never_leak() {
    capture_logs();
    let h = Proxy::start().await;
    let locked = demo_requiring(SECRET).await;
    let created = h.add_connector("alice", &locked.url, Some(SECRET)).await;
    let conn = created["id"].as_str().unwrap().to_owned();
    h.put_actor("leaky", json!({"c": {"title": "c", "description": "c", "type": "string", "resourceType": "mcpConnector", "mcpServers": [{"url": "*"}]}})).await;
    let Run { id: run_id, token } = h.run("leaky", "alice", json!({"c": conn})).await;

    // Use the credential through the data plane, and fail a re-authorization.
    let session = h.initialize(&conn, &token).await;
    let call = wire::call_tool(2, "whoami", json!({}));
    let answer = h.post(&conn, Some(&token), Some(&session), &call).await;
    let body = answer.text;
    assert_eq!(answer.status, 200, "{body}");
    assert!(body.contains("Authorization"), "{body}");
    assert!(
        !body.contains(&token),
        "the upstream never sees the run token: {body}"
    );
    let failed = h
        .api(
            Method::POST,
            &format!("/connectors/{conn}/reauthorize"),
            Some(json!({"auth": {"method": "api_key", "secret": WRONG_SECRET}})),
        )
        .await;
    assert_error(
        &failed,
        StatusCode::UNPROCESSABLE_ENTITY,
        "upstream_unauthorized",
    );
    let (status, _) = h
        .api(
            Method::POST,
            &format!("/connectors/{conn}/reauthorize"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    h.api(Method::POST, &format!("/runs/{run_id}/finish"), None)
        .await;

    let mut answers = vec![created.clone(), failed.1];
    for path in [
        format!("/connectors/{conn}"),
        "/connectors".to_owned(),
        "/connectors?owner=alice".to_owned(),
        format!("/runs/{run_id}"),
        "/actors/leaky".to_owned(),
        format!("/audit?run={run_id}"),
        "/plugins".to_owned(),
    ] {
        let (status, body) = h.api(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        answers.push(body);
    }
    for answer in &answers {
        let text = answer.to_string();
        for secret in [SECRET, WRONG_SECRET, &token, ADMIN_TOKEN] {
            assert!(
                !text.contains(secret),
                "an API answer leaks {secret}: {text}"
            );
        }
    }

    let dir = h.dir.path().to_path_buf();
    h.server.shutdown().await;
    let logs = logs();
    assert!(
        logs.contains("connector created") && logs.contains("run finished"),
        "the capture works"
    );
    assert!(logs.contains(&conn), "log lines name the connector");
    for secret in [SECRET, WRONG_SECRET, &token, ADMIN_TOKEN, MASTER_KEY] {
        assert!(!logs.contains(secret), "a log line leaks {secret}");
    }

    let bytes = database_bytes(&dir);
    assert!(contains(&bytes, &conn), "the database files were read");
    for secret in [SECRET, WRONG_SECRET, &token, ADMIN_TOKEN, MASTER_KEY] {
        assert!(
            !contains(&bytes, secret),
            "the database holds {secret} in plaintext"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_keeps_everything_and_a_wrong_key_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo().await;
    let locked = demo_requiring(SECRET).await;
    let first = Proxy::on(config(dir.path()), dir).await;
    let conn = first
        .add_connector("alice", &locked.url, Some(SECRET))
        .await;
    let conn_id = conn["id"].as_str().unwrap().to_owned();
    let open = first.add_connector("alice", &demo.url, None).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    first
        .api(
            Method::PATCH,
            &format!("/connectors/{conn_id}"),
            Some(json!({"allowed_tools": ["whoami"]})),
        )
        .await;
    first.put_actor("keeper", json!({"c": {"title": "c", "description": "c", "type": "string", "resourceType": "mcpConnector", "mcpServers": [{"url": "*"}]}})).await;
    let Run { id: run_id, token } = first.run("keeper", "alice", json!({"c": open})).await;
    let before = (
        first.connectors().await,
        first.api(Method::GET, "/actors/keeper", None).await.1,
        first
            .api(Method::GET, &format!("/runs/{run_id}"), None)
            .await
            .1,
    );
    let Proxy { server, dir, .. } = first;
    server.shutdown().await;

    let mut wrong = config(dir.path());
    wrong.master_key = Some(Secret::new(OTHER_MASTER_KEY));
    let error = format!(
        "{:#}",
        spawn(wrong)
            .await
            .err()
            .expect("a wrong key stops the start")
    );
    assert!(error.contains("master key does not match"), "{error}");
    let mut malformed = config(dir.path());
    malformed.master_key = Some(Secret::new("not-a-key"));
    let error = format!(
        "{:#}",
        spawn(malformed)
            .await
            .err()
            .expect("a malformed key stops the start")
    );
    assert!(error.contains("PORTCULLIS_MASTER_KEY"), "{error}");

    let second = Proxy::on(config(dir.path()), dir).await;
    let after = (
        second.connectors().await,
        second.api(Method::GET, "/actors/keeper", None).await.1,
        second
            .api(Method::GET, &format!("/runs/{run_id}"), None)
            .await
            .1,
    );
    assert_eq!(after, before, "a restart keeps connectors, actors and runs");
    assert_eq!(
        second.mcp_initialize(&open, &token).await,
        StatusCode::OK,
        "the run token still works"
    );
    let (status, body) = second
        .api(
            Method::POST,
            &format!("/connectors/{conn_id}/reauthorize"),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the sealed secret still opens: {body}"
    );
    assert_eq!(body["allowed_tools"], json!(["whoami"]));
    second.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_key_and_admin_token_live_in_the_data_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let unconfigured = || {
        let mut config = config(dir.path());
        config.master_key = None;
        config.admin_token = None;
        config
    };
    let server = spawn(unconfigured()).await.unwrap();
    assert!(server.admin_token_generated);
    let token = server.admin_token.clone();
    assert!(token.len() >= 43);
    for file in ["master.key", "admin.token"] {
        let mode = std::fs::metadata(dir.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let list = |server: &portcullis::app::RunningServer, token: &str| {
        reqwest::Client::new()
            .get(format!("{}/admin/v1/connectors", server.base_url))
            .bearer_auth(token.to_owned())
            .send()
    };
    assert_eq!(
        list(&server, &token).await.unwrap().status(),
        StatusCode::OK
    );
    server.shutdown().await;

    let server = spawn(unconfigured()).await.unwrap();
    assert!(!server.admin_token_generated, "the token is generated once");
    assert_eq!(server.admin_token, token);
    assert_eq!(
        list(&server, &token).await.unwrap().status(),
        StatusCode::OK
    );
    server.shutdown().await;

    // Losing the key file is caught at start, not when a connector is next used.
    std::fs::remove_file(dir.path().join("master.key")).unwrap();
    let error = format!(
        "{:#}",
        spawn(unconfigured())
            .await
            .err()
            .expect("a lost key stops the start")
    );
    assert!(error.contains("master key does not match"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_weak_admin_token_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let with_token = |token: Option<&str>| {
        let mut config = config(dir.path());
        config.admin_token = token.map(Secret::new);
        config
    };
    for weak in [
        "x",
        "short-admin-token",
        "a token with spaces in the middle",
    ] {
        let error = format!(
            "{:#}",
            spawn(with_token(Some(weak)))
                .await
                .err()
                .expect("a weak token stops the start")
        );
        assert!(error.contains("PORTCULLIS_ADMIN_TOKEN"), "{error}");
        assert!(error.contains("at least 24"), "{error}");
        assert!(!error.contains(weak), "the token is echoed: {error}");
    }
    for weak in ["", "\n", "weak-token\n"] {
        std::fs::write(dir.path().join("admin.token"), weak).unwrap();
        let error = format!(
            "{:#}",
            spawn(with_token(None))
                .await
                .err()
                .expect("a weak token file stops the start")
        );
        assert!(error.contains("admin.token"), "{error}");
        assert!(error.contains("at least 24"), "{error}");
    }
    std::fs::write(dir.path().join("admin.token"), format!("{ADMIN_TOKEN}\n")).unwrap();
    spawn(with_token(None)).await.unwrap().shutdown().await;
}

/// Runs `portcullis vault rotate` on `dir`, the real binary, with `master_key` as
/// PORTCULLIS_MASTER_KEY when given; answers its status and standard output.
fn rotate(dir: &std::path::Path, master_key: Option<&str>) -> (bool, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command
        .args(["vault", "rotate", "--data-dir"])
        .arg(dir)
        .env_remove("PORTCULLIS_CONFIG")
        .env_remove("PORTCULLIS_DATA_DIR")
        .env_remove("PORTCULLIS_MASTER_KEY");
    if let Some(key) = master_key {
        command.env("PORTCULLIS_MASTER_KEY", key);
    }
    let output = command.output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// A connector whose upstream accepts only `secret`; re-authorizing it proves the
/// stored credential opens.
async fn reauthorize(h: &Proxy, id: &str) -> StatusCode {
    let path = format!("/connectors/{id}/reauthorize");
    h.api(Method::POST, &path, None).await.0
}

#[tokio::test(flavor = "multi_thread")]
async fn rotating_the_master_key_keeps_every_credential() {
    let locked = demo_requiring(SECRET).await;
    // The key from the environment: the new one is printed.
    let first = Proxy::start().await;
    let id = first
        .add_connector("alice", &locked.url, Some(SECRET))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let Proxy { server, dir, .. } = first;
    server.shutdown().await;
    let (ok, text) = rotate(dir.path(), Some(OTHER_MASTER_KEY));
    assert!(
        !ok && text.contains("does not match"),
        "a wrong key rotates nothing: {text}"
    );
    let (ok, text) = rotate(dir.path(), Some(MASTER_KEY));
    assert!(ok, "{text}");
    let new_key = text.lines().last().unwrap().trim().to_owned();
    assert_eq!(new_key.len(), 44, "{text}");
    assert!(
        !text.contains(SECRET) && !text.contains(MASTER_KEY),
        "{text}"
    );
    let error = format!(
        "{:#}",
        spawn(config(dir.path()))
            .await
            .err()
            .expect("the old key no longer opens")
    );
    assert!(error.contains("master key does not match"), "{error}");
    let mut rotated = config(dir.path());
    rotated.master_key = Some(Secret::new(new_key.as_str()));
    let second = Proxy::on(rotated, dir).await;
    assert_eq!(reauthorize(&second, &id).await, StatusCode::OK);

    // The key from the key file: the file is replaced.
    let Proxy { server, dir, .. } = second;
    server.shutdown().await;
    std::fs::write(dir.path().join("master.key"), format!("{new_key}\n")).unwrap();
    let (ok, text) = rotate(dir.path(), None);
    assert!(ok, "{text}");
    let newest = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    assert_ne!(newest.trim(), new_key);
    assert!(!dir.path().join("master.key.new").exists());
    assert!(
        !text.contains(newest.trim()),
        "the file's key is not printed: {text}"
    );
    let mut from_file = config(dir.path());
    from_file.master_key = None;
    let third = Proxy::on(from_file, dir).await;
    assert_eq!(reauthorize(&third, &id).await, StatusCode::OK);
    third.server.shutdown().await;
}

/// A sealed credential copied into another connector's row does not open there: the
/// other connector's upstream never receives it.
#[tokio::test(flavor = "multi_thread")]
async fn a_credential_moved_to_another_connector_does_not_open() {
    let first = Proxy::start().await;
    let locked = demo_requiring(SECRET).await;
    let victim = first
        .add_connector("alice", &locked.url, Some(SECRET))
        .await;
    let script = std::sync::Arc::new(Mutex::new(Script {
        tools: vec!["t".to_owned()],
        ..Script::default()
    }));
    let attacker_upstream = scripted_upstream(script.clone()).await;
    let attacker = first
        .add_connector("mallory", &attacker_upstream.url, Some(WRONG_SECRET))
        .await;
    let Proxy { server, dir, .. } = first;
    server.shutdown().await;

    let path = dir.path().join(portcullis::app::DATABASE_FILE);
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query(
        "UPDATE connectors SET sealed_secret = (SELECT sealed_secret FROM connectors WHERE id = ?) \
         WHERE id = ?",
    )
    .bind(victim["id"].as_str().unwrap())
    .bind(attacker["id"].as_str().unwrap())
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let second = Proxy::on(config(dir.path()), dir).await;
    script.lock().unwrap().seen_auth.clear();
    let status = reauthorize(&second, attacker["id"].as_str().unwrap()).await;
    assert_ne!(status, StatusCode::OK);
    let seen = script.lock().unwrap().seen_auth.clone();
    assert!(
        seen.iter().all(|auth| !auth.contains(SECRET)),
        "the moved credential reached the other upstream: {seen:?}"
    );
    assert_eq!(
        reauthorize(&second, victim["id"].as_str().unwrap()).await,
        StatusCode::OK
    );
    second.server.shutdown().await;
}
