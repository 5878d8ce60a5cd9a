//! What the host and a provider plugin say to each other about a connector's OAuth.
//!
//! The host does the protocol work (discovery, registration, PKCE, the code exchange,
//! refresh, revocation); what differs between providers is the provider plugin's answer to
//! an [`OAuthRequest`]: an [`OAuthProfile`]. Neither record ever holds a secret: client
//! secrets, codes, verifiers and tokens stay in the host.

use serde::{Deserialize, Serialize};

/// How the client authenticates at the token endpoint (RFC 7591
/// `token_endpoint_auth_method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// A public client: `client_id` in the form, no secret.
    None,
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

impl ClientAuth {
    /// The RFC 7591 name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::None => "none",
            ClientAuth::ClientSecretBasic => "client_secret_basic",
            ClientAuth::ClientSecretPost => "client_secret_post",
        }
    }

    /// The method an RFC 7591 name stands for; `None` for one the host does not implement.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "none" => Some(ClientAuth::None),
            "client_secret_basic" => Some(ClientAuth::ClientSecretBasic),
            "client_secret_post" => Some(ClientAuth::ClientSecretPost),
            _ => None,
        }
    }
}

/// How the connector's OAuth client comes to exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Registered by the host at the authorization server (RFC 7591).
    Dynamic,
    /// Created by the owner at the provider and given to the host (client id, and a secret
    /// for a confidential client).
    Own,
}

/// What the host tells the connector's provider plugin before an OAuth authorization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthRequest {
    pub connector_id: String,
    pub server_url: String,
    pub provider: String,
    /// The connector's provider configuration, a JSON object.
    pub config: String,
    pub registration: Registration,
    /// The scopes discovery found: those of the server's `WWW-Authenticate` challenge,
    /// else the protected resource metadata's `scopes_supported`; empty when neither says.
    pub discovered_scopes: Vec<String>,
    /// The scopes the connector's owner asked for (`auth.scopes`), each already checked as
    /// a scope token; `None` when the owner named none.
    pub requested_scopes: Option<Vec<String>>,
    /// The authorization server's `token_endpoint_auth_methods_supported` the host
    /// implements; empty when the metadata does not say (or there is none, for an own
    /// client with explicit endpoints).
    pub client_auth_methods: Vec<ClientAuth>,
}

/// A provider plugin's answer: where this provider departs from the standard OAuth 2.1
/// flow. The default is the standard flow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OAuthProfile {
    /// The scopes to request; `None` requests the owner's, else the discovered ones.
    pub scopes: Option<Vec<String>>,
    /// Extra query parameters of the authorization request.
    pub authorization_params: Vec<(String, String)>,
    /// Extra form parameters of every token request (code exchange and refresh).
    pub token_params: Vec<(String, String)>,
    /// The client authentication to use at the token endpoint; `None` lets the host choose
    /// (the registered method, else the first the authorization server supports).
    pub client_auth: Option<ClientAuth>,
    /// Where the access token is in the token response, as a JSON pointer (RFC 6901);
    /// `None` is the standard `/access_token`.
    pub access_token_pointer: Option<String>,
}

/// Parameters of the authorization request that the host's OAuth flow sets itself, or
/// that would replace the request the flow builds (request objects, response modes): an
/// [`OAuthProfile`] may add parameters, never one of these.
pub const RESERVED_AUTHORIZATION_PARAMS: [&str; 11] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
    "resource",
    "request",
    "request_uri",
    "response_mode",
];

/// Parameters of token requests (code exchange and refresh) that the host's OAuth flow
/// sets itself, or that would authenticate the client in its place (client assertions).
pub const RESERVED_TOKEN_PARAMS: [&str; 10] = [
    "grant_type",
    "code",
    "code_verifier",
    "redirect_uri",
    "client_id",
    "client_secret",
    "refresh_token",
    "resource",
    "client_assertion",
    "client_assertion_type",
];
