//! Both contract versions served at once: every built-in plugin built against `0.1.0` (the
//! SDK's feature `contract-v0-1-0`, through the same nested cargo the built-ins use, into
//! a target directory of its own) loads beside the same plugins built against `0.2.0`, and
//! both answer every decision alike; the `0.1.0` providers take the standard OAuth
//! profile, and a pending connector reaches a `0.1.0` policy as needing re-authorization.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use portcullis_builtins_list::LIST;
use portcullis_model::fixtures::{self, connector, request, rule, single, tool};
use portcullis_runtime::*;
use portcullis_wasm_build::{PluginBuild, PluginCrate, nested_target_dir, workspace_root};

use crate::support::*;

/// `(name, component)` of every built-in, built against contract `0.1.0`.
fn builtins_v0_1_0() -> &'static [(&'static str, Vec<u8>)] {
    static BUILT: OnceLock<Vec<(&'static str, Vec<u8>)>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = workspace_root(Path::new(env!("CARGO_MANIFEST_DIR")))
            .expect("the runtime crate lives inside the workspace");
        let target = nested_target_dir(&root).with_file_name("plugin-build-v0.1.0");
        let crates: Vec<PluginCrate> = LIST.iter().map(|e| PluginCrate::new(e.package)).collect();
        let paths = PluginBuild::new(root.join("Cargo.toml"), target)
            .with_features(["portcullis-sdk/contract-v0-1-0"])
            .build(&crates)
            .unwrap_or_else(|e| panic!("building the built-ins against 0.1.0 failed: {e}"));
        LIST.iter()
            .zip(paths)
            .map(|(entry, path)| (entry.name, std::fs::read(path).expect("read a component")))
            .collect()
    })
}

fn runtime_of(plugins: &[(&'static str, Vec<u8>)]) -> Runtime {
    let plugins: Vec<InitialPlugin<'_>> = plugins
        .iter()
        .map(|(name, wasm)| InitialPlugin::builtin(name, wasm))
        .collect();
    let config = RuntimeConfig {
        limits: test_limits(),
        ..RuntimeConfig::default()
    };
    Runtime::new(config, &plugins).expect("the 0.1.0 built-ins load")
}

/// Contexts that exercise every built-in policy: an allowed run, a connector the run was
/// not given, and a connector in each status.
fn contexts() -> Vec<Arc<DecisionContext>> {
    let slack = "https://mcp.slack.com/mcp";
    let mut contexts = vec![context("run_ok")];
    for status in [
        ConnectorStatus::NeedsReauthorization,
        ConnectorStatus::PendingAuthorization,
    ] {
        contexts.push(Arc::new(
            fixtures::context()
                .run("run_status")
                .connector(
                    connector("conn_1", "alice", slack)
                        .tool(tool("list_channels").read_only())
                        .status(status),
                )
                .field(single("slack").rule(rule(slack).required(["list_*"])))
                .provide("slack", "conn_1")
                .build(),
        ));
    }
    contexts.push(Arc::new(
        fixtures::context()
            .run("run_not_given")
            .connector(connector("conn_1", "alice", slack).tool(tool("list_channels")))
            .field(single("slack").rule(rule(slack)))
            .build(),
    ));
    contexts
}

fn plan_requests() -> Vec<PlanRequest> {
    let mut requests = Vec::new();
    for provider in ["bearer", "sentry", "github", "unknown"] {
        for credential in [
            CredentialKind::None,
            CredentialKind::ApiKey,
            CredentialKind::OauthAccessToken,
        ] {
            for config in ["{}", r#"{"toolsets":["repos"],"readonly":true}"#, "[]"] {
                requests.push(PlanRequest {
                    provider: provider.to_owned(),
                    ..fixtures::plan_request(credential, config)
                });
            }
        }
    }
    requests
}

fn oauth_request(provider: &str) -> OAuthRequest {
    OAuthRequest {
        connector_id: "conn_1".to_owned(),
        server_url: "https://mcp.example.com/mcp".to_owned(),
        provider: provider.to_owned(),
        config: "{}".to_owned(),
        registration: Registration::Dynamic,
        discovered_scopes: vec!["read".to_owned()],
        requested_scopes: Some(vec!["write".to_owned()]),
        client_auth_methods: vec![ClientAuth::None],
    }
}

async fn assert_same_decisions(old: &Runtime, new: &Runtime) {
    for ctx in contexts() {
        let run = ctx.run.id.clone();
        assert_eq!(
            old.access(ctx.clone()).await.value,
            new.access(ctx.clone()).await.value,
            "access of {run}"
        );
        assert_eq!(
            old.permitted_tools(ctx.clone()).await.value,
            new.permitted_tools(ctx.clone()).await.value,
            "tools of {run}"
        );
        for message in [
            call("list_channels"),
            call("send_message"),
            call("unknown"),
            request("tools/list"),
            request("resources/read"),
        ] {
            assert_eq!(
                old.request(ctx.clone(), message.clone()).await.value,
                new.request(ctx.clone(), message.clone()).await.value,
                "request {message:?} of {run}"
            );
        }
    }
    for plan in plan_requests() {
        assert_eq!(
            old.injection_plan(plan.clone()).await.value,
            new.injection_plan(plan.clone()).await.value,
            "plan {plan:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn builtins_built_against_0_1_0_load_and_decide_as_their_0_2_0_builds() {
    let old = runtime_of(builtins_v0_1_0());
    let new = builtin_runtime();
    for plugin in old.plugins() {
        assert_eq!(plugin.contract, "0.1.0", "{}", plugin.name);
    }
    for (name, wasm) in builtins_v0_1_0() {
        let inspection = inspect(wasm).expect("inspect");
        assert_eq!(inspection.wit_version.as_deref(), Some("0.1.0"), "{name}");
    }
    for plugin in new.plugins() {
        assert_eq!(plugin.contract, "0.2.0", "{}", plugin.name);
    }
    assert_same_decisions(&old, &new).await;

    // A 0.1.0 provider has no `oauth` export: the host gives it the standard profile.
    for (profile, _) in portcullis_builtins_list::providers() {
        let verdict = old.oauth_profile(oauth_request(profile)).await;
        assert_eq!(verdict.value, Ok(OAuthProfile::default()), "{profile}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn both_versions_serve_side_by_side_in_one_runtime() {
    let new = builtin_runtime();
    let mixed = builtin_runtime();
    // Half of the built-ins replaced by their 0.1.0 builds, the rest stay 0.2.0: both
    // versions answer in the same chains.
    for (name, wasm) in builtins_v0_1_0().iter().step_by(2) {
        let summary = mixed.install(name, wasm.clone()).await.expect("install");
        assert_eq!(summary.contract, "0.1.0");
        assert_eq!(
            summary.previous.map(|p| p.sha256),
            new.plugin(name).map(|p| p.sha256)
        );
    }
    let contracts: Vec<&str> = mixed.plugins().iter().map(|p| p.contract).collect();
    assert!(
        contracts.contains(&"0.1.0") && contracts.contains(&"0.2.0"),
        "{contracts:?}"
    );
    assert_same_decisions(&mixed, &new).await;

    // Rolling back returns each to its 0.2.0 build.
    for (name, _) in builtins_v0_1_0().iter().step_by(2) {
        assert_eq!(mixed.rollback(name).expect("rollback").contract, "0.2.0");
    }
}
