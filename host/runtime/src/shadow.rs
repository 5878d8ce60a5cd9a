//! Shadow rollout: a candidate version of a policy plugin is asked every decision the
//! live version is, off the request path, and only counted.
//!
//! Invariants:
//!
//! * **Never on the answer.** A decision is observed after it was made; the observation
//!   is a job on a bounded queue, taken by one background task. Nothing the shadow does
//!   can reach a verdict, and when the queue is full the job is dropped and counted as
//!   skipped rather than waited for.
//! * **Like for like.** Each job asks the live plugin and the candidate the same question,
//!   alone, each in a one-link chain with the live link's settings (the first link of the
//!   chain that asks this kind of decision), through the same chain rules (answer checks,
//!   fail closed). The two answers are compared: a decision agrees when both allow or
//!   both deny; a tool set when the sets are equal.
//! * **Nothing secret kept.** A sample of a disagreement holds the decision kind, the
//!   method, the tool name and both answers' decision and deny reason (for tool sets, the
//!   names only one side permits, at most [`SAMPLE_TOOLS`]). Never tool arguments, which
//!   a job carries only to the two calls and only to a plugin that reads them.
//! * **Bounded.** The queue holds [`QUEUE`] jobs, the samples are the last [`SAMPLES`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use portcullis_model::{ChainConfig, ChainEntry, Decision, DecisionContext, McpRequest, ToolSet};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::chain::{Chains, Runner};
use crate::decider::Decider;
use crate::engine::Engine;
use crate::plugin::{Plugin, PluginSummary};

/// Jobs waiting for the shadow task at most.
pub const QUEUE: usize = 1024;
/// Disagreement samples kept per shadow.
pub const SAMPLES: usize = 20;
/// Tool names one sample lists per side.
pub const SAMPLE_TOOLS: usize = 10;

/// The counts of one shadow, kept across registry generations.
#[derive(Default)]
pub(crate) struct ShadowStats {
    agreements: AtomicU64,
    disagreements: AtomicU64,
    skipped: AtomicU64,
    candidate_faults: AtomicU64,
    samples: Mutex<VecDeque<Sample>>,
    started_ms: AtomicU64,
}

impl ShadowStats {
    pub fn new() -> Arc<Self> {
        let stats = Self::default();
        stats.started_ms.store(now_ms(), Ordering::Relaxed);
        Arc::new(stats)
    }
}

/// A candidate in the shadow of a live plugin, bound to one registry generation.
pub(crate) struct Shadow {
    pub candidate: Arc<Plugin>,
    pub stats: Arc<ShadowStats>,
    /// The live plugin alone in each chain that asks it, with that link's settings.
    live: Chains,
    /// The candidate in the same one-link chains.
    trial: Chains,
    asks: Asks,
}

/// Which decisions the live plugin takes part in.
#[derive(Clone, Copy, Default)]
struct Asks {
    access: bool,
    request: bool,
    tools: bool,
}

impl Shadow {
    /// `candidate` shadowing `live` under the chain configuration `config`.
    pub fn new(
        live: &Arc<Plugin>,
        candidate: Arc<Plugin>,
        stats: Arc<ShadowStats>,
        config: &ChainConfig,
        generation: u64,
    ) -> Result<Self, String> {
        let first = |entries: &[ChainEntry]| -> Vec<ChainEntry> {
            entries
                .iter()
                .find(|e| e.plugin() == &*live.name)
                .cloned()
                .into_iter()
                .collect()
        };
        let single = ChainConfig {
            access: first(&config.access),
            request: first(&config.request),
            tools: first(&config.tools),
            providers: BTreeMap::new(),
        };
        let asks = Asks {
            access: !single.access.is_empty(),
            request: !single.request.is_empty(),
            tools: !single.tools.is_empty(),
        };
        let alone = |plugin: &Arc<Plugin>| {
            let plugins = BTreeMap::from([(live.name.clone(), plugin.clone())]);
            Chains::resolve(&single, &plugins, generation)
        };
        Ok(Self {
            live: alone(live)?,
            trial: alone(&candidate)?,
            candidate,
            stats,
            asks,
        })
    }
}

