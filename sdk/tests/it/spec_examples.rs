//! The input-schema examples of the Apify documentation (specification section 3.3)
//! through the permitted-set algorithm of section 4.4.

use portcullis_sdk::policy::DecisionContext;
use portcullis_sdk::rules::{matched_rules, permits, permitted};
use portcullis_sdk::testing::*;

use crate::set;

/// The URL patterns of the matched rules, in order.
fn matched(ctx: &DecisionContext) -> Vec<&str> {
    matched_rules(ctx).map(|r| r.url.as_str()).collect()
}

/// Checks `permits` against `permitted` for every snapshot tool and one unknown name.
fn assert_permits_agrees(ctx: &DecisionContext) {
    let expected = permitted(ctx);
    for tool in &ctx.connector.tools {
        assert_eq!(
            permits(ctx, &tool.name),
            expected.contains(&tool.name),
            "{}",
            tool.name
        );
    }
    assert!(!permits(ctx, "not_in_snapshot"));
}

fn run(field: FieldBuilder, connector: ConnectorBuilder) -> DecisionContext {
    context()
        .connector(connector)
        .field(field.provide("conn_1"))
        .build()
}

fn slack(tools: impl IntoIterator<Item = ToolBuilder>) -> ConnectorBuilder {
    tools.into_iter().fold(
        connector("conn_1", "alice", "https://mcp.slack.com/mcp"),
        ConnectorBuilder::tool,
    )
}

fn slack_tools() -> Vec<ToolBuilder> {
    vec![
        // Only readOnlyHint: passes destructive:false and idempotent:true by the read-only rule.
        tool("list_channels").read_only(),
        tool("get_user").hints(Some(true), Some(false), Some(true), None),
        tool("read_history").read_only(),
        // A mutating tool that a pattern names: readOnly:true hides it.
        tool("list_and_mark_read").hints(Some(false), Some(false), Some(true), None),
        tool("send_message"),
        tool("delete_message").hints(Some(false), Some(true), None, None),
    ]
}

#[test]
fn read_only_slack_monitor_sees_only_read_only_named_tools() {
    let ctx = run(examples::read_only_slack_monitor(), slack(slack_tools()));
    assert_eq!(matched(&ctx), ["https://mcp.slack.com/mcp"]);
    assert_eq!(
        permitted(&ctx),
        set(&["get_user", "list_channels", "read_history"])
    );
    assert_permits_agrees(&ctx);
}

#[test]
fn read_only_slack_monitor_needs_a_read_only_tool_per_pattern() {
    // `read_history` gone: no considered tool is named by `read_*`.
    let mut ctx = run(examples::read_only_slack_monitor(), slack(slack_tools()));
    ctx.connector.tools.retain(|t| t.name != "read_history");
    assert!(matched(&ctx).is_empty());
    assert_eq!(permitted(&ctx), set(&[]));
    assert_permits_agrees(&ctx);

    // A `read_*` tool that is not read-only does not count either.
    let tools = slack_tools().into_iter().chain([tool("read_and_archive")]);
    let mut ctx = run(examples::read_only_slack_monitor(), slack(tools));
    ctx.connector.tools.retain(|t| t.name != "read_history");
    assert!(matched(&ctx).is_empty());
    assert_permits_agrees(&ctx);
}

#[test]
fn read_only_slack_monitor_rejects_other_servers() {
    let other = slack_tools().into_iter().fold(
        connector("conn_1", "alice", "https://mcp.slack.com/other"),
        ConnectorBuilder::tool,
    );
    let ctx = run(examples::read_only_slack_monitor(), other);
    assert!(matched(&ctx).is_empty());
    assert_eq!(permitted(&ctx), set(&[]));
}

#[test]
fn general_purpose_agent_gets_every_tool_of_any_server() {
    for url in [
        "https://mcp.notion.com/mcp",
        "https://api.githubcopilot.com/mcp/",
        "http://127.0.0.1:9000/mcp?x=1",
    ] {
        let connector = connector("conn_1", "alice", url)
            .tool(tool("search"))
            .tool(tool("delete_page").hints(None, Some(true), None, None));
        let ctx = run(examples::general_purpose_agent(), connector);
        assert_eq!(matched(&ctx), ["*"], "{url}");
        assert_eq!(permitted(&ctx), set(&["delete_page", "search"]), "{url}");
        assert_permits_agrees(&ctx);
    }
}

