//! What a run found, and how it is written: the markdown tables of
//! `bench/results/latest.md` (with the design's targets checked), the console summary,
//! and `bench/results/latency.svg`, a hand-written plot of latency against concurrency.

use std::fmt::Write as _;
use std::time::Duration;

use crate::load::Stats;
use crate::replicas::Replicas;
use crate::short::ShortRuns;

/// How `tools/call` reached the echo tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Direct,
    /// `portcullis-bench-floor`: the thinnest forwarder on the same stack, no policy.
    Floor,
    /// The default: WebAssembly chains, answers memoized.
    Wasm,
    /// `memoize = false`: every request runs its WebAssembly chains.
    WasmEveryRequest,
    /// `portcullis-bench-native`, `memoize = false`: every request runs the same chains,
    /// the built-ins answered by their native code.
    NativeEveryRequest,
}

pub const MODES: [Mode; 5] = [
    Mode::Direct,
    Mode::Floor,
    Mode::Wasm,
    Mode::WasmEveryRequest,
    Mode::NativeEveryRequest,
];

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Floor => "floor (axum → reqwest, bytes through)",
            Mode::Wasm => "proxy, wasm (default, memoized)",
            Mode::WasmEveryRequest => "proxy, wasm, memoize=false",
            Mode::NativeEveryRequest => "proxy, native, memoize=false",
        }
    }

    fn color(self) -> &'static str {
        match self {
            Mode::Direct => "#222222",
            Mode::Floor => "#999999",
            Mode::Wasm => "#1f77b4",
            Mode::WasmEveryRequest => "#d62728",
            Mode::NativeEveryRequest => "#2ca02c",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Swaps {
    pub swaps: usize,
    pub refused: usize,
    /// Each `PUT /admin/v1/plugins/declared-tools`, in milliseconds.
    pub install_ms: Vec<f64>,
    /// The `tools/call` load that ran meanwhile; its `errors` is the figure that counts.
    pub load: Stats,
}

#[derive(Clone, Debug, Default)]
pub struct Results {
    pub machine: String,
    pub settings: String,
    pub calls: Vec<(Mode, Stats)>,
    pub lists: Vec<(Mode, Stats)>,
    pub sessions_direct: Stats,
    pub sessions_proxy: Stats,
    pub rss_idle: u64,
    pub rss_1k: u64,
    pub rss_10k: u64,
    pub restarts: Vec<Duration>,
    /// Plugins installed in the data directory during the restarts.
    pub installed: usize,
    pub swaps: Swaps,
    pub short_runs: Vec<(Mode, ShortRuns)>,
    /// One decision through the runtime's decider, fresh instance, in the harness.
    pub decision: Stats,
    /// One replica on SQLite against two on PostgreSQL.
    pub replicas: Option<Replicas>,
}

fn find(points: &[(Mode, Stats)], mode: Mode, clients: usize) -> Option<&Stats> {
    points
        .iter()
        .find(|(m, s)| *m == mode && s.clients == clients)
        .map(|(_, s)| s)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn latency_table(out: &mut String, points: &[(Mode, Stats)]) {
    out.push_str(
        "| clients | path | p50 µs | p90 µs | p99 µs | req/s | p50 − direct | p99 − direct | p50 ÷ direct | req/s ÷ direct | proxy CPU µs/req | harness CPU µs/req | failed |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut levels: Vec<usize> = points.iter().map(|(_, s)| s.clients).collect();
    levels.dedup();
    for clients in levels {
        let direct = find(points, Mode::Direct, clients);
        for mode in MODES {
            let Some(s) = find(points, mode, clients) else {
                continue;
            };
            let (dp50, dp99, rp50, rtp) = match (mode, direct) {
                (Mode::Direct, _) | (_, None) => ("".into(), "".into(), "".into(), "".into()),
                (_, Some(d)) => (
                    format!("{:+.0}", s.p50_us - d.p50_us),
                    format!("{:+.0}", s.p99_us - d.p99_us),
                    format!("{:.2}×", s.p50_us / d.p50_us),
                    format!("{:.0}%", 100.0 * s.throughput / d.throughput),
                ),
            };
            let cpu = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "| {clients} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {dp50} | {dp99} | {rp50} | {rtp} | {} | {} | {} |",
                mode.label(),
                s.p50_us,
                s.p90_us,
                s.p99_us,
                s.throughput,
                cpu(s.proxy_cpu_us),
                cpu(s.harness_cpu_us),
                s.errors
            );
        }
    }
}

/// One line per design target: the figure and whether it is met.
pub fn targets(r: &Results) -> Vec<(String, String, bool)> {
    let mut rows = Vec::new();
    let verdict = |ok: bool| ok;
    if let (Some(d), Some(w)) = (
        find(&r.calls, Mode::Direct, 1),
        find(&r.calls, Mode::Wasm, 1),
    ) {
        let p50 = w.p50_us - d.p50_us;
        let p99 = w.p99_us - d.p99_us;
        rows.push((
            "p50 overhead < 50 µs (aim 30), 1 client, default chain".into(),
            format!("{p50:+.0} µs"),
            verdict(p50 < 50.0),
        ));
        rows.push((
            "p99 overhead < 250 µs, 1 client, default chain".into(),
            format!("{p99:+.0} µs"),
            verdict(p99 < 250.0),
        ));
    }
    if let (Some(d), Some(w)) = (
        find(&r.calls, Mode::Direct, 1),
        find(&r.calls, Mode::WasmEveryRequest, 1),
    ) {
        rows.push((
            "same, every request running its WASM chains (memoize=false)".into(),
            format!(
                "p50 {:+.0} µs, p99 {:+.0} µs",
                w.p50_us - d.p50_us,
                w.p99_us - d.p99_us
            ),
            verdict(w.p50_us - d.p50_us < 50.0 && w.p99_us - d.p99_us < 250.0),
        ));
    }
    if let (Some(d), Some(w)) = (
        find(&r.calls, Mode::Direct, 32),
        find(&r.calls, Mode::Wasm, 32),
    ) {
        let ratio = w.throughput / d.throughput;
        rows.push((
            "throughput at 32 clients ≥ 80% of direct".into(),
            format!(
                "{:.0}% ({:.0} of {:.0} req/s)",
                ratio * 100.0,
                w.throughput,
                d.throughput
            ),
            verdict(ratio >= 0.8),
        ));
    }
    rows.push((
        "resident memory with 10,000 idle sessions < 100 MB".into(),
        format!(
            "{:.1} MB ({:.1} MB before the sessions)",
            mb(r.rss_10k),
            mb(r.rss_idle)
        ),
        verdict(r.rss_10k > 0 && mb(r.rss_10k) < 100.0),
    ));
    rows.push((
        "failed requests during 20 plugin swaps under load = 0".into(),
        format!(
            "{} failed of {} ({} swaps, {} refused)",
            r.swaps.load.errors,
            r.swaps.load.count + r.swaps.load.errors,
            r.swaps.swaps,
            r.swaps.refused
        ),
        verdict(r.swaps.swaps == 20 && r.swaps.refused == 0 && r.swaps.load.errors == 0),
    ));
    rows
}

/// One target of issue 11, section 2: what, the target, the figure, whether it is met.
pub struct Check {
    pub what: &'static str,
    pub target: &'static str,
    pub measured: String,
    pub met: Option<bool>,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

fn restart_ms(r: &Results) -> Vec<f64> {
    r.restarts
        .iter()
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect()
}

/// Issue 11's targets, each against rows of this run (`None`: a row is missing).
pub fn checks(r: &Results) -> Vec<Check> {
    let call = |mode, clients| find(&r.calls, mode, clients);
    let short = |mode| {
        r.short_runs
            .iter()
            .find(|(m, _)| *m == mode)
            .map(|(_, s)| s)
    };
    let mut checks = Vec::new();
    let (measured, met) = match (
        call(Mode::Direct, 1),
        call(Mode::Floor, 1),
        call(Mode::Wasm, 1),
    ) {
        (Some(d), Some(f), Some(w)) => {
            let (added, floor) = (w.p50_us - d.p50_us, f.p50_us - d.p50_us);
            (
                format!(
                    "{added:+.0} µs; the floor's {floor:+.0} µs (limit {:+.0})",
                    floor + 25.0
                ),
                Some(added <= floor + 25.0),
            )
        }
        _ => ("no row".into(), None),
    };
    checks.push(Check {
        what: "warm `tools/call`, 1 client: Portcullis added p50",
        target: "≤ floor's added p50 + 25 µs",
        measured,
        met,
    });
    let (measured, met) = match (call(Mode::Floor, 32), call(Mode::Wasm, 32)) {
        (Some(f), Some(w)) => match (f.proxy_cpu_us, w.proxy_cpu_us) {
            (Some(fc), Some(wc)) => (
                format!(
                    "{wc:.0} µs against the floor's {fc:.0} µs ({:.2}×)",
                    wc / fc
                ),
                Some(wc <= 1.3 * fc),
            ),
            _ => ("no CPU figure".into(), None),
        },
        _ => ("no row".into(), None),
    };
    checks.push(Check {
        what: "proxy CPU per request at 32 clients",
        target: "≤ 1.3 × floor's",
        measured,
        met,
    });
    let (measured, met) = match (call(Mode::Floor, 32), call(Mode::Wasm, 32)) {
        (Some(f), Some(w)) => (
            format!(
                "{:.0} against the floor's {:.0} req/s ({:.2}×)",
                w.throughput,
                f.throughput,
                w.throughput / f.throughput
            ),
            Some(w.throughput >= 0.9 * f.throughput),
        ),
        _ => ("no row".into(), None),
    };
    checks.push(Check {
        what: "throughput at 32 clients",
        target: "≥ 0.9 × floor's",
        measured,
        met,
    });
    let (measured, met) = match (short(Mode::Floor), short(Mode::Wasm)) {
        (Some(f), Some(w)) => (
            format!(
                "p50 {:.0} µs against the floor's {:.0} µs ({:+.0})",
                w.first_call.p50_us,
                f.first_call.p50_us,
                w.first_call.p50_us - f.first_call.p50_us
            ),
            Some(w.first_call.p50_us <= f.first_call.p50_us + 150.0),
        ),
        _ => ("no row".into(), None),
    };
    checks.push(Check {
        what: "cold first `tools/call` of a run (short runs)",
        target: "≤ floor + 150 µs",
        measured,
        met,
    });
    let (measured, met) = match (
        find(&r.lists, Mode::Floor, 1),
        find(&r.lists, Mode::Wasm, 1),
    ) {
        (Some(f), Some(w)) => (
            format!(
                "p50 {:.0} µs against the floor's {:.0} µs ({:+.0})",
                w.p50_us,
                f.p50_us,
                w.p50_us - f.p50_us
            ),
            Some(w.p50_us <= f.p50_us + 60.0),
        ),
        _ => ("no row".into(), None),
    };
    checks.push(Check {
        what: "`tools/list` of 100 tools, 10 permitted, 1 client",
        target: "≤ floor + 60 µs",
        measured,
        met,
    });
    let (s, d) = (&r.sessions_proxy, &r.sessions_direct);
    checks.push(Check {
        what: "session creation (`initialize` + `initialized`), 8 clients",
        target: "≤ 1.5 × direct",
        measured: format!(
            "p50 {:.0} µs against direct's {:.0} µs ({:.2}×)",
            s.p50_us,
            d.p50_us,
            s.p50_us / d.p50_us
        ),
        met: (s.count > 0 && d.count > 0).then_some(s.p50_us <= 1.5 * d.p50_us),
    });
    checks.push(Check {
        what: "one policy decision through the runtime, fresh instance",
        target: "≤ 10 µs",
        measured: format!(
            "p50 {:.1} µs, p99 {:.1} µs ({} calls)",
            r.decision.p50_us, r.decision.p99_us, r.decision.count
        ),
        met: (r.decision.count > 0).then_some(r.decision.p50_us <= 10.0),
    });
    let restarts = restart_ms(r);
    checks.push(Check {
        what: "restart to `/healthz` 200 with 10 installed plugins",
        target: "≤ 200 ms",
        measured: format!(
            "median {:.0} ms ({} installed plugins)",
            median(&restarts),
            r.installed
        ),
        met: (!restarts.is_empty() && r.installed >= 10).then_some(median(&restarts) <= 200.0),
    });
    checks
}

fn short_runs_table(out: &mut String, r: &Results) {
    out.push_str(
        "| path | run p50 µs | run − direct | run − floor | session p50 µs | `tools/list` p50 µs | first `tools/call` p50 µs | p90 | warm `tools/call` p50 µs | p90 |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let whole = |mode| {
        r.short_runs
            .iter()
            .find(|(m, _)| *m == mode)
            .map(|(_, s)| s.whole.p50_us)
    };
    let (direct, floor) = (whole(Mode::Direct), whole(Mode::Floor));
    for (mode, s) in &r.short_runs {
        let minus = |base: Option<f64>| match base {
            Some(b) if *mode != Mode::Direct => format!("{:+.0}", s.whole.p50_us - b),
            _ => String::new(),
        };
        let floor = match mode {
            Mode::Floor => String::new(),
            _ => minus(floor),
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {floor} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
            mode.label(),
            s.whole.p50_us,
            minus(direct),
            s.session.p50_us,
            s.list.p50_us,
            s.first_call.p50_us,
            s.first_call.p90_us,
            s.warm_calls.p50_us,
            s.warm_calls.p90_us,
        );
    }
}

pub fn markdown(r: &Results) -> String {
    let mut out = String::new();
    out.push_str("# Portcullis benchmark: latest run\n\n");
    out.push_str(
        "Generated by `just bench` (`cargo run --release -p portcullis-bench`); do not edit.\n\n",
    );
    let _ = writeln!(out, "{}\n\n{}\n", r.machine, r.settings);

    out.push_str("## Targets of issue 11 (each against rows of this run)\n\n| what | target | measured | met |\n|---|---|---|---|\n");
    for check in checks(r) {
        let met = match check.met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not measured",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {met} |",
            check.what, check.target, check.measured
        );
    }

    out.push_str("\n## Targets (design.md, \"Performance budget\")\n\n| target | measured | met |\n|---|---|---|\n");
    for (target, figure, ok) in targets(r) {
        let _ = writeln!(
            out,
            "| {target} | {figure} | {} |",
            if ok { "yes" } else { "**no**" }
        );
    }

    out.push_str("\n## `tools/call` of `echo`\n\n");
    latency_table(&mut out, &r.calls);

    out.push_str("\n## `tools/list` (100 tools upstream, 10 permitted)\n\n");
    latency_table(&mut out, &r.lists);

    if let Some(rows) = &r.replicas {
        out.push('\n');
        out.push_str(&replicas_section(rows));
    }

    let _ = writeln!(
        out,
        "\n## Short runs ({} runs per path, one after another)\n\nEach run: `initialize`, `notifications/initialized`, `tools/list`, five `tools/call`s of `echo` on a fresh connection; through Portcullis, a new run each time (created before and finished after its messages, untimed), so its first `tools/call` is cold.\n",
        r.short_runs
            .first()
            .map(|(_, s)| s.whole.count)
            .unwrap_or(0)
    );
    short_runs_table(&mut out, r);

    out.push_str("\n## Sessions, memory, restart, swaps\n\n| what | figure |\n|---|---|\n");
    let s = &r.sessions_proxy;
    let d = &r.sessions_direct;
    let _ = writeln!(
        out,
        "| session creation through the proxy (`initialize` + `notifications/initialized`, {} clients, {} sessions) | p50 {:.0} µs, p99 {:.0} µs, {:.0} sessions/s |",
        s.clients, s.count, s.p50_us, s.p99_us, s.throughput
    );
    let _ = writeln!(
        out,
        "| the same pair sent directly to the upstream ({} clients, {} times) | p50 {:.0} µs, p99 {:.0} µs, {:.0} pairs/s |",
        d.clients, d.count, d.p50_us, d.p99_us, d.throughput
    );
    let per_session = if r.rss_10k > r.rss_idle {
        (r.rss_10k - r.rss_idle) as f64 / 10_000.0
    } else {
        0.0
    };
    let _ = writeln!(
        out,
        "| proxy RSS: started and set up / 1,000 idle sessions / 10,000 idle sessions | {:.1} MB / {:.1} MB / {:.1} MB (≈ {:.1} KB per session) |",
        mb(r.rss_idle),
        mb(r.rss_1k),
        mb(r.rss_10k),
        per_session / 1024.0
    );
    let restarts = restart_ms(r);
    let listed = restarts
        .iter()
        .map(|ms| format!("{ms:.0}"))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "| restart: process start to `/healthz` 200, same data dir, {} installed plugins | median {:.0} ms (runs: {listed} ms) |",
        r.installed,
        median(&restarts)
    );
    let d = &r.decision;
    let _ = writeln!(
        out,
        "| one `request` decision of `declared-tools` through the runtime's decider, fresh instance, in the harness ({} calls) | p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs |",
        d.count, d.p50_us, d.p90_us, d.p99_us
    );
    let mut installs = r.swaps.install_ms.clone();
    installs.sort_by(f64::total_cmp);
    let _ = writeln!(
        out,
        "| 20 swaps of `declared-tools` (two builds alternated) under {} clients of `tools/call` | {} failed requests of {}; p50 {:.0} µs, p99 {:.0} µs during the swaps; install median {:.1} ms, max {:.1} ms |",
        r.swaps.load.clients,
        r.swaps.load.errors,
        r.swaps.load.count + r.swaps.load.errors,
        r.swaps.load.p50_us,
        r.swaps.load.p99_us,
        installs
            .get(installs.len() / 2)
            .copied()
            .unwrap_or(f64::NAN),
        installs.last().copied().unwrap_or(f64::NAN),
    );
    for failure in &r.swaps.load.failures {
        let _ = writeln!(out, "\nA failure during the swaps: `{failure}`");
    }
    out
}

/// `tools/call` of `echo` through one replica on SQLite and through two on PostgreSQL.
pub fn replicas_section(rows: &Replicas) -> String {
    let mut out = String::from(
        "## Several replicas (`tools/call` of `echo`, same upstream, back to back)\n\n\
         | setup | clients | p50 µs | p99 µs | req/s | req/s ÷ one on SQLite | failed |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (what, s) in [
        ("1 replica on SQLite", &rows.sqlite),
        (
            "2 replicas on PostgreSQL (clients split evenly)",
            &rows.postgres,
        ),
    ] {
        let _ = writeln!(
            out,
            "| {what} | {} | {:.0} | {:.0} | {:.0} | {:.0}% | {} |",
            s.clients,
            s.p50_us,
            s.p99_us,
            s.throughput,
            100.0 * s.throughput / rows.sqlite.throughput,
            s.errors
        );
    }
    out.push_str(
        "\nBoth replicas and PostgreSQL run on this one machine, beside the harness and the \
         upstream: the row shows what sharing the database costs, not what a second machine adds.\n",
    );
    out
}

/// Latency (log scale) against concurrency (log scale), p50 solid and p99 dashed.
pub fn svg(points: &[(Mode, Stats)]) -> String {
    let (w, h) = (760.0, 460.0);
    let (left, right, top, bottom) = (70.0, 250.0, 40.0, 60.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let levels: Vec<usize> = {
        let mut l: Vec<usize> = points.iter().map(|(_, s)| s.clients).collect();
        l.sort_unstable();
        l.dedup();
        l
    };
    let values = points
        .iter()
        .flat_map(|(_, s)| [s.p50_us, s.p99_us])
        .filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (ylo, yhi) = (
        (lo.log10()).floor(),
        (hi.log10()).ceil().max(lo.log10().floor() + 1.0),
    );
    let xmax = (*levels.last().unwrap_or(&1) as f64).log2().max(1.0);
    let x = |c: usize| left + pw * (c as f64).log2() / xmax;
    let y = |v: f64| top + ph * (1.0 - (v.log10() - ylo) / (yhi - ylo));

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" font-size="14" text-anchor="middle">tools/call latency against concurrency (p50 solid, p99 dashed)</text>"#,
        left + pw / 2.0
    );
    let mut decade = ylo;
    while decade <= yhi {
        for m in [1.0, 2.0, 5.0] {
            let v = 10f64.powf(decade) * m;
            if v.log10() > yhi + 1e-9 {
                break;
            }
            let yy = y(v);
            let _ = writeln!(
                s,
                r##"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                left + pw,
                left - 6.0,
                yy + 4.0,
                if v >= 1000.0 {
                    format!("{} ms", v / 1000.0)
                } else {
                    format!("{v} µs")
                }
            );
        }
        decade += 1.0;
    }
    for &c in &levels {
        let xx = x(c);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{top}" y2="{}" stroke="#eee"/><text x="{xx:.1}" y="{}" text-anchor="middle">{c}</text>"##,
            top + ph,
            top + ph + 18.0
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/><text x="{}" y="{}" text-anchor="middle">concurrent clients</text>"##,
        left + pw / 2.0,
        h - 18.0
    );
    for (i, mode) in MODES.iter().enumerate() {
        for (dash, pick) in [("", 0), ("6,4", 1)] {
            let coords: Vec<String> = levels
                .iter()
                .filter_map(|&c| find(points, *mode, c))
                .map(|st| {
                    let v = if pick == 0 { st.p50_us } else { st.p99_us };
                    format!("{:.1},{:.1}", x(st.clients), y(v))
                })
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{}" stroke-width="2" stroke-dasharray="{dash}" points="{}"/>"#,
                mode.color(),
                coords.join(" ")
            );
        }
        let ly = top + 20.0 + i as f64 * 22.0;
        let lx = left + pw + 15.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            lx + 22.0,
            mode.color(),
            lx + 28.0,
            ly + 4.0,
            mode.label()
        );
    }
    s.push_str("</svg>\n");
    s
}
