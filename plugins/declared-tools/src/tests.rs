use portcullis_sdk::policy::*;
use portcullis_sdk::testing::*;

use crate::DeclaredTools;

fn decide(ctx: DecisionContext, request: McpRequest) -> Decision {
    <DeclaredTools as Policy>::request(ctx, request)
}

fn permitted(ctx: DecisionContext) -> Option<Vec<String>> {
    only_names(&<DeclaredTools as Policy>::permitted_tools(ctx))
        .map(|names| names.into_iter().map(str::to_owned).collect())
}

fn run(field: FieldBuilder, connector: ConnectorBuilder) -> DecisionContext {
    context()
        .connector(connector)
        .field(field.provide("conn_1"))
        .build()
}

/// Scenario 3: the actor declared `list_*`; the upstream also has `send_message`.
fn scenario_3() -> DecisionContext {
    run(
        single("slack").rule(rule("https://mcp.slack.com/mcp").required(["list_*"])),
        connector("conn_1", "alice", "https://mcp.slack.com/mcp")
            .tool(tool("list_channels"))
            .tool(tool("send_message")),
    )
}

/// Checks `request` for a `tools/call` of every name against `permitted_tools`.
#[track_caller]
fn assert_calls(ctx: &DecisionContext, names: &[&str], expected: &[&str]) {
    assert_eq!(
        permitted(ctx.clone()),
        Some(expected.iter().map(|n| (*n).to_owned()).collect())
    );
    for name in names {
        let decision = decide(ctx.clone(), call(name));
        if expected.contains(name) {
            assert_allowed(&decision);
        } else {
            assert_denied(
                &decision,
                DenyCode::ToolNotPermitted,
                expected_reason(ctx, name),
            );
        }
    }
}

/// The reason a denied call of `name` must carry: the first layer that leaves it out.
fn expected_reason(ctx: &DecisionContext, name: &str) -> &'static str {
    let connector = &ctx.connector;
    if !connector.tools.iter().any(|t| t.name == name) {
        "unknown_tool"
    } else if connector
        .allowed_tools
        .as_ref()
        .is_some_and(|allowed| !allowed.iter().any(|t| t == name))
    {
        "not_allowed_by_connector"
    } else {
        "not_declared"
    }
}

#[test]
fn a_call_outside_layer_one_is_denied_for_that_cause() {
    let ctx = run(
        single("slack").rule(rule("https://mcp.slack.com/mcp")),
        connector("conn_1", "alice", "https://mcp.slack.com/mcp")
            .tool(tool("list_channels"))
            .tool(tool("send_message"))
            .allow(["list_channels"]),
    );
    assert_allowed(&decide(ctx.clone(), call("list_channels")));
    let decision = decide(ctx.clone(), call("send_message"));
    assert_denied(
        &decision,
        DenyCode::ToolNotPermitted,
        "not_allowed_by_connector",
    );
    let decision = decide(ctx, call("no_such_tool"));
    assert_denied(&decision, DenyCode::ToolNotPermitted, "unknown_tool");
}

#[test]
fn describes_itself() {
    let info = <DeclaredTools as Policy>::describe();
    assert_eq!(info.plugin.name, "declared-tools");
    assert!(!info.reads_arguments);
}

#[test]
fn lifecycle_tools_notifications_and_responses_pass() {
    for method in [
        "initialize",
        "ping",
        "tools/list",
        "server/discover",
        "subscriptions/listen",
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
        "notifications/roots/list_changed",
        "",
    ] {
        assert_allowed(&decide(scenario_3(), request(method)));
    }
}

#[test]
fn other_methods_are_not_allowed_by_default() {
    for method in [
        "resources/list",
        "resources/read",
        "resources/templates/list",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "tasks/get",
        "tasks/list",
        "sampling/createMessage",
        "tools/unknown",
        "Tools/call",
        "notification/initialized",
        "made/up",
    ] {
        let decision = decide(scenario_3(), request(method));
        assert_denied(&decision, DenyCode::MethodNotAllowed, "method_not_allowed");
    }
}

#[test]
fn operator_settings_allow_more_methods() {
    let ctx = || {
        let mut ctx = scenario_3();
        ctx.settings = r#"{"allow_methods":["resources/*","prompts/get?"]}"#.to_owned();
        ctx
    };
    assert_allowed(&decide(ctx(), request("resources/read")));
    assert_allowed(&decide(ctx(), request("resources/templates/list")));
    for method in ["prompts/get", "prompts/list", "tasks/get"] {
        let decision = decide(ctx(), request(method));
        assert_denied(&decision, DenyCode::MethodNotAllowed, "method_not_allowed");
    }
    // Settings add methods; they do not widen the declared tools.
    let decision = decide(ctx(), call("send_message"));
    assert_denied(&decision, DenyCode::ToolNotPermitted, "not_declared");
}

