//! # portcullis-bench
//!
//! The benchmark harness of design.md's "Performance budget", in one run on loopback:
//! the echo upstream in-process, Portcullis as child processes (release builds, one per
//! decision mode), and a low-overhead load generator. It owns the order of the
//! measurements and where the results go (`bench/results/`); the pieces are
//!
//! | module | owns |
//! |---|---|
//! | `http` | the keep-alive HTTP/1.1 client and the requests, built once |
//! | `proxy` | building, starting, stopping and setting up Portcullis processes |
//! | `load` | the closed-loop load generator and session opener |
//! | `short` | the short-runs workload: many runs of eight messages each |
//! | `replicas` | one replica on SQLite against two on one PostgreSQL database |
//! | `decision` | one decision through the runtime, timed in this process |
//! | `report` | the markdown tables, the target check and the SVG plot |
//!
//! `cargo run --release -p portcullis-bench -- [--secs N] [--sessions N] [--runs N] [--no-build] [--replicas-only] [--short-only] [--lists-only]`
//! (`--replicas-only`, `--short-only` and `--lists-only` measure the replica rows, the short
//! runs or the `tools/list` rows of the floor and the default proxy alone and print them,
//! writing nothing: for a profiler to attach to, or to compare two builds).

mod decision;
mod http;
mod load;
mod proxy;
mod replicas;
mod report;
mod short;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use portcullis_test_upstreams::{McpUpstream, ToolSet, Upstream, catalogue, echo_bench};
use serde_json::{Value, json};

use crate::http::McpTarget;
use crate::load::{Plan, Stats};
use crate::proxy::{Binaries, Binary, Proxy, Setup};
use crate::report::{Mode, Results, Swaps};

const LEVELS: [usize; 4] = [1, 8, 32, 128];
const SWAPS: usize = 20;
const SWAP_CLIENTS: usize = 8;
/// Plugins installed before the restarts are timed.
const INSTALLED: usize = 10;

struct Options {
    secs: f64,
    sessions: usize,
    runs: usize,
    no_build: bool,
    replicas_only: bool,
    short_only: bool,
    lists_only: bool,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        secs: 4.0,
        sessions: 10_000,
        runs: 300,
        no_build: false,
        replicas_only: false,
        short_only: false,
        lists_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--secs" => options.secs = args.next().context("--secs N")?.parse()?,
            "--sessions" => options.sessions = args.next().context("--sessions N")?.parse()?,
            "--runs" => options.runs = args.next().context("--runs N")?.parse()?,
            "--no-build" => options.no_build = true,
            "--replicas-only" => options.replicas_only = true,
            "--short-only" => options.short_only = true,
            "--lists-only" => options.lists_only = true,
            other => {
                bail!(
                    "unknown argument {other}; use --secs N, --sessions N, --runs N, --no-build, \
                     --replicas-only, --short-only, --lists-only"
                )
            }
        }
    }
    anyhow::ensure!(
        options.secs > 0.0 && options.secs <= 30.0,
        "--secs is 0 to 30"
    );
    anyhow::ensure!(
        options.sessions >= 1_000 && options.sessions <= 20_000,
        "--sessions is 1000 to 20000"
    );
    anyhow::ensure!(
        options.runs >= 10 && options.runs <= 10_000,
        "--runs is 10 to 10000"
    );
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    let options = options()?;
    // Builds run before the runtime starts: they are blocking and long.
    let binaries = proxy::build(options.no_build)?;
    // Two workers, like the machine's two cores: the upstream and the load generator
    // share them, and the proxy processes compete with both.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if options.replicas_only {
        let rows = runtime.block_on(replicas_only(&options, &binaries))?;
        println!("{}", report::replicas_section(&rows));
        return Ok(());
    }
    if options.short_only {
        return runtime.block_on(short_only(&options, &binaries));
    }
    if options.lists_only {
        return runtime.block_on(lists_only(&options, &binaries));
    }
    let results = runtime.block_on(bench(&options, &binaries))?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    std::fs::create_dir_all(&dir)?;
    let markdown = report::markdown(&results);
    std::fs::write(dir.join("latest.md"), &markdown)?;
    std::fs::write(dir.join("latency.svg"), report::svg(&results.calls))?;
    println!("{markdown}");
    println!(
        "written: {} and {}",
        dir.join("latest.md").display(),
        dir.join("latency.svg").display()
    );
    Ok(())
}

