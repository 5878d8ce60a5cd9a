//! The one seam of the runtime: who answers one link's call.
//!
//! A [`Decider`] answers a single call of a single plugin: `access`, `request` or
//! `permitted_tools` for a policy link, `plan` or `oauth` for a provider. Everything around that call
//! is the chain's and is the same whichever decider answers (`chain`): which plugins are
//! asked and in which order, deny-overrides and intersection, the answer checks, the
//! fail-closed mapping of faults to denials, the stamps and the generation.
//!
//! The default is [`WasmDecider`], which runs the plugin's component in the sandbox (one
//! fresh instance per call, see `call`). Another decider is plugged in with
//! [`Runtime::with_decider`](crate::Runtime::with_decider); the benchmark does so to answer
//! the built-in plugins with their crates' native code and measure the sandbox's share.
//! A decider that is not the sandbox gives up the sandbox's limits for the links it
//! answers: it is a tool for measuring and testing, not for serving untrusted plugins.

use std::sync::Arc;

use portcullis_model::{
    Decision, DecisionContext, Fault, McpRequest, OAuthProfile, OAuthRequest, PlanRequest,
};

use crate::answer::{RawPlan, RawToolSet};
use crate::call;
use crate::engine::Engine;
use crate::plugin::Plugin;

/// A chain link bound to a loaded plugin version, with the operator's settings for it.
#[derive(Clone)]
pub struct Link {
    pub plugin: Arc<Plugin>,
    /// The settings as the JSON object text the plugin receives (`{}` without any).
    pub settings: Arc<str>,
}

/// Answers one link's call. The answers are the plugin's own, unchecked: the chain checks
/// them. A call that gives no answer is a [`Fault`], which the chain turns into a deny.
pub trait Decider: Send + Sync {
    fn access(&self, link: &Link, ctx: &DecisionContext) -> Result<Decision, Fault>;

    /// `request.arguments` is already `None` unless the plugin declared it reads them.
    fn request(
        &self,
        link: &Link,
        ctx: &DecisionContext,
        request: &McpRequest,
    ) -> Result<Decision, Fault>;

    fn permitted_tools(&self, link: &Link, ctx: &DecisionContext) -> Result<RawToolSet, Fault>;

    /// The plan, or the provider's refusal in its own words.
    fn plan(
        &self,
        provider: &Plugin,
        request: &PlanRequest,
    ) -> Result<Result<RawPlan, String>, Fault>;

    /// The provider's OAuth profile, or its refusal in its own words.
    fn oauth(
        &self,
        provider: &Plugin,
        request: &OAuthRequest,
    ) -> Result<Result<OAuthProfile, String>, Fault>;

    /// Whether answering for `plugin` blocks the thread (a sandboxed call does). A chain
    /// with any such link runs on the blocking pool, within one instance slot and the
    /// wall-clock timeout; a chain of links answered without blocking runs inline.
    fn blocks(&self, _plugin: &Plugin) -> bool {
        true
    }
}

/// The default decider: each call is one sandboxed call of the plugin's component.
pub(crate) struct WasmDecider {
    engine: Arc<Engine>,
}

impl WasmDecider {
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

impl Decider for WasmDecider {
    fn access(&self, link: &Link, ctx: &DecisionContext) -> Result<Decision, Fault> {
        call::policy(&self.engine, &link.plugin, |store, instance| {
            instance.access(store, ctx, &link.settings)
        })
    }

    fn request(
        &self,
        link: &Link,
        ctx: &DecisionContext,
        request: &McpRequest,
    ) -> Result<Decision, Fault> {
        call::policy(&self.engine, &link.plugin, |store, instance| {
            instance.request(store, ctx, &link.settings, request)
        })
    }

    fn permitted_tools(&self, link: &Link, ctx: &DecisionContext) -> Result<RawToolSet, Fault> {
        call::policy(&self.engine, &link.plugin, |store, instance| {
            instance.permitted_tools(store, ctx, &link.settings)
        })
    }

    fn plan(
        &self,
        provider: &Plugin,
        request: &PlanRequest,
    ) -> Result<Result<RawPlan, String>, Fault> {
        call::provider(&self.engine, provider, |store, instance| {
            instance.plan(store, request)
        })
    }

    fn oauth(
        &self,
        provider: &Plugin,
        request: &OAuthRequest,
    ) -> Result<Result<OAuthProfile, String>, Fault> {
        call::provider(&self.engine, provider, |store, instance| {
            instance.oauth(store, request)
        })
    }
}
