//! The proxy's integration tests: a whole Portcullis on loopback (real SQLite file, real
//! compiled plugins, real MCP upstreams and clients), one test binary with a module per
//! area, so the proxy and wasmtime are linked once.
//!
//! | module | what it covers |
//! |---|---|
//! | `admin_api` | the admin API's surface: authentication, unknown routes, plugins, audit, operational endpoints |
//! | `admin_connectors` | `/connectors`: discovery, allowlists, re-authorization, SSRF |
//! | `admin_discovery` | discovery against hostile upstreams: bounds, the echoed credential redacted |
//! | `admin_runs` | `/actors` and `/runs`: validation, the access chain's answers, lifetimes |
//! | `audit_chain` | the audit log's hash chain and `portcullis audit verify` on tampered copies |
//! | `admin_secrets` | secrets and tokens never leak; restarts; the master key |
//! | `crash` | SIGKILL of the real binary mid-write: nothing acknowledged is lost |
//! | `data_plane` | `/mcp/{connectorId}`: the specification's scenarios and error catalogue |
//! | `hostile_run` | a run that sends what it likes: methods, ids, sizes, slowly |
//! | `hostile_upstream` | an upstream that lies: ids, shapes, sizes, streams |
//! | `lifecycle` | sessions and streams against rates, caps, lifetimes and connector changes |
//! | `plugin_faults` | a faulting chain denies one request and is asked again next time |
//! | `oauth` | OAuth connectors against a real authorization server (`tests/oauth/` peers) |
//! | `plugin_cli` | `plugin keygen`, `sign` and `test`, and a signed install through the CLI |
//! | `plugin_restart` | installed plugins survive a restart |
//! | `plugin_ops` | chains changed live, versions, rollback, deletion, provenance refusals |
//! | `replicas` | two `portcullis serve` processes on one PostgreSQL database; `/healthz` |
//! | `support` | the harness: a server per test, admin calls, MCP calls, test upstreams |

mod admin_api;
mod admin_connectors;
mod admin_discovery;
mod admin_runs;
mod admin_secrets;
mod audit_chain;
mod crash;
mod data_plane;
mod hostile_run;
mod hostile_upstream;
mod lifecycle;
mod oauth;
mod plugin_cli;
mod plugin_faults;
mod plugin_ops;
mod plugin_restart;
mod replicas;
mod support;
