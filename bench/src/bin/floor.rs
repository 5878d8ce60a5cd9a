//! `portcullis-bench-floor`: the thinnest transparent forwarder that can be written on
//! Portcullis's own stack, for the harness's `floor` row: axum in, reqwest's pooled
//! client out (the proxy's `egress` client settings that matter here: `TCP_NODELAY`, no
//! redirects, no proxy), the same tokio runtime as `portcullis` (`portcullis::executor`).
//! Every request, whatever its path, goes to the one upstream URL with its method,
//! headers and body bytes unchanged, and the answer comes back as it is: no parsing, no
//! session, no policy, no audit. What Portcullis adds over this row is what its own
//! work costs; what this row adds over direct is the limit of the architecture.
//!
//! `portcullis-bench-floor --upstream URL` listens on an ephemeral loopback port and
//! prints `Floor: http://ADDR` once it accepts connections.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::serve::ListenerExt;
use http::{HeaderMap, StatusCode, header};
use tokio::net::TcpListener;

/// The most the floor reads of a request body; Portcullis's default limit is larger, and
/// the benchmark's bodies are far smaller.
const MAX_BODY: usize = 4 << 20;

struct Forwarder {
    client: reqwest::Client,
    upstream: reqwest::Url,
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let upstream = match (args.next().as_deref(), args.next()) {
        (Some("--upstream"), Some(url)) => url.parse().context("--upstream URL")?,
        _ => anyhow::bail!("usage: portcullis-bench-floor --upstream URL"),
    };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .no_proxy()
        .build()?;
    let forwarder = Arc::new(Forwarder { client, upstream });
    portcullis::executor::build()?.block_on(serve(forwarder))
}

async fn serve(forwarder: Arc<Forwarder>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    println!("Floor: http://{}", listener.local_addr()?);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = axum::Router::new().fallback(forward).with_state(forwarder);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn forward(State(forwarder): State<Arc<Forwarder>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return status(StatusCode::PAYLOAD_TOO_LARGE);
    };
    let answer = forwarder
        .client
        .request(parts.method, forwarder.upstream.clone())
        .headers(end_to_end(parts.headers))
        .body(body)
        .send()
        .await;
    let Ok(answer) = answer else {
        return status(StatusCode::BAD_GATEWAY);
    };
    let code = answer.status();
    let headers = end_to_end(answer.headers().clone());
    let mut response = Response::new(Body::from_stream(answer.bytes_stream()));
    *response.status_mut() = code;
    *response.headers_mut() = headers;
    response
}

/// The headers without those that describe one hop (the client sets its own).
fn end_to_end(mut headers: HeaderMap) -> HeaderMap {
    for name in [
        header::HOST,
        header::CONNECTION,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
    ] {
        headers.remove(name);
    }
    headers
}

fn status(code: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = code;
    response
}
