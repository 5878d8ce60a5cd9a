//! The listener every upstream runs on, and the handle a test holds to reach and stop it.

use std::{
    net::{SocketAddr, TcpListener as StdTcpListener},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::Router;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, task::JoinHandle, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::recording::{RecordedRequest, RequestLog};

/// The path every upstream serves MCP on.
pub const MCP_PATH: &str = "/mcp";

/// A running upstream on `127.0.0.1` with an ephemeral port.
///
/// Dropping the handle (or calling [`Upstream::shutdown`]) stops accepting, cancels the rmcp
/// sessions and closes every open connection at once, including SSE streams and requests a
/// misbehaving upstream never answers: a test that stops an upstream sees a dead port, not one
/// that drains politely.
pub struct Upstream {
    addr: SocketAddr,
    log: RequestLog,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Upstream {
    /// The socket address the upstream listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The full MCP endpoint URL, e.g. `http://127.0.0.1:40123/mcp`.
    pub fn url(&self) -> String {
        format!("http://{}{MCP_PATH}", self.addr)
    }

    /// `http://127.0.0.1:PORT`, for requests to paths other than the MCP endpoint.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in arrival order, as it arrived on the wire.
    ///
    /// [`crate::echo_bench`] records nothing, so that benchmarks measure the upstream only.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.log).clone()
    }

    /// The shared log behind [`Upstream::requests`], for a test that wants to clear it or
    /// watch it from another task.
    pub fn recorded(&self) -> RequestLog {
        self.log.clone()
    }

    /// Stops the upstream and waits until its port is closed.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.cancel();
        // Aborting drops the connection set, which aborts every connection task with it.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub(crate) fn lock(log: &RequestLog) -> MutexGuard<'_, Vec<RecordedRequest>> {
    // A test that panicked while holding the log must not hide the log from the next assertion.
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Binds `127.0.0.1:0`. Binding happens before the router is built because some upstreams
/// put their own address into their answers.
pub(crate) fn bind() -> (TcpListener, SocketAddr) {
    let listener = StdTcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    listener
        .set_nonblocking(true)
        .expect("make the listener non-blocking");
    let addr = listener.local_addr().expect("read the bound address");
    let listener = TcpListener::from_std(listener).expect("register the listener with tokio");
    (listener, addr)
}

/// Serves `app` on `listener` until the returned handle stops it. `stop` is also the
/// cancellation token of any rmcp service inside `app`, so its sessions end with the server.
pub(crate) fn spawn(
    listener: TcpListener,
    addr: SocketAddr,
    app: Router,
    log: RequestLog,
    stop: CancellationToken,
) -> Upstream {
    let task = tokio::spawn(accept_loop(listener, app, stop.clone()));
    Upstream {
        addr,
        log,
        stop,
        task: Some(task),
    }
}

pub(crate) fn new_log() -> RequestLog {
    Arc::new(Mutex::new(Vec::new()))
}

// A hand-written loop rather than `axum::serve`: its connections are spawned where no one can
// abort them, so a graceful shutdown would wait forever on a request that `hangs()` never
// answers. Owning the connection tasks lets a stop close them all.
async fn accept_loop(listener: TcpListener, app: Router, stop: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                };
                // Without it, a response written in several pieces (SSE) waits ~40 ms on the
                // peer's delayed ACK, which would swamp every latency the benchmarks measure.
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(app.clone());
                connections.spawn(async move {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}
