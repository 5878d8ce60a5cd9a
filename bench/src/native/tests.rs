//! The native decider against the sandbox: the specification's examples through the same
//! runtime chains, answered once by the components and once by the plugin crates' native
//! code, must give identical verdicts. This is what keeps the benchmark from drifting from
//! what it measures.

use std::sync::Arc;

use portcullis_model::fixtures::{
    ConnectorBuilder, FieldBuilder, call, connector, context, examples, plan_request, request, tool,
};
use portcullis_model::{
    ClientAuth, ConnectorStatus, CredentialKind, DecisionContext, McpRequest, OAuthProfile,
    OAuthRequest, PlanRequest, Registration,
};
use portcullis_runtime::{
    ChainConfig, ChainEntry, Decider, Decision, Fault, InitialPlugin, Limits, Link, Plugin,
    RawPlan, RawToolSet, Runtime, RuntimeConfig,
};

use super::NativeDecider;

/// Limits looser than the defaults: a debug build on a busy machine must not cut a
/// healthy sandboxed call.
fn config(chains: ChainConfig) -> RuntimeConfig {
    RuntimeConfig {
        limits: Limits {
            cpu_deadline_ms: 250,
            wall_timeout_ms: 2_000,
            ..Limits::default()
        },
        chains,
        ..RuntimeConfig::default()
    }
}

fn builtins() -> Vec<InitialPlugin<'static>> {
    portcullis_builtins::BUILTINS
        .iter()
        .map(|b| InitialPlugin::builtin(b.name, b.wasm))
        .collect()
}

/// A decider that must never be asked: a link the native decider handed on would show
/// as this fault in the verdict, and differ from the sandbox's.
struct NoFallback;

impl NoFallback {
    fn fault(plugin: &Plugin) -> Fault {
        Fault::Trap {
            plugin: plugin.name.to_string(),
            detail: "handed on to the fallback".into(),
        }
    }
}

impl Decider for NoFallback {
    fn access(&self, link: &Link, _: &DecisionContext) -> Result<Decision, Fault> {
        Err(Self::fault(&link.plugin))
    }
    fn request(&self, link: &Link, _: &DecisionContext, _: &McpRequest) -> Result<Decision, Fault> {
        Err(Self::fault(&link.plugin))
    }
    fn permitted_tools(&self, link: &Link, _: &DecisionContext) -> Result<RawToolSet, Fault> {
        Err(Self::fault(&link.plugin))
    }
    fn plan(&self, provider: &Plugin, _: &PlanRequest) -> Result<Result<RawPlan, String>, Fault> {
        Err(Self::fault(provider))
    }
    fn oauth(
        &self,
        provider: &Plugin,
        _: &OAuthRequest,
    ) -> Result<Result<OAuthProfile, String>, Fault> {
        Err(Self::fault(provider))
    }
}

