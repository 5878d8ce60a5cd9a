//! RFC 7591 dynamic client registration (AUTH-6).
//!
//! Portcullis registers once per authorization server, redirect URI and client
//! authentication method, as a `web` application (the `application_type` the MCP 2026-07-28
//! revision asks clients to send), and keeps the registration keyed by the server's issuer.
//! A registration is only ever looked up by the issuer it was made with, so its credentials
//! are never presented to another authorization server. The whole response is kept sealed
//! (it may hold a `registration_access_token`); a client secret that expires is replaced by
//! a new registration shortly before.
//!
//! The key's method is the one Portcullis asks for, which is known before registering; the
//! server may register another (RFC 7591 lets it), and that one, read from the kept
//! response, is what the client then authenticates with. Keyed by what was registered
//! instead, a registration the server changed would never be found again.

use portcullis_model::ClientAuth;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::metadata::AuthServerMetadata;
use super::net::{Net, NetError};
use crate::clock::now_secs;
use crate::store::{RegistrationRecord, Store, StoreError};
use crate::vault::{Binding, Vault, VaultError};

/// A secret this close to its expiry is not used for a new authorization.
const EXPIRY_MARGIN_SECS: i64 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("the authorization server {0} does not offer dynamic client registration")]
    NotOffered(String),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("the authorization server refused the registration (HTTP {status}{detail})")]
    Refused { status: u16, detail: String },
    #[error("the registration response is unusable: {0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// A registered client, ready to use.
pub struct Registered {
    pub client_id: String,
    pub client_auth: ClientAuth,
    pub secret: Option<Zeroizing<String>>,
}

/// The client Portcullis has at `server` for `redirect_uri` when it asks for `client_auth`:
/// the stored registration, or a new one.
pub async fn client_for(
    net: Net<'_>,
    store: &dyn Store,
    vault: &Vault,
    server: &AuthServerMetadata,
    redirect_uri: &str,
    client_auth: ClientAuth,
) -> Result<Registered, RegistrationError> {
    let endpoint = server
        .registration_endpoint
        .as_deref()
        .ok_or_else(|| RegistrationError::NotOffered(server.issuer.clone()))?;
    if let Some(stored) = store
        .registration(&server.issuer, redirect_uri, client_auth)
        .await?
    {
        let fresh = stored
            .client_secret_expires_at
            .is_none_or(|at| at > now_secs() + EXPIRY_MARGIN_SECS);
        if fresh && stored.registration_endpoint == endpoint {
            match reuse(vault, server, stored) {
                Ok(registered) => return Ok(registered),
                Err(error) => {
                    tracing::warn!(issuer = %server.issuer, %error, "the stored registration is unusable; registering again");
                }
            }
        }
    }
    register(
        net,
        store,
        vault,
        server,
        endpoint,
        redirect_uri,
        client_auth,
    )
    .await
}

/// A stored registration, with the method the server registered (from its response).
fn reuse(
    vault: &Vault,
    server: &AuthServerMetadata,
    stored: RegistrationRecord,
) -> Result<Registered, RegistrationError> {
    let response = vault.open(&stored.sealed_response, bound_to(server))?;
    let response: Value = serde_json::from_str(&response)
        .map_err(|_| RegistrationError::Malformed("the kept response is not JSON".to_owned()))?;
    let secret = stored
        .sealed_client_secret
        .as_deref()
        .map(|sealed| vault.open(sealed, bound_to(server)))
        .transpose()?;
    Ok(Registered {
        client_id: stored.client_id,
        client_auth: registered_method(&response, stored.client_auth)?,
        secret,
    })
}

/// The method a registration response says the client authenticates with: the one asked
/// for when it does not say.
fn registered_method(response: &Value, asked: ClientAuth) -> Result<ClientAuth, RegistrationError> {
    match response
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
    {
        None => Ok(asked),
        Some(name) => ClientAuth::parse(name).ok_or_else(|| {
            RegistrationError::Malformed(format!(
                "it registered the client authentication method {name:?}, which Portcullis \
                 does not implement"
            ))
        }),
    }
}

async fn register(
    net: Net<'_>,
    store: &dyn Store,
    vault: &Vault,
    server: &AuthServerMetadata,
    endpoint: &str,
    redirect_uri: &str,
    client_auth: ClientAuth,
) -> Result<Registered, RegistrationError> {
    let what = "the registration endpoint";
    let url = net.check_url(what, endpoint)?;
    let request = json!({
        "client_name": "Portcullis MCP connector proxy",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": client_auth.as_str(),
        "application_type": "web",
    });
    let reply = net
        .post(
            what,
            &url,
            "application/json",
            http::HeaderMap::new(),
            request.to_string().into_bytes(),
        )
        .await?;
    let body = reply.json();
    if !reply.status.is_success() {
        let detail = body
            .as_ref()
            .and_then(|b| b.get("error"))
            .and_then(Value::as_str)
            .map(|e| format!(", {}", e.chars().take(64).collect::<String>()))
            .unwrap_or_default();
        return Err(RegistrationError::Refused {
            status: reply.status.as_u16(),
            detail,
        });
    }
    let body = body.ok_or_else(|| RegistrationError::Malformed("it is not JSON".to_owned()))?;
    let client_id = body
        .get("client_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| RegistrationError::Malformed("it has no client_id".to_owned()))?;
    // The server may register another method than the one asked for; use what it says.
    let registered = registered_method(&body, client_auth)?;
    let secret = body
        .get("client_secret")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(|s| Zeroizing::new(s.to_owned()));
    if registered != ClientAuth::None && secret.is_none() {
        return Err(RegistrationError::Malformed(format!(
            "it gave no client_secret for {}",
            registered.as_str()
        )));
    }
    let expires_at = body
        .get("client_secret_expires_at")
        .and_then(Value::as_i64)
        .filter(|at| *at > 0);
    let record = RegistrationRecord {
        issuer: server.issuer.clone(),
        redirect_uri: redirect_uri.to_owned(),
        // The key: what is asked for, so the next authorization that asks finds it.
        client_auth,
        registration_endpoint: endpoint.to_owned(),
        client_id: client_id.to_owned(),
        sealed_client_secret: secret
            .as_deref()
            .map(|s| vault.seal(s, bound_to(server)))
            .transpose()?,
        client_secret_expires_at: expires_at,
        sealed_response: vault.seal(&Zeroizing::new(body.to_string()), bound_to(server))?,
        created_at: now_secs(),
    };
    store.put_registration(&record).await?;
    tracing::info!(issuer = %server.issuer, client_id = %client_id, method = registered.as_str(), "registered an OAuth client");
    Ok(Registered {
        client_id: record.client_id,
        client_auth: registered,
        secret,
    })
}

/// What a registration's sealed values are bound to: the issuer it was made at, so a
/// secret copied into another server's row does not open.
fn bound_to(server: &AuthServerMetadata) -> Binding<'_> {
    Binding::Registration {
        issuer: &server.issuer,
    }
}
