//! The access token of each request to an OAuth connector's upstream (FR-30 to FR-32).
//!
//! [`Tokens::access_token`] answers the connector's current token, refreshing it first when
//! it expires within `oauth.refresh_skew_secs`. When the upstream refuses a token anyway
//! (401), [`Tokens::renew`] refreshes once, keyed on the generation of the token that was
//! refused; when it refuses the renewed one too, [`Tokens::reject`] gives up on the grant.
//!
//! Invariants:
//! * single flight: a refresh holds the connector's [`RefreshLocks`] lock and re-reads the
//!   grant once it has it; when the generation moved, someone else refreshed, and their token
//!   is used: fifty requests on an expired token cause one token request;
//! * a rotated refresh token is in the store (compare-and-swap on the generation) before the
//!   new access token is handed to anyone;
//! * a refusal by the authorization server (`invalid_grant`, `invalid_client`, …) or a
//!   renewed token the upstream refuses marks the grant failed and the connector
//!   `needs_reauthorization`, tells the data plane, and is never retried; a server that is
//!   down changes nothing (the request fails with ERR-10 and the next one tries again).
//!
//! Tokens opened from the vault are kept in memory per connector (`Zeroizing`), checked
//! against the connector's revision, so a warm request reads nothing from the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zeroize::Zeroizing;

use super::OAuthConfig;
use super::callback::seal_tokens;
use super::endpoint::{self, Client, TokenAt};
use super::lock::RefreshLocks;
use super::net::Net;
use crate::clock::now_secs;
use crate::egress::Egress;
use crate::metrics::Metrics;
use crate::revocation::{Revocation, Revocations};
use crate::store::{ConnectorRecord, GrantRecord, Store};
use crate::vault::{Binding, Vault};

/// How long revoking a grant at its authorization server may take.
const REVOKE_DEADLINE: Duration = Duration::from_secs(10);

