//! Contract version 0.1.0 (`wit/v0.1.0`): the bindings of its two worlds, the host side of
//! its imports, and the conversions between its records and the version-independent
//! records of `portcullis-model` (those every version shares come from `version_common!`;
//! this file writes what is its own: the connector status). Frozen with the contract: a
//! later version gets a file of its own beside this one.

use portcullis_model as model;
use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker};

use crate::answer::{Description, RawPlan, RawToolSet};
use crate::host_state::HostState;

pub mod policy {
    wasmtime::component::bindgen!({
        world: "policy-plugin",
        path: "../../wit/v0.1.0",
    });
}

pub mod provider {
    wasmtime::component::bindgen!({
        world: "provider-plugin",
        path: "../../wit/v0.1.0",
        with: {
            "portcullis:plugin/types": crate::abi::v0_1_0::policy::portcullis::plugin::types,
            "portcullis:plugin/log": crate::abi::v0_1_0::policy::portcullis::plugin::log,
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
        // 0.1.0 has no pending status: to its plugins, a connector waiting for its first
        // authorization is one that needs authorizing.
        model::ConnectorStatus::NeedsReauthorization
        | model::ConnectorStatus::PendingAuthorization => {
            wit::ConnectorStatus::NeedsReauthorization
        }
    }
}
