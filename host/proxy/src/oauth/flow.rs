//! The start of one OAuth authorization of a connector (AUTH-4 to AUTH-7, SEC-5): [`start`]
//! decides the client, endpoints, resource and scopes, stores the pending authorization and
//! answers the URL the owner opens; `callback` is the other half.
//!
//! Invariants: a `state` is random, stored only as its hash, bound to one connector, and
//! valid for at most `oauth.state_ttl_secs` (ten minutes at most); the setup stored with it
//! is what the code exchange and every refresh send. The provider plugin is asked for its
//! [`portcullis_model::OAuthProfile`] before anything is sent, and its answer only adds to
//! the flow: it cannot replace a parameter the flow sets (the runtime checks that).

use portcullis_model::{ClientAuth, OAuthProfile, OAuthRequest, Registration};
use portcullis_runtime::Runtime;
use reqwest::Url;
use zeroize::Zeroizing;

use super::metadata::AuthServerMetadata;
use super::net::Net;
use super::pkce::{Pkce, new_state};
use super::probe::Discovery;
use super::registration::{self, RegistrationError};
use crate::clock::now_secs;
use crate::store::{
    AuthServer, ConnectorRecord, OAuthSetup, PendingAuthorization, Store, StoreError,
};
use crate::vault::{Vault, VaultError, token_hash};

/// The most scopes an owner may ask for, and the longest one.
const MAX_SCOPES: usize = 64;
const MAX_SCOPE_LEN: usize = 256;

/// What the owner asked for (the `auth` object of the admin API, method `oauth`).
#[derive(Default)]
pub struct Request<'a> {
    pub registration: Option<Registration>,
    pub client_id: Option<&'a str>,
    pub client_secret: Option<&'a str>,
    pub authorization_url: Option<&'a str>,
    pub token_url: Option<&'a str>,
    pub client_auth: Option<ClientAuth>,
    pub scopes: Option<Vec<String>>,
}

impl Request<'_> {
    /// Whether the owner named both endpoints, so no discovery is needed (AUTH-7).
    pub fn has_endpoints(&self) -> bool {
        self.authorization_url.is_some() && self.token_url.is_some()
    }
}

/// What an authorization needs from the proxy.
pub struct Context<'a> {
    pub net: Net<'a>,
    pub store: &'a dyn Store,
    pub vault: &'a Vault,
    pub runtime: &'a Runtime,
    /// `<public_base_url>/oauth/callback`.
    pub redirect_uri: String,
    pub state_ttl: i64,
}

/// A started authorization.
pub struct Started {
    pub authorization_url: String,
    pub expires_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the server offers no usable OAuth metadata ({0}); give `authorization_url` and \
         `token_url` with an own client, or use an API key"
    )]
    NoMetadata(String),
    #[error(
        "the authorization server {0} does not offer dynamic client registration; create an \
         OAuth app at the provider and use `\"registration\": \"own\"`"
    )]
    NoRegistration(String),
    #[error(
        "the authorization server {0} does not advertise PKCE with S256, which dynamic \
         registration requires (MCP authorization); use an own client"
    )]
    NoPkce(String),
    #[error("{0}")]
    ClientAuth(String),
    #[error("the connector's provider plugin refused OAuth: {0}")]
    ProviderRefused(String),
    #[error("dynamic client registration failed: {0}")]
    Registration(RegistrationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl FlowError {
    /// The admin API error code.
    pub fn code(&self) -> &'static str {
        match self {
            FlowError::Invalid(_) => "invalid_field",
            FlowError::NoMetadata(_) => "oauth_not_supported",
            FlowError::NoRegistration(_) => "registration_not_supported",
            FlowError::NoPkce(_) => "pkce_not_supported",
            FlowError::ClientAuth(_) => "client_auth_not_supported",
            FlowError::ProviderRefused(_) => "provider_refused",
            FlowError::Registration(_) => "registration_failed",
            FlowError::Store(_) | FlowError::Vault(_) => "internal_error",
        }
    }
}

