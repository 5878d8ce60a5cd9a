//! What the store keeps for OAuth connectors (migration 0003): the grant of each
//! connector, the authorizations that wait for their callback, and the clients registered
//! dynamically at each authorization server.
//!
//! Every secret is sealed by the vault before it reaches these records (client secrets,
//! access and refresh tokens, PKCE verifiers, registration responses); the `state` of a
//! pending authorization is kept only as its SHA-256 hash. What is not secret ([`OAuthSetup`]:
//! endpoints, client id, resource, scopes) is JSON text.
//!
//! [`OAuthStore`] is a supertrait of [`super::Store`], so every store has it. Its writes that
//! race are compare-and-swaps: tokens rotate only from the generation their writer read,
//! and a grant is marked failed only if it is still that generation.

use portcullis_model::{ClientAuth, Registration};
use serde::{Deserialize, Serialize};

use super::{ConnectorRecord, StoreError};

/// The authorization server endpoints of a grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthServer {
    /// Unknown for an own client given by its endpoints alone.
    pub issuer: Option<String>,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub revocation_endpoint: Option<String>,
    /// RFC 9207: the authorization response must carry `iss`.
    pub iss_parameter_supported: bool,
}

/// Everything about a connector's OAuth that is not secret, fixed when its authorization
/// starts: what the code exchange and every refresh send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthSetup {
    pub server: AuthServer,
    pub client_id: String,
    pub client_auth: ClientAuth,
    pub registration: Registration,
    /// The RFC 8707 `resource` of every authorization and token request.
    pub resource: String,
    pub redirect_uri: String,
    /// The scopes requested.
    pub scopes: Vec<String>,
    /// The provider plugin's extra token-request parameters.
    #[serde(default)]
    pub token_params: Vec<(String, String)>,
    /// The provider plugin's JSON pointer to the access token in a token response.
    #[serde(default)]
    pub access_token_pointer: Option<String>,
}

/// A connector's tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct GrantRecord {
    pub connector_id: String,
    pub setup: OAuthSetup,
    pub sealed_client_secret: Option<Vec<u8>>,
    pub tokens: SealedTokens,
    /// Grows with every new access token; writers compare and swap on it.
    pub generation: i64,
    /// Set when the authorization server refused the grant (an OAuth error code, or why the
    /// upstream refused its tokens): the connector needs re-authorization.
    pub failed_reason: Option<String>,
    pub updated_at: i64,
}

/// One token response, sealed.
#[derive(Clone, Debug, PartialEq)]
pub struct SealedTokens {
    pub access_token: Vec<u8>,
    pub refresh_token: Option<Vec<u8>>,
    /// Unix seconds; `None` when the server did not say.
    pub expires_at: Option<i64>,
    /// The `scope` of the token response, when it had one.
    pub scope: Option<String>,
}

/// An authorization that waits for its callback.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingAuthorization {
    /// SHA-256 of the `state`.
    pub state_hash: [u8; 32],
    pub connector_id: String,
    pub setup: OAuthSetup,
    pub sealed_client_secret: Option<Vec<u8>>,
    pub sealed_verifier: Vec<u8>,
    /// Whether the connector was authorized before: its old grant keeps working until
    /// this one is redeemed.
    pub reauthorization: bool,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A client registered with RFC 7591 at one authorization server, for one redirect URI and
/// client authentication method; used with that server only.
#[derive(Clone, Debug, PartialEq)]
pub struct RegistrationRecord {
    pub issuer: String,
    pub redirect_uri: String,
    pub client_auth: ClientAuth,
    pub registration_endpoint: String,
    pub client_id: String,
    pub sealed_client_secret: Option<Vec<u8>>,
    /// Unix seconds; `None` when the secret does not expire.
    pub client_secret_expires_at: Option<i64>,
    /// The whole registration response (it may hold a `registration_access_token`).
    pub sealed_response: Vec<u8>,
    pub created_at: i64,
}

#[async_trait::async_trait]
pub trait OAuthStore: Send + Sync {
    async fn registration(
        &self,
        issuer: &str,
        redirect_uri: &str,
        client_auth: ClientAuth,
    ) -> Result<Option<RegistrationRecord>, StoreError>;
    /// Inserts or replaces the registration of its (issuer, redirect URI, method).
    async fn put_registration(&self, registration: &RegistrationRecord) -> Result<(), StoreError>;

    async fn insert_pending(&self, pending: &PendingAuthorization) -> Result<(), StoreError>;
    /// Removes and returns the pending authorization of `state_hash`: a state is used once.
    async fn take_pending(
        &self,
        state_hash: &[u8; 32],
    ) -> Result<Option<PendingAuthorization>, StoreError>;
    /// Removes the pending authorizations that expired before `now`; answers how many.
    async fn purge_pending(&self, now: i64) -> Result<u64, StoreError>;

    async fn grant(&self, connector_id: &str) -> Result<Option<GrantRecord>, StoreError>;
    /// Stores `connector` (its `revision` one more than the stored one, as
    /// `Store::update_connector` checks) and its new grant, at the next generation, in one
    /// transaction. Answers the grant's generation.
    async fn authorize(
        &self,
        connector: &ConnectorRecord,
        grant: &GrantRecord,
    ) -> Result<i64, StoreError>;
    /// Replaces the tokens if the grant is still at `generation`, moving it to the next one;
    /// answers whether it was.
    async fn rotate_tokens(
        &self,
        connector_id: &str,
        generation: i64,
        tokens: &SealedTokens,
        at: i64,
    ) -> Result<bool, StoreError>;
    /// Marks the grant failed and its connector `needs_reauthorization` (a new revision), if
    /// the grant is still at `generation` and not failed yet; answers whether it was.
    async fn fail_grant(
        &self,
        connector_id: &str,
        generation: i64,
        reason: &str,
    ) -> Result<bool, StoreError>;
    /// Removes the grant of a connector that stopped using OAuth.
    async fn delete_grant(&self, connector_id: &str) -> Result<(), StoreError>;
}
