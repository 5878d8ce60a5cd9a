use portcullis_sdk::policy::*;
use portcullis_sdk::testing::*;

use crate::ConnectorAllowlist;

fn decide(ctx: DecisionContext, request: McpRequest) -> Decision {
    <ConnectorAllowlist as Policy>::request(ctx, request)
}

fn permitted(ctx: DecisionContext) -> Option<Vec<String>> {
    only_names(&<ConnectorAllowlist as Policy>::permitted_tools(ctx))
        .map(|names| names.into_iter().map(str::to_owned).collect())
}

fn slack() -> ConnectorBuilder {
    connector("conn_1", "alice", "https://mcp.slack.com/mcp")
        .tool(tool("list_channels"))
        .tool(tool("send_message"))
        .tool(tool("delete_message"))
}

fn run(connector: ConnectorBuilder) -> DecisionContext {
    context()
        .connector(connector)
        .field(examples::general_purpose_agent().provide("conn_1"))
        .build()
}

#[test]
fn describes_itself() {
    let info = <ConnectorAllowlist as Policy>::describe();
    assert_eq!(info.plugin.name, "connector-allowlist");
    assert!(!info.reads_arguments);
}

#[test]
fn without_an_allowlist_every_snapshot_tool_is_permitted() {
    assert_eq!(
        permitted(run(slack())),
        Some(vec![
            "delete_message".into(),
            "list_channels".into(),
            "send_message".into()
        ])
    );
    for tool in ["list_channels", "send_message", "delete_message"] {
        assert_allowed(&decide(run(slack()), call(tool)));
    }
}

#[test]
fn permitted_tools_are_the_snapshot_intersected_with_the_allowlist() {
    let ctx = || run(slack().allow(["list_channels", "send_message", "archive_channel"]));
    assert_eq!(
        permitted(ctx()),
        Some(vec!["list_channels".into(), "send_message".into()])
    );
    assert_allowed(&decide(ctx(), call("send_message")));
    let decision = decide(ctx(), call("delete_message"));
    assert_denied(
        &decision,
        DenyCode::ToolNotPermitted,
        "not_allowed_by_connector",
    );
}

#[test]
fn a_tool_outside_the_snapshot_is_unknown_even_if_allowlisted_scenario_6() {
    let ctx = run(slack().allow(["archive_channel"]));
    let decision = decide(ctx, call("archive_channel"));
    assert_denied(&decision, DenyCode::ToolNotPermitted, "unknown_tool");
    let decision = decide(run(slack()), call("archive_channel"));
    assert_denied(&decision, DenyCode::ToolNotPermitted, "unknown_tool");
}

#[test]
fn an_empty_allowlist_permits_nothing() {
    let ctx = || run(slack().allow([]));
    assert_eq!(permitted(ctx()), Some(vec![]));
    let decision = decide(ctx(), call("list_channels"));
    assert_denied(
        &decision,
        DenyCode::ToolNotPermitted,
        "not_allowed_by_connector",
    );
}

#[test]
fn tools_call_without_a_name_is_denied() {
    let decision = decide(run(slack()), request("tools/call"));
    assert_denied(&decision, DenyCode::ToolNotPermitted, "missing_tool_name");
}

#[test]
fn other_methods_are_left_to_declared_tools() {
    for method in ["initialize", "tools/list", "resources/read", ""] {
        assert_allowed(&decide(run(slack().allow([])), request(method)));
    }
    assert_allowed(&<ConnectorAllowlist as Policy>::access(run(
        slack().allow([])
    )));
}

#[test]
fn the_allowlist_does_not_depend_on_what_the_actor_declared() {
    // Layer 1 applies to every actor alike; the declaration is layer 2's business.
    let ctx = context()
        .connector(slack().allow(["send_message"]))
        .field(single("f").rule(rule("https://other.example/mcp")))
        .build();
    assert_eq!(permitted(ctx), Some(vec!["send_message".into()]));
}
