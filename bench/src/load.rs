//! The load generator: closed-loop virtual clients, each on its own keep-alive
//! connection (and MCP session, when the target has sessions), sending one pre-built
//! request after another for a fixed time. Latencies are kept whole and sorted once at
//! the end, so the percentiles are exact rather than bucketed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use crate::http::{Conn, McpTarget, Prepared};

/// What one measured point gave.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub clients: usize,
    /// Successful requests measured.
    pub count: usize,
    /// Failed requests during the measured window (status, JSON-RPC error, transport).
    pub errors: usize,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    /// Successful requests per second over the measured window.
    pub throughput: f64,
    /// The first few failures, for the log.
    pub failures: Vec<String>,
    /// Requests sent in all, warm-up included: the divisor of the CPU figures.
    pub sent: usize,
    /// CPU time (user + system) per request of the proxy process, in µs.
    pub proxy_cpu_us: Option<f64>,
    /// CPU time per request of this process: the load generator and the upstream.
    pub harness_cpu_us: Option<f64>,
}

/// CPU time (user + system) a process has used, from `/proc/<pid>/stat`, in µs.
pub fn cpu_time_us(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesized command name, which may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz * 1e6)
}

impl Stats {
    pub fn from_samples(
        clients: usize,
        mut samples: Vec<u64>,
        errors: usize,
        window: Duration,
    ) -> Self {
        samples.sort_unstable();
        let pct = |q: f64| -> f64 {
            if samples.is_empty() {
                return f64::NAN;
            }
            let index = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[index] as f64 / 1000.0
        };
        Self {
            clients,
            count: samples.len(),
            errors,
            p50_us: pct(0.50),
            p90_us: pct(0.90),
            p99_us: pct(0.99),
            throughput: samples.len() as f64 / window.as_secs_f64(),
            failures: Vec::new(),
            sent: 0,
            proxy_cpu_us: None,
            harness_cpu_us: None,
        }
    }
}

/// How long to load, and an optional flag that ends the run early.
#[derive(Clone)]
pub struct Plan {
    pub clients: usize,
    pub warmup: Duration,
    pub measure: Duration,
    pub stop: Option<Arc<AtomicBool>>,
}

/// Opens `clients` connections (and sessions, when the target mints them) before any
/// measurement starts, so neither is in the figures.
async fn connect_all(
    target: &McpTarget,
    body: &Value,
    clients: usize,
) -> anyhow::Result<Vec<(Conn, Prepared)>> {
    let base = target.prepared(body);
    let mut out = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut conn = Conn::open(target.addr).await?;
        let request = match target
            .open_session(&mut conn)
            .await
            .context("open a session")?
        {
            Some(id) => base.with_header("mcp-session-id", &id),
            None => base.clone(),
        };
        out.push((conn, request));
    }
    Ok(out)
}

/// Sends `body` to `target` from `plan.clients` closed-loop clients.
/// `proxy_pid` is the process whose CPU time per request is reported, if any.
pub async fn run(
    target: &McpTarget,
    body: &Value,
    plan: &Plan,
    proxy_pid: Option<u32>,
) -> anyhow::Result<Stats> {
    let clients = connect_all(target, body, plan.clients).await?;
    drive(clients, plan, proxy_pid).await
}

/// [`run`] with the clients split evenly over `targets` (several replicas of one proxy),
/// measured as one population.
pub async fn run_split(targets: &[McpTarget], body: &Value, plan: &Plan) -> anyhow::Result<Stats> {
    let mut clients = Vec::with_capacity(plan.clients);
    for (n, target) in targets.iter().enumerate() {
        let share = plan.clients / targets.len() + usize::from(n < plan.clients % targets.len());
        clients.extend(connect_all(target, body, share).await?);
    }
    drive(clients, plan, None).await
}