/// The `[limits]` of every proxied mode: the harness drives one run with many clients and
/// 10,000 sessions, so the per-run and per-connector rate and session limits, which a
/// batch job's proxy keeps, are lifted; everything else stays at its default.
const LIMITS: &str = "[limits]\nrequests_per_second_per_run = 0\n\
                      requests_per_second_per_connector = 0\nsessions_per_run = 100000\n\
                      streams_per_run = 100000\n";

/// The configuration file of each proxied mode.
fn config(mode: Mode) -> String {
    match mode {
        Mode::Direct | Mode::Floor | Mode::Wasm => LIMITS.to_owned(),
        Mode::WasmEveryRequest | Mode::NativeEveryRequest => {
            format!("{LIMITS}[plugins]\nmemoize = false\n")
        }
    }
}

struct Proxied {
    mode: Mode,
    proxy: Proxy,
    setup: Setup,
}

impl Proxied {
    fn target(&self, connector: &str) -> McpTarget {
        McpTarget {
            addr: self.proxy.addr,
            path: format!("/mcp/{connector}"),
            token: Some(self.setup.run_token.clone()),
        }
    }
}

fn direct(upstream: &Upstream) -> McpTarget {
    McpTarget {
        addr: upstream.addr(),
        path: portcullis_test_upstreams::MCP_PATH.to_owned(),
        token: None,
    }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "Machine: {cores} cores ({cpu}), shared by the load generator, the in-process upstream and the proxy; load average at start {}.",
        load_average()
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

async fn bench(options: &Options, binaries: &Binaries) -> anyhow::Result<Results> {
    let mut results = Results {
        machine: machine(),
        ..Results::default()
    };
    let (echo, list_upstream) = upstreams().await;
    let temp = tempfile::tempdir()?;
    let data = |name: &str| -> PathBuf { temp.path().join(name) };

    // All three proxies run at once so the points of one concurrency level are measured
    // back to back, interleaved with direct, rather than minutes apart on a shared machine.
    let mut proxied = Vec::new();
    for (mode, binary) in [
        (Mode::Wasm, Binary::Wasm),
        (Mode::WasmEveryRequest, Binary::Wasm),
        (Mode::NativeEveryRequest, Binary::Native),
    ] {
        let dir = data(&format!("{mode:?}").to_lowercase());
        let proxy = Proxy::start(binaries, binary, &dir, &config(mode)).await?;
        let setup = proxy::setup(&proxy, &echo.url(), &list_upstream.url()).await?;
        eprintln!("{} on {} (pid {})", mode.label(), proxy.addr, proxy.pid());
        proxied.push(Proxied { mode, proxy, setup });
    }
    let floor_echo = Proxy::floor(binaries, &echo.url()).await?;
    let floor_list = Proxy::floor(binaries, &list_upstream.url()).await?;
    let floor = |proxy: &Proxy| McpTarget {
        addr: proxy.addr,
        path: "/mcp".into(),
        token: None,
    };

    let call = echo_call();
    let list = portcullis_test_upstreams::wire::request(3, "tools/list", json!({}));
    let plan = |clients| measured(options, clients);
    results.settings = format!(
        "Each point: 0.75 s warm-up, then {:.1} s measured, closed loop (each client sends its next request when the previous answer is read), one keep-alive HTTP/1.1 connection and one MCP session per client, TCP_NODELAY on every socket.",
        options.secs
    );

    for clients in LEVELS {
        let stats = point(&direct(&echo), &call, &plan(clients), None).await?;
        results.calls.push((Mode::Direct, stats));
        let stats = point(
            &floor(&floor_echo),
            &call,
            &plan(clients),
            Some(floor_echo.pid()),
        )
        .await?;
        results.calls.push((Mode::Floor, stats));
        for p in &proxied {
            let stats = point(
                &p.target(&p.setup.echo_connector),
                &call,
                &plan(clients),
                Some(p.proxy.pid()),
            )
            .await?;
            results.calls.push((p.mode, stats));
        }
    }
    results.replicas = Some(
        replicas::measure(
            binaries,
            temp.path(),
            (&echo.url(), &list_upstream.url()),
            &call,
            &plan(replicas::CLIENTS),
        )
        .await?,
    );
    // The listing answer is ~30 KB direct and filtered by the proxy: two levels suffice.
    for clients in [1, 8] {
        let stats = point(&direct(&list_upstream), &list, &plan(clients), None).await?;
        check_listing(&direct(&list_upstream), &list, 100).await?;
        results.lists.push((Mode::Direct, stats));
        let target = floor(&floor_list);
        check_listing(&target, &list, 100).await?;
        let stats = point(&target, &list, &plan(clients), Some(floor_list.pid())).await?;
        results.lists.push((Mode::Floor, stats));
        for p in &proxied {
            let target = p.target(&p.setup.list_connector);
            check_listing(&target, &list, 10).await?;
            let stats = point(&target, &list, &plan(clients), Some(p.proxy.pid())).await?;
            results.lists.push((p.mode, stats));
        }
    }

    let default = &proxied[0];
    for (mode, path) in [
        (Mode::Direct, short::Path::Fixed(direct(&echo))),
        (Mode::Floor, short::Path::Fixed(floor(&floor_echo))),
        (
            Mode::Wasm,
            short::Path::Proxied {
                proxy: &default.proxy,
                setup: &default.setup,
            },
        ),
    ] {
        let runs = short::measure(&path, options.runs).await?;
        eprintln!(
            "  short runs, {}: run p50 {:.0} µs, first tools/call p50 {:.0} µs, warm p50 {:.0} µs",
            mode.label(),
            runs.whole.p50_us,
            runs.first_call.p50_us,
            runs.warm_calls.p50_us
        );
        results.short_runs.push((mode, runs));
    }
    floor_echo.stop().await;
    floor_list.stop().await;

    let mut proxied = proxied.into_iter();
    let default = proxied.next().expect("the default proxy");
    for other in proxied {
        other.proxy.stop().await;
    }
    results.decision = tokio::task::spawn_blocking(decision::measure).await??;
    eprintln!(
        "  one decision, fresh instance: p50 {:.1} µs, p99 {:.1} µs",
        results.decision.p50_us, results.decision.p99_us
    );
    results.swaps = swaps(&default, &call).await?;
    for i in 0..INSTALLED {
        let wasm = with_custom_section(declared_tools()?, format!("extra {i}").as_bytes())?;
        let status = default
            .proxy
            .install_plugin(&format!("bench-extra-{i}"), wasm)
            .await?;
        anyhow::ensure!(status.is_success(), "installing bench-extra-{i}: {status}");
    }
    results.installed = INSTALLED;

    // Restart: the same binary and data directory, timed from spawn to /healthz.
    let dir = data("wasm");
    default.proxy.stop().await;
    let mut proxy = None;
    for _ in 0..3 {
        if let Some(previous) = proxy.take() {
            Proxy::stop(previous).await;
        }
        let started = Proxy::start(binaries, Binary::Wasm, &dir, &config(Mode::Wasm)).await?;
        results.restarts.push(started.ready_after);
        proxy = Some(started);
    }
    let proxy = proxy.expect("started three times");

    // Memory: the restarted proxy, warmed by one call, then idle sessions.
    let restarted = Proxied {
        mode: Mode::Wasm,
        proxy,
        setup: default.setup.clone(),
    };
    let target = restarted.target(&restarted.setup.echo_connector);
    point(
        &target,
        &call,
        &Plan {
            clients: 1,
            warmup: Duration::ZERO,
            measure: Duration::from_millis(200),
            stop: None,
        },
        None,
    )
    .await?;
    results.rss_idle = restarted.proxy.rss_bytes()?;
    let first = load::open_sessions(&target, 1_000, 8).await?;
    results.rss_1k = restarted.proxy.rss_bytes()?;
    let rest = load::open_sessions(&target, options.sessions - 1_000, 8).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    results.rss_10k = restarted.proxy.rss_bytes()?;
    results.sessions_proxy = merge_sessions(&first, &rest);
    results.sessions_direct = load::open_sessions(&direct(&echo), 1_000, 8).await?;
    restarted.proxy.stop().await;

    results
        .machine
        .push_str(&format!(" Load average at the end: {}.", load_average()));
    drop(temp);
    Ok(results)
}

/// The replica rows alone.
async fn replicas_only(
    options: &Options,
    binaries: &Binaries,
) -> anyhow::Result<replicas::Replicas> {
    let (echo, list_upstream) = upstreams().await;
    let temp = tempfile::tempdir()?;
    replicas::measure(
        binaries,
        temp.path(),
        (&echo.url(), &list_upstream.url()),
        &echo_call(),
        &measured(options, replicas::CLIENTS),
    )
    .await
}

/// The default proxy alone, set up on both upstreams, its pid printed for a profiler.
async fn default_proxy(
    binaries: &Binaries,
    dir: &Path,
    (echo, list): (&Upstream, &Upstream),
) -> anyhow::Result<(Proxy, Setup)> {
    let proxy = Proxy::start(binaries, Binary::Wasm, dir, &config(Mode::Wasm)).await?;
    let setup = proxy::setup(&proxy, &echo.url(), &list.url()).await?;
    eprintln!(
        "{} on {} (pid {})",
        Mode::Wasm.label(),
        proxy.addr,
        proxy.pid()
    );
    Ok((proxy, setup))
}

async fn short_only(options: &Options, binaries: &Binaries) -> anyhow::Result<()> {
    let (echo, list_upstream) = upstreams().await;
    let temp = tempfile::tempdir()?;
    let (proxy, setup) =
        default_proxy(binaries, &temp.path().join("wasm"), (&echo, &list_upstream)).await?;
    let path = short::Path::Proxied {
        proxy: &proxy,
        setup: &setup,
    };
    let runs = short::measure(&path, options.runs).await?;
    eprintln!(
        "  short runs: run p50 {:.0} µs, session p50 {:.0} µs, tools/list p50 {:.0} µs, first tools/call p50 {:.0} µs, warm p50 {:.0} µs",
        runs.whole.p50_us,
        runs.session.p50_us,
        runs.list.p50_us,
        runs.first_call.p50_us,
        runs.warm_calls.p50_us
    );
    proxy.stop().await;
    Ok(())
}

/// The `tools/list` rows of the floor and the default proxy, printed as they are measured.
async fn lists_only(options: &Options, binaries: &Binaries) -> anyhow::Result<()> {
    let (echo, list_upstream) = upstreams().await;
    let temp = tempfile::tempdir()?;
    let (proxy, setup) =
        default_proxy(binaries, &temp.path().join("wasm"), (&echo, &list_upstream)).await?;
    let floor = Proxy::floor(binaries, &list_upstream.url()).await?;
    let list = portcullis_test_upstreams::wire::request(3, "tools/list", json!({}));
    let floor_target = McpTarget {
        addr: floor.addr,
        path: "/mcp".into(),
        token: None,
    };
    let proxy_target = McpTarget {
        addr: proxy.addr,
        path: format!("/mcp/{}", setup.list_connector),
        token: Some(setup.run_token.clone()),
    };
    check_listing(&proxy_target, &list, 10).await?;
    for clients in [1, 8] {
        let plan = measured(options, clients);
        point(&floor_target, &list, &plan, Some(floor.pid())).await?;
        point(&proxy_target, &list, &plan, Some(proxy.pid())).await?;
    }
    proxy.stop().await;
    floor.stop().await;
    Ok(())
}

/// The upstreams of every measurement: `echo`, and a stateless server listing 100 tools.
async fn upstreams() -> (Upstream, Upstream) {
    let echo = echo_bench().await;
    let list = McpUpstream::stateless()
        .tools(ToolSet::new(catalogue::numbered(100)))
        .start()
        .await;
    (echo, list)
}

/// The measured request: a `tools/call` of `echo`.
fn echo_call() -> Value {
    portcullis_test_upstreams::wire::request(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hello"}}),
    )
}

/// A closed-loop point of `clients`: 0.75 s of warm-up, then `--secs` measured.
fn measured(options: &Options, clients: usize) -> Plan {
    Plan {
        clients,
        warmup: Duration::from_millis(750),
        measure: Duration::from_secs_f64(options.secs),
        stop: None,
    }
}

/// One measured point, printed as it completes.
async fn point(
    target: &McpTarget,
    body: &Value,
    plan: &Plan,
    pid: Option<u32>,
) -> anyhow::Result<Stats> {
    let stats = load::run(target, body, plan, pid).await?;
    eprintln!(
        "  {:>3} clients  {:<36} p50 {:>7.0} µs  p99 {:>7.0} µs  {:>7.0} req/s  {} failed  CPU/req: proxy {:.0} µs, harness {:.0} µs",
        plan.clients,
        target.path,
        stats.p50_us,
        stats.p99_us,
        stats.throughput,
        stats.errors,
        stats.proxy_cpu_us.unwrap_or(0.0),
        stats.harness_cpu_us.unwrap_or(0.0),
    );
    for failure in &stats.failures {
        eprintln!("    failure: {failure}");
    }
    Ok(stats)
}

/// The filtering is part of what is measured: make sure it happens.
async fn check_listing(target: &McpTarget, body: &Value, expected: usize) -> anyhow::Result<()> {
    let mut conn = http::Conn::open(target.addr).await?;
    let session = target.open_session(&mut conn).await?;
    let mut request = target.prepared(body);
    if let Some(id) = &session {
        request = request.with_header("mcp-session-id", id);
    }
    let answer = conn.send(request.request()).await?.json();
    let tools = answer["result"]["tools"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    anyhow::ensure!(
        tools == expected,
        "tools/list gave {tools} tools, expected {expected}: {answer}"
    );
    Ok(())
}

fn merge_sessions(first: &Stats, rest: &Stats) -> Stats {
    if rest.count == 0 {
        return first.clone();
    }
    // The percentiles of the larger batch stand for both; the rate is over both.
    let count = first.count + rest.count;
    let seconds = first.count as f64 / first.throughput + rest.count as f64 / rest.throughput;
    Stats {
        count,
        throughput: count as f64 / seconds,
        ..rest.clone()
    }
}

/// The embedded `declared-tools`.
fn declared_tools() -> anyhow::Result<&'static [u8]> {
    Ok(portcullis_builtins::builtin("declared-tools")
        .context("declared-tools is embedded")?
        .wasm)
}

/// `wasm` with a custom section holding `payload` appended: the same component under
/// another digest.
fn with_custom_section(wasm: &[u8], payload: &[u8]) -> anyhow::Result<Bytes> {
    let name = b"portcullis-bench";
    let size = 1 + name.len() + payload.len();
    anyhow::ensure!(size < 128, "one-byte LEB128 lengths");
    let mut out = wasm.to_vec();
    out.push(0); // custom section
    out.push(size as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(payload);
    Ok(Bytes::from(out))
}

/// The embedded `declared-tools`, and the same component with a custom section appended:
/// another digest, so each swap installs a version different from the serving one.
fn two_builds() -> anyhow::Result<(Bytes, Bytes)> {
    let a = declared_tools()?;
    Ok((Bytes::from_static(a), with_custom_section(a, b"build b")?))
}

/// 20 swaps of `declared-tools` while clients call `echo`, which that plugin decides on.
async fn swaps(p: &Proxied, call: &Value) -> anyhow::Result<Swaps> {
    let (a, b) = two_builds()?;
    let stop = Arc::new(AtomicBool::new(false));
    let plan = Plan {
        clients: SWAP_CLIENTS,
        warmup: Duration::ZERO,
        // A bound in case the swaps hang; they stop the load as soon as they are done.
        measure: Duration::from_secs(120),
        stop: Some(stop.clone()),
    };
    let target = p.target(&p.setup.echo_connector);
    let body = call.clone();
    let load = tokio::spawn(async move { load::run(&target, &body, &plan, None).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut result = Swaps::default();
    for i in 0..SWAPS {
        let bytes = if i % 2 == 0 { b.clone() } else { a.clone() };
        let started = Instant::now();
        let status = p.proxy.install_plugin("declared-tools", bytes).await;
        result
            .install_ms
            .push(started.elapsed().as_secs_f64() * 1000.0);
        result.swaps += 1;
        if !matches!(status, Ok(s) if s.is_success()) {
            result.refused += 1;
            eprintln!("  swap {i} refused: {status:?}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    result.load = load.await??;
    eprintln!(
        "  swaps: {} done, {} refused, {} failed requests of {}",
        result.swaps,
        result.refused,
        result.load.errors,
        result.load.count + result.load.errors
    );
    Ok(result)
}
