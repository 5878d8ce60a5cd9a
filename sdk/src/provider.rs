//! Everything a provider plugin needs: the [`Provider`] trait, the plan and OAuth records,
//! and helpers for reading the connector's provider configuration.
//!
//! A provider answers two questions about a connector, and never sees its credential:
//!
//! * [`Provider::plan`]: where the credential goes in each upstream request, as templates
//!   with the placeholders [`SECRET`] and [`ACCESS_TOKEN`] that the host fills in;
//! * [`Provider::oauth`]: where the provider's OAuth departs from the standard OAuth 2.1
//!   flow the host runs (scopes, extra parameters, client authentication, where the token
//!   is in the token response), or why it refuses the authorization. Inherited: the
//!   standard flow.
//!
//! Where OAuth requests are sent is not the plugin's to say: the endpoints come from
//! discovery or from the connector's owner, and the host keeps client secrets, codes,
//! verifiers and tokens to itself.

use serde::de::DeserializeOwned;

pub use crate::bindings::policy::portcullis::plugin::types::PluginInfo;
use crate::bindings::provider::exports::portcullis::plugin::provider::Guest;
pub use crate::bindings::provider::exports::portcullis::plugin::provider::{
    ClientAuth, CredentialKind, InjectionPlan, OauthProfile as OAuthProfile,
    OauthRequest as OAuthRequest, PlanRequest, Registration,
};

/// A provider plugin: how a connector's credential is written into upstream requests, and
/// how its OAuth differs from the standard flow.
pub trait Provider {
    /// The plugin's name and version.
    fn describe() -> PluginInfo;

    /// The plan for a connector, with placeholders ([`SECRET`], [`ACCESS_TOKEN`])
    /// where the host writes the credential; or a refusal in the provider's words.
    fn plan(request: PlanRequest) -> Result<InjectionPlan, String>;

    /// The OAuth profile for a connector about to be authorized, or a refusal in the
    /// provider's words (a registration it does not support, a configuration it
    /// rejects). Inherited: the standard flow ([`standard_profile`]).
    fn oauth(_request: OAuthRequest) -> Result<OAuthProfile, String> {
        Ok(standard_profile())
    }
}

/// The bridge [`export_provider!`](crate::export_provider) relies on: every
/// [`Provider`] is the component's `provider` export.
impl<T: Provider> Guest for T {
    fn describe() -> PluginInfo {
        <T as Provider>::describe()
    }
    fn plan(request: PlanRequest) -> Result<InjectionPlan, String> {
        <T as Provider>::plan(request)
    }
    fn oauth(request: OAuthRequest) -> Result<OAuthProfile, String> {
        <T as Provider>::oauth(request)
    }
}

/// The placeholder the host replaces with an API key or token.
pub const SECRET: &str = "{secret}";
/// The placeholder the host replaces with an OAuth access token.
pub const ACCESS_TOKEN: &str = "{access_token}";

/// A provider's self-description.
pub fn info(name: &str, version: &str) -> PluginInfo {
    PluginInfo {
        name: name.to_owned(),
        version: version.to_owned(),
    }
}

/// The placeholder naming the credential of `kind`, or `None` when there is none.
pub fn credential_placeholder(kind: CredentialKind) -> Option<&'static str> {
    match kind {
        CredentialKind::None => None,
        CredentialKind::ApiKey => Some(SECRET),
        CredentialKind::OauthAccessToken => Some(ACCESS_TOKEN),
    }
}

/// The standard OAuth 2.1 flow: the discovered scopes, no extra parameter, the host's
/// choice of client authentication, the token at `/access_token`.
pub fn standard_profile() -> OAuthProfile {
    OAuthProfile {
        scopes: None,
        authorization_params: Vec::new(),
        token_params: Vec::new(),
        client_auth: None,
        access_token_pointer: None,
    }
}

/// Parameters of the authorization request the host's flow sets itself: a profile that
/// names one in `authorization_params` is refused, and the host then refuses to authorize.
/// (The host's own list is `portcullis_model::RESERVED_AUTHORIZATION_PARAMS`; a test keeps
/// the two equal.)
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

/// Parameters of token requests the host's flow sets itself, refused in `token_params`.
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

/// The provider configuration of a plan request as a JSON object.
pub fn config(request: &PlanRequest) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    config_object(&request.config)
}

/// The provider configuration of an OAuth request as a JSON object.
pub fn oauth_config(
    request: &OAuthRequest,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    config_object(&request.config)
}

/// A provider configuration read into `T`, the plugin's own configuration type (usually
/// with `#[serde(default, deny_unknown_fields)]`); errors name `plugin`. Only a JSON
/// object is read: serde would also read a struct from an array.
pub fn typed_config<T: DeserializeOwned>(config_json: &str, plugin: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::Object(config_object(config_json)?))
        .map_err(|e| format!("invalid {plugin} configuration: {e}"))
}

fn config_object(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err("the provider configuration must be a JSON object".to_owned()),
        Err(e) => Err(format!("the provider configuration is not valid JSON: {e}")),
    }
}
