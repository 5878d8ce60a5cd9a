//! Relaying the upstream's answer to the client (FR-35 to FR-38), bounded and filtered.
//!
//! An SSE answer is relayed event by event as it arrives (never buffered whole, and no
//! event over `limits.sse_event_bytes`). A JSON answer is relayed whole when it must be
//! read (a rewrite, a `tools/list` answer due on the run, or a small body), up to
//! `limits.answer_bytes`; a larger one that needs no reading is streamed through as it
//! arrives, redacted on the way and cut off at the same limit. An answer over a limit
//! ends with ERR-10 (`-32006`, `data.reason` saying which) and never grows the proxy.
//!
//! The `tools/list` filter fails closed. Every response carrying `result.tools` is
//! filtered to the permitted tools of the connector's snapshot whatever its id and
//! whichever stream it comes on (an answer whose own stream ended may come on a later
//! one). While a `tools/list` answer is due anywhere on the run (see `slots`), and on
//! every GET stream, each message is parsed strictly, and a message that cannot be read,
//! or a response without an id, is dropped. The answer to the relayed request itself is recognised by its id
//! compared as a JSON-RPC id (`2` is `2.0`), written back with the client's own id; if it
//! needs a rewrite and cannot be read, or its `result.tools` is not an array, the client
//! gets an error instead. A listed tool whose live annotations differ from the
//! snapshot's stays only if the permitted-tools chain, asked again with them, permits it
//! too (spec 4.4.10, see `live_hints`). The answer to `initialize`/`server/discover`
//! loses the capabilities of denied methods.
//!
//! Every text is redacted of what the request carried that is confidential (every SSE
//! field included). A server-to-client request the client did not declare a capability
//! for is answered upstream with `-32601` on the client's behalf instead of being
//! forwarded. Streams end when the session ends, the run finishes or expires, or the
//! connector changes.

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use portcullis_model::{DecisionContext, ToolHints, ToolSet};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use self::raw::RawObject;
use self::streams::{PassThrough, SseState};
use self::tools::{Listed, ToolsAnswer, strip_capabilities};
use crate::context::tool_hints;
use crate::data::catalogue::{self, error_body, unusable_answer_body};
use crate::data::jsonrpc;
use crate::data::listings::Made;
use crate::data::live_hints;
use crate::data::runs::RunState;
use crate::data::session::{ClientCapabilities, Session};
use crate::data::slots::{ListWatch, StreamSlot};
use crate::data::sse::{self, Event};
use crate::data::upstream::{self, Answer, SESSION_HEADER};
use crate::redact::{Redactor, StreamRedactor};
use crate::state::AppState;
use crate::store::ConnectorRecord;

/// A JSON answer up to this size is read whole before it is relayed.
const PEEK_BYTES: usize = 64 << 10;

