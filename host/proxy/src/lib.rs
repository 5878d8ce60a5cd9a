//! # portcullis
//!
//! The proxy. Its parts, each a module with a narrow interface:
//!
//! | module | owns |
//! |---|---|
//! | `data` | the data plane: `/mcp/{connectorId}`, sessions, forwarding, filtering |
//! | `control` | the control plane: the admin API under `/admin/v1` |
//! | `store` | persistence behind the [`store::Store`] trait (SQLite by default) |
//! | `vault` | sealing credentials, the master key, run-token hashing |
//! | `egress` | every connection to an upstream: SSRF checks, timeouts, no redirects |
//! | `injection` | writing a provider plugin's plan and the secret into a request |
//! | `context` | the records plugins decide on, built from a run, its actor and a connector |
//! | `app` | wiring: state, router, serving, operational endpoints |
//!
//! The plugin runtime is the `portcullis-runtime` crate; the built-in plugins are
//! embedded by `portcullis-builtins`.

pub mod app;
pub mod data;
pub mod store;
