//! Persistence: connectors with their tool snapshots, actors, runs, the audit log, the
//! installed plugin versions and the chain configuration, and the OAuth grants, pending
//! authorizations and registrations of OAuth connectors (`oauth`).
//!
//! The proxy reaches storage only through the [`Store`] trait, which two back ends
//! implement with the same semantics: the embedded SQLite store (one file in the data
//! directory, the default) and PostgreSQL (`database_url`), which several proxy replicas
//! share. [`open`] picks one. Records hold secrets only sealed by the vault and run
//! tokens only as SHA-256 hashes: nothing read from a store can leak a credential.

pub mod audit_chain;
mod codec;
mod oauth;
mod open;
mod postgres;
mod postgres_audit;
mod postgres_listen;
mod postgres_lock;
mod postgres_oauth;
mod postgres_plugins;
mod postgres_reseal;
mod sqlite;
mod sqlite_audit;
mod sqlite_oauth;
mod sqlite_plugins;
mod sqlite_reseal;

use std::sync::Arc;

use portcullis_model::{ConnectorStatus, FieldKind, ServerRule, Stamp};
use serde::{Deserialize, Serialize};

use crate::oauth::lock::{InProcessLocks, RefreshLocks};
use crate::revocation::Revocations;
use crate::vault::binding::Binding;

pub use oauth::{
    AuthServer, GrantRecord, OAuthSetup, OAuthStore, PendingAuthorization, RegistrationRecord,
    SealedTokens,
};
pub use open::{migrate, open, verify_url as verify_audit_postgres};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use sqlite_audit::verify_file as verify_audit_file;

/// How a connector authenticates to its upstream. An API key is the connector's sealed
/// secret; an OAuth connector's tokens are its grant (`OAuthStore`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ApiKey,
    None,
    #[serde(rename = "oauth")]
    OAuth,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ApiKey => "api_key",
            AuthMethod::None => "none",
            AuthMethod::OAuth => "oauth",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "api_key" => Some(AuthMethod::ApiKey),
            "none" => Some(AuthMethod::None),
            "oauth" => Some(AuthMethod::OAuth),
            _ => None,
        }
    }
}

/// One tool of a discovery snapshot, as the upstream described it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiscoveredTool {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The MCP `annotations` object exactly as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ConnectorRecord {
    pub id: String,
    pub owner: String,
    pub name: String,
    pub server_url: String,
    /// Provider profile name, such as `bearer`, `sentry` or `github`.
    pub provider: String,
    /// Provider configuration, a JSON object handed to the provider plugin.
    pub config: serde_json::Value,
    pub auth: AuthMethod,
    /// The API key sealed by the vault; `None` for `AuthMethod::None` and `OAuth`.
    pub sealed_secret: Option<Vec<u8>>,
    pub status: ConnectorStatus,
    pub tools: Vec<DiscoveredTool>,
    /// Layer 1; `None` permits every discovered tool.
    pub allowed_tools: Option<Vec<String>>,
    /// Unix seconds.
    pub created_at: i64,
    pub authorized_at: i64,
    /// Grows with every change; caches of decisions about the connector key on it.
    pub revision: i64,
}

impl ConnectorRecord {
    /// What the vault binds the connector's sealed values to (its credential, OAuth
    /// tokens, client secret and PKCE verifier): its id and its owner.
    pub fn binding(&self) -> Binding<'_> {
        Binding::Connector {
            id: &self.id,
            owner: &self.owner,
        }
    }
}

/// One `mcpConnector` property of an actor's input schema.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectorFieldSpec {
    pub name: String,
    pub kind: FieldKind,
    pub rules: Vec<ServerRule>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ActorRecord {
    pub id: String,
    pub input_schema: serde_json::Value,
    /// The schema's `mcpConnector` properties, validated when the actor was stored.
    pub connector_fields: Vec<ConnectorFieldSpec>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    Aborted,
    TimedOut,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Aborted => "aborted",
            RunStatus::TimedOut => "timed_out",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Aborted,
            RunStatus::TimedOut,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    pub id: String,
    pub actor: String,
    pub user: String,
    pub input: serde_json::Value,
    pub status: RunStatus,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// Unix seconds after which the token no longer works even if the run never finished.
    pub expires_at: i64,
    /// The actor's connector fields when the run started: the run is judged by these
    /// whatever the actor's schema becomes (spec FR-6). `None` only for a run started
    /// before they were kept, which is judged by its actor's current fields.
    pub connector_fields: Option<Vec<ConnectorFieldSpec>>,
}