/// One decision to ask both versions again.
pub(crate) enum Job {
    Access(Arc<Shadow>, Arc<DecisionContext>),
    Request(Arc<Shadow>, Arc<DecisionContext>, McpRequest),
    Tools(Arc<Shadow>, Arc<DecisionContext>),
}

/// The queue to the shadow task, and the task itself once started.
pub(crate) struct Observer {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Observer {
    pub fn new() -> Self {
        Self {
            tx: Mutex::new(None),
        }
    }

    /// Starts the shadow task if it is not running; needs a tokio runtime.
    pub fn start(&self, engine: Arc<Engine>, decider: Arc<dyn Decider>) {
        let mut tx = self.tx.lock().expect("observer lock");
        if tx.is_some() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (sender, receiver) = mpsc::channel(QUEUE);
        handle.spawn(work(receiver, engine, decider));
        *tx = Some(sender);
    }

    /// Queues the observation of an access decision, for each shadow it concerns.
    pub fn access<'a>(
        &self,
        shadows: impl Iterator<Item = &'a Arc<Shadow>>,
        ctx: &Arc<DecisionContext>,
    ) {
        for shadow in shadows.filter(|s| s.asks.access) {
            self.send(Job::Access(shadow.clone(), ctx.clone()), shadow);
        }
    }