/// An access token and the generation of the grant it came from.
pub struct AccessToken {
    pub token: Zeroizing<String>,
    pub generation: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The connector needs re-authorization; `reason` is machine-readable (an OAuth error
    /// code such as `invalid_grant`, or `token_rejected`, `no_refresh_token`, `no_grant`).
    #[error("the connector needs re-authorization ({reason})")]
    Reauthorize { reason: String },
    #[error("the authorization server could not refresh the token: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// The tokens of one connector as last opened.
struct Live {
    revision: i64,
    generation: i64,
    access_token: Zeroizing<String>,
    expires_at: Option<i64>,
    refreshable: bool,
}

impl Live {
    fn token(&self) -> AccessToken {
        AccessToken {
            token: self.access_token.clone(),
            generation: self.generation,
        }
    }
}

/// The OAuth tokens of every connector, shared by both planes.
pub struct Tokens {
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    egress: Arc<Egress>,
    revocations: Arc<dyn Revocations>,
    metrics: Arc<Metrics>,
    locks: Arc<dyn RefreshLocks>,
    allow_http: bool,
    skew: i64,
    live: Mutex<HashMap<String, Arc<Live>>>,
}

/// What [`Tokens`] is built from.
pub struct TokenParts {
    pub store: Arc<dyn Store>,
    pub vault: Arc<Vault>,
    pub egress: Arc<Egress>,
    pub revocations: Arc<dyn Revocations>,
    pub metrics: Arc<Metrics>,
    pub locks: Arc<dyn RefreshLocks>,
    /// `upstream.allow_private`: plain-http OAuth endpoints, for development.
    pub allow_http: bool,
    pub config: OAuthConfig,
}

impl Tokens {
    pub fn new(parts: TokenParts) -> Self {
        Self {
            store: parts.store,
            vault: parts.vault,
            egress: parts.egress,
            revocations: parts.revocations,
            metrics: parts.metrics,
            locks: parts.locks,
            allow_http: parts.allow_http,
            skew: parts.config.refresh_skew_secs.min(i64::MAX as u64) as i64,
            live: Mutex::new(HashMap::new()),
        }
    }

    fn net(&self) -> Net<'_> {
        Net::new(&self.egress, self.allow_http)
    }

    fn internal(e: impl std::fmt::Display) -> TokenError {
        TokenError::Internal(e.to_string())
    }

    /// The access token to send upstream for `connector`, refreshed first when it is about
    /// to expire.
    pub async fn access_token(
        &self,
        connector: &ConnectorRecord,
    ) -> Result<AccessToken, TokenError> {
        let live = self.live(connector).await?;
        let now = now_secs();
        let expiring = live.expires_at.is_some_and(|at| now + self.skew >= at);
        if expiring && live.refreshable {
            match self.renew(connector, live.generation).await {
                Err(TokenError::Unavailable(detail))
                    if live.expires_at.is_some_and(|at| now < at) =>
                {
                    // Not expired yet: the refresh is retried by the next request.
                    tracing::warn!(connector = %connector.id, %detail, "early token refresh failed; using the current token");
                }
                other => return other,
            }
        }
        Ok(live.token())
    }

    /// The cached tokens of `connector`, or those in the store.
    async fn live(&self, connector: &ConnectorRecord) -> Result<Arc<Live>, TokenError> {
        if let Some(live) = self.cached(&connector.id)
            && live.revision >= connector.revision
        {
            return Ok(live);
        }
        let grant = self.stored_grant(&connector.id).await?;
        self.open(&grant, connector)
    }

    /// The grant in the store; a connector without one needs an authorization.
    async fn stored_grant(&self, connector_id: &str) -> Result<GrantRecord, TokenError> {
        self.store
            .grant(connector_id)
            .await
            .map_err(Self::internal)?
            .ok_or_else(|| TokenError::Reauthorize {
                reason: "no_grant".to_owned(),
            })
    }

    fn cached(&self, connector_id: &str) -> Option<Arc<Live>> {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(connector_id)
            .cloned()
    }

    /// Opens `grant`'s access token (sealed for `connector`) and keeps it for the next
    /// request, with the connector's revision.
    fn open(
        &self,
        grant: &GrantRecord,
        connector: &ConnectorRecord,
    ) -> Result<Arc<Live>, TokenError> {
        if let Some(reason) = &grant.failed_reason {
            return Err(TokenError::Reauthorize {
                reason: reason.clone(),
            });
        }
        let access_token = self
            .vault
            .open(&grant.tokens.access_token, connector.binding())
            .map_err(Self::internal)?;
        let live = Arc::new(Live {
            revision: connector.revision,
            generation: grant.generation,
            access_token,
            expires_at: grant.tokens.expires_at,
            refreshable: grant.tokens.refresh_token.is_some(),
        });
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(grant.connector_id.clone(), live.clone());
        Ok(live)
    }

    /// A token to replace the one of `generation`: another request's, when it refreshed
    /// meanwhile, else a refreshed one. Single-flight per connector.
    pub async fn renew(
        &self,
        connector: &ConnectorRecord,
        generation: i64,
    ) -> Result<AccessToken, TokenError> {
        let _guard = self.locks.lock(&connector.id).await;
        let grant = self.stored_grant(&connector.id).await?;
        if grant.generation != generation || grant.failed_reason.is_some() {
            return Ok(self.open(&grant, connector)?.token());
        }
        let Some(sealed_refresh) = grant.tokens.refresh_token.as_deref() else {
            return Err(self.fail(&grant, "no_refresh_token").await);
        };
        let refresh_token = self
            .vault
            .open(sealed_refresh, connector.binding())
            .map_err(Self::internal)?;
        let secret = grant
            .sealed_client_secret
            .as_deref()
            .map(|sealed| self.vault.open(sealed, connector.binding()))
            .transpose()
            .map_err(Self::internal)?;
        let setup = &grant.setup;
        let endpoint = self
            .net()
            .check_url("the token endpoint", &setup.server.token_endpoint)
            .map_err(|e| TokenError::Unavailable(e.to_string()))?;
        let client = Client {
            id: &setup.client_id,
            secret: secret.as_deref().map(String::as_str),
            auth: setup.client_auth,
        };
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
            ("resource", setup.resource.as_str()),
        ];
        let answer = endpoint::token(
            self.net(),
            &endpoint,
            client,
            &form,
            &setup.token_params,
            TokenAt {
                pointer: setup.access_token_pointer.as_deref(),
                refresh: true,
            },
        )
        .await;
        let tokens = match answer {
            Ok(tokens) => tokens,
            Err(e) => {
                if let Some(code) = e.refusal() {
                    let reason = code.to_owned();
                    tracing::warn!(connector = %connector.id, error = %e, "the authorization server refused the refresh");
                    return Err(self.fail(&grant, &reason).await);
                }
                self.metrics.oauth_refresh("failed");
                tracing::warn!(connector = %connector.id, error = %e, "token refresh failed");
                return Err(TokenError::Unavailable(e.to_string()));
            }
        };
        let now = now_secs();
        let sealed = seal_tokens(
            &self.vault,
            connector.binding(),
            &tokens,
            Some(sealed_refresh),
            now,
        )
        .map_err(Self::internal)?;
        let stored = self
            .store
            .rotate_tokens(&connector.id, generation, &sealed, now)
            .await
            .map_err(Self::internal)?;
        if !stored {
            // Another replica rotated first; its tokens are the ones to use.
            let grant = self.stored_grant(&connector.id).await?;
            return Ok(self.open(&grant, connector)?.token());
        }
        self.metrics.oauth_refresh("ok");
        tracing::info!(connector = %connector.id, "refreshed the OAuth access token");
        let rotated = GrantRecord {
            tokens: sealed,
            generation: generation + 1,
            ..grant
        };
        Ok(self.open(&rotated, connector)?.token())
    }

