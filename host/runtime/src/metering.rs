//! Per-plugin metrics: how often each plugin is called, how long its calls take, and how
//! often it fails and why.
//!
//! Calls and their latency are counted by [`Metered`], a [`Decider`] around the one that
//! answers (the sandbox, or a benchmark's), so every link's call is timed whichever
//! decider answers it. Faults are counted from the verdicts the runtime hands out
//! (`Runtime` records them), since some are only found by the chain: a malformed answer
//! by its checks, a wall-clock timeout around the whole chain.
//!
//! The counters are kept per registry name, shared by every version of the name, so the
//! label sets `/metrics` shows are bounded by the number of installed plugins; a deleted
//! plugin's counters are forgotten. Shadow candidates and the runtime's own checks (a
//! chain configuration's trial calls) are not counted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use portcullis_model::{
    Decision, DecisionContext, Fault, McpRequest, OAuthProfile, OAuthRequest, PlanRequest,
};

use crate::answer::{RawPlan, RawToolSet};
use crate::counters::{PluginMetrics, PluginStats};
use crate::decider::{Bounds, Decider, Evaluation, Link};
use crate::plugin::Plugin;

/// The counters of every plugin name the runtime has loaded.
#[derive(Default)]
pub(crate) struct Meters {
    by_name: Mutex<BTreeMap<String, Arc<PluginStats>>>,
}

impl Meters {
    /// The counters of `name`, created on first use.
    pub fn of(&self, name: &str) -> Arc<PluginStats> {
        self.by_name
            .lock()
            .expect("meters lock")
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// Counts `fault` against the plugin it names, or `fallback` when it names none.
    pub fn fault(&self, fault: &Fault, fallback: Option<&str>) {
        let plugin = match fault {
            Fault::CpuDeadline(p) | Fault::MemoryLimit(p) => Some(p.as_str()),
            Fault::Trap { plugin, .. } | Fault::Malformed { plugin, .. } => Some(plugin.as_str()),
            Fault::WallTimeout => fallback,
        };
        let stats = plugin.and_then(|p| self.by_name.lock().expect("meters lock").get(p).cloned());
        if let Some(stats) = stats {
            stats.fault(fault);
        }
    }

    /// Forgets the counters of a plugin that is gone.
    pub fn forget(&self, name: &str) {
        self.by_name.lock().expect("meters lock").remove(name);
    }

    /// Every name's counters, for the names in `loaded`.
    pub fn snapshot<'a>(&self, loaded: impl Iterator<Item = &'a str>) -> Vec<PluginMetrics> {
        let by_name = self.by_name.lock().expect("meters lock");
        loaded
            .filter_map(|name| by_name.get(name).map(|s| s.snapshot(name)))
            .collect()
    }
}

/// A decider that times every call of the one it wraps: the runtime's decider, or one
/// evaluation of it (whose calls share instances), so that both paths are counted. The
/// calls of an evaluation are counted when it ends, and not at all if it gave up: the
/// blocking pool then makes the same calls again, and those count.
pub(crate) struct Metered<D: Wrapped> {
    inner: D,
    /// The calls of an evaluation, until it ends; `None`: counted at once.
    held: Option<HeldCalls>,
}

/// Calls made and not yet counted: each plugin's counters and how long the call took.
type HeldCalls = Mutex<Vec<(Arc<PluginStats>, Duration)>>;

impl Metered<Arc<dyn Decider>> {
    pub fn new(inner: Arc<dyn Decider>) -> Self {
        Self { inner, held: None }
    }
}

/// What [`Metered`] wraps.
pub(crate) trait Wrapped: Send + Sync {
    fn decider(&self) -> &dyn Decider;

    /// Whether it is an evaluation that gave up.
    fn gave_up(&self) -> bool {
        false
    }
}

impl Wrapped for Arc<dyn Decider> {
    fn decider(&self) -> &dyn Decider {
        &**self
    }
}

impl Wrapped for Box<dyn Evaluation + '_> {
    fn decider(&self) -> &dyn Decider {
        &**self
    }

    fn gave_up(&self) -> bool {
        Evaluation::gave_up(&**self)
    }
}

impl<D: Wrapped> Metered<D> {
    fn timed<T>(&self, plugin: &Plugin, call: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let answer = call();
        let elapsed = started.elapsed();
        match &self.held {
            Some(held) => held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((plugin.stats.clone(), elapsed)),
            None => plugin.stats.call(elapsed),
        }
        answer
    }
}

impl<D: Wrapped> Decider for Metered<D> {
    fn access(&self, link: &Link, ctx: &DecisionContext) -> Result<Decision, Fault> {
        self.timed(&link.plugin, || self.inner.decider().access(link, ctx))
    }

    fn request(
        &self,
        link: &Link,
        ctx: &DecisionContext,
        request: &McpRequest,
    ) -> Result<Decision, Fault> {
        self.timed(&link.plugin, || {
            self.inner.decider().request(link, ctx, request)
        })
    }

    fn permitted_tools(&self, link: &Link, ctx: &DecisionContext) -> Result<RawToolSet, Fault> {
        self.timed(&link.plugin, || {
            self.inner.decider().permitted_tools(link, ctx)
        })
    }

    fn plan(
        &self,
        provider: &Plugin,
        request: &PlanRequest,
    ) -> Result<Result<RawPlan, String>, Fault> {
        self.timed(provider, || self.inner.decider().plan(provider, request))
    }

    fn oauth(
        &self,
        provider: &Plugin,
        request: &OAuthRequest,
    ) -> Result<Result<OAuthProfile, String>, Fault> {
        self.timed(provider, || self.inner.decider().oauth(provider, request))
    }

    fn blocks(&self, plugin: &Plugin) -> bool {
        self.inner.decider().blocks(plugin)
    }

    fn evaluation(&self, bounds: Bounds) -> Option<Box<dyn Evaluation + '_>> {
        let inner = self.inner.decider().evaluation(bounds)?;
        Some(Box::new(Metered {
            inner,
            held: Some(Mutex::default()),
        }))
    }
}

impl Evaluation for Metered<Box<dyn Evaluation + '_>> {
    fn gave_up(&self) -> bool {
        Wrapped::gave_up(&self.inner)
    }
}

impl<D: Wrapped> Drop for Metered<D> {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else {
            return;
        };
        if !self.inner.gave_up() {
            for (stats, elapsed) in held.into_inner().unwrap_or_else(PoisonError::into_inner) {
                stats.call(elapsed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_faults_are_by_kind() {
        let meters = Meters::default();
        let stats = meters.of("p");
        stats.call(Duration::from_millis(1));
        meters.fault(&Fault::CpuDeadline("p".into()), None);
        meters.fault(&Fault::WallTimeout, Some("p"));
        meters.fault(&Fault::WallTimeout, None);
        meters.fault(&Fault::CpuDeadline("unknown".into()), None);
        let [metrics] = &meters.snapshot(["p"].into_iter())[..] else {
            panic!("one plugin")
        };
        assert_eq!(metrics.calls, 1);
        assert_eq!(metrics.latency_buckets.last().unwrap().1, 1);
        let count = |kind: &str| metrics.faults.iter().find(|f| f.0 == kind).unwrap().1;
        assert_eq!(count("plugin_cpu_deadline"), 1);
        assert_eq!(count("plugin_timeout"), 1);
        meters.forget("p");
        assert!(meters.snapshot(["p"].into_iter()).is_empty());
    }
}