    pub fn request<'a>(
        &self,
        shadows: impl Iterator<Item = &'a Arc<Shadow>>,
        ctx: &Arc<DecisionContext>,
        request: &McpRequest,
    ) {
        for shadow in shadows.filter(|s| s.asks.request) {
            let job = Job::Request(shadow.clone(), ctx.clone(), request.clone());
            self.send(job, shadow);
        }
    }

    pub fn tools<'a>(
        &self,
        shadows: impl Iterator<Item = &'a Arc<Shadow>>,
        ctx: &Arc<DecisionContext>,
    ) {
        for shadow in shadows.filter(|s| s.asks.tools) {
            self.send(Job::Tools(shadow.clone(), ctx.clone()), shadow);
        }
    }

    fn send(&self, job: Job, shadow: &Shadow) {
        let tx = self.tx.lock().expect("observer lock");
        let sent = tx.as_ref().is_some_and(|tx| tx.try_send(job).is_ok());
        if !sent {
            shadow.stats.skipped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The shadow task: one job at a time, until the runtime is dropped.
async fn work(mut jobs: mpsc::Receiver<Job>, engine: Arc<Engine>, decider: Arc<dyn Decider>) {
    while let Some(job) = jobs.recv().await {
        let run = Runner {
            decider: &decider,
            engine: &engine,
        };
        match job {
            Job::Access(shadow, ctx) => {
                let live = shadow.live.access(run, ctx.clone()).await;
                let trial = shadow.trial.access(run, ctx).await;
                compare_decisions(&shadow, "access", None, None, &live.value, &trial.value);
                count_fault(&shadow, trial.fault.is_some());
            }
            Job::Request(shadow, ctx, request) => {
                let live = shadow.live.request(run, ctx.clone(), request.clone()).await;
                let trial = shadow.trial.request(run, ctx, request.clone()).await;
                let (method, tool) = (Some(request.method), request.tool);
                compare_decisions(&shadow, "request", method, tool, &live.value, &trial.value);
                count_fault(&shadow, trial.fault.is_some());
            }
            Job::Tools(shadow, ctx) => {
                let live = shadow.live.permitted_tools(run, ctx.clone()).await;
                let trial = shadow.trial.permitted_tools(run, ctx).await;
                compare_tools(&shadow, &live.value, &trial.value);
                count_fault(&shadow, trial.fault.is_some());
            }
        }
    }
}

fn count_fault(shadow: &Shadow, faulted: bool) {
    if faulted {
        shadow
            .stats
            .candidate_faults
            .fetch_add(1, Ordering::Relaxed);
    }
}

fn compare_decisions(
    shadow: &Shadow,
    decision: &'static str,
    method: Option<String>,
    tool: Option<String>,
    live: &Decision,
    trial: &Decision,
) {
    if live.is_allow() == trial.is_allow() {
        shadow.stats.agreements.fetch_add(1, Ordering::Relaxed);
        return;
    }
    disagree(
        shadow,
        Sample {
            at_ms: now_ms(),
            decision,
            method,
            tool,
            live: Answer::of(live),
            candidate: Answer::of(trial),
        },
    );
}

fn compare_tools(shadow: &Shadow, live: &ToolSet, trial: &ToolSet) {
    if live == trial {
        shadow.stats.agreements.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let only = |a: &ToolSet, b: &ToolSet| -> Vec<String> {
        match a {
            ToolSet::All => vec!["*".to_owned()],
            ToolSet::Only(names) => names
                .iter()
                .filter(|n| !b.contains(n))
                .take(SAMPLE_TOOLS)
                .cloned()
                .collect(),
        }
    };
    let answer = |permits_only: Vec<String>| Answer {
        decision: "tools",
        reason: None,
        permits_only,
    };
    disagree(
        shadow,
        Sample {
            at_ms: now_ms(),
            decision: "tools",
            method: Some("tools/list".to_owned()),
            tool: None,
            live: answer(only(live, trial)),
            candidate: answer(only(trial, live)),
        },
    );
}

fn disagree(shadow: &Shadow, sample: Sample) {
    shadow.stats.disagreements.fetch_add(1, Ordering::Relaxed);
    let mut samples = shadow.stats.samples.lock().expect("samples lock");
    if samples.len() == SAMPLES {
        samples.pop_front();
    }
    samples.push_back(sample);
}

/// One disagreement, as `GET /plugins/{name}/shadow` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub at_ms: u64,
    /// `access`, `request` or `tools`.
    pub decision: &'static str,
    pub method: Option<String>,
    pub tool: Option<String>,
    pub live: Answer,
    pub candidate: Answer,
}

/// One side's answer in a sample.
#[derive(Clone, Debug, Serialize)]
pub struct Answer {
    /// `allow`, `deny`, or `tools` for a tool set.
    pub decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a tool set: the names this side permits and the other does not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub permits_only: Vec<String>,
}

impl Answer {
    fn of(decision: &Decision) -> Self {
        match decision {
            Decision::Allow => Answer {
                decision: "allow",
                reason: None,
                permits_only: Vec::new(),
            },
            Decision::Deny(denial) => Answer {
                decision: "deny",
                reason: Some(denial.reason.clone()),
                permits_only: Vec::new(),
            },
        }
    }
}

/// What `GET /plugins/{name}/shadow` answers.
#[derive(Clone, Debug, Serialize)]
pub struct ShadowReport {
    pub candidate: PluginSummary,
    /// Unix milliseconds when the candidate started shadowing.
    pub started_at_ms: u64,
    pub agreements: u64,
    pub disagreements: u64,
    /// Decisions not compared because the queue was full.
    pub skipped: u64,
    /// Comparisons where the candidate failed (trap, limit, malformed answer).
    pub candidate_faults: u64,
    /// The latest disagreements, oldest first.
    pub samples: Vec<Sample>,
}

impl Shadow {
    pub fn report(&self) -> ShadowReport {
        let stats = &self.stats;
        ShadowReport {
            candidate: self.candidate.summary(None),
            started_at_ms: stats.started_ms.load(Ordering::Relaxed),
            agreements: stats.agreements.load(Ordering::Relaxed),
            disagreements: stats.disagreements.load(Ordering::Relaxed),
            skipped: stats.skipped.load(Ordering::Relaxed),
            candidate_faults: stats.candidate_faults.load(Ordering::Relaxed),
            samples: stats
                .samples
                .lock()
                .expect("samples lock")
                .iter()
                .cloned()
                .collect(),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
