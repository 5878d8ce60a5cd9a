//! # portcullis
//!
//! The proxy. Its parts, each a module with a narrow interface:
//!
//! | module | owns |
//! |---|---|
//! | `app` | the composition root: start-up (building every part, starting the background tasks), the router, serving, operational endpoints |
//! | `state` | [`state::AppState`], what every handler shares |
//! | `data` | the data plane: `/mcp/{connectorId}`, sessions, forwarding, filtering |
//! | `control` | the control plane: the admin API under `/admin/v1` |
//! | `revocation` | what the control plane tells the data plane it changed: the planes' one interface |
//! | `store` | persistence behind the [`store::Store`] trait (SQLite by default) |
//! | `vault` | sealing credentials, the master key, run-token hashing |
//! | `auth` | reading `Authorization: Bearer`, for both planes |
//! | `egress` | every connection to an upstream: SSRF checks, timeouts, no redirects |
//! | `injection` | writing a provider plugin's plan and the secret into a request |
//! | `redact` | masking the credential in upstream text before anyone else sees it |
//! | `context` | the records plugins decide on, built from a run, its actor and a connector |
//! | `clock` | the wall clock, in Unix seconds and milliseconds |
//! | `config` | the TOML file and environment overrides |
//! | `discovery` | the MCP client that lists a connector's tools when it is authorized |
//! | `oauth` | OAuth connectors: discovery, registration, PKCE, the callback's code exchange, refresh, revocation |
//! | `metrics` | the Prometheus counters behind `/metrics` |
//! | `http_server` | serving HTTP/1.1 within the connection limits and header timeout |
//! | `http_body` | reading a request body within its size limit and deadline, drained before a 413 |
//! | `plugin_store` | the plugins operators installed, kept in the data directory across restarts |
//! | `plugin_sync` | reloading the plugin registry when another replica changed plugins or chains |
//! | `cli` | the `portcullis` command line: `serve`, `demo-upstream`, admin commands |
//! | `executor` | the tokio runtime the binaries run on, and its tuning |
//! | `demo_upstream` | a small MCP server with varied tools, to try the proxy locally |
//!
//! The plugin runtime is the `portcullis-runtime` crate; the built-in plugins are
//! embedded by `portcullis-builtins`.

pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod context;
pub mod control;
pub mod data;
pub mod demo_upstream;
pub mod discovery;
pub mod egress;
pub mod executor;
mod http_body;
mod http_server;
pub mod injection;
pub mod metrics;
pub mod oauth;
pub mod plugin_store;
pub mod plugin_sync;
pub mod redact;
pub mod revocation;
pub mod state;
pub mod store;
pub mod vault;
