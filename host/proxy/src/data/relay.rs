//! Relaying the upstream's answer to the client (FR-35 to FR-38).
//!
//! A JSON answer is passed through as bytes unless it is one the proxy must rewrite (the
//! answer to `initialize`/`server/discover`, whose denied capabilities are removed, and
//! to `tools/list`, filtered to the permitted set); an SSE answer is relayed event by
//! event as it arrives, never buffered whole, with the same rewrites applied to whichever
//! event carries those answers. Every text is redacted of the credential. A server-to-
//! client request the client did not declare a capability for is answered upstream with
//! `-32601` on the client's behalf instead of being forwarded. Streams end when the
//! session ends or the run finishes.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use portcullis_model::ToolSet;
use serde_json::Value;
use sse_stream::{Sse, SseBody, SseByteStream};
use tokio_util::sync::CancellationToken;

use crate::data::catalogue::{self, error_body};
use crate::data::session::{ClientCapabilities, Session};
use crate::data::upstream::{self, Answer, SESSION_HEADER};
use crate::injection::Injection;
use crate::redact::redact;
use crate::state::AppState;
use crate::store::ConnectorRecord;

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
    pub session: Option<Arc<Session>>,
    /// The id of the request this answer is for (none for GET streams).
    pub request_id: Option<Value>,
    /// The rewrite its answer needs.
    pub rewrite: Option<Rewrite>,
    pub client: ClientCapabilities,
    /// Ends the relay: the session's token, or a child of the run's.
    pub cancel: CancellationToken,
}

/// A relay under way: what it was given, and what it learnt from the answer so far.
struct Relaying {
    relay: Relay,
    /// The credential of this request, to redact from everything that comes back.
    injection: Injection,
    /// The proxy session id to return to the client, if any.
    session_header: Option<HeaderValue>,
    /// Set once the answer to `request_id` has been relayed.
    answered: AtomicBool,
    /// Set once the upstream sent an event id, from which a client can resume.
    resumable: AtomicBool,
}

enum Outcome {
    Forward(Vec<u8>),
    Drop,
}

