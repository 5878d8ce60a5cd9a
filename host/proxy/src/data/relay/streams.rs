//! The two ways an answer body is relayed as it arrives: an SSE stream event by event
//! ([`SseState`]), and a JSON body that needs no reading streamed through
//! ([`PassThrough`]). Each ends when the relay must stop (session, run or connector), and
//! neither ever holds more than its limit of the upstream's bytes.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures_util::StreamExt;

use super::{Chunks, Relaying};
use crate::data::sse;
use crate::data::upstream;
use crate::redact::StreamRedactor;

/// An SSE relay between two events.
pub(super) struct SseState {
    pub(super) relay: Relaying,
    pub(super) chunks: Chunks,
    pub(super) parser: sse::Parser,
    pub(super) out: VecDeque<Bytes>,
    pub(super) done: bool,
    pub(super) stop: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl SseState {
    /// The next bytes for the client; `None` when the stream is over.
    pub(super) async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(bytes) = self.out.pop_front() {
                return Some(bytes);
            }
            if self.done {
                return None;
            }
            let chunk = tokio::select! {
                () = &mut self.stop => {
                    self.done = true;
                    continue;
                }
                chunk = self.chunks.next() => chunk,
            };
            self.read(chunk).await;
        }
    }

    async fn read(&mut self, chunk: Option<reqwest::Result<Bytes>>) {
        let relay = &self.relay;
        match chunk {
            Some(Ok(chunk)) => {
                let mut events = Vec::new();
                let parsed = self.parser.push(&chunk, &mut events);
                for event in events {
                    if let Some(bytes) = relay.event(event).await {
                        self.out.push_back(bytes);
                    }
                }
                if parsed.is_err() {
                    relay.relay.state.metrics.upstream_error("too_large");
                    tracing::warn!(connector = %relay.relay.connector.id, "an upstream SSE event passed limits.sse_event_bytes");
                    self.out
                        .extend(relay.unanswered_error(Some("event_too_large")));
                    self.done = true;
                }
            }
            Some(Err(error)) => {
                let detail = upstream::describe(error, &relay.redactor);
                tracing::warn!(connector = %relay.relay.connector.id, error = %detail, "upstream stream broke off");
                relay.relay.state.metrics.upstream_error("stream");
                self.out.extend(relay.unanswered_error(None));
                self.done = true;
            }
            None => {
                // A stream that ended without the answer and without an event id to
                // resume from leaves the client nothing to wait for: say the upstream
                // failed.
                if !relay.resumable.load(Ordering::Relaxed) {
                    self.out.extend(relay.unanswered_error(None));
                }
                self.done = true;
            }
        }
    }
}

/// A JSON answer being streamed through.
pub(super) struct PassThrough {
    pub(super) relay: Relaying,
    pub(super) chunks: Chunks,
    pub(super) redactor: StreamRedactor,
    /// Bytes read from the upstream so far.
    pub(super) seen: usize,
    pub(super) first: Option<Bytes>,
    pub(super) done: bool,
    pub(super) stop: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl PassThrough {
    /// The next bytes for the client; an error cuts the body off there.
    pub(super) async fn next(&mut self) -> Option<std::io::Result<Bytes>> {
        if let Some(first) = self.first.take() {
            return Some(Ok(first));
        }
        if self.done {
            return None;
        }
        let chunk = tokio::select! {
            () = &mut self.stop => None,
            chunk = self.chunks.next() => Some(chunk),
        };
        let relay = &self.relay.relay;
        let Some(chunk) = chunk else {
            self.done = true;
            return Some(Err(std::io::Error::other("the relay was ended")));
        };
        match chunk {
            Some(Ok(chunk)) => {
                self.seen += chunk.len();
                if self.seen > relay.state.data.limits.answer_bytes {
                    self.done = true;
                    relay.state.metrics.upstream_error("too_large");
                    tracing::warn!(connector = %relay.connector.id, "an upstream answer passed limits.answer_bytes and was cut off");
                    return Some(Err(std::io::Error::other("upstream answer too large")));
                }
                Some(Ok(Bytes::from(self.redactor.push(&chunk))))
            }
            Some(Err(error)) => {
                self.done = true;
                relay.state.metrics.upstream_error("read");
                let detail = upstream::describe(error, &self.relay.redactor);
                tracing::warn!(connector = %relay.connector.id, error = %detail, "upstream answer broke off");
                Some(Err(std::io::Error::other("upstream answer broke off")))
            }
            None => {
                self.done = true;
                Some(Ok(Bytes::from(self.redactor.finish())))
            }
        }
    }
}