/// Starts an authorization of `connector`: what `discovery` found (empty for an own client
/// with both endpoints and nothing discovered) and the owner's `request` give the flow's
/// setup; the pending state is stored and the authorization URL answered.
pub async fn start(
    cx: &Context<'_>,
    connector: &ConnectorRecord,
    server_url: &Url,
    discovery: &Discovery,
    request: Request<'_>,
    reauthorization: bool,
) -> Result<Started, FlowError> {
    let registration = request.registration.unwrap_or(Registration::Dynamic);
    let metadata = discovery.auth_server.as_ref();
    if registration == Registration::Dynamic {
        let server = metadata.ok_or_else(|| FlowError::NoMetadata(problem(discovery)))?;
        if server.registration_endpoint.is_none() {
            return Err(FlowError::NoRegistration(server.issuer.clone()));
        }
        if !server.supports_s256() {
            return Err(FlowError::NoPkce(server.issuer.clone()));
        }
    }
    let scopes = match &request.scopes {
        Some(scopes) => Some(checked_scopes(scopes)?),
        None => None,
    };
    let supported: Vec<ClientAuth> = metadata
        .map(|m| {
            m.token_endpoint_auth_methods_supported
                .iter()
                .filter_map(|name| ClientAuth::parse(name))
                .collect()
        })
        .unwrap_or_default();
    let requested = scopes.as_deref();
    let profile = profile(
        cx.runtime,
        connector,
        registration,
        requested,
        discovery,
        &supported,
    );
    let profile = profile.await?;
    let server = endpoints(cx.net, &request, metadata)?;
    let (client_id, client_auth, secret) = match registration {
        Registration::Own => own_client(&request, &profile, metadata)?,
        Registration::Dynamic => {
            let server_meta = metadata.ok_or_else(|| FlowError::NoMetadata(problem(discovery)))?;
            let wanted = dynamic_client_auth(&profile, &supported)?;
            let registered = registration::client_for(
                cx.net,
                cx.store,
                cx.vault,
                server_meta,
                &cx.redirect_uri,
                wanted,
            )
            .await
            .map_err(FlowError::Registration)?;
            (
                registered.client_id,
                registered.client_auth,
                registered.secret,
            )
        }
    };
    let setup = OAuthSetup {
        server,
        client_id,
        client_auth,
        registration,
        resource: discovery.resource(server_url),
        redirect_uri: cx.redirect_uri.clone(),
        // The plugin saw the owner's scopes and may have placed them elsewhere (Slack's
        // `user_scope`): its choice comes first.
        scopes: profile
            .scopes
            .clone()
            .or(scopes)
            .unwrap_or_else(|| discovery.scopes()),
        token_params: profile.token_params.clone(),
        access_token_pointer: profile.access_token_pointer.clone(),
    };
    let pkce = Pkce::new()?;
    let state = new_state()?;
    let url = authorization_url(&setup, &profile, &pkce.challenge, &state)?;
    let now = now_secs();
    let pending = PendingAuthorization {
        state_hash: token_hash(&state),
        connector_id: connector.id.clone(),
        setup,
        sealed_client_secret: secret
            .as_deref()
            .map(|s| cx.vault.seal(s, connector.binding()))
            .transpose()?,
        sealed_verifier: cx.vault.seal(&pkce.verifier, connector.binding())?,
        reauthorization,
        created_at: now,
        expires_at: now + cx.state_ttl,
    };
    cx.store.purge_pending(now).await?;
    cx.store.insert_pending(&pending).await?;
    Ok(Started {
        authorization_url: url,
        expires_at: pending.expires_at,
    })
}

fn problem(discovery: &Discovery) -> String {
    discovery
        .problem
        .clone()
        .unwrap_or_else(|| "discovery found no authorization server".to_owned())
}

