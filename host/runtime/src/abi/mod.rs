//! The contract versions the runtime serves, and the only module that names them (Zed's
//! extension host is laid out the same way): one file per released version of `wit/`
//! (`v0_1_0` for `wit/v0.1.0`) holds its bindings and conversions; this dispatcher holds
//! the version-tagged forms of a plugin and routes each call to its version. What the
//! version files share is one macro (`shared`).
//!
//! Everything outside `abi` works with `portcullis-model` records and the answers of
//! `answer`, and never sees a binding type. Serving a new contract version beside the old
//! ones is a new file here, a variant in each enum below, and a linker in [`Linkers`].
//!
//! The enums are split by kind first (policy or provider: what the host does with a
//! plugin), by version second (how it is called).

#[macro_use]
mod shared;
mod v0_1_0;
mod v0_2_0;

use portcullis_model::{
    Decision, DecisionContext, McpRequest, OAuthProfile, OAuthRequest, PlanRequest,
};
use wasmtime::Store;
use wasmtime::component::{Component, Linker};

use crate::answer::{Description, RawPlan, RawToolSet};
use crate::host_state::HostState;

/// The contract versions served, as error messages name them.
pub(crate) const CONTRACTS: &str = "portcullis:plugin@0.2.0 or portcullis:plugin@0.1.0";

/// One linker per world of every served version: WASI (as the engine offers it) and the
/// world's own imports, nothing else.
pub(crate) struct Linkers {
    v0_1_0_policy: Linker<HostState>,
    v0_1_0_provider: Linker<HostState>,
    v0_2_0_policy: Linker<HostState>,
    v0_2_0_provider: Linker<HostState>,
}

/// Builds the linkers, each on a fresh `wasi` linker.
pub(crate) fn link(
    wasi: impl Fn() -> wasmtime::Result<Linker<HostState>>,
) -> wasmtime::Result<Linkers> {
    let mut v0_1_0_policy = wasi()?;
    v0_1_0::add_policy_imports(&mut v0_1_0_policy)?;
    let mut v0_1_0_provider = wasi()?;
    v0_1_0::add_provider_imports(&mut v0_1_0_provider)?;
    let mut v0_2_0_policy = wasi()?;
    v0_2_0::add_policy_imports(&mut v0_2_0_policy)?;
    let mut v0_2_0_provider = wasi()?;
    v0_2_0::add_provider_imports(&mut v0_2_0_provider)?;
    Ok(Linkers {
        v0_1_0_policy,
        v0_1_0_provider,
        v0_2_0_policy,
        v0_2_0_provider,
    })
}

/// What each world's linker said about a component that implements none of them.
pub(crate) struct UnknownWorld {
    pub policy: String,
    pub provider: String,
}

/// The pre-instantiated form of a plugin: linked once against its world, instantiated
/// afresh for every call (Kubewarden's `StackPre`). Shareable across threads.
pub(crate) enum Pre {
    Policy(PolicyPre),
    Provider(ProviderPre),
}

pub(crate) enum PolicyPre {
    V0_1_0(v0_1_0::PolicyPre),
    V0_2_0(v0_2_0::PolicyPre),
}

pub(crate) enum ProviderPre {
    V0_1_0(v0_1_0::ProviderPre),
    V0_2_0(v0_2_0::ProviderPre),
}

impl Pre {
    /// Links `component` against the worlds served, newest version first, and keeps the
    /// first it implements. A component exports one world of one version (the interfaces
    /// are named with their version), so at most one links.
    pub(crate) fn new(linkers: &Linkers, component: &Component) -> Result<Self, UnknownWorld> {
        let mut policy_errors = Vec::new();
        match linkers
            .v0_2_0_policy
            .instantiate_pre(component)
            .and_then(v0_2_0::PolicyPre::new)
        {
            Ok(pre) => return Ok(Pre::Policy(PolicyPre::V0_2_0(pre))),
            Err(error) => policy_errors.push(format!("0.2.0: {error:#}")),
        }
        match linkers
            .v0_1_0_policy
            .instantiate_pre(component)
            .and_then(v0_1_0::PolicyPre::new)
        {
            Ok(pre) => return Ok(Pre::Policy(PolicyPre::V0_1_0(pre))),
            Err(error) => policy_errors.push(format!("0.1.0: {error:#}")),
        }
        let mut provider_errors = Vec::new();
        match linkers
            .v0_2_0_provider
            .instantiate_pre(component)
            .and_then(v0_2_0::ProviderPre::new)
        {
            Ok(pre) => return Ok(Pre::Provider(ProviderPre::V0_2_0(pre))),
            Err(error) => provider_errors.push(format!("0.2.0: {error:#}")),
        }
        match linkers
            .v0_1_0_provider
            .instantiate_pre(component)
            .and_then(v0_1_0::ProviderPre::new)
        {
            Ok(pre) => return Ok(Pre::Provider(ProviderPre::V0_1_0(pre))),
            Err(error) => provider_errors.push(format!("0.1.0: {error:#}")),
        }
        Err(UnknownWorld {
            policy: policy_errors.join("; "),
            provider: provider_errors.join("; "),
        })
    }