/// The sandboxed runtime and the native one, on the same components and chains.
fn runtimes(chains: ChainConfig, plugins: &[InitialPlugin<'_>]) -> (Runtime, Runtime) {
    let wasm = Runtime::new(config(chains.clone()), plugins).expect("the plugins load");
    let native = Runtime::new(config(chains), plugins)
        .expect("the plugins load")
        .with_decider(Arc::new(NativeDecider::new(Arc::new(NoFallback))));
    (wasm, native)
}

/// Connectors with tools each example's rules treat differently, and the ways a connector
/// can be unavailable to a run.
fn connectors() -> Vec<ConnectorBuilder> {
    let slack = || {
        connector("conn_1", "alice", "https://mcp.slack.com/mcp")
            .tool(tool("list_channels").read_only())
            .tool(tool("get_user").hints(Some(true), Some(false), Some(true), Some(false)))
            .tool(tool("read_history").read_only())
            .tool(tool("send_message"))
            .tool(tool("post_update").hints(Some(false), Some(false), None, None))
            .tool(tool("delete_channel").hints(Some(false), Some(true), None, None))
    };
    vec![
        slack(),
        slack().allow(["list_channels", "send_message"]),
        slack().status(ConnectorStatus::NeedsReauthorization),
        connector("conn_1", "bob", "https://mcp.slack.com/mcp").tool(tool("list_channels")),
        connector("conn_1", "alice", "https://MCP.Discord.com/mcp/")
            .tool(tool("send_message"))
            .tool(tool("post_embed"))
            .tool(tool("list_channels")),
        connector("conn_1", "alice", "https://mcp.example.com/files?x=1")
            .tool(tool("read_file").hints(Some(true), Some(false), None, None))
            .tool(tool("read_secret"))
            .tool(tool("write_file").hints(Some(false), Some(true), None, None))
            .tool(tool("log_event")),
    ]
}

/// The specification's examples.
const FIELDS: [fn() -> FieldBuilder; 5] = [
    examples::read_only_slack_monitor,
    examples::general_purpose_agent,
    examples::multi_service_messaging,
    examples::output_writing,
    examples::combined,
];

/// Every example with every connector, provided in the run's input or not.
fn contexts() -> Vec<Arc<DecisionContext>> {
    let mut contexts = Vec::new();
    for field in FIELDS {
        for connector in connectors() {
            contexts.push(Arc::new(
                context()
                    .connector(connector)
                    .field(field().provide("conn_1"))
                    .build(),
            ));
        }
        contexts.push(Arc::new(context().field(field()).build()));
    }
    contexts
}

/// A call of every tool of the connector and of one it does not have, and the methods
/// the default policy treats differently.
fn requests(ctx: &DecisionContext) -> Vec<McpRequest> {
    let mut requests: Vec<McpRequest> = ctx
        .connector
        .tools
        .iter()
        .map(|t| call(&t.name))
        .chain([call("not_in_snapshot")])
        .collect();
    requests.extend(
        [
            "initialize",
            "tools/list",
            "notifications/initialized",
            "",
            "resources/read",
            "prompts/get",
            "tools/call",
        ]
        .map(request),
    );
    requests
}

#[tokio::test(flavor = "multi_thread")]
async fn the_spec_examples_get_identical_verdicts_natively_and_sandboxed() {
    let (wasm, native) = runtimes(ChainConfig::default(), &builtins());
    let mut compared = 0;
    for ctx in contexts() {
        let sandboxed = wasm.access(ctx.clone()).await;
        assert_eq!(native.access(ctx.clone()).await, sandboxed, "{ctx:?}");
        let sandboxed = wasm.permitted_tools(ctx.clone()).await;
        assert_eq!(
            native.permitted_tools(ctx.clone()).await,
            sandboxed,
            "{ctx:?}"
        );
        for message in requests(&ctx) {
            let sandboxed = wasm.request(ctx.clone(), message.clone()).await;
            let answer = native.request(ctx.clone(), message.clone()).await;
            assert_eq!(answer, sandboxed, "{message:?} on {ctx:?}");
            compared += 1;
        }
    }
    assert!(compared > 300, "only {compared} requests compared");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_provider_plans_identically_natively_and_sandboxed() {
    let (wasm, native) = runtimes(ChainConfig::default(), &builtins());
    let configs = [
        "{}",
        r#"{"header":"X-API-Key","scheme":""}"#,
        r#"{"extra_headers":{"X-Team":"core"}}"#,
        r#"{"extra_headers":{"authorization":"x"}}"#,
        r#"{"toolsets":["repos","issues"],"readonly":true}"#,
        r#"{"toolsets":[]}"#,
        r#"{"user_scopes":["chat:write"]}"#,
        r#"{"project_ref":"abcdefghijklmnopqrst","read_only":true,"features":["docs"]}"#,
        r#"{"project_ref":"../x"}"#,
        "[]",
        "not json",
    ];
    for profile in profiles() {
        for credential in [
            CredentialKind::None,
            CredentialKind::ApiKey,
            CredentialKind::OauthAccessToken,
        ] {
            for config in configs {
                let request = PlanRequest {
                    provider: profile.into(),
                    ..plan_request(credential, config)
                };
                let sandboxed = wasm.injection_plan(request.clone()).await;
                assert_eq!(
                    native.injection_plan(request.clone()).await,
                    sandboxed,
                    "{request:?}"
                );
            }
        }
    }
}

/// Every built-in provider profile, and one that names no provider.
fn profiles() -> Vec<&'static str> {
    let mut profiles: Vec<&str> = portcullis_builtins::list::providers()
        .map(|(profile, _)| profile)
        .collect();
    profiles.push("unknown");
    profiles
}

#[tokio::test(flavor = "multi_thread")]
async fn every_provider_answers_the_same_oauth_profile_natively_and_sandboxed() {
    let (wasm, native) = runtimes(ChainConfig::default(), &builtins());
    let mut compared = 0;
    for profile in profiles() {
        for registration in [Registration::Dynamic, Registration::Own] {
            for (config, scopes) in [
                ("{}", vec![]),
                ("{}", vec!["read".to_owned(), "chat:write".to_owned()]),
                (r#"{"user_scopes":["chat:write"]}"#, vec![]),
                (r#"{"project_ref":"abcdefghijklmnopqrst"}"#, vec![]),
                ("[]", vec![]),
            ] {
                for requested in [None, Some(vec!["files:read".to_owned()])] {
                    let request = OAuthRequest {
                        connector_id: "conn_1".into(),
                        server_url: "https://mcp.example.com/mcp".into(),
                        provider: profile.into(),
                        config: config.into(),
                        registration,
                        discovered_scopes: scopes.clone(),
                        requested_scopes: requested,
                        client_auth_methods: vec![ClientAuth::None, ClientAuth::ClientSecretPost],
                    };
                    let sandboxed = wasm.oauth_profile(request.clone()).await;
                    assert_eq!(
                        native.oauth_profile(request.clone()).await,
                        sandboxed,
                        "{request:?}"
                    );
                    compared += 1;
                }
            }
        }
    }
    assert!(compared >= 80, "only {compared} requests compared");
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_reach_the_native_code_as_they_reach_the_component() {
    let mut chains = ChainConfig::default();
    let mut settings = serde_json::Map::new();
    settings.insert("allow_methods".into(), serde_json::json!(["resources/*"]));
    chains.request[0] = ChainEntry::WithSettings {
        plugin: "declared-tools".into(),
        settings,
    };
    let (wasm, native) = runtimes(chains, &builtins());
    let ctx = Arc::new(context().build());
    for method in ["resources/read", "prompts/get"] {
        let sandboxed = wasm.request(ctx.clone(), request(method)).await;
        assert_eq!(
            native.request(ctx.clone(), request(method)).await,
            sandboxed
        );
    }
    assert!(
        wasm.request(ctx.clone(), request("resources/read"))
            .await
            .value
            .is_allow()
    );
}

/// A plugin that is not a built-in goes to the wrapped decider, in the sandbox, and the
/// chain around it runs on the blocking pool.
#[tokio::test(flavor = "multi_thread")]
async fn other_plugins_are_handed_to_the_wrapped_decider() {
    let mut chains = ChainConfig::default();
    chains.request[0] = ChainEntry::Name("declared-tools-copy".into());
    let mut plugins = builtins();
    plugins.push(InitialPlugin {
        name: "declared-tools-copy",
        wasm: portcullis_builtins::builtin("declared-tools").unwrap().wasm,
        builtin: false,
    });
    let wasm = Runtime::new(config(chains.clone()), &plugins).unwrap();
    let native = Runtime::new(config(chains), &plugins).unwrap();
    let decider = NativeDecider::new(native.decider());
    let copy = native.link("declared-tools-copy").unwrap();
    let builtin = native.link("connector-allowlist").unwrap();
    assert!(decider.blocks(&copy.plugin));
    assert!(!decider.blocks(&builtin.plugin));
    let native = native.with_decider(Arc::new(decider));
    for ctx in contexts() {
        for message in requests(&ctx) {
            let sandboxed = wasm.request(ctx.clone(), message.clone()).await;
            assert_eq!(native.request(ctx.clone(), message).await, sandboxed);
        }
    }
}

#[test]
fn every_built_in_has_native_code() {
    for entry in portcullis_builtins::list::LIST {
        assert!(super::native(entry.name).is_some(), "{}", entry.name);
    }
    assert!(super::native("hostile").is_none());
}