impl RunRecord {
    /// Whether the run's token may be used at `now` (Unix seconds).
    pub fn is_live(&self, now: i64) -> bool {
        self.status == RunStatus::Running && now < self.expires_at
    }
}

/// One audit record, a decision or an administrative change: never a secret, a token or
/// tool arguments.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AuditRecord {
    /// The position in the log (assigned by the store; 0 before it is written).
    pub seq: i64,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// `decision` (the data plane) or `admin` (a change through the admin API).
    pub kind: AuditKind,
    pub run: Option<String>,
    pub connector: Option<String>,
    pub method: Option<String>,
    pub tool: Option<String>,
    /// `allow` or `deny`; for a refused administrative change `deny`.
    pub decision: String,
    pub reason: Option<String>,
    pub plugins: Vec<Stamp>,
    /// Administrative changes: who (`admin:` and the first 16 hex digits of the SHA-256
    /// of the admin token), what (`plugin.install`, `chains.set`, ...), on what, and the
    /// state before and after as JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The hash chain (`audit_chain`); `None` for records written before it existed.
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    #[default]
    Decision,
    Admin,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Decision => "decision",
            AuditKind::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "decision" => Some(AuditKind::Decision),
            "admin" => Some(AuditKind::Admin),
            _ => None,
        }
    }
}

/// Which audit records to read; every filter is optional and they combine with AND.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub run: Option<String>,
    pub connector: Option<String>,
    pub decision: Option<String>,
    pub method: Option<String>,
    /// Records in which this plugin took part.
    pub plugin: Option<String>,
    pub kind: Option<AuditKind>,
    /// Unix milliseconds, inclusive.
    pub since_ms: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub until_ms: Option<i64>,
    /// Only records after this `seq` (to page through the log).
    pub after_seq: Option<i64>,
    /// Oldest first instead of newest first.
    pub ascending: bool,
    pub limit: u32,
}

/// One kept version of an installed plugin (without its bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginVersionRecord {
    pub name: String,
    pub sha256: String,
    /// The version the component reports about itself.
    pub version: String,
    /// Unix milliseconds of the first install of these bytes under this name.
    pub installed_at: i64,
    pub signed_by: Option<String>,
    /// The `.minisig` text it came with, checked again at start.
    pub signature: Option<String>,
}

/// Which version of a plugin name serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginHead {
    pub name: String,
    /// The digest serving; `None` once the name was deleted.
    pub current: Option<String>,
    /// The digest that served before `current`.
    pub previous: Option<String>,
}

/// One sealed value, as [`Store::reseal_all`] hands it to its caller.
pub struct SealedValue<'a> {
    /// What it belongs to: it was sealed for this and is resealed for it.
    pub binding: Binding<'a>,
    pub sealed: &'a [u8],
}

/// What [`Store::reseal_all`] makes of one sealed value.
pub type Reseal<'a> = dyn Fn(SealedValue<'_>) -> Result<Vec<u8>, String> + Send + Sync + 'a;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("storage failed: {0}")]
    Backend(String),
}