async fn drive(
    clients: Vec<(Conn, Prepared)>,
    plan: &Plan,
    proxy_pid: Option<u32>,
) -> anyhow::Result<Stats> {
    let proxy_cpu = proxy_pid.and_then(|pid| cpu_time_us(Some(pid)));
    let harness_cpu = cpu_time_us(None);
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.measure;
    let mut tasks = Vec::with_capacity(clients.len());
    for (conn, request) in clients {
        let stop = plan.stop.clone();
        tasks.push(tokio::spawn(client(conn, request, measure_from, end, stop)));
    }
    let mut samples = Vec::new();
    let mut errors = 0;
    let mut failures = Vec::new();
    let mut last = measure_from;
    let mut sent = 0;
    for task in tasks {
        let outcome = task.await?;
        sent += outcome.sent;
        samples.extend(outcome.samples);
        errors += outcome.errors;
        last = last.max(outcome.finished);
        for failure in outcome.failures {
            if failures.len() < 5 {
                failures.push(failure);
            }
        }
    }
    let window = last
        .saturating_duration_since(measure_from)
        .max(Duration::from_millis(1));
    let mut stats = Stats::from_samples(plan.clients, samples, errors, window);
    stats.failures = failures;
    stats.sent = sent;
    let per_request = |before: Option<f64>, after: Option<f64>| match (before, after) {
        (Some(b), Some(a)) if sent > 0 => Some((a - b) / sent as f64),
        _ => None,
    };
    stats.proxy_cpu_us = per_request(proxy_cpu, proxy_pid.and_then(|pid| cpu_time_us(Some(pid))));
    stats.harness_cpu_us = per_request(harness_cpu, cpu_time_us(None));
    Ok(stats)
}

struct Outcome {
    sent: usize,
    samples: Vec<u64>,
    errors: usize,
    failures: Vec<String>,
    finished: Instant,
}

async fn client(
    mut conn: Conn,
    request: Prepared,
    measure_from: Instant,
    end: Instant,
    stop: Option<Arc<AtomicBool>>,
) -> Outcome {
    let mut samples = Vec::with_capacity(64 * 1024);
    let mut errors = 0;
    let mut failures = Vec::new();
    let mut count = 0;
    loop {
        let sent = Instant::now();
        if sent >= end || stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
            return Outcome {
                sent: count,
                samples,
                errors,
                failures,
                finished: sent,
            };
        }
        count += 1;
        let answer = conn.send(request.request()).await;
        let took = sent.elapsed();
        let measured = sent >= measure_from;
        match answer {
            Ok(answer) if answer.is_rpc_success() => {
                if measured {
                    samples.push(took.as_nanos() as u64);
                }
            }
            Ok(answer) => {
                if measured {
                    errors += 1;
                    if failures.len() < 5 {
                        failures.push(format!(
                            "{}: {}",
                            answer.status,
                            String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)])
                        ));
                    }
                }
            }
            Err(error) => {
                if measured {
                    errors += 1;
                    if failures.len() < 5 {
                        failures.push(format!("transport: {error:#}"));
                    }
                }
                // A broken connection is replaced; the loop stays time-bounded.
                match Conn::open(request.addr).await {
                    Ok(fresh) => conn = fresh,
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }
    }
}

/// Opens `count` sessions from `concurrency` clients and leaves them open (idle);
/// the latency of each `initialize` + `notifications/initialized` pair and the rate.
pub async fn open_sessions(
    target: &McpTarget,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Stats> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let target = target.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(target.addr).await?;
            let mut samples = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let sent = Instant::now();
                let session = target.open_session(&mut conn).await?;
                samples.push(sent.elapsed().as_nanos() as u64);
                anyhow::ensure!(
                    session.is_some() || target.token.is_none(),
                    "the proxy minted no session id"
                );
            }
            anyhow::Ok(samples)
        }));
    }
    let mut samples = Vec::with_capacity(count);
    for task in tasks {
        samples.extend(task.await??);
    }
    Ok(Stats::from_samples(
        concurrency,
        samples,
        0,
        started.elapsed(),
    ))
}