    /// The upstream refused the renewed token of `generation` too: the grant is no good.
    pub async fn reject(&self, connector: &ConnectorRecord, generation: i64) -> TokenError {
        let _guard = self.locks.lock(&connector.id).await;
        match self.store.grant(&connector.id).await {
            Ok(Some(grant)) if grant.generation == generation => {
                self.fail(&grant, "token_rejected").await
            }
            _ => TokenError::Reauthorize {
                reason: "token_rejected".to_owned(),
            },
        }
    }

    /// Marks `grant` failed for `reason`, and its connector `needs_reauthorization`.
    async fn fail(&self, grant: &GrantRecord, reason: &str) -> TokenError {
        self.metrics.oauth_refresh("refused");
        match self
            .store
            .fail_grant(&grant.connector_id, grant.generation, reason)
            .await
        {
            Ok(true) => {
                tracing::warn!(connector = %grant.connector_id, %reason, "the connector needs re-authorization");
                self.forget(&grant.connector_id);
                self.revocations
                    .revoke(Revocation::ConnectorChanged {
                        connector: grant.connector_id.clone(),
                    })
                    .await;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(connector = %grant.connector_id, error = %e, "could not mark the connector for re-authorization")
            }
        }
        TokenError::Reauthorize {
            reason: reason.to_owned(),
        }
    }

    /// Why the authorization server refused `connector_id`'s grant, when it did (and the
    /// store could say).
    pub async fn failed_reason(&self, connector_id: &str) -> Option<String> {
        match self.store.grant(connector_id).await {
            Ok(grant) => grant?.failed_reason,
            Err(e) => {
                tracing::error!(connector = %connector_id, error = %e, "could not read the OAuth grant");
                None
            }
        }
    }

    /// Forgets the tokens kept for `connector_id` (its grant was replaced or deleted).
    pub fn forget(&self, connector_id: &str) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(connector_id);
    }

    /// Revokes `grant`'s tokens (sealed for the connector of `owner`) at its authorization
    /// server (RFC 7009), refresh token first, when the server names a revocation
    /// endpoint. Best effort: a failure is logged and answered `false`, and never stops
    /// what the caller does.
    pub async fn revoke(&self, grant: &GrantRecord, owner: &str) -> bool {
        let Some(endpoint) = &grant.setup.server.revocation_endpoint else {
            return false;
        };
        let revoked =
            tokio::time::timeout(REVOKE_DEADLINE, self.revoke_at(grant, owner, endpoint)).await;
        match revoked {
            Ok(Ok(())) => {
                tracing::info!(connector = %grant.connector_id, "revoked the OAuth tokens at the authorization server");
                true
            }
            Ok(Err(detail)) => {
                tracing::warn!(connector = %grant.connector_id, %detail, "could not revoke the OAuth tokens");
                false
            }
            Err(_) => {
                tracing::warn!(connector = %grant.connector_id, "revoking the OAuth tokens timed out");
                false
            }
        }
    }

    async fn revoke_at(
        &self,
        grant: &GrantRecord,
        owner: &str,
        endpoint: &str,
    ) -> Result<(), String> {
        let binding = Binding::Connector {
            id: &grant.connector_id,
            owner,
        };
        let url = self
            .net()
            .check_url("the revocation endpoint", endpoint)
            .map_err(|e| e.to_string())?;
        let secret = grant
            .sealed_client_secret
            .as_deref()
            .map(|sealed| self.vault.open(sealed, binding))
            .transpose()
            .map_err(|e| e.to_string())?;
        let client = Client {
            id: &grant.setup.client_id,
            secret: secret.as_deref().map(String::as_str),
            auth: grant.setup.client_auth,
        };
        let mut tokens = Vec::new();
        if let Some(sealed) = &grant.tokens.refresh_token {
            tokens.push((sealed.as_slice(), "refresh_token"));
        }
        tokens.push((grant.tokens.access_token.as_slice(), "access_token"));
        for (sealed, hint) in tokens {
            let token = self
                .vault
                .open(sealed, binding)
                .map_err(|e| e.to_string())?;
            endpoint::revoke(self.net(), &url, client, &token, hint)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
