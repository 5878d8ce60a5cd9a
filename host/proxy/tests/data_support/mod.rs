//! What the data-plane tests share: a whole Portcullis on loopback with a real SQLite
//! file, driven through its admin API as a platform would, and a raw MCP client for
//! assertions on exact statuses, headers and bodies.

#![allow(dead_code)]

use std::time::Duration;

use portcullis::app::{RunningServer, spawn};
use portcullis::config::{Config, Secret};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

pub const ADMIN_TOKEN: &str = "admin-token-for-data-plane-tests";
pub const SECRET: &str = "sk-upstream-credential-7f3a9c";

pub struct Env {
    pub server: RunningServer,
    pub http: reqwest::Client,
    _data_dir: tempfile::TempDir,
}

pub struct Run {
    pub id: String,
    pub token: String,
}

impl Env {
    pub async fn start() -> Env {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Env {
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.path().to_owned(),
            admin_token: Some(Secret::new(ADMIN_TOKEN)),
            master_key: Some(Secret::new("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")),
            ..Config::default()
        };
        config.upstream.allow_private = true;
        adjust(&mut config);
        let server = spawn(config).await.expect("start portcullis");
        Env {
            server,
            http: reqwest::Client::builder()
                .tcp_nodelay(true)
                .build()
                .unwrap(),
            _data_dir: data_dir,
        }
    }

    pub fn mcp_url(&self, connector: &str) -> String {
        format!("{}/mcp/{connector}", self.server.base_url)
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/admin/v1{path}", self.server.base_url))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Creates a connector for `owner` on `url` with the test secret; returns its id.
    pub async fn connector(&self, owner: &str, url: &str, provider: Option<&str>) -> String {
        let mut body = json!({
            "owner": owner,
            "server_url": url,
            "auth": { "method": "api_key", "secret": SECRET },
        });
        if let Some(provider) = provider {
            body["provider"] = json!(provider);
        }
        let (status, answer) = self
            .admin(reqwest::Method::POST, "/connectors", Some(body))
            .await;
        assert_eq!(status, 201, "create connector: {answer}");
        answer["id"].as_str().unwrap().to_owned()
    }

    pub async fn allow(&self, connector: &str, tools: Value) {
        let (status, answer) = self
            .admin(
                reqwest::Method::PATCH,
                &format!("/connectors/{connector}"),
                Some(json!({ "allowed_tools": tools })),
            )
            .await;
        assert_eq!(status, 200, "allowlist: {answer}");
    }

    /// The common setup: alice's connector to `upstream_url`, an actor whose field `conn`
    /// matches any loopback server with `tools` as its tool rule, and a run giving it.
    pub async fn alice_run(&self, upstream_url: &str, tools: Option<Value>) -> (String, Run) {
        let conn = self.connector("alice", upstream_url, None).await;
        self.actor("actor", any_loopback(tools)).await;
        let run = self.run("actor", "alice", json!({ "conn": conn })).await;
        (conn, run)
    }

    /// Puts an actor with one string field `conn` carrying `servers` as its rules.
    pub async fn actor(&self, id: &str, servers: Value) {
        self.actor_schema(id, json!({ "conn": field("string", servers) }))
            .await;
    }

    pub async fn actor_schema(&self, id: &str, properties: Value) {
        let schema = json!({
            "title": "test actor", "type": "object", "schemaVersion": 1, "properties": properties,
        });
        let (status, answer) = self
            .admin(
                reqwest::Method::PUT,
                &format!("/actors/{id}"),
                Some(json!({ "input_schema": schema })),
            )
            .await;
        assert!(
            status == 200 || status == 201,
            "put actor: {status} {answer}"
        );
    }

    pub async fn run(&self, actor: &str, user: &str, input: Value) -> Run {
        let (status, answer) = self
            .admin(
                reqwest::Method::POST,
                "/runs",
                Some(json!({ "actor": actor, "user": user, "input": input })),
            )
            .await;
        assert_eq!(status, 201, "start run: {answer}");
        Run {
            id: answer["id"].as_str().unwrap().to_owned(),
            token: answer["token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn finish(&self, run: &Run) {
        let (status, answer) = self
            .admin(
                reqwest::Method::POST,
                &format!("/runs/{}/finish", run.id),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 200, "finish run: {answer}");
    }

    pub async fn audit(&self, run: &Run) -> Vec<Value> {
        let (status, answer) = self
            .admin(
                reqwest::Method::GET,
                &format!("/audit?run={}", run.id),
                None,
            )
            .await;
        assert_eq!(status, 200, "audit: {answer}");
        answer
            .as_array()
            .cloned()
            .or_else(|| answer["records"].as_array().cloned())
            .unwrap_or_default()
    }

    /// One POST to the data plane; the answer as status, headers and JSON-RPC messages
    /// (one for a JSON answer, every `data:` message for SSE).
    pub async fn post(
        &self,
        connector: &str,
        token: Option<&str>,
        session: Option<&str>,
        body: &Value,
    ) -> Answer {
        self.post_with(connector, token, session, body, HeaderMap::new())
            .await
    }

    pub async fn post_with(
        &self,
        connector: &str,
        token: Option<&str>,
        session: Option<&str>,
        body: &Value,
        extra: HeaderMap,
    ) -> Answer {
        let mut headers = portcullis_test_upstreams::wire::mcp_headers(session);
        headers.extend(extra);
        if let Some(token) = token {
            headers.insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
            );
        }
        let response = self
            .http
            .post(self.mcp_url(connector))
            .headers(headers)
            .body(body.to_string())
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .unwrap();
        Answer::read(response).await
    }

    /// `initialize` then `notifications/initialized`; returns the proxy session id.
    pub async fn initialize(&self, connector: &str, token: &str) -> String {
        let answer = self
            .post(
                connector,
                Some(token),
                None,
                &portcullis_test_upstreams::wire::initialize(1),
            )
            .await;
        assert_eq!(answer.status, 200, "initialize: {:?}", answer.messages);
        let session = answer
            .header("mcp-session-id")
            .expect("a proxy session id")
            .to_owned();
        let note = portcullis_test_upstreams::wire::notification("notifications/initialized");
        let accepted = self
            .post(connector, Some(token), Some(&session), &note)
            .await;
        assert_eq!(accepted.status, 202);
        session
    }
}

/// A connector property of an input schema.
pub fn field(kind: &str, servers: Value) -> Value {
    json!({
        "title": "Connector", "description": "An MCP connector", "type": kind,
        "resourceType": "mcpConnector", "mcpServers": servers,
    })
}

pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub messages: Vec<Value>,
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let sse = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        let messages = if sse {
            portcullis_test_upstreams::wire::sse_messages(&text)
        } else {
            serde_json::from_str(&text)
                .map(|v| vec![v])
                .unwrap_or_default()
        };
        Answer {
            status,
            headers,
            text,
            messages,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The message answering `id`.
    pub fn response(&self, id: i64) -> &Value {
        self.messages
            .iter()
            .find(|m| {
                m["id"] == json!(id) && (m.get("result").is_some() || m.get("error").is_some())
            })
            .unwrap_or_else(|| panic!("no answer to {id} in {:?} ({})", self.messages, self.text))
    }

    pub fn tool_names(&self, id: i64) -> Vec<String> {
        let mut names: Vec<String> = self.response(id)["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("no tools in {}", self.text))
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }
}

/// The `mcpServers` rule that matches any loopback test upstream.
pub fn any_loopback(tools: Option<Value>) -> Value {
    let mut rule = json!({ "url": "http://127.0.0.1:*" });
    if let Some(tools) = tools {
        rule["tools"] = tools;
    }
    json!([rule])
}
