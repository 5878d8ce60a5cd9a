//! The data plane's client side: a raw MCP client for assertions on exact statuses,
//! headers and bodies, the admin calls a data-plane test arranges its run with, and
//! [`Scenario`], which arranges the usual case in one call: a connector of alice's to a
//! test upstream, an actor whose field `conn` accepts any loopback server, a run given
//! the connector and, if asked, an MCP session.

use std::time::Duration;

use axum::http::StatusCode;
use portcullis::config::Config;
use portcullis_test_upstreams::client::{self, McpClient};
use portcullis_test_upstreams::wire;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use super::Proxy;

/// The credential of the connectors data-plane tests create.
pub const SECRET: &str = "sk-upstream-credential-7f3a9c";

pub struct Run {
    pub id: String,
    pub token: String,
}

impl Proxy {
    pub fn mcp_url(&self, connector: &str) -> String {
        self.url(&format!("/mcp/{connector}"))
    }

    /// Creates a connector for `owner` on `url` with [`SECRET`]; answers its id.
    pub async fn connector(&self, owner: &str, url: &str, provider: Option<&str>) -> String {
        let mut body = json!({
            "owner": owner,
            "server_url": url,
            "auth": { "method": "api_key", "secret": SECRET },
        });
        if let Some(provider) = provider {
            body["provider"] = json!(provider);
        }
        id(&self.create_connector(body).await)
    }

    /// Puts an actor with one string field `conn` carrying `servers` as its rules.
    pub async fn actor(&self, id: &str, servers: Value) {
        self.actor_schema(id, json!({ "conn": field("string", servers) }))
            .await;
    }