/// The rewrite the answer to the relayed request needs.
#[derive(Clone, Debug)]
pub enum Rewrite {
    /// Remove these server capabilities from the result.
    Capabilities(Vec<&'static str>),
    /// Keep only permitted tools.
    ToolsList,
}

/// Everything the relay of one upstream answer needs.
pub struct Relay {
    pub state: Arc<AppState>,
    pub connector: Arc<ConnectorRecord>,
    /// The run's permitted tools on this connector.
    pub permitted: ToolSet,
    /// What the permitted set was decided on (the snapshot's hints); asked again with
    /// a tool's live hints where they differ ([`live_hints`]).
    pub ctx: Arc<DecisionContext>,
    pub run: Arc<RunState>,
    pub session: Option<Arc<Session>>,
    /// The id of the request this answer is for (none for GET streams).
    pub request_id: Option<Value>,
    /// The rewrite its answer needs.
    pub rewrite: Option<Rewrite>,
    pub client: ClientCapabilities,
    /// Ends the relay: the session's token, or a child of the run's.
    pub cancel: CancellationToken,
    /// Ends the relay when the connector changes.
    pub revoked: CancellationToken,
    /// The stream slot the exchange holds until the relay ends (held, never read).
    pub _slot: StreamSlot,
    /// Held while this relay's own `tools/list` answer is due.
    pub list: Option<ListWatch>,
}

/// A relay under way: what it was given, and what it learnt from the answer so far.
struct Relaying {
    relay: Relay,
    redactor: Redactor,
    /// The proxy session id to return to the client, if any.
    session_header: Option<HeaderValue>,
    /// Set once the answer to `request_id` has been relayed.
    answered: AtomicBool,
    /// The relay's own `tools/list` watch, released once its answer went out.
    list: Mutex<Option<ListWatch>>,
    /// Set once the upstream sent an event id, from which a client can resume.
    resumable: AtomicBool,
}

enum Outcome<'a> {
    /// Pass this on (redacted by the caller).
    Forward(Cow<'a, [u8]>),
    Drop,
}

impl Relay {
    /// Relays `answer` to the client: its status, then nothing, one JSON body or an SSE
    /// stream.
    pub async fn respond(mut self, answer: Answer) -> Response {
        let Answer { response, redactor } = answer;
        let status = response.status();
        let is_sse = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        let session_header = self
            .session
            .as_ref()
            .and_then(|s| HeaderValue::from_str(&s.id).ok());
        let list = Mutex::new(self.list.take());
        let relaying = Relaying {
            relay: self,
            redactor,
            session_header,
            answered: AtomicBool::new(false),
            list,
            resumable: AtomicBool::new(false),
        };
        if matches!(status, StatusCode::ACCEPTED | StatusCode::NO_CONTENT) {
            relaying.finish(status.into_response())
        } else if is_sse {
            relaying.sse(status, response)
        } else {
            relaying.json(status, response).await
        }
    }
}

/// What the upstream sends, as a stream of chunks.
type Chunks = BoxStream<'static, reqwest::Result<Bytes>>;

impl Relaying {
    fn limits(&self) -> &crate::config::LimitsConfig {
        &self.relay.state.data.limits
    }

    /// Relays a JSON body: whole when it must be read, streamed through otherwise.
    async fn json(self, status: StatusCode, response: reqwest::Response) -> Response {
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
            .unwrap_or(HeaderValue::from_static("application/json"));
        let limit = self.limits().answer_bytes;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return self.too_large();
        }
        let mut chunks: Chunks = response.bytes_stream().boxed();
        let must_read = self.must_read_whole();
        let whole_until = if must_read { limit } else { PEEK_BYTES };
        let mut body = Vec::new();
        let ended = loop {
            match chunks.next().await {
                None => break true,
                Some(Ok(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > limit {
                        return self.too_large();
                    }
                    if body.len() > whole_until {
                        break false;
                    }
                }
                Some(Err(error)) => return self.broken_off(error),
            }
        };
        let session_header = self.session_header.clone();
        let mut response = if ended {
            let body = match self.message(&body).await {
                Outcome::Forward(bytes) => self.redactor.redact(&bytes).into_owned(),
                Outcome::Drop => Vec::new(),
            };
            (status, body).into_response()
        } else {
            let mut response = Response::new(self.pass_through(body, chunks));
            *response.status_mut() = status;
            response
        };
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, content_type);
        if let Some(id) = session_header {
            headers.insert(SESSION_HEADER, id);
        }
        response
    }

    /// A JSON body streamed through as it arrives, redacted, cut off past the limit.
    fn pass_through(self, first: Vec<u8>, chunks: Chunks) -> Body {
        let mut redactor = StreamRedactor::new(self.redactor.clone());
        let seen = first.len();
        let first = Bytes::from(redactor.push(&first));
        let stop = Box::pin(self.stopped());
        let state = PassThrough {
            relay: self,
            chunks,
            redactor,
            seen,
            first: Some(first),
            done: false,
            stop,
        };
        Body::from_stream(futures_util::stream::unfold(
            state,
            |mut state| async move {
                let next = state.next().await?;
                Some((next, state))
            },
        ))
    }

