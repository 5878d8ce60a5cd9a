//! What one decision costs: a single plugin call with a fresh instance (what the request
//! path does) against one kept instance (what it must not do), the same call through the
//! async API, and the whole default chain work of one `tools/call`.
//!
//! Run with `cargo bench -p portcullis-runtime --bench decision`; the figures are in
//! `docs/bench-runtime.md`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_runtime::*;

fn runtime() -> Runtime {
    let plugins: Vec<InitialPlugin> = portcullis_builtins::BUILTINS
        .iter()
        .map(|b| InitialPlugin {
            name: b.name,
            wasm: b.wasm,
            builtin: true,
        })
        .collect();
    Runtime::new(RuntimeConfig::default(), &plugins).expect("the built-ins load")
}

/// A run on a connector with 20 tools, 10 of them declared through two rules.
fn context() -> Arc<DecisionContext> {
    let tools = (0..20)
        .map(|i| Tool {
            name: if i < 10 {
                format!("list_{i}")
            } else {
                format!("write_{i}")
            },
            hints: ToolHints {
                read_only: Some(i < 10),
                destructive: Some(i >= 15),
                idempotent: None,
                open_world: Some(false),
            },
        })
        .collect();
    Arc::new(DecisionContext {
        run: Run {
            id: "run_0123456789abcdef".into(),
            actor: "actor_0123456789".into(),
            user: "user_0123456789".into(),
            fields: vec![ConnectorField {
                name: "slack".into(),
                kind: FieldKind::Multiple,
                rules: vec![
                    ServerRule {
                        url: "https://mcp.slack.com/*".into(),
                        tools: Some(ToolRule {
                            required: Some(vec!["list_*".into()]),
                            ..Default::default()
                        }),
                    },
                    ServerRule {
                        url: "https://mcp.example.com/mcp".into(),
                        tools: None,
                    },
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
    })
}

fn call() -> McpRequest {
    McpRequest {
        method: "tools/call".into(),
        tool: Some("list_3".into()),
        arguments: Some(r#"{"channel":"general","limit":20}"#.into()),
        protocol_version: "2025-11-25".into(),
    }
}

fn plan_request() -> PlanRequest {
    PlanRequest {
        connector_id: "conn_1".into(),
        server_url: "https://mcp.slack.com/mcp".into(),
        provider: "bearer".into(),
        config: "{}".into(),
        credential: CredentialKind::ApiKey,
    }
}

fn single_call(c: &mut Criterion) {
    let rt = runtime();
    let ctx = context();
    let request = call();
    assert_eq!(
        rt.bench_fresh_request("declared-tools", &ctx, &request),
        Ok(Decision::Allow)
    );
    let mut group = c.benchmark_group("one_call_declared_tools");
    group.bench_function("fresh_instance", |b| {
        b.iter(|| black_box(rt.bench_fresh_request("declared-tools", &ctx, &request)))
    });
    let mut reused = rt.bench_reused_instance("declared-tools").unwrap();
    assert_eq!(reused.request(&ctx, &request), Ok(Decision::Allow));
    group.bench_function("reused_instance", |b| {
        b.iter(|| black_box(reused.request(&ctx, &request)))
    });
    group.finish();
}

fn async_api(c: &mut Criterion) {
    let rt = runtime();
    let ctx = context();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let verdict = tokio.block_on(rt.request(ctx.clone(), call()));
    assert_eq!(verdict.value, Decision::Allow, "{verdict:?}");
    let plan = tokio.block_on(rt.injection_plan(plan_request()));
    assert!(plan.value.is_ok(), "{plan:?}");

    let mut group = c.benchmark_group("runtime_api");
    group.bench_function("access", |b| {
        b.to_async(&tokio).iter(|| rt.access(ctx.clone()))
    });
    group.bench_function("request_chain_tools_call", |b| {
        b.to_async(&tokio).iter(|| rt.request(ctx.clone(), call()))
    });
    group.bench_function("injection_plan", |b| {
        b.to_async(&tokio)
            .iter(|| rt.injection_plan(plan_request()))
    });
    group.bench_function("permitted_tools", |b| {
        b.to_async(&tokio).iter(|| rt.permitted_tools(ctx.clone()))
    });
    // What the proxy asks for one `tools/call` once the session's tool set is known: the
    // request chain (declared-tools, connector-allowlist) and the provider's plan.
    group.bench_function("tools_call_request_chain_and_plan", |b| {
        b.to_async(&tokio).iter(|| async {
            let verdict = rt.request(ctx.clone(), call()).await;
            let plan = rt.injection_plan(plan_request()).await;
            (verdict, plan)
        })
    });
    group.finish();
}

criterion_group!(benches, single_call, async_api);
criterion_main!(benches);
