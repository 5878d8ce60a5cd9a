//! Reading a request body within a size limit and a deadline, so that a refusal for its
//! size reaches the client.
//!
//! A body is kept up to `max` bytes and must arrive within `timeout`. A body over `max`
//! is refused, but its client is usually still sending: if the proxy answers and closes
//! with the rest unread, the client's kernel sees a reset, and an ordinary client (one
//! that writes the whole body before it reads the answer, as Python's `http.client`
//! does) gets `EPIPE` and never sees the 413. So the rest is read and thrown away first,
//! up to `drain` bytes of body in all and within the same deadline. Nothing drained is
//! kept, so memory stays bounded by `max` whatever the client declares; a body declared
//! larger than `drain`, or whose client waits for `100 Continue`, is not read at all (the
//! connection closes after the answer). The deadline bounds the drain too, so a client
//! trickling bytes never holds the proxy past the read timeout.

use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use axum::http::{HeaderMap, header};
use futures_util::StreamExt;
use tokio::time::Instant;

/// The bounds of one body read.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    /// The most bytes kept.
    pub max: usize,
    /// The most bytes read (and thrown away) from a body over `max` before it is refused.
    pub drain: usize,
    /// The time the whole body, and any drain, may take.
    pub timeout: Duration,
}

/// Why a body was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Over `max` (declared or counted).
    TooLarge,
    /// Not all sent within the timeout.
    TimedOut,
    /// The connection broke off mid-body.
    Broken,
}

/// Reads `body` within `limits` (see the module's header).
pub async fn read(headers: &HeaderMap, body: Body, limits: BodyLimits) -> Result<Bytes, BodyError> {
    let deadline = Instant::now() + limits.timeout;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut stream = body.into_data_stream();
    if let Some(declared) = declared.filter(|n| *n > limits.max as u64) {
        let waits_for_continue = headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if declared <= limits.drain as u64 && !waits_for_continue {
            drain(&mut stream, deadline, limits.drain, 0).await;
        }
        return Err(BodyError::TooLarge);
    }
    let capacity = declared.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut bytes = Vec::with_capacity(capacity.min(limits.max));
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => return Err(BodyError::TimedOut),
            Ok(None) => return Ok(Bytes::from(bytes)),
            Ok(Some(Err(_))) => return Err(BodyError::Broken),
            Ok(Some(Ok(chunk))) => {
                let seen = bytes.len() + chunk.len();
                if seen > limits.max {
                    drop(bytes);
                    drain(&mut stream, deadline, limits.drain, seen).await;
                    return Err(BodyError::TooLarge);
                }
                bytes.extend_from_slice(&chunk);
            }
        }
    }
}

/// Reads and throws away what is left of `stream`, until `drain` bytes of the body have
/// been seen in all, the body ends or breaks off, or `deadline`.
async fn drain(stream: &mut BodyDataStream, deadline: Instant, drain: usize, mut seen: usize) {
    while seen <= drain {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => seen += chunk.len(),
            Err(_) | Ok(None) | Ok(Some(Err(_))) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> BodyLimits {
        BodyLimits {
            max: 8,
            drain: 32,
            timeout: Duration::from_millis(200),
        }
    }

    fn chunks(parts: Vec<&'static [u8]>) -> Body {
        Body::from_stream(futures_util::stream::iter(
            parts
                .into_iter()
                .map(|p| Ok::<_, std::io::Error>(Bytes::from_static(p))),
        ))
    }

    fn declaring(length: u64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, length.into());
        headers
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read() {
        let body = read(&HeaderMap::new(), chunks(vec![b"abc", b"defgh"]), limits()).await;
        assert_eq!(body.unwrap(), Bytes::from_static(b"abcdefgh"));
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_counted_or_declared() {
        let counted = read(&HeaderMap::new(), chunks(vec![b"abcdef", b"ghi"]), limits()).await;
        assert_eq!(counted, Err(BodyError::TooLarge));
        let declared = read(&declaring(1 << 40), chunks(vec![b"a"]), limits()).await;
        assert_eq!(declared, Err(BodyError::TooLarge));
    }

    #[tokio::test]
    async fn a_drain_stops_at_its_bound() {
        let endless = Body::from_stream(futures_util::stream::repeat_with(|| {
            Ok::<_, std::io::Error>(Bytes::from_static(b"aaaa"))
        }));
        assert_eq!(
            read(&HeaderMap::new(), endless, limits()).await,
            Err(BodyError::TooLarge)
        );
    }

    #[tokio::test]
    async fn a_trickle_ends_at_the_deadline() {
        let endless = Body::from_stream(futures_util::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Some((Ok::<_, std::io::Error>(Bytes::from_static(b"a")), ()))
        }));
        let started = Instant::now();
        assert_eq!(
            read(&HeaderMap::new(), endless, limits()).await,
            Err(BodyError::TimedOut)
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        // Declared over the limit but within the drain: drained until the deadline only.
        let endless = Body::from_stream(futures_util::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Some((Ok::<_, std::io::Error>(Bytes::from_static(b"a")), ()))
        }));
        let started = Instant::now();
        assert_eq!(
            read(&declaring(20), endless, limits()).await,
            Err(BodyError::TooLarge)
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
