//! # portcullis-model
//!
//! The records the Portcullis host works with, independent of the WIT contract version
//! and of the sandbox: the proxy builds them, keeps some in its store and reads the
//! answers; the runtime converts them for whichever contract version a plugin was built
//! against. This crate is plain data (serde, no wasmtime), at the bottom of the host.
//!
//! | module | owns |
//! |---|---|
//! | `records` | what a decision depends on (run, connector, tools, rules, request, plan request) and what plugins answer (decision, tool set, injection plan) |
//! | `template` | credential templates in injection plans, filled in by the host |
//! | `verdict` | [`Verdict`]: an answer with the [`Stamp`]s of the plugins that gave it and the [`Fault`] when one failed |
//! | `oauth` | what the host and a provider plugin say about a connector's OAuth: the request and the provider's profile |
//! | `chains` | [`ChainConfig`]: which plugins make each decision; its defaults come from the built-in list |
//! | `fixtures` | (feature `fixtures`) builders for tests, mirroring `portcullis_sdk::testing` |

mod chains;
#[cfg(feature = "fixtures")]
pub mod fixtures;
mod oauth;
mod records;
mod template;
mod verdict;

pub use chains::{ChainConfig, ChainEntry};
pub use oauth::{
    ClientAuth, OAuthProfile, OAuthRequest, RESERVED_AUTHORIZATION_PARAMS, RESERVED_TOKEN_PARAMS,
    Registration,
};
pub use records::*;
pub use template::{PLACEHOLDERS, Template, TemplateError};
pub use verdict::{Fault, Stamp, Verdict};