#[test]
fn general_purpose_agent_with_an_empty_snapshot_is_eligible_but_sees_nothing() {
    let ctx = run(
        examples::general_purpose_agent(),
        connector("conn_1", "alice", "https://x.example/mcp"),
    );
    assert_eq!(matched(&ctx), ["*"]);
    assert_eq!(permitted(&ctx), set(&[]));
}

fn messaging_tools(url: &str) -> ConnectorBuilder {
    connector("conn_1", "alice", url)
        .tool(tool("send_message"))
        .tool(tool("post_embed"))
        .tool(tool("list_channels"))
        .tool(tool("ban_user"))
}

#[test]
fn multi_service_messaging_matches_slack_or_discord() {
    for url in ["https://mcp.slack.com/mcp", "https://mcp.discord.com/mcp"] {
        let ctx = run(examples::multi_service_messaging(), messaging_tools(url));
        assert_eq!(matched(&ctx), [url]);
        assert_eq!(
            permitted(&ctx),
            set(&["list_channels", "post_embed", "send_message"])
        );
        assert_permits_agrees(&ctx);
    }
    let ctx = run(
        examples::multi_service_messaging(),
        messaging_tools("https://mcp.notion.com/mcp"),
    );
    assert!(matched(&ctx).is_empty());
}

#[test]
fn multi_service_messaging_needs_every_pattern() {
    let connector = connector("conn_1", "alice", "https://mcp.discord.com/mcp")
        .tool(tool("send_message"))
        .tool(tool("list_channels"));
    let ctx = run(examples::multi_service_messaging(), connector);
    assert!(matched(&ctx).is_empty());
    assert!(!permits(&ctx, "send_message"));
}

#[test]
fn output_writing_actor_gets_the_union_of_every_matched_ceiling() {
    let connector = connector("conn_1", "alice", "https://mcp.example.com/mcp")
        .tool(tool("send_email"))
        .tool(tool("write_file"))
        .tool(tool("write_log"))
        .tool(tool("read_file"));
    let ctx = run(examples::output_writing(), connector);
    assert_eq!(matched(&ctx), ["*", "*"]);
    assert_eq!(
        permitted(&ctx),
        set(&["send_email", "write_file", "write_log"])
    );
    assert_permits_agrees(&ctx);
}

#[test]
fn output_writing_actor_rejects_a_read_only_connector() {
    let connector = connector("conn_1", "alice", "https://mcp.example.com/mcp")
        .tool(tool("read_file"))
        .tool(tool("get_status"));
    let ctx = run(examples::output_writing(), connector);
    assert!(matched(&ctx).is_empty());
    assert_eq!(permitted(&ctx), set(&[]));
}

fn combined_tools(url: &str) -> ConnectorBuilder {
    connector("conn_1", "alice", url)
        .tool(tool("read_doc").read_only())
        .tool(tool("read_and_purge").hints(Some(false), Some(true), None, None))
        .tool(tool("read_cache_fill").hints(Some(false), Some(false), None, None))
        .tool(tool("list_docs").read_only())
}

#[test]
fn combined_rule_applies_url_name_and_hints_together() {
    let ctx = run(
        examples::combined(),
        combined_tools("https://mcp.example.com/mcp"),
    );
    assert_eq!(matched(&ctx), ["https://mcp.example.com/*"]);
    assert_eq!(permitted(&ctx), set(&["read_doc"]));
    assert_permits_agrees(&ctx);

    let ctx = run(
        examples::combined(),
        combined_tools("https://other.example.com/mcp"),
    );
    assert!(matched(&ctx).is_empty());
}

#[test]
fn combined_rule_is_ineligible_without_a_read_only_read_tool() {
    let connector = connector("conn_1", "alice", "https://mcp.example.com/mcp")
        .tool(tool("read_and_purge").hints(Some(false), Some(true), None, None))
        .tool(tool("list_docs").read_only());
    let ctx = run(examples::combined(), connector);
    assert!(matched(&ctx).is_empty());
    assert_eq!(permitted(&ctx), set(&[]));
}
