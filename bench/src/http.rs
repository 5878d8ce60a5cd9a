//! The harness's HTTP/1.1 client: one keep-alive connection per virtual client, written
//! on hyper's connection API so that nothing (no pool, no redirect logic, no MCP SDK)
//! stands between the measurement and the socket. Also the MCP and admin requests the
//! harness sends, with their bodies built once.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// One keep-alive connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    task: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An answer read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Whether this is a JSON-RPC success: status 200 and a `result` member. A cheap byte
    /// search, since it runs once per measured request.
    pub fn is_rpc_success(&self) -> bool {
        self.status == StatusCode::OK && contains(&self.body, b"\"result\"")
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect to {addr}"))?;
        // Nagle plus delayed ACK would add ~40 ms to exchanges written in pieces.
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        let task = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { sender, task })
    }

    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> anyhow::Result<Answer> {
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// A request sent many times: method, path, headers and body prepared once, so each
/// send costs two clones.
#[derive(Clone)]
pub struct Prepared {
    pub addr: SocketAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Prepared {
    pub fn new(
        addr: SocketAddr,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Self {
        let mut headers = headers;
        headers.insert(
            header::HOST,
            HeaderValue::from_str(&addr.to_string()).expect("an address is a valid header"),
        );
        Self {
            addr,
            method,
            uri: path.parse().expect("a valid path"),
            headers,
            body,
        }
    }

    pub fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }

    /// The same request with one more header (a session id, say).
    pub fn with_header(&self, name: &'static str, value: &str) -> Self {
        let mut next = self.clone();
        next.headers.insert(
            name,
            HeaderValue::from_str(value).expect("a visible ASCII value"),
        );
        next
    }
}

/// Where MCP requests go: the upstream itself, or a Portcullis connector with a run token.
#[derive(Clone)]
pub struct McpTarget {
    pub addr: SocketAddr,
    pub path: String,
    /// The run token, when the target is the proxy.
    pub token: Option<String>,
}

impl McpTarget {
    pub fn headers(&self) -> HeaderMap {
        let mut headers = portcullis_test_upstreams::wire::mcp_headers(None);
        if let Some(token) = &self.token {
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {token}")).expect("a token is ASCII"),
            );
        }
        headers
    }

    pub fn prepared(&self, body: &Value) -> Prepared {
        Prepared::new(
            self.addr,
            Method::POST,
            &self.path,
            self.headers(),
            Bytes::from(body.to_string()),
        )
    }

    /// `initialize` then `notifications/initialized` on `conn`; the session id, if the
    /// server minted one (a stateless upstream does not).
    pub async fn open_session(&self, conn: &mut Conn) -> anyhow::Result<Option<String>> {
        let init = self.prepared(&portcullis_test_upstreams::wire::initialize(1));
        let answer = conn.send(init.request()).await?;
        if !answer.is_rpc_success() {
            bail!(
                "initialize answered {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            );
        }
        let session = answer
            .headers
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut note = self.prepared(&portcullis_test_upstreams::wire::notification(
            "notifications/initialized",
        ));
        if let Some(id) = &session {
            note = note.with_header("mcp-session-id", id);
        }
        let answer = conn.send(note.request()).await?;
        if !answer.status.is_success() {
            bail!("notifications/initialized answered {}", answer.status);
        }
        Ok(session)
    }
}

/// One admin API call on a fresh connection; the status and the JSON answer.
pub async fn admin(
    addr: SocketAddr,
    token: &str,
    method: Method,
    path: &str,
    body: Bytes,
    content_type: &'static str,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}"))?,
    );
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let request = Prepared::new(addr, method, &format!("/admin/v1{path}"), headers, body);
    let mut conn = Conn::open(addr).await?;
    let answer = conn.send(request.request()).await?;
    Ok((answer.status, answer.json()))
}

/// `GET /healthz` on a fresh connection: whether it answered 200.
pub async fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut conn) = Conn::open(addr).await else {
        return false;
    };
    let request = Prepared::new(
        addr,
        Method::GET,
        "/healthz",
        HeaderMap::new(),
        Bytes::new(),
    );
    matches!(conn.send(request.request()).await, Ok(a) if a.status == StatusCode::OK)
}