impl Relay {
    /// Relays `answer` to the client: its status, then nothing, one JSON body or an SSE
    /// stream.
    pub async fn respond(self, answer: Answer) -> Response {
        let Answer {
            response,
            injection,
        } = answer;
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
        let relaying = Relaying {
            relay: self,
            injection,
            session_header,
            answered: AtomicBool::new(false),
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

impl Relaying {
    /// Relays a JSON body.
    async fn json(self, status: StatusCode, response: reqwest::Response) -> Response {
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
            .unwrap_or(HeaderValue::from_static("application/json"));
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(error) => {
                self.relay.state.metrics.upstream_error("read");
                tracing::warn!(connector = %self.relay.connector.id, error = %upstream::error_chain(&error), "upstream answer broke off");
                return catalogue::upstream_unavailable(
                    self.relay.request_id.as_ref(),
                    error.is_timeout(),
                );
            }
        };
        // One JSON body is the whole answer: nothing can be left unanswered, so there is no
        // need to parse it just to see whether the request's id is in it.
        self.answered.store(true, Ordering::Relaxed);
        let body = match self.message(&bytes) {
            Outcome::Forward(body) => body,
            Outcome::Drop => Vec::new(),
        };
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
        self.finish(response)
    }

    /// Relays an SSE stream event by event.
    fn sse(self, status: StatusCode, response: reqwest::Response) -> Response {
        let cancel = self.relay.cancel.clone();
        let session_header = self.session_header.clone();
        let relay = Arc::new(self);
        let at_end = relay.clone();
        let events = SseByteStream::new(response.bytes_stream())
            .take_until(cancel.clone().cancelled_owned())
            .filter_map(move |event| {
                let relay = relay.clone();
                async move {
                    match event {
                        Ok(event) => relay.event(event).map(Ok::<Sse, Infallible>),
                        Err(error) => {
                            tracing::warn!(connector = %relay.relay.connector.id, %error, "upstream stream broke off");
                            relay.relay.state.metrics.upstream_error("stream");
                            relay.unanswered_error().map(Ok)
                        }
                    }
                }
            })
            .chain(futures_util::stream::once(async move {
                // A stream that ended without the answer and without an event id to resume
                // from leaves the client nothing to wait for: say the upstream failed.
                let resumable = at_end.resumable.load(Ordering::Relaxed);
                (!resumable && !cancel.is_cancelled())
                    .then(|| at_end.unanswered_error())
                    .flatten()
                    .map(Ok)
            }).filter_map(std::future::ready));
        let mut response = Response::new(Body::new(SseBody::new(events)));
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

    fn event(&self, event: Sse) -> Option<Sse> {
        if event.id.as_deref().is_some_and(|id| !id.is_empty()) {
            self.resumable.store(true, Ordering::Relaxed);
        }
        let Some(data) = event.data.as_deref().filter(|d| !d.trim().is_empty()) else {
            return Some(Sse {
                event: None,
                ..event
            });
        };
        match self.message(data.as_bytes()) {
            Outcome::Drop => None,
            Outcome::Forward(bytes) => Some(Sse {
                event: event.event.filter(|name| name == "message"),
                data: Some(String::from_utf8_lossy(&bytes).into_owned()),
                id: event.id,
                retry: event.retry,
            }),
        }
    }

    /// Applies the rewrites, the capability check and redaction to one message.
    fn message(&self, bytes: &[u8]) -> Outcome {
        let secret = self.injection.secret();
        if !self.needs_parse(bytes) {
            return Outcome::Forward(redact(bytes, secret).into_owned());
        }
        let Ok(mut value) = serde_json::from_slice::<Value>(bytes) else {
            return Outcome::Forward(redact(bytes, secret).into_owned());
        };
        if let (Some(method), Some(id)) =
            (value.get("method").and_then(Value::as_str), value.get("id"))
        {
            if !self.relay.client.accepts(method) {
                self.decline_server_request(id.clone());
                return Outcome::Drop;
            }
            return Outcome::Forward(redact(bytes, secret).into_owned());
        }
        let Some(id) = value.get("id").cloned() else {
            return Outcome::Forward(redact(bytes, secret).into_owned());
        };
        if self.relay.request_id.as_ref() == Some(&id) {
            self.answered.store(true, Ordering::Relaxed);
        }
        let rewrite = match (&self.relay.request_id, &self.relay.rewrite) {
            (Some(own), Some(rewrite)) if *own == id => Some(rewrite.clone()),
            _ => self.pending_list(&id).then_some(Rewrite::ToolsList),
        };
        match rewrite {
            Some(Rewrite::ToolsList) => self.filter_tools(&mut value),
            Some(Rewrite::Capabilities(denied)) => strip_capabilities(&mut value, &denied),
            None => return Outcome::Forward(redact(bytes, secret).into_owned()),
        }
        let text = serde_json::to_vec(&value).unwrap_or_default();
        Outcome::Forward(redact(&text, secret).into_owned())
    }

    /// Whether a message may need more than redaction: a rewrite or a capability check.
    fn needs_parse(&self, bytes: &[u8]) -> bool {
        let pending_lists = self
            .relay
            .session
            .as_ref()
            .is_some_and(|s| !s.pending_lists.lock().expect("pending lists").is_empty());
        let unanswered = self.relay.request_id.is_some() && !self.answered.load(Ordering::Relaxed);
        let rewrites = self
            .relay
            .rewrite
            .as_ref()
            .is_some_and(|r| !matches!(r, Rewrite::Capabilities(c) if c.is_empty()));
        unanswered
            || rewrites
            || pending_lists
            || memchr::memmem::find(bytes, b"\"method\"").is_some()
    }

    /// The error event owed to the client when its request can no longer be answered;
    /// `None` once an answer went out, so the client never gets two.
    fn unanswered_error(&self) -> Option<Sse> {
        let id = self.relay.request_id.as_ref()?;
        if self.answered.swap(true, Ordering::Relaxed) {
            return None;
        }
        let body = error_body(Some(id), -32006, "Upstream MCP server unavailable", None);
        Some(Sse::default().data(body.to_string()))
    }

    fn pending_list(&self, id: &Value) -> bool {
        self.relay.session.as_ref().is_some_and(|s| {
            s.pending_lists
                .lock()
                .expect("pending lists")
                .remove(&id.to_string())
        })
    }

    fn filter_tools(&self, value: &mut Value) {
        let snapshot: HashSet<&str> = self
            .relay
            .connector
            .tools
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        let Some(result) = value.get_mut("result").and_then(Value::as_object_mut) else {
            return;
        };
        if let Some(Value::Array(tools)) = result.get_mut("tools") {
            tools.retain(|tool| {
                tool.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|name| {
                        snapshot.contains(name) && self.relay.permitted.contains(name)
                    })
            });
        }
        // A filtered list is specific to this run: 2026-07-28 clients must not share it.
        if result.contains_key("cacheScope") {
            result.insert("cacheScope".to_owned(), Value::String("private".to_owned()));
        }
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

/// Removes `denied` from `result.capabilities`.
pub fn strip_capabilities(value: &mut Value, denied: &[&str]) {
    if let Some(capabilities) = value
        .get_mut("result")
        .and_then(|r| r.get_mut("capabilities"))
        .and_then(Value::as_object_mut)
    {
        for capability in denied {
            capabilities.remove(*capability);
        }
    }
}
