//! The one seam of the runtime: who answers one link's call.
//!
//! A [`Decider`] answers a single call of a single plugin: `access`, `request` or
//! `permitted_tools` for a policy link, `plan` or `oauth` for a provider. Everything around that call
//! is the chain's and is the same whichever decider answers (`chain`): which plugins are
//! asked and in which order, deny-overrides and intersection, the answer checks, the
//! fail-closed mapping of faults to denials, the stamps and the generation.
//!
//! The default is [`WasmDecider`], which runs the plugin's component in the sandbox: a
//! fresh instance per call, or per plugin for the calls of one [`Evaluation`] (see
//! `call`). Another decider is plugged in with
//! [`Runtime::with_decider`](crate::Runtime::with_decider); the benchmark does so to answer
//! the built-in plugins with their crates' native code and measure the sandbox's share.
//! A decider that is not the sandbox gives up the sandbox's limits for the links it
//! answers: it is a tool for measuring and testing, not for serving untrusted plugins.

use std::sync::Arc;

use portcullis_model::{
    Decision, DecisionContext, Fault, McpRequest, OAuthProfile, OAuthRequest, PlanRequest,
};

use crate::answer::{RawPlan, RawToolSet};
use crate::call::{Scope, SlowPlugins};
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

    /// Opens one evaluation: the calls that one chain run, or several chains asked
    /// together about one run on one connector, make. The decider it returns answers them
    /// and may keep what it likes (instances) until it is dropped at the evaluation's end;
    /// nothing may outlive it. `bounds` says where it runs. `None`, the default: `self`
    /// answers each call, and an evaluation with a blocking link always runs on the
    /// blocking pool.
    fn evaluation(&self, _bounds: Bounds) -> Option<Box<dyn Evaluation + '_>> {
        None
    }
}

/// Where one evaluation runs and what it may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// On an async worker: the evaluation must not block it for long, and gives up
    /// instead (see [`Evaluation::gave_up`]).
    pub inline: bool,
    /// The instance slots its caller holds for it: the most instances it may keep at once.
    pub instances: usize,
}

/// The decider of one evaluation (see [`Decider::evaluation`]).
pub trait Evaluation: Decider {
    /// Whether the evaluation gave up to keep the async worker free. Its answers are
    /// then discarded, and it runs again on the blocking pool with the full budget.
    fn gave_up(&self) -> bool;
}

/// The default decider: each call is a sandboxed call of the plugin's component, on a
/// fresh instance, or on the instance its evaluation keeps for the plugin.
pub(crate) struct WasmDecider {
    engine: Arc<Engine>,
    slow: SlowPlugins,
}

impl WasmDecider {
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            slow: SlowPlugins::default(),
        }
    }

    /// A scope for one call on its own, with the full budget.
    fn one_call(&self) -> Scope<'_> {
        Scope::new(&self.engine, &self.slow, 1, false)
    }
}

impl Decider for WasmDecider {
    fn access(&self, link: &Link, ctx: &DecisionContext) -> Result<Decision, Fault> {
        self.one_call().access(link, ctx)
    }

    fn request(
        &self,
        link: &Link,
        ctx: &DecisionContext,
        request: &McpRequest,
    ) -> Result<Decision, Fault> {
        self.one_call().request(link, ctx, request)
    }

    fn permitted_tools(&self, link: &Link, ctx: &DecisionContext) -> Result<RawToolSet, Fault> {
        self.one_call().permitted_tools(link, ctx)
    }

    fn plan(
        &self,
        provider: &Plugin,
        request: &PlanRequest,
    ) -> Result<Result<RawPlan, String>, Fault> {
        self.one_call().plan(provider, request)
    }

    fn oauth(
        &self,
        provider: &Plugin,
        request: &OAuthRequest,
    ) -> Result<Result<OAuthProfile, String>, Fault> {
        self.one_call().oauth(provider, request)
    }

    fn evaluation(&self, bounds: Bounds) -> Option<Box<dyn Evaluation + '_>> {
        Some(Box::new(Scope::new(
            &self.engine,
            &self.slow,
            bounds.instances,
            bounds.inline,
        )))
    }
}

/// A scope answers the calls of its evaluation on the instances it keeps (see `call`).
impl Evaluation for Scope<'_> {
    fn gave_up(&self) -> bool {
        Scope::gave_up(self)
    }
}

impl Decider for Scope<'_> {
    fn access(&self, link: &Link, ctx: &DecisionContext) -> Result<Decision, Fault> {
        self.policy(&link.plugin, |store, instance| {
            instance.access(store, ctx, &link.settings)
        })
    }

    fn request(
        &self,
        link: &Link,
        ctx: &DecisionContext,
        request: &McpRequest,
    ) -> Result<Decision, Fault> {
        self.policy(&link.plugin, |store, instance| {
            instance.request(store, ctx, &link.settings, request)
        })
    }

    fn permitted_tools(&self, link: &Link, ctx: &DecisionContext) -> Result<RawToolSet, Fault> {
        self.policy(&link.plugin, |store, instance| {
            instance.permitted_tools(store, ctx, &link.settings)
        })
    }

    fn plan(
        &self,
        provider: &Plugin,
        request: &PlanRequest,
    ) -> Result<Result<RawPlan, String>, Fault> {
        self.provider(provider, |store, instance| instance.plan(store, request))
    }

    fn oauth(
        &self,
        provider: &Plugin,
        request: &OAuthRequest,
    ) -> Result<Result<OAuthProfile, String>, Fault> {
        self.provider(provider, |store, instance| instance.oauth(store, request))
    }
}
