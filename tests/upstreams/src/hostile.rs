//! A hostile upstream a test scripts after discovery, written on plain axum because rmcp
//! answers every id as it was asked.
//!
//! Discovery goes honestly: `initialize` over JSON with an `Mcp-Session-Id` (declaring
//! the `tools`, `resources` and `logging` capabilities), `202` for notifications, and
//! `tools/list` listing [`DISCOVERED`]. From then on the test decides what `tools/list`,
//! `tools/call` and `GET` answer ([`Hostile::on_list`], [`Hostile::on_call`],
//! [`Hostile::on_get`]) and how long `initialize` takes ([`Hostile::delay_initialize`]):
//! ids in other numeric forms, no id, no tools array, tools the connector never had
//! ([`SMUGGLED`]), SSE events, bodies of any size. A
//! script gets the request's id as the JSON text it arrived in. `DELETE` gets `204`, and
//! every request is recorded.

use std::sync::{Arc, Mutex};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Request, State},
    middleware,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    recording::{RecordedRequest, record},
    server::{self, Upstream},
};

/// The tools discovery sees: the connector's snapshot.
pub const DISCOVERED: [&str; 2] = ["visible", "hidden"];
/// A tool the upstream lists after discovery: outside every snapshot.
pub const SMUGGLED: &str = "smuggled";

/// What a script answers: a content type and a body, sent in chunks.
pub struct Reply {
    pub content_type: &'static str,
    pub body: ReplyBody,
}

/// The body of a [`Reply`].
pub enum ReplyBody {
    Text(String),
    /// `prefix`, then `fill` repeated until `total` bytes went out (or forever), in 64 KiB
    /// chunks: an answer that never fits anywhere.
    Endless {
        prefix: String,
        fill: u8,
        total: Option<usize>,
    },
}

impl Reply {
    /// A JSON body.
    pub fn json(body: impl Into<String>) -> Self {
        Self {
            content_type: "application/json",
            body: ReplyBody::Text(body.into()),
        }
    }

    /// An SSE body of one event per message, each `data:` line as given.
    pub fn sse<S: AsRef<str>>(messages: &[S]) -> Self {
        let body = messages
            .iter()
            .map(|m| format!("event: message\ndata: {}\n\n", m.as_ref()))
            .collect();
        Self {
            content_type: "text/event-stream",
            body: ReplyBody::Text(body),
        }
    }

    /// `prefix` then `fill` up to `total` bytes (`None`: forever) as `content_type`.
    pub fn endless(
        content_type: &'static str,
        prefix: impl Into<String>,
        fill: u8,
        total: Option<usize>,
    ) -> Self {
        Self {
            content_type,
            body: ReplyBody::Endless {
                prefix: prefix.into(),
                fill,
                total,
            },
        }
    }
}

/// What a script makes of a request's id (its JSON text as received).
type Script = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

#[derive(Default)]
struct Scripts {
    list: Option<Script>,
    call: Option<Script>,
    get: Option<Script>,
    /// How long the honest `initialize` answer waits.
    initialize_delay: Option<std::time::Duration>,
}

/// A running hostile upstream.
pub struct Hostile {
    upstream: Upstream,
    scripts: Arc<Mutex<Scripts>>,
}

/// A `tools/list` result with the id text `id`, listing [`DISCOVERED`] and [`SMUGGLED`].
pub fn every_tool(id: &str) -> String {
    let tools: Vec<Value> = DISCOVERED
        .iter()
        .chain([&SMUGGLED])
        .map(|name| tool(name))
        .collect();
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"result":{{"tools":{}}}}}"#,
        Value::Array(tools)
    )
}

fn tool(name: &str) -> Value {
    json!({"name": name, "description": "a tool", "inputSchema": {"type": "object"}})
}

/// Starts a hostile upstream that answers honestly until scripted.
pub async fn hostile() -> Hostile {
    let (listener, addr) = server::bind();
    let scripts = Arc::new(Mutex::new(Scripts::default()));
    let log = server::new_log();
    let app = Router::new()
        .fallback(answer)
        .with_state(scripts.clone())
        .layer(middleware::from_fn_with_state(log.clone(), record));
    let upstream = server::spawn(listener, addr, app, log, CancellationToken::new());
    Hostile { upstream, scripts }
}