#[test]
fn invalid_settings_deny_every_message() {
    for settings in [
        "not json",
        r#"{"allow_methods":"resources/*"}"#,
        r#"{"allow_method":["resources/*"]}"#,
        "[]",
    ] {
        let mut ctx = scenario_3();
        ctx.settings = settings.to_owned();
        let decision = decide(ctx, request("ping"));
        assert_denied(&decision, DenyCode::MethodNotAllowed, "invalid_settings");
    }
}

#[test]
fn tools_call_is_held_to_the_declared_set_scenario_3() {
    assert_calls(
        &scenario_3(),
        &["list_channels", "send_message", "list_users"],
        &["list_channels"],
    );
}

#[test]
fn tools_call_without_a_name_is_denied() {
    let decision = decide(scenario_3(), request("tools/call"));
    assert_denied(&decision, DenyCode::ToolNotPermitted, "missing_tool_name");
}

#[test]
fn read_only_slack_monitor() {
    let slack = connector("conn_1", "alice", "https://mcp.slack.com/mcp")
        .tool(tool("list_channels").read_only())
        .tool(tool("get_user").hints(Some(true), Some(false), Some(true), None))
        .tool(tool("read_history").read_only())
        .tool(tool("list_and_mark").hints(Some(false), Some(false), Some(true), None))
        .tool(tool("send_message"));
    assert_calls(
        &run(examples::read_only_slack_monitor(), slack),
        &[
            "list_channels",
            "get_user",
            "read_history",
            "list_and_mark",
            "send_message",
        ],
        &["get_user", "list_channels", "read_history"],
    );
}

#[test]
fn general_purpose_agent() {
    let any = connector("conn_1", "alice", "https://mcp.notion.com/mcp")
        .tool(tool("search"))
        .tool(tool("delete_page"));
    assert_calls(
        &run(examples::general_purpose_agent(), any),
        &["search", "delete_page", "added_later"],
        &["delete_page", "search"],
    );
}

#[test]
fn multi_service_messaging() {
    let discord = connector("conn_1", "alice", "https://mcp.discord.com/mcp")
        .tool(tool("send_message"))
        .tool(tool("post_embed"))
        .tool(tool("list_channels"))
        .tool(tool("ban_user"));
    assert_calls(
        &run(examples::multi_service_messaging(), discord),
        &["send_message", "post_embed", "list_channels", "ban_user"],
        &["list_channels", "post_embed", "send_message"],
    );
}

#[test]
fn output_writing_actor() {
    let storage = connector("conn_1", "alice", "https://storage.example.com/mcp")
        .tool(tool("write_file"))
        .tool(tool("log_event"))
        .tool(tool("read_file"));
    assert_calls(
        &run(examples::output_writing(), storage),
        &["write_file", "log_event", "read_file"],
        &["log_event", "write_file"],
    );
}

#[test]
fn combined_rule() {
    let docs = connector("conn_1", "alice", "https://mcp.example.com/mcp")
        .tool(tool("read_doc").read_only())
        .tool(tool("read_and_purge").hints(Some(false), Some(true), None, None))
        .tool(tool("list_docs").read_only());
    assert_calls(
        &run(examples::combined(), docs),
        &["read_doc", "read_and_purge", "list_docs"],
        &["read_doc"],
    );
}

#[test]
fn an_ineligible_connector_permits_nothing() {
    let notion =
        connector("conn_1", "alice", "https://mcp.notion.com/mcp").tool(tool("send_message"));
    assert_calls(
        &run(examples::multi_service_messaging(), notion),
        &["send_message"],
        &[],
    );
}

#[test]
fn the_allowlist_and_the_snapshot_bound_the_declared_set() {
    let mut ctx = run(
        examples::general_purpose_agent(),
        connector("conn_1", "alice", "https://mcp.slack.com/mcp")
            .tool(tool("list_channels"))
            .tool(tool("send_message"))
            .allow(["send_message", "archive_channel"]),
    );
    assert_calls(
        &ctx,
        &["list_channels", "send_message", "archive_channel"],
        &["send_message"],
    );
    ctx.connector.allowed_tools = None;
    assert_calls(
        &ctx,
        &["list_channels", "send_message", "archive_channel"],
        &["list_channels", "send_message"],
    );
}

#[test]
fn access_is_left_to_connector_access() {
    let ctx = context().build();
    assert_allowed(&<DeclaredTools as Policy>::access(ctx));
}