    /// Puts an actor whose input schema has `properties`, asserting success.
    pub async fn actor_schema(&self, id: &str, properties: Value) {
        let (status, answer) = self.put_actor(id, properties).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::CREATED,
            "put actor: {status} {answer}"
        );
    }

    pub async fn run(&self, actor: &str, user: &str, input: Value) -> Run {
        let body = json!({ "actor": actor, "user": user, "input": input });
        let (status, answer) = self.api(Method::POST, "/runs", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "start run: {answer}");
        Run {
            id: answer["id"].as_str().unwrap().to_owned(),
            token: answer["token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn finish(&self, run: &Run) {
        let path = format!("/runs/{}/finish", run.id);
        let (status, answer) = self.api(Method::POST, &path, Some(json!({}))).await;
        assert_eq!(status, StatusCode::OK, "finish run: {answer}");
    }

    /// The run's audit records once one satisfies `written`: the audit is written off
    /// the request path, so a record may land a moment after the answer it describes.
    pub async fn audit_once(&self, run: &Run, written: impl Fn(&Value) -> bool) -> Vec<Value> {
        let path = format!("/audit?run={}", run.id);
        for _ in 0..500 {
            let (status, answer) = self.api(Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK, "audit: {answer}");
            let records = answer.as_array().cloned().unwrap_or_default();
            if records.iter().any(&written) {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the expected audit record was not written within 10 s");
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
        let mut headers = wire::mcp_headers(session);
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
            .post(connector, Some(token), None, &wire::initialize(1))
            .await;
        assert_eq!(answer.status, 200, "initialize: {:?}", answer.messages);
        let session = answer
            .header("mcp-session-id")
            .expect("a proxy session id")
            .to_owned();
        let note = wire::notification("notifications/initialized");
        let accepted = self
            .post(connector, Some(token), Some(&session), &note)
            .await;
        assert_eq!(accepted.status, 202);
        session
    }

    /// The status of one `initialize` through the data plane with `token`.
    pub async fn mcp_initialize(&self, connector: &str, token: &str) -> StatusCode {
        let answer = self
            .post(connector, Some(token), None, &wire::initialize(1))
            .await;
        StatusCode::from_u16(answer.status).unwrap()
    }
}

/// The `id` of a record the API answered.
/// ERR-8 (`-32004`) answering request `id` (none for GET, DELETE or a notification) with
/// `status`, naming `connector` and `reason`.
pub fn assert_reauthorization(
    answer: &Answer,
    status: u16,
    id: Option<i64>,
    connector: &str,
    reason: &str,
) {
    assert_eq!(answer.status, status, "{}", answer.text);
    let message = &answer.messages[0];
    assert_eq!(message["id"], json!(id), "{}", answer.text);
    let error = &message["error"];
    assert_eq!(error["code"], -32004, "{}", answer.text);
    assert_eq!(error["message"], "Connector requires re-authorization");
    assert_eq!(
        error["data"],
        json!({"connectorId": connector, "reason": reason}),
        "{}",
        answer.text
    );
}

pub fn id(record: &Value) -> String {
    record["id"].as_str().unwrap().to_owned()
}

/// A connector property of an input schema.
pub fn field(kind: &str, servers: Value) -> Value {
    json!({
        "title": "Connector", "description": "An MCP connector", "type": kind,
        "resourceType": "mcpConnector", "mcpServers": servers,
    })
}

/// The `mcpServers` rule that matches any loopback test upstream.
pub fn any_loopback(tools: Option<Value>) -> Value {
    let mut rule = json!({ "url": "http://127.0.0.1:*" });
    if let Some(tools) = tools {
        rule["tools"] = tools;
    }
    json!([rule])
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
            wire::sse_messages(&text)
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

/// A proxy with alice's connector to an upstream, an actor whose field `conn` accepts
/// any loopback server, a run given the connector, and perhaps an MCP session.
pub struct Scenario {
    pub env: Proxy,
    pub conn: String,
    pub run: Run,
    /// The proxy session, when the scenario opened one.
    pub session: Option<String>,
}

/// The options of a [`Scenario`]; [`ScenarioBuilder::start`] arranges it.
pub struct ScenarioBuilder {
    url: String,
    tools: Option<Value>,
    provider: Option<&'static str>,
    session: bool,
    configure: Box<dyn FnOnce(&mut Config)>,
}

impl Scenario {
    /// A scenario on the upstream at `url`.
    pub fn on(url: &str) -> ScenarioBuilder {
        ScenarioBuilder {
            url: url.to_owned(),
            tools: None,
            provider: None,
            session: false,
            configure: Box::new(|_| {}),
        }
    }

    /// Sends `body` with the run's token, in the scenario's session if it has one.
    pub async fn send(&self, body: &Value) -> Answer {
        self.send_with(body, HeaderMap::new()).await
    }

    pub async fn send_with(&self, body: &Value, headers: HeaderMap) -> Answer {
        self.env
            .post_with(
                &self.conn,
                Some(&self.run.token),
                self.session.as_deref(),
                body,
                headers,
            )
            .await
    }

    /// POSTs `body` as it is (any bytes) with the run's token, in the scenario's session;
    /// the response as it arrives, for a test that reads it its own way.
    pub async fn post_raw(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.env
            .http
            .post(self.env.mcp_url(&self.conn))
            .headers(wire::mcp_headers(self.session.as_deref()))
            .bearer_auth(&self.run.token)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// GET: the stream of the scenario's session.
    pub async fn open_stream(&self) -> reqwest::Response {
        self.env
            .http
            .get(self.env.mcp_url(&self.conn))
            .headers(wire::mcp_headers(Some(self.session())))
            .bearer_auth(&self.run.token)
            .send()
            .await
            .unwrap()
    }

    /// `tools/list` as request `id`.
    pub async fn list(&self, id: i64) -> Answer {
        self.send(&wire::request(id, "tools/list", json!({}))).await
    }

    /// `tools/call` of `tool` as request `id`.
    pub async fn call(&self, id: i64, tool: &str, arguments: Value) -> Answer {
        self.send(&wire::call_tool(id, tool, arguments)).await
    }

    /// An rmcp client of the run on the connector, initialized.
    pub async fn client(&self) -> McpClient {
        client::connect(&self.env.mcp_url(&self.conn), Some(&self.run.token))
            .await
            .unwrap()
    }

    /// A new session of the run on the connector.
    pub async fn initialize(&self) -> String {
        self.env.initialize(&self.conn, &self.run.token).await
    }

    /// The session the scenario opened.
    pub fn session(&self) -> &str {
        self.session
            .as_deref()
            .expect("the scenario opened a session")
    }
}

impl ScenarioBuilder {
    /// The tool rule of the actor's `mcpServers` entry.
    pub fn tools(mut self, tools: Value) -> Self {
        self.tools = Some(tools);
        self
    }

    /// The connector's provider profile.
    pub fn provider(mut self, provider: &'static str) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Opens an MCP session (`initialize`, `notifications/initialized`).
    pub fn session(mut self) -> Self {
        self.session = true;
        self
    }

    /// Changes the proxy's configuration.
    pub fn configure(mut self, configure: impl FnOnce(&mut Config) + 'static) -> Self {
        self.configure = Box::new(configure);
        self
    }

    pub async fn start(self) -> Scenario {
        let env = Proxy::start_with(self.configure).await;
        let conn = env.connector("alice", &self.url, self.provider).await;
        env.actor("actor", any_loopback(self.tools)).await;
        let run = env.run("actor", "alice", json!({ "conn": conn })).await;
        let mut scenario = Scenario {
            env,
            conn,
            run,
            session: None,
        };
        if self.session {
            scenario.session = Some(scenario.initialize().await);
        }
        scenario
    }
}