    /// ERR-10 for an answer over `limits.answer_bytes`.
    fn too_large(&self) -> Response {
        self.relay.state.metrics.upstream_error("too_large");
        tracing::warn!(connector = %self.relay.connector.id, "an upstream answer passed limits.answer_bytes");
        self.finish(catalogue::unusable_answer(
            self.relay.request_id.as_ref(),
            "answer_too_large",
        ))
    }

    fn broken_off(&self, error: reqwest::Error) -> Response {
        let timeout = error.is_timeout();
        self.relay.state.metrics.upstream_error("read");
        let detail = upstream::describe(error, &self.redactor);
        tracing::warn!(connector = %self.relay.connector.id, error = %detail, "upstream answer broke off");
        catalogue::upstream_unavailable(self.relay.request_id.as_ref(), timeout)
    }

    /// Resolves when the relay must end: the session or run ended, or the connector
    /// changed.
    fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let cancel = self.relay.cancel.clone();
        let revoked = self.relay.revoked.clone();
        async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = revoked.cancelled() => {}
            }
        }
    }

    /// Relays an SSE stream event by event.
    fn sse(self, status: StatusCode, response: reqwest::Response) -> Response {
        let session_header = self.session_header.clone();
        let parser = sse::Parser::new(self.limits().sse_event_bytes);
        let stop = Box::pin(self.stopped());
        let state = SseState {
            relay: self,
            chunks: response.bytes_stream().boxed(),
            parser,
            out: VecDeque::new(),
            done: false,
            stop,
        };
        let events = futures_util::stream::unfold(state, |mut state| async move {
            let next = state.next().await?;
            Some((Ok::<Bytes, std::convert::Infallible>(next), state))
        });
        let mut response = Response::new(Body::from_stream(events));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        if let Some(id) = session_header {
            headers.insert(SESSION_HEADER, id);
        }
        response
    }

    fn finish(&self, mut response: Response) -> Response {
        if let Some(id) = &self.session_header {
            response.headers_mut().insert(SESSION_HEADER, id.clone());
        }
        response
    }

    /// One upstream event, as the client gets it.
    async fn event(&self, event: Event) -> Option<Bytes> {
        if event.id.as_deref().is_some_and(|id| !id.is_empty()) {
            self.resumable.store(true, Ordering::Relaxed);
        }
        let out = match event.data.as_deref().filter(|d| !d.trim().is_empty()) {
            None => Event {
                event: None,
                ..event
            },
            Some(data) => match self.message(data.as_bytes()).await {
                Outcome::Drop => return None,
                Outcome::Forward(bytes) => Event {
                    event: event.event.filter(|name| name == "message"),
                    data: Some(String::from_utf8_lossy(&bytes).into_owned()),
                    id: event.id,
                    retry: event.retry,
                },
            },
        };
        Some(Bytes::from(
            self.redactor.redact(&out.encode()).into_owned(),
        ))
    }

    /// Whether a `tools/list` answer could arrive here: one is due on the run, or this
    /// is a GET stream (which carries resumed answers).
    fn watching(&self) -> bool {
        self.relay.request_id.is_none() || self.relay.run.lists_due()
    }

    /// Notes that the answer to the relayed request went out: its `tools/list` answer,
    /// if it was one, is no longer due.
    fn mark_answered(&self) {
        self.answered.store(true, Ordering::Relaxed);
        self.list.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Whether the answer to the relayed request has yet to come.
    fn own_due(&self) -> bool {
        self.relay.request_id.is_some() && !self.answered.load(Ordering::Relaxed)
    }

    fn must_read_whole(&self) -> bool {
        self.relay.rewrite.is_some() || self.watching()
    }

    /// Applies the filter, the rewrites and the capability check to one message.
    async fn message<'a>(&self, bytes: &'a [u8]) -> Outcome<'a> {
        let watching = self.watching();
        let own_due = self.own_due();
        // A message that might carry `result.tools` or a request is read whatever is
        // due: an answer to a `tools/list` whose own stream ended may come on any later
        // stream. A key may be written with escapes (`"\u0074ools"`), so any escape
        // means reading too.
        let must_parse = watching
            || own_due
            || self.relay.rewrite.is_some()
            || memchr::memmem::find(bytes, b"\"method\"").is_some()
            || memchr::memmem::find(bytes, b"\"tools\"").is_some()
            || memchr::memmem::find(bytes, b"\\u").is_some();
        if !must_parse {
            return Outcome::Forward(Cow::Borrowed(bytes));
        }
        let Some(mut message) = RawObject::parse(bytes) else {
            return self.unreadable(bytes, watching);
        };
        if let Some(listed) = self.listed_before(&mut message) {
            return Outcome::Forward(Cow::Owned(listed));
        }
        if jsonrpc::strict_check(bytes).is_err() {
            return self.unreadable(bytes, watching);
        }
        if let Some(method) = message.get("method") {
            if let (Some(method), Some(id)) = (raw::string(method), message.get("id"))
                && !self.relay.client.accepts(&method)
            {
                self.decline_server_request(raw::value(id));
                return Outcome::Drop;
            }
            return Outcome::Forward(Cow::Borrowed(bytes));
        }
        let id = message.get("id").map(raw::value).filter(jsonrpc::is_id);
        let own = match (&self.relay.request_id, &id) {
            (Some(own), Some(id)) => jsonrpc::same_id(own, id),
            _ => false,
        };
        if id.is_none() {
            if own_due && self.relay.rewrite.is_some() {
                return self.unreadable(bytes, watching);
            }
            if watching && message.contains_key("result") {
                return Outcome::Drop;
            }
            return Outcome::Forward(Cow::Borrowed(bytes));
        }
        if own {
            self.mark_answered();
        }
        let result = message.get("result").and_then(RawObject::of);
        let lists_tools = result.as_ref().is_some_and(|r| r.contains_key("tools"));
        let rewrite = match (own, &self.relay.rewrite) {
            (true, Some(rewrite)) => Some(rewrite.clone()),
            _ => lists_tools.then_some(Rewrite::ToolsList),
        };
        let ok = match rewrite {
            Some(Rewrite::ToolsList) => self.filter_tools(&mut message, result).await,
            Some(Rewrite::Capabilities(denied)) => {
                strip_capabilities(&mut message, &denied);
                true
            }
            None => return Outcome::Forward(Cow::Borrowed(bytes)),
        };
        let reply_id = if own {
            self.relay.request_id.clone()
        } else {
            id
        };
        if !ok {
            let error = unusable_answer_body(reply_id.as_ref(), "malformed_answer");
            return Outcome::Forward(Cow::Owned(error.to_string().into_bytes()));
        }
        if let Some(reply_id) = reply_id {
            message.replace("id", raw::to_raw(&reply_id));
        }
        Outcome::Forward(Cow::Owned(message.to_vec()))
    }

    /// A message that could not be read where it had to be: the error owed for the
    /// relayed request when its answer needed a rewrite, nothing while a `tools/list`
    /// answer is due, the bytes as they are otherwise.
    fn unreadable<'a>(&self, bytes: &'a [u8], watching: bool) -> Outcome<'a> {
        if self.own_due() && self.relay.rewrite.is_some() {
            self.mark_answered();
            self.relay.state.metrics.upstream_error("malformed_answer");
            let error = unusable_answer_body(self.relay.request_id.as_ref(), "malformed_answer");
            return Outcome::Forward(Cow::Owned(error.to_string().into_bytes()));
        }
        if watching {
            self.relay.state.metrics.upstream_error("malformed_answer");
            return Outcome::Drop;
        }
        Outcome::Forward(Cow::Borrowed(bytes))
    }

    /// The error event owed to the client when its request can no longer be answered
    /// (`reason` in its data when the proxy refused the answer); `None` once an answer
    /// went out, so the client never gets two.
    fn unanswered_error(&self, reason: Option<&str>) -> Option<Bytes> {
        let id = self.relay.request_id.as_ref()?;
        if self.answered.swap(true, Ordering::Relaxed) {
            return None;
        }
        let body = match reason {
            Some(reason) => unusable_answer_body(Some(id), reason),
            None => error_body(Some(id), -32006, "Upstream MCP server unavailable", None),
        };
        let event = Event {
            data: Some(body.to_string()),
            ..Event::default()
        };
        Some(Bytes::from(event.encode()))
    }

    /// Keeps the permitted tools of the snapshot in `result.tools` (see
    /// [`tools::filter_tools`]), then hides those the permitted-tools chain no longer
    /// permits on their live annotations; false when the answer has no list to filter.
    /// What it made is kept for the same `result` again (`listings`) when no tool was
    /// judged on live annotations.
    async fn filter_tools<'a>(
        &self,
        message: &mut RawObject<'a>,
        result: Option<RawObject<'a>>,
    ) -> bool {
        let written = message.get("result");
        let snapshot: HashSet<&str> = self
            .relay
            .connector
            .tools
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        let permitted = &self.relay.permitted;
        let mut listing = match tools::filter_tools(message, result, &snapshot, permitted) {
            ToolsAnswer::Listed(listing) => listing,
            ToolsAnswer::Error => return true,
            ToolsAnswer::Malformed => return false,
        };
        let kept = self.filter_live(&mut listing.tools).await;
        let filtered = listing.finish();
        if let (Some(kept), Some(written)) = (kept, written)
            && self.relay.state.runtime.memoize()
        {
            let connector = &self.relay.connector;
            let made = Made {
                revision: connector.revision,
                permitted,
                result: written.get(),
                kept,
                filtered: &filtered,
            };
            self.relay.state.data.listings.keep(&connector.id, made);
        }
        message.replace("result", filtered);
        true
    }

    /// Spec 4.4.10: a listed tool whose live annotations differ from the snapshot's is
    /// kept only if the permitted-tools chain, asked with those annotations, permits it
    /// too (a fault permits nothing). Answers the tools with their hints when none
    /// differed, `None` when the chain was asked.
    async fn filter_live(&self, tools: &mut Vec<Listed<'_>>) -> Option<Vec<(String, ToolHints)>> {
        let relay = &self.relay;
        let live = &relay.state.data.live_hints;
        let hints: Vec<(String, ToolHints)> = tools
            .iter()
            .map(|tool| {
                let annotations = tool.annotations.map(raw::value);
                (tool.name.to_string(), tool_hints(annotations.as_ref()))
            })
            .collect();
        let observed = hints
            .iter()
            .map(|(name, hints)| (name.as_str(), hints.clone()));
        let Some(ctx) = live.observe(&relay.connector, &relay.ctx, observed) else {
            return Some(hints);
        };
        let permitted = live_hints::permitted(&relay.state.runtime, ctx).await;
        tools.retain(|tool| permitted.contains(&tool.name));
        None
    }

    /// Answers a server-to-client request upstream with -32601, since the client never
    /// declared it could handle it.
    fn decline_server_request(&self, id: Value) {
        let state = self.relay.state.clone();
        let connector = self.relay.connector.clone();
        let upstream_session = self
            .relay
            .session
            .as_ref()
            .and_then(|s| s.upstream_id.clone());
        tokio::spawn(async move {
            let body =
                Bytes::from(error_body(Some(&id), -32601, "Method not found", None).to_string());
            let sent = upstream::send_own(
                &state,
                &connector,
                Method::POST,
                upstream_session.as_ref(),
                Some(body),
            )
            .await;
            if sent.is_err() {
                tracing::debug!(connector = %connector.id, "could not decline a server-to-client request upstream");
            }
        });
    }
}

mod listed;
mod raw;
mod streams;
mod tools;