#[async_trait::async_trait]
pub trait Store: OAuthStore + Send + Sync + 'static {
    async fn insert_connector(&self, connector: &ConnectorRecord) -> Result<(), StoreError>;
    /// Replaces a connector; its `revision` must be one more than the stored one.
    async fn update_connector(&self, connector: &ConnectorRecord) -> Result<(), StoreError>;
    async fn connector(&self, id: &str) -> Result<Option<ConnectorRecord>, StoreError>;
    async fn connectors(&self, owner: Option<&str>) -> Result<Vec<ConnectorRecord>, StoreError>;
    async fn delete_connector(&self, id: &str) -> Result<bool, StoreError>;
    /// Marks an authorized connector with a static credential (not OAuth)
    /// `needs_reauthorization` (a new revision) because its upstream rejected the
    /// credential (FR-34); answers whether it was marked now.
    async fn credential_rejected(&self, id: &str) -> Result<bool, StoreError>;

    /// Inserts or replaces; answers whether the actor is new.
    async fn put_actor(&self, actor: &ActorRecord) -> Result<bool, StoreError>;
    async fn actor(&self, id: &str) -> Result<Option<ActorRecord>, StoreError>;

    async fn insert_run(&self, run: &RunRecord, token_hash: &[u8; 32]) -> Result<(), StoreError>;
    async fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError>;
    async fn run_by_token_hash(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<RunRecord>, StoreError>;
    /// Marks a running run finished; answers false when it had already finished.
    async fn finish_run(&self, id: &str, status: RunStatus, at: i64) -> Result<bool, StoreError>;

    /// Appends `records` to the log, extending its hash chain (see `audit_chain`).
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError>;
    /// The records `query` selects, newest first unless it asks otherwise.
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;

    /// Keeps `component` as version `record.sha256` of `record.name`; a version already
    /// kept is left as it is (its install time included).
    async fn put_plugin_version(
        &self,
        record: &PluginVersionRecord,
        component: &[u8],
    ) -> Result<(), StoreError>;
    /// The kept versions of `name`, newest install first.
    async fn plugin_versions(&self, name: &str) -> Result<Vec<PluginVersionRecord>, StoreError>;
    /// The bytes of a kept version.
    async fn plugin_component(
        &self,
        name: &str,
        sha256: &str,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every name's head.
    async fn plugin_heads(&self) -> Result<Vec<PluginHead>, StoreError>;
    /// Makes `current` serve as `name` (the digest serving before, `builtin` when the
    /// name has no head yet, becomes the previous one, unless it is `current` itself),
    /// then forgets the oldest versions beyond `keep`, never the current, the previous
    /// or `protect`. One transaction.
    async fn set_plugin_current(
        &self,
        name: &str,
        current: &str,
        builtin: Option<&str>,
        keep: usize,
        protect: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Forgets every version of `name` and marks it deleted. One transaction.
    async fn delete_plugin(&self, name: &str) -> Result<(), StoreError>;

    /// The chain configuration serving, as JSON text, once one was saved.
    async fn chain_config(&self) -> Result<Option<String>, StoreError>;
    async fn set_chain_config(&self, json: &str) -> Result<(), StoreError>;

    /// The vault's sealed check value, which tells at start-up whether the master key is
    /// the one the stored secrets were sealed with.
    async fn key_check(&self) -> Result<Option<Vec<u8>>, StoreError>;
    /// Records the check value unless one is stored already (another replica may have
    /// recorded its own at the same moment).
    async fn set_key_check(&self, sealed: &[u8]) -> Result<(), StoreError>;
    /// Replaces every sealed value (the key check, each connector's credential, and the
    /// OAuth grants, pending authorizations and registrations) with what `reseal` makes of
    /// it, in one transaction: all of them or none. Answers how many sealed values it
    /// rewrote, the key check aside.
    async fn reseal_all(&self, reseal: &Reseal<'_>) -> Result<usize, StoreError>;

    /// `sqlite` or `postgres`.
    fn kind(&self) -> &'static str;
    /// Whether the database answers now.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Closes every connection (the embedded store checkpoints its WAL).
    async fn close(&self);
    /// From now on, applies to `revocations` what other replicas sharing the database
    /// change; the embedded store has no other replicas.
    fn follow(&self, revocations: Arc<dyn Revocations>) {
        let _ = revocations;
    }
    /// The locks that make an OAuth refresh single-flight among everyone using this
    /// store: this process alone for the embedded store, every replica for PostgreSQL.
    fn refresh_locks(&self) -> Arc<dyn RefreshLocks> {
        Arc::new(InProcessLocks::default())
    }
}

/// A fresh identifier such as `conn_5f0c2a9e1b7d4c38a6e1`: the prefix and 80 random bits.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 10];
    getrandom::fill(&mut bytes)
        .expect("the operating system's random number generator is available");
    format!("{prefix}_{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests;