/// The owner's scopes, checked as RFC 6749 scope tokens.
fn checked_scopes(scopes: &[String]) -> Result<Vec<String>, FlowError> {
    if scopes.len() > MAX_SCOPES {
        return Err(FlowError::Invalid(format!(
            "`auth.scopes` has more than {MAX_SCOPES} scopes"
        )));
    }
    for scope in scopes {
        let valid = !scope.is_empty()
            && scope.len() <= MAX_SCOPE_LEN
            && scope
                .bytes()
                .all(|b| (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\');
        if !valid {
            return Err(FlowError::Invalid(format!(
                "`auth.scopes` holds {scope:?}, which is not a scope (visible ASCII, no spaces \
                 or quotes, at most {MAX_SCOPE_LEN} bytes)"
            )));
        }
    }
    Ok(scopes.to_vec())
}

/// The provider plugin's profile for this authorization: it sees the owner's `requested`
/// scopes and the client authentications the authorization server `supported`.
async fn profile(
    runtime: &Runtime,
    connector: &ConnectorRecord,
    registration: Registration,
    requested: Option<&[String]>,
    discovery: &Discovery,
    supported: &[ClientAuth],
) -> Result<OAuthProfile, FlowError> {
    let verdict = runtime
        .oauth_profile(OAuthRequest {
            connector_id: connector.id.clone(),
            server_url: connector.server_url.clone(),
            provider: connector.provider.clone(),
            config: connector.config.to_string(),
            registration,
            discovered_scopes: discovery.scopes(),
            requested_scopes: requested.map(<[String]>::to_vec),
            client_auth_methods: supported.to_vec(),
        })
        .await;
    verdict
        .value
        .map_err(|e| FlowError::ProviderRefused(e.to_string()))
}

/// The endpoints: the owner's, else the discovered ones; the issuer and revocation
/// endpoint are taken from discovery only when they belong to the same token endpoint.
fn endpoints(
    net: Net<'_>,
    request: &Request<'_>,
    metadata: Option<&AuthServerMetadata>,
) -> Result<AuthServer, FlowError> {
    let check = |what: &'static str, url: &str| {
        net.check_url(what, url)
            .map(|_| url.to_owned())
            .map_err(|e| FlowError::Invalid(e.to_string()))
    };
    let authorization_endpoint = match (request.authorization_url, metadata) {
        (Some(url), _) => check("`auth.authorization_url`", url)?,
        (None, Some(m)) => m.authorization_endpoint.clone(),
        (None, None) => return Err(missing_endpoints()),
    };
    let token_endpoint = match (request.token_url, metadata) {
        (Some(url), _) => check("`auth.token_url`", url)?,
        (None, Some(m)) => m.token_endpoint.clone(),
        (None, None) => return Err(missing_endpoints()),
    };
    let same_server = metadata.filter(|m| m.token_endpoint == token_endpoint);
    Ok(AuthServer {
        issuer: same_server.map(|m| m.issuer.clone()),
        authorization_endpoint,
        token_endpoint,
        revocation_endpoint: same_server.and_then(|m| m.revocation_endpoint.clone()),
        iss_parameter_supported: same_server
            .is_some_and(|m| m.authorization_response_iss_parameter_supported),
    })
}

fn missing_endpoints() -> FlowError {
    FlowError::NoMetadata(
        "discovery found no authorization server metadata, and the owner gave no endpoints"
            .to_owned(),
    )
}

/// The owner's client (AUTH-7): the method the owner chose, else the provider's, else
/// `client_secret_post` with a secret and `none` without.
fn own_client(
    request: &Request<'_>,
    profile: &OAuthProfile,
    metadata: Option<&AuthServerMetadata>,
) -> Result<(String, ClientAuth, Option<Zeroizing<String>>), FlowError> {
    let client_id = request
        .client_id
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            FlowError::Invalid(
                "`auth.client_id` is required for an own client: the id of the OAuth app \
                 created at the provider"
                    .to_owned(),
            )
        })?;
    if client_id.len() > 1024 || client_id.bytes().any(|b| !(0x20..0x7f).contains(&b)) {
        return Err(FlowError::Invalid(
            "`auth.client_id` must be at most 1024 visible ASCII characters".to_owned(),
        ));
    }
    let secret = request.client_secret.filter(|s| !s.is_empty());
    let auth = request
        .client_auth
        .or(profile.client_auth)
        .unwrap_or(match secret {
            Some(_) => ClientAuth::ClientSecretPost,
            None => ClientAuth::None,
        });
    match (auth, secret) {
        (ClientAuth::None, Some(_)) => {
            return Err(FlowError::Invalid(
                "`auth.client_secret` is given but the client authentication method is none; \
                 choose client_secret_post or client_secret_basic"
                    .to_owned(),
            ));
        }
        (ClientAuth::ClientSecretBasic | ClientAuth::ClientSecretPost, None) => {
            return Err(FlowError::Invalid(format!(
                "`auth.client_secret` is required for {}",
                auth.as_str()
            )));
        }
        _ => {}
    }
    if let Some(m) = metadata {
        let listed = &m.token_endpoint_auth_methods_supported;
        if !listed.is_empty() && !listed.iter().any(|name| name == auth.as_str()) {
            return Err(FlowError::ClientAuth(format!(
                "the authorization server {} does not accept {} at its token endpoint (it lists {})",
                m.issuer,
                auth.as_str(),
                listed.join(", ")
            )));
        }
    }
    Ok((
        client_id.to_owned(),
        auth,
        secret.map(|s| Zeroizing::new(s.to_owned())),
    ))
}

/// The method to register with: the provider's, else a public client when the server
/// accepts one (or does not say), else the first secret method it lists.
fn dynamic_client_auth(
    profile: &OAuthProfile,
    supported: &[ClientAuth],
) -> Result<ClientAuth, FlowError> {
    if let Some(auth) = profile.client_auth {
        return Ok(auth);
    }
    if supported.is_empty() || supported.contains(&ClientAuth::None) {
        return Ok(ClientAuth::None);
    }
    supported
        .iter()
        .copied()
        .find(|auth| *auth != ClientAuth::None)
        .ok_or_else(|| {
            FlowError::ClientAuth(
                "the authorization server lists no client authentication method Portcullis \
                 implements (none, client_secret_basic, client_secret_post)"
                    .to_owned(),
            )
        })
}

