//! The built-in chain end to end under the default limits (the other runtime tests use
//! looser limits so a busy machine cannot flake them).

mod support;

use portcullis_runtime::*;
use support::{builtins, context, tools_call};

#[tokio::test(flavor = "multi_thread")]
async fn the_default_chain_decides_under_default_limits() {
    let rt = Runtime::new(RuntimeConfig::default(), &builtins()).unwrap();
    let v = rt.access(context("run_1")).await;
    assert_eq!(v.value, Decision::Allow, "{v:?}");
    let v = rt.permitted_tools(context("run_1")).await;
    assert_eq!(
        v.value,
        ToolSet::Only(["list_channels".to_string()].into()),
        "{v:?}"
    );
    let v = rt
        .request(context("run_1"), tools_call("send_message"))
        .await;
    assert!(!v.value.is_allow(), "{v:?}");
    let v = rt
        .injection_plan(PlanRequest {
            connector_id: "conn_1".into(),
            server_url: "https://mcp.sentry.dev/mcp".into(),
            provider: "sentry".into(),
            config: "{}".into(),
            credential: CredentialKind::ApiKey,
        })
        .await;
    let plan = v.value.unwrap();
    assert_eq!(
        plan.headers[0].1.render(Some("tok")).unwrap(),
        "Sentry-Bearer tok"
    );
}
