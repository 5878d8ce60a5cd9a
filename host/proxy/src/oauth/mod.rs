//! OAuth connectors, the host's side: Portcullis as the OAuth 2.1 client of each upstream's
//! authorization server (spec 5.2 AUTH-1 to AUTH-10, 4.9 FR-30 to FR-32, SEC-5, SEC-6).
//!
//! | module | owns |
//! |---|---|
//! | `net` | every request to an authorization server or a metadata URL: URL rules, SSRF, bounds |
//! | `metadata` | `WWW-Authenticate`, RFC 9728 protected resource metadata, RFC 8414 / OIDC discovery |
//! | `probe` | what a server supports (AUTH-2): an unauthenticated `initialize`, then discovery |
//! | `pkce` | the random values of an authorization: PKCE verifier and S256 challenge, `state` |
//! | `registration` | RFC 7591 dynamic registration, kept per issuer and never used with another |
//! | `endpoint` | the token endpoint (code, refresh) and RFC 7009 revocation, with client authentication |
//! | `flow` | starting an authorization: client, endpoints, scopes, its URL and pending state |
//! | `callback` | the callback's checks (`state`, expiry, `iss`) and the code exchange |
//! | `tokens` | [`Tokens`]: the access token of a request, refreshed before expiry and once on a 401, single-flight |
//! | `lock` | [`RefreshLocks`]: the per-connector lock that makes a refresh single-flight |
//!
//! Invariants: client secrets, codes, PKCE verifiers, access and refresh tokens are sealed by
//! the vault before they reach the store, leave this module only in `Zeroizing` buffers, and
//! never appear in an error, a log line, an audit record or a plugin call. What differs per
//! provider is the provider plugin's [`portcullis_model::OAuthProfile`]; the host never names
//! a provider.
//!
//! Written on reqwest and serde rather than the `oauth2` crate or rmcp's `auth` feature (see
//! the README's "What was taken from the ecosystem"): oauth2 5 refuses `http://` revocation
//! URLs and brings a second reqwest, and rmcp's per-client manager fits neither a
//! multi-tenant store nor a single-flight refresh across requests.

pub mod callback;
pub mod endpoint;
pub mod flow;
pub mod lock;
pub mod metadata;
pub mod net;
pub mod pkce;
pub mod probe;
pub mod registration;
pub mod tokens;

use serde::Deserialize;

pub use lock::{InProcessLocks, RefreshLocks};
pub use tokens::Tokens;

/// The longest an authorization URL may stay valid (AUTH-4: at most ten minutes).
pub const MAX_STATE_TTL_SECS: u64 = 600;

/// The `[oauth]` configuration table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuthConfig {
    /// An access token this close to its expiry is refreshed before it is used (FR-31).
    pub refresh_skew_secs: u64,
    /// How long an authorization URL (its `state`) stays valid; at most 600.
    pub state_ttl_secs: u64,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            refresh_skew_secs: 60,
            state_ttl_secs: MAX_STATE_TTL_SECS,
        }
    }
}

impl OAuthConfig {
    /// The state's lifetime, never over [`MAX_STATE_TTL_SECS`].
    pub fn state_ttl(&self) -> i64 {
        self.state_ttl_secs.clamp(1, MAX_STATE_TTL_SECS) as i64
    }
}

/// The callback path, under the proxy's public base URL.
pub const CALLBACK_PATH: &str = "/oauth/callback";