impl Hostile {
    pub fn url(&self) -> String {
        self.upstream.url()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.upstream.requests()
    }

    fn scripts(&self) -> std::sync::MutexGuard<'_, Scripts> {
        self.scripts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on `tools/list` gets what `script` makes of its id.
    pub fn on_list(&self, script: impl Fn(&str) -> Reply + Send + Sync + 'static) {
        self.scripts().list = Some(Arc::new(script));
    }

    /// From now on `tools/call` gets what `script` makes of its id.
    pub fn on_call(&self, script: impl Fn(&str) -> Reply + Send + Sync + 'static) {
        self.scripts().call = Some(Arc::new(script));
    }

    /// From now on `initialize` is answered (honestly) only after `delay`.
    pub fn delay_initialize(&self, delay: std::time::Duration) {
        self.scripts().initialize_delay = Some(delay);
    }

    /// From now on `GET` gets what `script` makes of an empty id.
    pub fn on_get(&self, script: impl Fn(&str) -> Reply + Send + Sync + 'static) {
        self.scripts().get = Some(Arc::new(script));
    }
}

async fn answer(State(scripts): State<Arc<Mutex<Scripts>>>, request: Request) -> Response {
    let script = |pick: fn(&Scripts) -> Option<Script>| {
        pick(&scripts.lock().unwrap_or_else(|p| p.into_inner()))
    };
    match *request.method() {
        Method::POST => {}
        Method::DELETE => return StatusCode::NO_CONTENT.into_response(),
        Method::GET => {
            return match script(|s| s.get.clone()) {
                Some(get) => reply(get("")),
                None => StatusCode::METHOD_NOT_ALLOWED.into_response(),
            };
        }
        _ => return StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
    let Ok(body) = axum::body::to_bytes(request.into_body(), 1 << 20).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let (Some(id), Some(method)) = (
        message.get("id"),
        message.get("method").and_then(Value::as_str),
    ) else {
        return StatusCode::ACCEPTED.into_response();
    };
    let id = id.to_string();
    let scripted = match method {
        "tools/list" => script(|s| s.list.clone()),
        "tools/call" => script(|s| s.call.clone()),
        _ => None,
    };
    if let Some(scripted) = scripted {
        return reply(scripted(&id));
    }
    match method {
        "initialize" => {
            let delay = scripts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .initialize_delay;
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            let result = json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}, "resources": {}, "logging": {}},
                "serverInfo": {"name": "portcullis-hostile-upstream", "version": "0"}
            });
            let mut response = reply(Reply::json(format!(
                r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#
            )));
            response.headers_mut().insert(
                "mcp-session-id",
                HeaderValue::from_static("hostile-session"),
            );
            response
        }
        "tools/list" => {
            let tools = Value::Array(DISCOVERED.iter().map(|name| tool(name)).collect());
            reply(Reply::json(format!(
                r#"{{"jsonrpc":"2.0","id":{id},"result":{{"tools":{tools}}}}}"#
            )))
        }
        _ => reply(Reply::json(format!(
            r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[]}}}}"#
        ))),
    }
}

fn reply(reply: Reply) -> Response {
    let body = match reply.body {
        ReplyBody::Text(text) => Body::from(text),
        ReplyBody::Endless {
            prefix,
            fill,
            total,
        } => {
            let chunk = Bytes::from(vec![fill; 64 << 10]);
            let first = Bytes::from(prefix);
            let sent = first.len();
            let stream = futures::stream::unfold((Some(first), sent), move |(first, sent)| {
                let chunk = chunk.clone();
                async move {
                    if let Some(first) = first {
                        return Some((Ok::<_, std::io::Error>(first), (None, sent)));
                    }
                    let left = total.map_or(chunk.len(), |t| t.saturating_sub(sent));
                    if left == 0 {
                        return None;
                    }
                    let piece = chunk.slice(..left.min(chunk.len()));
                    let sent = sent + piece.len();
                    Some((Ok(piece), (None, sent)))
                }
            });
            Body::from_stream(stream)
        }
    };
    ([(header::CONTENT_TYPE, reply.content_type)], body).into_response()
}
