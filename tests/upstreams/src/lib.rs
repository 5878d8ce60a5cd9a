//! In-process MCP upstream servers for Portcullis' tests and benchmarks.
//!
//! This crate owns the third-party side of every test: the MCP servers the proxy forwards
//! to. Each one runs inside the test's tokio runtime on `127.0.0.1` with an ephemeral port,
//! sets `TCP_NODELAY` on every accepted socket, records every HTTP request it receives
//! (except [`echo_bench`]), and stops when its [`Upstream`] handle is dropped.
//!
//! - Well-behaved servers are rmcp's own Streamable HTTP server ([`sessions`], [`stateless`],
//!   [`paging`], [`progress`], [`recording`], [`echo_bench`], or [`McpUpstream`] to choose
//!   the tools and change them while the server runs), so the proxy is tested against the
//!   reference implementation rather than our reading of the spec.
//! - Misbehaving servers are plain axum ([`not_mcp`], [`unauthorized`],
//!   [`insufficient_scope`], [`hangs`], [`closes_mid_stream`], [`leaky`], ...), [`hostile`]
//!   is scripted by the test after discovery (lying ids, odd answers, endless bodies), and
//!   [`down`] names a port nothing listens on.
//! - [`postgres`] starts a real PostgreSQL (one cluster per test binary, a database per
//!   test) for the tests of the PostgreSQL store and of several replicas.
//! - [`client`] connects rmcp clients that log the progress they receive; [`wire`] holds the
//!   headers, bodies and SSE parsing for tests that speak HTTP by hand.
//!
//! Every constructor panics if it cannot bind a loopback port or runs outside a tokio runtime.

pub mod catalogue;
pub mod client;
mod handler;
pub mod hostile;
mod mcp;
pub mod postgres;
mod raw;
mod recording;
mod server;
pub mod wire;

pub use catalogue::ToolSet;
pub use hostile::{Hostile, Reply, hostile};
pub use mcp::{McpUpstream, echo_bench, paging, progress, recording, sessions, stateless};
pub use raw::{
    UPSTREAM_COOKIE, closes_mid_stream, down, hangs, hangs_on_call, insufficient_scope, leaky,
    not_mcp, unauthorized, unauthorized_on_call,
};
pub use recording::{RecordedRequest, RequestLog};
pub use server::{MCP_PATH, Upstream};
