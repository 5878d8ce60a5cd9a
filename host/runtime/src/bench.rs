//! Entry points for the runtime's benchmarks, compiled only with the `bench-internals`
//! feature. **None of this is on the request path**, and nothing else may use it.
//!
//! The request path instantiates every plugin afresh for each call (see `sandbox`); these
//! functions exist to measure what that costs. [`Runtime::bench_fresh_request`] runs one
//! plugin call exactly as a chain does, minus the hop to the blocking pool, and
//! [`ReusedInstance`] keeps one instance across calls, which the runtime never does: state
//! would leak from one decision to the next, and an instance that trapped would be reused
//! in an unknown state.

use std::sync::Arc;

use wasmtime::Store;

use crate::abi::v0_1_0::{self, policy};
use crate::evaluate;
use crate::registry::Pre;
use crate::sandbox::{self, HostState};
use crate::{Decision, DecisionContext, Fault, McpRequest, Runtime};

impl Runtime {
    /// One `request` call of plugin `name` with a fresh instance, on the calling thread.
    pub fn bench_fresh_request(
        &self,
        name: &str,
        ctx: &DecisionContext,
        request: &McpRequest,
    ) -> Result<Decision, Fault> {
        let plugin = self.registry.load().current.get(name).cloned();
        let plugin = plugin.ok_or_else(|| Fault::Missing(name.to_owned()))?;
        let mut wit_ctx = v0_1_0::decision_context(ctx);
        wit_ctx.settings = "{}".to_owned();
        evaluate::request(&self.sandbox, &plugin, &wit_ctx, request)
    }

    /// One instance of policy plugin `name`, kept for repeated calls.
    pub fn bench_reused_instance(&self, name: &str) -> Result<ReusedInstance, Fault> {
        let plugin = self.registry.load().current.get(name).cloned();
        let plugin = plugin.ok_or_else(|| Fault::Missing(name.to_owned()))?;
        let Pre::Policy(pre) = &plugin.pre else {
            return Err(Fault::Missing(name.to_owned()));
        };
        let mut store = self.sandbox.store(plugin.name.clone());
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| sandbox::fault(&store, name, e))?;
        Ok(ReusedInstance {
            runtime_sandbox: self.sandbox.clone(),
            name: plugin.name.clone(),
            reads_arguments: plugin.reads_arguments,
            store,
            instance,
        })
    }
}

/// A policy instance that outlives one call. Benchmarks only: see the module docs.
pub struct ReusedInstance {
    runtime_sandbox: Arc<sandbox::Sandbox>,
    name: Arc<str>,
    reads_arguments: bool,
    store: Store<HostState>,
    instance: policy::PolicyPlugin,
}

impl ReusedInstance {
    /// One `request` call on the kept instance, with its answer unchecked.
    pub fn request(
        &mut self,
        ctx: &DecisionContext,
        request: &McpRequest,
    ) -> Result<Decision, Fault> {
        self.runtime_sandbox.restart_deadline(&mut self.store);
        let mut wit_ctx = v0_1_0::decision_context(ctx);
        wit_ctx.settings = "{}".to_owned();
        let wit_request = v0_1_0::mcp_request(request, self.reads_arguments);
        self.instance
            .portcullis_plugin_policy()
            .call_request(&mut self.store, &wit_ctx, &wit_request)
            .map(v0_1_0::decision)
            .map_err(|e| sandbox::fault(&self.store, &self.name, e))
    }
}
