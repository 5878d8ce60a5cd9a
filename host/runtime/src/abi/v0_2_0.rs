//! Contract version 0.2.0 (`wit/v0.2.0`): the bindings of its two worlds, the host side of
//! its imports, and the conversions between its records and the version-independent
//! records of `portcullis-model` (those every version shares come from `version_common!`;
//! this file writes what is its own: the connector status with `pending-authorization`,
//! and the provider's `oauth` export). Frozen with the contract: a later version gets a
//! file of its own beside this one.

use portcullis_model as model;
use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker};

use crate::answer::{Description, RawPlan, RawToolSet};
use crate::host_state::HostState;

pub mod policy {
    wasmtime::component::bindgen!({
        world: "policy-plugin",
        path: "../../wit/v0.2.0",
    });
}

pub mod provider {
    wasmtime::component::bindgen!({
        world: "provider-plugin",
        path: "../../wit/v0.2.0",
        with: {
            "portcullis:plugin/types": crate::abi::v0_2_0::policy::portcullis::plugin::types,
            "portcullis:plugin/log": crate::abi::v0_2_0::policy::portcullis::plugin::log,
        },
    });
}

use policy::portcullis::plugin::{log, types as wit};
use provider::exports::portcullis::plugin::provider as wit_provider;

pub type PolicyPre = policy::PolicyPluginPre<HostState>;
pub type ProviderPre = provider::ProviderPluginPre<HostState>;
pub type PolicyInstance = policy::PolicyPlugin;
pub type ProviderInstance = provider::ProviderPlugin;

impl wit::Host for HostState {}

version_common!();

fn status(status: model::ConnectorStatus) -> wit::ConnectorStatus {
    match status {
        model::ConnectorStatus::Authorized => wit::ConnectorStatus::Authorized,
        model::ConnectorStatus::NeedsReauthorization => wit::ConnectorStatus::NeedsReauthorization,
        model::ConnectorStatus::PendingAuthorization => wit::ConnectorStatus::PendingAuthorization,
    }
}

/// The provider's OAuth profile, or its refusal in its own words.
pub fn oauth(
    instance: &ProviderInstance,
    store: &mut Store<HostState>,
    request: &model::OAuthRequest,
) -> wasmtime::Result<Result<model::OAuthProfile, String>> {
    let request = wit_provider::OauthRequest {
        connector_id: request.connector_id.clone(),
        server_url: request.server_url.clone(),
        provider: request.provider.clone(),
        config: request.config.clone(),
        registration: match request.registration {
            model::Registration::Dynamic => wit_provider::Registration::Dynamic,
            model::Registration::Own => wit_provider::Registration::Own,
        },
        discovered_scopes: request.discovered_scopes.clone(),
        requested_scopes: request.requested_scopes.clone(),
        client_auth_methods: request
            .client_auth_methods
            .iter()
            .map(|auth| to_wit_client_auth(*auth))
            .collect(),
    };
    let answer = instance
        .portcullis_plugin_provider()
        .call_oauth(store, &request)?;
    Ok(answer.map(|profile| model::OAuthProfile {
        scopes: profile.scopes,
        authorization_params: profile.authorization_params,
        token_params: profile.token_params,
        client_auth: profile.client_auth.map(from_wit_client_auth),
        access_token_pointer: profile.access_token_pointer,
    }))
}

fn to_wit_client_auth(auth: model::ClientAuth) -> wit_provider::ClientAuth {
    match auth {
        model::ClientAuth::None => wit_provider::ClientAuth::None,
        model::ClientAuth::ClientSecretBasic => wit_provider::ClientAuth::ClientSecretBasic,
        model::ClientAuth::ClientSecretPost => wit_provider::ClientAuth::ClientSecretPost,
    }
}

fn from_wit_client_auth(auth: wit_provider::ClientAuth) -> model::ClientAuth {
    match auth {
        wit_provider::ClientAuth::None => model::ClientAuth::None,
        wit_provider::ClientAuth::ClientSecretBasic => model::ClientAuth::ClientSecretBasic,
        wit_provider::ClientAuth::ClientSecretPost => model::ClientAuth::ClientSecretPost,
    }
}