/// The authorization request URL (AUTH-4).
fn authorization_url(
    setup: &OAuthSetup,
    profile: &OAuthProfile,
    challenge: &str,
    state: &str,
) -> Result<String, FlowError> {
    let mut url = Url::parse(&setup.server.authorization_endpoint)
        .map_err(|e| FlowError::Invalid(format!("the authorization endpoint is invalid: {e}")))?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &setup.client_id)
            .append_pair("redirect_uri", &setup.redirect_uri)
            .append_pair("state", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", &setup.resource);
        if !setup.scopes.is_empty() {
            query.append_pair("scope", &setup.scopes.join(" "));
        }
        for (name, value) in &profile.authorization_params {
            query.append_pair(name, value);
        }
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> OAuthSetup {
        OAuthSetup {
            server: AuthServer {
                issuer: Some("https://as.example.com".into()),
                authorization_endpoint: "https://as.example.com/authorize?tenant=t1".into(),
                token_endpoint: "https://as.example.com/token".into(),
                revocation_endpoint: None,
                iss_parameter_supported: true,
            },
            client_id: "client 1".into(),
            client_auth: ClientAuth::None,
            registration: Registration::Dynamic,
            resource: "https://mcp.example.com/mcp".into(),
            redirect_uri: "https://proxy.example.com/oauth/callback".into(),
            scopes: vec!["read".into(), "write".into()],
            token_params: Vec::new(),
            access_token_pointer: None,
        }
    }

    #[test]
    fn the_authorization_url_carries_every_parameter() {
        let profile = OAuthProfile {
            authorization_params: vec![("prompt".into(), "consent".into())],
            ..OAuthProfile::default()
        };
        let url = authorization_url(&setup(), &profile, "challenge", "st").unwrap();
        let parsed = Url::parse(&url).unwrap();
        let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("tenant"), Some("t1"), "the endpoint's own query stays");
        assert_eq!(get("response_type"), Some("code"));
        assert_eq!(get("client_id"), Some("client 1"));
        assert_eq!(
            get("redirect_uri"),
            Some("https://proxy.example.com/oauth/callback")
        );
        assert_eq!(get("state"), Some("st"));
        assert_eq!(get("code_challenge"), Some("challenge"));
        assert_eq!(get("code_challenge_method"), Some("S256"));
        assert_eq!(get("resource"), Some("https://mcp.example.com/mcp"));
        assert_eq!(get("scope"), Some("read write"));
        assert_eq!(get("prompt"), Some("consent"));
    }

    #[test]
    fn client_authentication_choices() {
        let standard = OAuthProfile::default();
        assert_eq!(
            dynamic_client_auth(&standard, &[]).unwrap(),
            ClientAuth::None
        );
        assert_eq!(
            dynamic_client_auth(&standard, &[ClientAuth::ClientSecretPost]).unwrap(),
            ClientAuth::ClientSecretPost
        );
        let post = OAuthProfile {
            client_auth: Some(ClientAuth::ClientSecretPost),
            ..OAuthProfile::default()
        };
        assert_eq!(
            dynamic_client_auth(&post, &[ClientAuth::None]).unwrap(),
            ClientAuth::ClientSecretPost
        );

        let own = |secret: Option<&'static str>, auth: Option<ClientAuth>| Request {
            registration: Some(Registration::Own),
            client_id: Some("app"),
            client_secret: secret,
            client_auth: auth,
            ..Request::default()
        };
        let (_, auth, _) = own_client(&own(Some("s"), None), &standard, None).unwrap();
        assert_eq!(auth, ClientAuth::ClientSecretPost, "AUTH-7's default");
        let (_, auth, _) = own_client(&own(None, None), &standard, None).unwrap();
        assert_eq!(auth, ClientAuth::None);
        assert!(own_client(&own(Some("s"), Some(ClientAuth::None)), &standard, None).is_err());
        assert!(
            own_client(
                &own(None, Some(ClientAuth::ClientSecretBasic)),
                &standard,
                None
            )
            .is_err()
        );
        let no_id = Request {
            client_id: Some("  "),
            ..own(None, None)
        };
        assert!(own_client(&no_id, &standard, None).is_err());
    }

    #[test]
    fn scopes_are_checked() {
        assert!(checked_scopes(&["a:b".into(), "c".into()]).is_ok());
        for bad in ["", "a b", "a\"", "é"] {
            assert!(checked_scopes(&[bad.to_owned()]).is_err(), "{bad:?}");
        }
        assert!(checked_scopes(&vec!["s".to_owned(); MAX_SCOPES + 1]).is_err());
    }
}
