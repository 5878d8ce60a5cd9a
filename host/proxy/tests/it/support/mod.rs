//! What every test shares: a whole Portcullis on loopback with a real SQLite file in a
//! temporary directory ([`Proxy`]), driven through its admin API as a platform would,
//! and helpers that assert the API's exact error answers.
//!
//! | module | holds |
//! |---|---|
//! | `mcp` | the data plane's client side: raw MCP calls, answers, and [`mcp::Scenario`] |
//! | `process` | the real `portcullis serve` binary as a child process, and its admin API |
//! | `upstreams` | the demo upstream and a few deliberately broken or scripted ones |

pub mod mcp;
pub mod process;
pub mod upstreams;

use std::net::SocketAddr;
use std::path::Path;

use axum::http::StatusCode;
use portcullis::app::{RunningServer, spawn};
use portcullis::config::{Config, Secret};
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

pub use mcp::*;
pub use upstreams::*;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// base64 of 32 bytes of 0x2a.
pub const MASTER_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";
pub const OTHER_MASTER_KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

/// A server of its own, on its own data directory.
pub struct Proxy {
    pub server: RunningServer,
    pub dir: TempDir,
    pub http: reqwest::Client,
}

/// The configuration every test's server starts from, on the data directory `dir`.
pub fn config(dir: &Path) -> Config {
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.to_path_buf(),
        admin_token: Some(Secret::new(ADMIN_TOKEN)),
        master_key: Some(Secret::new(MASTER_KEY)),
        ..Config::default()
    };
    config.upstream.allow_private = true;
    // Several debug-build servers start at once on two cores in these tests; the
    // default 10 ms plugin CPU deadline is for release builds on a quiet machine.
    config.plugins.limits.cpu_deadline_ms = 2_000;
    config.plugins.limits.wall_timeout_ms = 10_000;
    // Tests that drive load must not depend on how fast this machine is: the per-run and
    // per-connector rate limits are off unless a test sets them (lifecycle does).
    config.limits.requests_per_second_per_run = 0;
    config.limits.requests_per_second_per_connector = 0;
    config
}

impl Proxy {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        adjust(&mut config);
        Self::on(config, dir).await
    }

    /// A server whose plugin runtime `hook` adjusts as it is built.
    pub async fn start_hooked(hook: portcullis::app::RuntimeHook) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = portcullis::app::spawn_with(config(dir.path()), hook)
            .await
            .expect("the server starts");
        Self {
            server,
            dir,
            http: reqwest::Client::new(),
        }
    }

    /// A server with `config` on `dir`, a data directory kept from an earlier one, say.
    pub async fn on(config: Config, dir: TempDir) -> Self {
        let server = spawn(config).await.expect("the server starts");
        Self {
            server,
            dir,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url)
    }

    /// Calls `/admin/v1{path}` with the admin token.
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, self.url(&format!("/admin/v1{path}")))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.unwrap()).await
    }

    /// Sends raw bytes as the body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .request(method, self.url(&format!("/admin/v1{path}")))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        answer(response).await
    }

    /// `PUT /plugins/{name}` with the component of the built-in plugin `builtin`.
    pub async fn install(&self, name: &str, builtin: &str) -> (StatusCode, Value) {
        let wasm = portcullis_builtins::builtin(builtin).unwrap().wasm;
        self.raw(Method::PUT, &format!("/plugins/{name}"), wasm.to_vec())
            .await
    }

    /// Sends a body over the size limit on a raw connection. The server answers before
    /// the upload ends and closes the connection, which an HTTP client reports as a send
    /// error; reading the answer while writing sees it whatever the timing.
    pub async fn oversized(&self, method: &str, path: &str, size: usize) -> (StatusCode, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let stream = tokio::net::TcpStream::connect(self.server.addr)
            .await
            .unwrap();
        let (mut read, mut write) = stream.into_split();
        let head = format!(
            "{method} /admin/v1{path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {ADMIN_TOKEN}\r\n\
             content-type: application/json\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n",
            self.server.addr
        );
        let writer = tokio::spawn(async move {
            let _ = write.write_all(head.as_bytes()).await;
            let chunk = vec![b' '; 64 << 10];
            let mut sent = 0;
            while sent < size {
                let n = chunk.len().min(size - sent);
                if write.write_all(&chunk[..n]).await.is_err() {
                    break;
                }
                sent += n;
            }
        });
        let mut response = Vec::new();
        let _ = read.read_to_end(&mut response).await;
        writer.abort();
        let text = String::from_utf8_lossy(&response);
        let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
        let value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {text}"));
        (StatusCode::from_u16(status).unwrap(), value)
    }

    pub async fn connectors(&self) -> Value {
        let (status, body) = self.api(Method::GET, "/connectors", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Creates a connector to `url` owned by `owner`, asserting success.
    pub async fn add_connector(&self, owner: &str, url: &str, secret: Option<&str>) -> Value {
        let auth = match secret {
            Some(secret) => json!({"method": "api_key", "secret": secret}),
            None => json!({"method": "none"}),
        };
        self.create_connector(json!({"owner": owner, "server_url": url, "auth": auth}))
            .await
    }

    /// Creates a connector from `body`, asserting success; answers it.
    pub async fn create_connector(&self, body: Value) -> Value {
        let (status, created) = self.api(Method::POST, "/connectors", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "create connector: {created}");
        created
    }

    pub async fn put_actor(&self, id: &str, properties: Value) -> (StatusCode, Value) {
        self.api(
            Method::PUT,
            &format!("/actors/{id}"),
            Some(json!({"input_schema": {"title": "Actor", "type": "object", "schemaVersion": 1, "properties": properties}})),
        )
        .await
    }

    /// The number of rows in `table`, read from the database file itself.
    pub async fn count(&self, table: &str) -> i64 {
        let path = self.dir.path().join(portcullis::app::DATABASE_FILE);
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", path.display()))
            .await
            .unwrap();
        let sql = match table {
            "runs" => "SELECT COUNT(*) FROM runs",
            "actors" => "SELECT COUNT(*) FROM actors",
            "connectors" => "SELECT COUNT(*) FROM connectors",
            other => panic!("no table {other}"),
        };
        let count: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        count
    }
}

pub async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    (status, value)
}

/// Asserts the exact status and error code, and that the error has a message.
#[track_caller]
pub fn assert_error(answer: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    let message = answer.1["error"]["message"].as_str().unwrap_or("");
    assert!(!message.is_empty(), "{}", answer.1);
    assert_eq!(answer.1.as_object().unwrap().len(), 1, "{}", answer.1);
}

/// Every byte of the database as it is on disk: the file, its WAL and shared memory.
pub fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = dir.join(format!("{}{suffix}", portcullis::app::DATABASE_FILE));
        if let Ok(data) = std::fs::read(&path) {
            bytes.extend_from_slice(&data);
        }
    }
    bytes
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The tool names of a connector as the API shows it.
pub fn tool_names(connector: &Value) -> Vec<String> {
    connector["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The resident memory of this process (the proxy under test runs in it), in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Reads `response`'s body to its end: how many bytes arrived, and whether it broke off
/// instead of ending.
pub async fn drain(response: reqwest::Response) -> (usize, bool) {
    let mut body = response.bytes_stream();
    let mut received = 0;
    while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
        match chunk {
            Ok(chunk) => received += chunk.len(),
            Err(_) => return (received, true),
        }
    }
    (received, false)
}
