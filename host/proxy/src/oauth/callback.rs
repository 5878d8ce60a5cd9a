//! The callback's half of an authorization (AUTH-5, SEC-5): [`redeem`] takes the pending
//! authorization of the `state` (once), checks its expiry and the RFC 9207 `iss`, and
//! exchanges the code with the PKCE verifier, the exact redirect URI and the `resource`;
//! [`grant`] seals what came back for the store.
//!
//! Invariants: the pending authorization is removed before anything is checked, so a
//! `state` is spent by its first use, successful or not; `iss` is compared whenever the
//! issuer is known and required when the server advertises it; errors name the connector
//! but never hold the code, the state or a token.

use super::endpoint::{self, Client, EndpointError, TokenAt, TokenResponse};
use super::flow::Context;
use super::metadata::same_issuer;
use crate::clock::now_secs;
use crate::store::{GrantRecord, PendingAuthorization, SealedTokens};
use crate::vault::{Binding, Vault, VaultError, token_hash};

/// The query of a callback.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CallbackQuery {
    pub state: Option<String>,
    pub code: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Why a callback did not authorize its connector, in words the owner's browser shows.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("the request has no `state`; open the authorization URL Portcullis gave again")]
    MissingState,
    #[error(
        "this authorization is unknown or was already used; start a new one (POST \
         /admin/v1/connectors/{{id}}/reauthorize)"
    )]
    UnknownState,
    #[error(
        "this authorization expired; start a new one (POST /admin/v1/connectors/{{id}}/reauthorize)"
    )]
    Expired,
    #[error(
        "the response names the issuer {found:?}, not {expected} (RFC 9207): it may not come \
         from the connector's authorization server; nothing was stored"
    )]
    WrongIssuer { expected: String, found: String },
    #[error("the authorization server declined: {0}")]
    Declined(String),
    #[error("the response has no authorization code")]
    MissingCode,
    #[error("the code could not be exchanged for tokens: {0}")]
    Exchange(EndpointError),
    #[error("the connector was deleted meanwhile; nothing was stored")]
    Deleted,
    #[error("the proxy failed ({0}); the proxy log has the details")]
    Internal(String),
}

/// The outcome of a valid callback: its pending authorization, the owner of its
/// connector, and the tokens.
pub struct Redeemed {
    pub pending: PendingAuthorization,
    pub owner: String,
    pub tokens: TokenResponse,
}

/// Takes the callback's pending authorization (once), checks it, and exchanges the code.
/// The pending authorization is returned with every error after it was found, so the
/// caller can name its connector.
pub async fn redeem(
    cx: &Context<'_>,
    query: &CallbackQuery,
) -> Result<Redeemed, (Option<String>, CallbackError)> {
    let state = query
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or((None, CallbackError::MissingState))?;
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "the OAuth callback failed");
        CallbackError::Internal(e.to_string())
    };
    let pending = cx
        .store
        .take_pending(&token_hash(state))
        .await
        .map_err(|e| (None, internal(&e)))?
        .ok_or((None, CallbackError::UnknownState))?;
    let fail = |e: CallbackError| (Some(pending.connector_id.clone()), e);
    if pending.expires_at < now_secs() {
        return Err(fail(CallbackError::Expired));
    }
    let server = &pending.setup.server;
    if let Some(expected) = &server.issuer {
        match &query.iss {
            Some(found) if !same_issuer(found, expected) => {
                return Err(fail(CallbackError::WrongIssuer {
                    expected: expected.clone(),
                    found: found.chars().take(256).collect(),
                }));
            }
            None if server.iss_parameter_supported => {
                return Err(fail(CallbackError::WrongIssuer {
                    expected: expected.clone(),
                    found: "(none)".to_owned(),
                }));
            }
            _ => {}
        }
    }
    if let Some(error) = &query.error {
        let mut text: String = error.chars().filter(|c| !c.is_control()).take(64).collect();
        if let Some(description) = &query.error_description {
            text.push_str(": ");
            text.extend(description.chars().filter(|c| !c.is_control()).take(300));
        }
        return Err(fail(CallbackError::Declined(text)));
    }
    let code = query
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| fail(CallbackError::MissingCode))?;
    let owner = cx
        .store
        .connector(&pending.connector_id)
        .await
        .map_err(|e| fail(internal(&e)))?
        .ok_or_else(|| fail(CallbackError::Deleted))?
        .owner;
    let binding = Binding::Connector {
        id: &pending.connector_id,
        owner: &owner,
    };
    let verifier = cx
        .vault
        .open(&pending.sealed_verifier, binding)
        .map_err(|e| fail(internal(&e)))?;
    let secret = pending
        .sealed_client_secret
        .as_deref()
        .map(|sealed| cx.vault.open(sealed, binding))
        .transpose()
        .map_err(|e| fail(internal(&e)))?;
    let setup = &pending.setup;
    let endpoint = cx
        .net
        .check_url("the token endpoint", &setup.server.token_endpoint)
        .map_err(|e| fail(CallbackError::Exchange(e.into())))?;
    let client = Client {
        id: &setup.client_id,
        secret: secret.as_deref().map(String::as_str),
        auth: setup.client_auth,
    };
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", setup.redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
        ("resource", setup.resource.as_str()),
    ];
    let tokens = endpoint::token(
        cx.net,
        &endpoint,
        client,
        &form,
        &setup.token_params,
        TokenAt {
            pointer: setup.access_token_pointer.as_deref(),
            refresh: false,
        },
    )
    .await
    .map_err(|e| fail(CallbackError::Exchange(e)))?;
    Ok(Redeemed {
        pending,
        owner,
        tokens,
    })
}

/// The grant of a redeemed authorization, sealed.
pub fn grant(vault: &Vault, redeemed: &Redeemed) -> Result<GrantRecord, VaultError> {
    let now = now_secs();
    let binding = Binding::Connector {
        id: &redeemed.pending.connector_id,
        owner: &redeemed.owner,
    };
    Ok(GrantRecord {
        connector_id: redeemed.pending.connector_id.clone(),
        setup: redeemed.pending.setup.clone(),
        sealed_client_secret: redeemed.pending.sealed_client_secret.clone(),
        tokens: seal_tokens(vault, binding, &redeemed.tokens, None, now)?,
        generation: 0,
        failed_reason: None,
        updated_at: now,
    })
}

/// A token response sealed for the store, bound to its connector; `previous_refresh` is
/// kept when the response brings no new refresh token (RFC 6749 section 6).
pub fn seal_tokens(
    vault: &Vault,
    binding: Binding,
    tokens: &TokenResponse,
    previous_refresh: Option<&[u8]>,
    now: i64,
) -> Result<SealedTokens, VaultError> {
    Ok(SealedTokens {
        access_token: vault.seal(&tokens.access_token, binding)?,
        refresh_token: match &tokens.refresh_token {
            Some(token) => Some(vault.seal(token, binding)?),
            None => previous_refresh.map(<[u8]>::to_vec),
        },
        expires_at: tokens.expires_in.map(|s| now.saturating_add(s)),
        scope: tokens.scope.clone(),
    })
}
