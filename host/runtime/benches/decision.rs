//! What one decision costs: a single plugin call with a fresh instance (what the request
//! path does for every call), the same call through the async API, and the whole default
//! chain work of one `tools/call`. Everything here goes through the runtime's public API.
//!
//! Run with `cargo bench -p portcullis-runtime --bench decision`; the figures are in
//! `docs/bench-runtime.md`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_model::fixtures::{self, connector, multiple, rule, tool};
use portcullis_runtime::*;

fn runtime() -> Runtime {
    let plugins: Vec<InitialPlugin> = portcullis_builtins::BUILTINS
        .iter()
        .map(|b| InitialPlugin::builtin(b.name, b.wasm))
        .collect();
    Runtime::new(RuntimeConfig::default(), &plugins).expect("the built-ins load")
}

/// A run on a connector with 20 tools, 10 of them declared through two rules.
fn context() -> Arc<DecisionContext> {
    let slack = (0..20).fold(
        connector("conn_1", "user_0123456789", "https://mcp.slack.com/mcp")
            .allow((0..15).map(|i| format!("list_{i}"))),
        |c, i| {
            let name = match i < 10 {
                true => format!("list_{i}"),
                false => format!("write_{i}"),
            };
            c.tool(tool(&name).hints(Some(i < 10), Some(i >= 15), None, Some(false)))
        },
    );
    let field = multiple("slack")
        .rule(rule("https://mcp.slack.com/*").required(["list_*"]))
        .rule(rule("https://mcp.example.com/mcp"))
        .provide("conn_1")
        .provide("conn_2");
    Arc::new(
        fixtures::context()
            .run("run_0123456789abcdef")
            .user("user_0123456789")
            .connector(slack)
            .field(field)
            .build(),
    )
}

fn call() -> McpRequest {
    McpRequest {
        arguments: Some(r#"{"channel":"general","limit":20}"#.into()),
        ..fixtures::call("list_3")
    }
}

fn plan_request() -> PlanRequest {
    PlanRequest {
        server_url: "https://mcp.slack.com/mcp".into(),
        ..fixtures::plan_request(CredentialKind::ApiKey, "{}")
    }
}

/// One `request` call through the runtime's decider: a fresh store and instance, on the
/// calling thread, as a chain makes each call (without the arguments, as the chain hands
/// them only to a plugin that reads them).
fn single_call(c: &mut Criterion) {
    let rt = runtime();
    let decider = rt.decider();
    let link = rt.link("declared-tools").expect("a built-in");
    let ctx = context();
    let request = McpRequest {
        arguments: None,
        ..call()
    };
    assert_eq!(decider.request(&link, &ctx, &request), Ok(Decision::Allow));
    let mut group = c.benchmark_group("one_call_declared_tools");
    group.bench_function("fresh_instance", |b| {
        b.iter(|| black_box(decider.request(&link, &ctx, &request)))
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
    // What the proxy asks when a run first uses a connector: access and the permitted
    // set in one evaluation, and the five capability probes of `initialize` in another.
    group.bench_function("access_and_tools", |b| {
        b.to_async(&tokio).iter(|| rt.access_and_tools(ctx.clone()))
    });
    let probes: Vec<McpRequest> = [
        "resources/list",
        "prompts/list",
        "completion/complete",
        "logging/setLevel",
        "tasks/list",
    ]
    .map(fixtures::request)
    .into();
    group.bench_function("capability_probes", |b| {
        b.to_async(&tokio)
            .iter(|| rt.requests(ctx.clone(), probes.clone()))
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
