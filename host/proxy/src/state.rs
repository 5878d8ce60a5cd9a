//! The state every handler shares, built once by `app::start`.
//!
//! Handlers of both planes take an `Arc<AppState>`; this module names what it holds and
//! nothing else, so a handler depends on the parts it uses and never on the wiring that
//! built them. The control plane reaches the data plane only through
//! [`AppState::revocations`].

use std::sync::Arc;

use portcullis_runtime::Runtime;

use crate::config::Config;
use crate::data::plane::DataPlane;
use crate::egress::Egress;
use crate::metrics::Metrics;
use crate::oauth::Tokens;
use crate::plugin_store::PluginStore;
use crate::revocation::Revocations;
use crate::store::Store;
use crate::vault::Vault;

pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub vault: Arc<Vault>,
    pub runtime: Arc<Runtime>,
    pub egress: Arc<Egress>,
    pub metrics: Arc<Metrics>,
    /// The plugins operators installed, kept across restarts.
    pub plugin_store: Arc<PluginStore>,
    /// SHA-256 of the admin token; the token itself is not kept.
    pub admin_token_hash: [u8; 32],
    /// What the data plane keeps between requests: sessions, caches, the audit writer.
    pub data: Arc<DataPlane>,
    /// Where the control plane says what it changed; today the local data plane.
    pub revocations: Arc<dyn Revocations>,
    /// The OAuth connectors' tokens, refreshed single-flight.
    pub oauth: Arc<Tokens>,
}
