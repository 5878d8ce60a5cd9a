//! The test upstreams behave as documented: one test binary, a module per kind of upstream.
//!
//! | module | what it covers |
//! |---|---|
//! | `sessions` | `sessions()` and the `McpUpstream` builder, through rmcp's client and on the wire |
//! | `stateless` | `stateless()` and `echo_bench()`: no sessions, JSON answers, 2026-07-28 requests |
//! | `streaming` | `paging()` and `progress()`: answers that arrive as SSE streams |
//! | `recording` | `recording()`: the request log and `whoami` |
//! | `misbehaving` | the raw upstreams misbehave exactly as documented |
//! | `nodelay` | every upstream sets `TCP_NODELAY` |
//! | `support` | what several modules send and read on the wire |

mod misbehaving;
mod nodelay;
mod recording;
mod sessions;
mod stateless;
mod streaming;
mod support;
