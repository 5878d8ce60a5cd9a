//! One policy decision through the runtime with a fresh instance, timed in the harness
//! process itself (so the figure comes from the same run as the others): the runtime's
//! decider asked for one `request` answer of `declared-tools`, on the calling thread, as
//! every link of a chain that runs costs without the chain around it. The context is the
//! one of the runtime's criterion bench (`host/runtime/benches/decision.rs`): a connector
//! with 20 annotated tools, 15 of them allowed, one field with two rules.

use std::time::{Duration, Instant};

use portcullis_runtime::{
    Connector, ConnectorField, ConnectorStatus, Decision, DecisionContext, FieldKind,
    InitialPlugin, McpRequest, Run, Runtime, RuntimeConfig, ServerRule, Tool, ToolHints, ToolRule,
};

use crate::load::Stats;

/// Calls timed after the warm-up calls.
const CALLS: usize = 5_000;
const WARM_UP: usize = 500;

/// The latency of `CALLS` decisions, each on a fresh instance.
pub fn measure() -> anyhow::Result<Stats> {
    let plugins: Vec<InitialPlugin> = portcullis_builtins::BUILTINS
        .iter()
        .map(|b| InitialPlugin::builtin(b.name, b.wasm))
        .collect();
    let runtime = Runtime::new(RuntimeConfig::default(), &plugins)?;
    let decider = runtime.decider();
    let link = runtime
        .link("declared-tools")
        .ok_or_else(|| anyhow::anyhow!("declared-tools is a built-in"))?;
    let ctx = context();
    let request = McpRequest {
        method: "tools/call".into(),
        tool: Some("list_3".into()),
        arguments: None,
        protocol_version: portcullis_test_upstreams::wire::PROTOCOL_VERSION.into(),
    };
    anyhow::ensure!(
        decider.request(&link, &ctx, &request) == Ok(Decision::Allow),
        "declared-tools allows a declared tool"
    );
    let mut samples = Vec::with_capacity(CALLS);
    let mut errors = 0;
    let started = Instant::now();
    for i in 0..WARM_UP + CALLS {
        let sent = Instant::now();
        let answer = decider.request(&link, &ctx, &request);
        let took = sent.elapsed();
        if answer != Ok(Decision::Allow) {
            errors += 1;
        } else if i >= WARM_UP {
            samples.push(took.as_nanos() as u64);
        }
    }
    let window = started.elapsed().max(Duration::from_millis(1));
    Ok(Stats::from_samples(1, samples, errors, window))
}

/// A run on a connector with 20 tools, 10 of them declared through a field's rule.
fn context() -> DecisionContext {
    let tools = (0..20)
        .map(|i| Tool {
            name: match i < 10 {
                true => format!("list_{i}"),
                false => format!("write_{i}"),
            },
            hints: ToolHints {
                read_only: Some(i < 10),
                destructive: Some(i >= 15),
                idempotent: None,
                open_world: Some(false),
            },
        })
        .collect();
    let rule = |url: &str, required: Option<&str>| ServerRule {
        url: url.into(),
        tools: required.map(|pattern| ToolRule {
            required: Some(vec![pattern.into()]),
            ..ToolRule::default()
        }),
    };
    DecisionContext {
        run: Run {
            id: "run_0123456789abcdef".into(),
            actor: "bench-actor".into(),
            user: "user_0123456789".into(),
            fields: vec![ConnectorField {
                name: "slack".into(),
                kind: FieldKind::Multiple,
                rules: vec![
                    rule("https://mcp.slack.com/*", Some("list_*")),
                    rule("https://mcp.example.com/mcp", None),
                ],
                provided: vec!["conn_1".into(), "conn_2".into()],
            }],
        },
        connector: Connector {
            id: "conn_1".into(),
            owner: "user_0123456789".into(),
            server_url: "https://mcp.slack.com/mcp".into(),
            provider: "bearer".into(),
            status: ConnectorStatus::Authorized,
            tools,
            allowed_tools: Some((0..15).map(|i| format!("list_{i}")).collect()),
        },
    }
}