    /// The contract version the plugin was admitted under, as `wit/` names it.
    pub(crate) fn contract(&self) -> &'static str {
        match self {
            Pre::Policy(PolicyPre::V0_1_0(_)) | Pre::Provider(ProviderPre::V0_1_0(_)) => "0.1.0",
            Pre::Policy(PolicyPre::V0_2_0(_)) | Pre::Provider(ProviderPre::V0_2_0(_)) => "0.2.0",
        }
    }
}

impl PolicyPre {
    pub(crate) fn instantiate(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<PolicyInstance> {
        match self {
            PolicyPre::V0_1_0(pre) => pre.instantiate(store).map(PolicyInstance::V0_1_0),
            PolicyPre::V0_2_0(pre) => pre.instantiate(store).map(PolicyInstance::V0_2_0),
        }
    }
}

impl ProviderPre {
    pub(crate) fn instantiate(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<ProviderInstance> {
        match self {
            ProviderPre::V0_1_0(pre) => pre.instantiate(store).map(ProviderInstance::V0_1_0),
            ProviderPre::V0_2_0(pre) => pre.instantiate(store).map(ProviderInstance::V0_2_0),
        }
    }
}

/// A policy plugin instantiated in one call's store.
pub(crate) enum PolicyInstance {
    V0_1_0(v0_1_0::PolicyInstance),
    V0_2_0(v0_2_0::PolicyInstance),
}

impl PolicyInstance {
    pub(crate) fn describe(&self, store: &mut Store<HostState>) -> wasmtime::Result<Description> {
        match self {
            PolicyInstance::V0_1_0(instance) => v0_1_0::describe_policy(instance, store),
            PolicyInstance::V0_2_0(instance) => v0_2_0::describe_policy(instance, store),
        }
    }

    pub(crate) fn access(
        &self,
        store: &mut Store<HostState>,
        ctx: &DecisionContext,
        settings: &str,
    ) -> wasmtime::Result<Decision> {
        match self {
            PolicyInstance::V0_1_0(instance) => v0_1_0::access(instance, store, ctx, settings),
            PolicyInstance::V0_2_0(instance) => v0_2_0::access(instance, store, ctx, settings),
        }
    }

    pub(crate) fn request(
        &self,
        store: &mut Store<HostState>,
        ctx: &DecisionContext,
        settings: &str,
        request: &McpRequest,
    ) -> wasmtime::Result<Decision> {
        match self {
            PolicyInstance::V0_1_0(instance) => {
                v0_1_0::request(instance, store, ctx, settings, request)
            }
            PolicyInstance::V0_2_0(instance) => {
                v0_2_0::request(instance, store, ctx, settings, request)
            }
        }
    }

    pub(crate) fn permitted_tools(
        &self,
        store: &mut Store<HostState>,
        ctx: &DecisionContext,
        settings: &str,
    ) -> wasmtime::Result<RawToolSet> {
        match self {
            PolicyInstance::V0_1_0(instance) => {
                v0_1_0::permitted_tools(instance, store, ctx, settings)
            }
            PolicyInstance::V0_2_0(instance) => {
                v0_2_0::permitted_tools(instance, store, ctx, settings)
            }
        }
    }
}

/// A provider plugin instantiated in one call's store.
pub(crate) enum ProviderInstance {
    V0_1_0(v0_1_0::ProviderInstance),
    V0_2_0(v0_2_0::ProviderInstance),
}

impl ProviderInstance {
    pub(crate) fn describe(&self, store: &mut Store<HostState>) -> wasmtime::Result<Description> {
        match self {
            ProviderInstance::V0_1_0(instance) => v0_1_0::describe_provider(instance, store),
            ProviderInstance::V0_2_0(instance) => v0_2_0::describe_provider(instance, store),
        }
    }

    /// The plan, or the provider's refusal in its own words.
    pub(crate) fn plan(
        &self,
        store: &mut Store<HostState>,
        request: &PlanRequest,
    ) -> wasmtime::Result<Result<RawPlan, String>> {
        match self {
            ProviderInstance::V0_1_0(instance) => v0_1_0::plan(instance, store, request),
            ProviderInstance::V0_2_0(instance) => v0_2_0::plan(instance, store, request),
        }
    }

    /// The provider's OAuth profile, or its refusal in its own words.
    pub(crate) fn oauth(
        &self,
        store: &mut Store<HostState>,
        request: &OAuthRequest,
    ) -> wasmtime::Result<Result<OAuthProfile, String>> {
        match self {
            // 0.1.0 has no `oauth` export: its providers take the standard flow.
            ProviderInstance::V0_1_0(_) => Ok(Ok(OAuthProfile::default())),
            ProviderInstance::V0_2_0(instance) => v0_2_0::oauth(instance, store, request),
        }
    }
}
