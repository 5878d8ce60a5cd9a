//! Shared by the admin API tests: a real server on loopback with a real SQLite file in a
//! temporary directory, the demo upstream in-process, a few deliberately broken
//! upstreams, and helpers that assert the API's exact error answers.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use portcullis::app::{RunningServer, spawn};
use portcullis::config::{Config, Secret};
use portcullis::demo_upstream::{DemoOptions, DemoUpstream, spawn_demo_upstream};
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// base64 of 32 bytes of 0x2a.
pub const MASTER_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";
pub const OTHER_MASTER_KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

pub struct Harness {
    pub server: RunningServer,
    pub dir: TempDir,
    pub http: reqwest::Client,
}

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
    config
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        adjust(&mut config);
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
        let (status, body) = self
            .api(
                Method::POST,
                "/connectors",
                Some(json!({"owner": owner, "server_url": url, "auth": auth})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
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

    /// Sends one MCP `initialize` through the data plane with `token`; answers the status.
    pub async fn mcp_initialize(&self, connector: &str, token: &str) -> StatusCode {
        self.http
            .post(self.url(&format!("/mcp/{connector}")))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "admin-test", "version": "1"}}}),
            )
            .send()
            .await
            .unwrap()
            .status()
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

pub async fn demo() -> DemoUpstream {
    spawn_demo_upstream(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        DemoOptions::default(),
    )
    .await
    .unwrap()
}

pub async fn demo_requiring(token: &str) -> DemoUpstream {
    spawn_demo_upstream(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        DemoOptions {
            require_token: Some(token.to_owned()),
        },
    )
    .await
    .unwrap()
}

/// A background HTTP server; stops when dropped.
pub struct Upstream {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(router: axum::Router) -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Upstream {
        url: format!("http://{addr}/mcp"),
        task,
    }
}

/// A web page, not an MCP server.
pub async fn html_upstream() -> Upstream {
    serve(axum::Router::new().route(
        "/mcp",
        post(|| async { axum::response::Html("<html><body>Welcome</body></html>") }),
    ))
    .await
}

/// An address nothing listens on.
pub async fn closed_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/mcp")
}

/// What the scripted upstream lists and has seen.
#[derive(Default)]
pub struct Script {
    pub tools: Vec<String>,
    /// Each `Authorization` header received.
    pub seen_auth: Vec<String>,
    pub page_size: usize,
}

/// A minimal JSON-answering MCP server whose tool list a test can change; it pages
/// `tools/list` `page_size` tools at a time.
pub async fn scripted_upstream(script: Arc<Mutex<Script>>) -> Upstream {
    async fn handle(
        State(script): State<Arc<Mutex<Script>>>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> Response {
        let mut script = script.lock().unwrap();
        if let Some(auth) = headers.get("authorization") {
            script.seen_auth.push(auth.to_str().unwrap().to_owned());
        }
        let id = body["id"].clone();
        let result = match body["method"].as_str().unwrap_or("") {
            "initialize" => {
                json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}}, "serverInfo": {"name": "scripted", "version": "1"}})
            }
            "tools/list" => {
                let start: usize = body["params"]["cursor"]
                    .as_str()
                    .map_or(0, |c| c.parse().unwrap());
                let size = script.page_size.max(1);
                let page: Vec<Value> = script.tools.iter().skip(start).take(size)
                    .map(|name| json!({"name": name, "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true}}))
                    .collect();
                let mut result = json!({"tools": page});
                if start + size < script.tools.len() {
                    result["nextCursor"] = json!((start + size).to_string());
                }
                result
            }
            _ => return StatusCode::ACCEPTED.into_response(),
        };
        Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
    }
    serve(
        axum::Router::new()
            .route("/mcp", post(handle))
            .with_state(script),
    )
    .await
}

pub fn tool_names(connector: &Value) -> Vec<String> {
    connector["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}
