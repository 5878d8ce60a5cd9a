//! The permitted-set algorithm (specification section 4.4) case by case: hint defaults,
//! wildcards, URL normalization, which input fields carry a connector, and layer 1.

use portcullis_sdk::policy::DecisionContext;
use portcullis_sdk::rules::{
    carrying_fields, in_snapshot, layer1, matched_rules, permits, permitted,
};
use portcullis_sdk::testing::*;

use crate::set;

fn with_rule(rule: RuleBuilder, connector: ConnectorBuilder) -> DecisionContext {
    context()
        .connector(connector)
        .field(single("f").rule(rule).provide("conn_1"))
        .build()
}

fn eligible(ctx: &DecisionContext) -> bool {
    matched_rules(ctx).next().is_some()
}

/// One unannotated tool and one annotated with the opposite of every MCP default.
fn annotated_and_not() -> ConnectorBuilder {
    connector("conn_1", "alice", "https://mcp.example.com/mcp")
        .tool(tool("plain"))
        .tool(tool("opposite").hints(Some(true), Some(false), Some(true), Some(false)))
}

#[test]
fn unannotated_tools_take_the_mcp_defaults_under_each_hint() {
    type Hint = fn(RuleBuilder, bool) -> RuleBuilder;
    // (hint, value, tools that pass): unannotated means readOnly false, destructive
    // true, idempotent false, openWorld true.
    let cases: [(&str, Hint, bool, &[&str]); 8] = [
        ("readOnly", RuleBuilder::read_only, true, &["opposite"]),
        ("readOnly", RuleBuilder::read_only, false, &["plain"]),
        ("destructive", RuleBuilder::destructive, true, &["plain"]),
        (
            "destructive",
            RuleBuilder::destructive,
            false,
            &["opposite"],
        ),
        ("idempotent", RuleBuilder::idempotent, true, &["opposite"]),
        ("idempotent", RuleBuilder::idempotent, false, &["plain"]),
        ("openWorld", RuleBuilder::open_world, true, &["plain"]),
        ("openWorld", RuleBuilder::open_world, false, &["opposite"]),
    ];
    for (name, hint, value, expected) in cases {
        let ctx = with_rule(hint(rule("*"), value), annotated_and_not());
        assert_eq!(permitted(&ctx), set(expected), "{name}: {value}");
    }
}

#[test]
fn a_rule_without_hints_considers_every_tool() {
    let ctx = with_rule(rule("*"), annotated_and_not());
    assert_eq!(permitted(&ctx), set(&["opposite", "plain"]));
}

#[test]
fn read_only_tools_count_as_non_destructive_and_idempotent() {
    // Annotated destructive and non-idempotent, but those hints mean nothing once a tool
    // is read-only (MCP), so the explicit values are overridden.
    let connector = connector("conn_1", "alice", "https://mcp.example.com/mcp")
        .tool(tool("read_x").hints(Some(true), Some(true), Some(false), None));
    let rule = rule("*").destructive(false).idempotent(true);
    assert_eq!(permitted(&with_rule(rule, connector)), set(&["read_x"]));
}

#[test]
fn required_wildcards_star_and_question_mark() {
    let four_tools = || {
        connector("conn_1", "alice", "https://mcp.example.com/mcp")
            .tool(tool("get_a"))
            .tool(tool("get_ab"))
            .tool(tool("list_"))
            .tool(tool("List_users"))
    };
    let cases: [(RuleBuilder, &[&str]); 5] = [
        (rule("*").required(["get_?"]), &["get_a"]),
        (rule("*").required(["get_??"]), &["get_ab"]),
        (rule("*").required(["list_*"]), &["list_"]),
        (rule("*").required(["*_a*"]), &["get_a", "get_ab"]),
        (
            rule("*").required(["get_*", "List_*"]),
            &["List_users", "get_a", "get_ab"],
        ),
    ];
    for (rule, expected) in cases {
        assert_eq!(permitted(&with_rule(rule, four_tools())), set(expected));
    }
    let ctx = with_rule(rule("*").required(["get_???"]), four_tools());
    assert!(!eligible(&ctx), "no tool has three characters after get_");
}

#[test]
fn required_star_is_the_same_as_no_required() {
    let two_tools = || {
        connector("conn_1", "alice", "https://mcp.example.com/mcp")
            .tool(tool("a").read_only())
            .tool(tool("b"))
    };
    let star = with_rule(rule("*").required(["*"]).read_only(true), two_tools());
    let absent = with_rule(rule("*").read_only(true), two_tools());
    assert_eq!(permitted(&star), set(&["a"]));
    assert_eq!(permitted(&absent), set(&["a"]));

    // Neither needs any tool to exist for the connector to be eligible.
    let empty = || connector("conn_1", "alice", "https://mcp.example.com/mcp");
    assert!(eligible(&with_rule(rule("*").required(["*"]), empty())));
    assert!(eligible(&with_rule(rule("*"), empty())));
    // `["*", "b"]` is not `["*"]`: `b` must exist.
    assert!(!eligible(&with_rule(
        rule("*").required(["*", "b"]),
        empty()
    )));
}

#[test]
fn url_patterns_match_the_normalized_connector_url() {
    let cases = [
        // (pattern, stored connector URL, matches)
        (
            "https://mcp.slack.com/mcp",
            "HTTPS://MCP.Slack.COM/mcp",
            true,
        ),
        (
            "https://mcp.slack.com/mcp",
            "https://mcp.slack.com/mcp/",
            true,
        ),
        (
            "https://mcp.slack.com/mcp/",
            "https://mcp.slack.com/mcp",
            true,
        ),
        (
            "HTTPS://MCP.SLACK.COM/mcp",
            "https://mcp.slack.com/mcp",
            true,
        ),
        (
            "https://mcp.slack.com/mcp",
            "https://mcp.slack.com/MCP",
            false,
        ),
        (
            "https://mcp.supabase.com/mcp",
            "https://mcp.supabase.com/mcp?project_ref=abc",
            true,
        ),
        (
            "https://mcp.supabase.com/mcp",
            "https://mcp.supabase.com/mcp/#section",
            true,
        ),
        (
            "https://mcp.supabase.com/mcp*",
            "https://mcp.supabase.com/mcpx?a=b",
            true,
        ),
        ("https://*.slack.com/*", "https://mcp.slack.com/mcp", true),
        ("https://*.slack.com/*", "https://slack.com/mcp", false),
        (
            "https://api.githubcopilot.com/mcp/*",
            "https://api.githubcopilot.com/mcp/",
            true,
        ),
        (
            "https://api.githubcopilot.com/mcp/*",
            "https://api.githubcopilot.com/mcp/x/repos",
            true,
        ),
        (
            "https://mcp.sentry.dev/mcp/?",
            "https://mcp.sentry.dev/mcp/o",
            true,
        ),
        (
            "https://mcp.sentry.dev/mcp/?",
            "https://mcp.sentry.dev/mcp/org",
            false,
        ),
        ("http://[::1]:8080/*", "http://[::1]:8080/mcp", true),
        ("*", "https://anything.example/x?y", true),
    ];
    for (pattern, url, expected) in cases {
        let ctx = with_rule(rule(pattern), connector("conn_1", "alice", url));
        assert_eq!(eligible(&ctx), expected, "{pattern} vs {url}");
    }
}

#[test]
fn a_connector_in_an_array_field_is_carried() {
    let ctx = context()
        .connector(annotated_and_not())
        .field(
            multiple("mcpConnectors")
                .rule(rule("*"))
                .provide("conn_0")
                .provide("conn_1"),
        )
        .build();
    let carrying: Vec<&str> = carrying_fields(&ctx).map(|f| f.name.as_str()).collect();
    assert_eq!(carrying, ["mcpConnectors"]);
    assert_eq!(permitted(&ctx), set(&["opposite", "plain"]));
}

#[test]
fn a_connector_not_provided_is_not_carried_and_gets_nothing() {
    let ctx = context()
        .connector(annotated_and_not())
        .field(single("slack").rule(rule("*")).provide("conn_2"))
        .field(multiple("others").rule(rule("*")))
        .build();
    assert_eq!(carrying_fields(&ctx).count(), 0);
    assert!(!eligible(&ctx));
    assert_eq!(permitted(&ctx), set(&[]));
    assert!(!permits(&ctx, "plain"));
}

#[test]
fn only_the_rules_of_fields_that_carry_the_connector_count() {
    // `slack` carries conn_1 but only admits Slack; `any` would admit it but does not
    // carry it. So no rule matches.
    let ctx = context()
        .connector(annotated_and_not())
        .field(
            single("slack")
                .rule(rule("https://mcp.slack.com/mcp"))
                .provide("conn_1"),
        )
        .field(multiple("any").rule(rule("*")).provide("conn_9"))
        .build();
    assert_eq!(carrying_fields(&ctx).count(), 1);
    assert!(!eligible(&ctx));
    assert_eq!(permitted(&ctx), set(&[]));
    assert!(!permits(&ctx, "plain"));
}

#[test]
fn two_carrying_fields_give_the_union_of_their_ceilings() {
    let ctx = context()
        .connector(annotated_and_not())
        .field(
            single("a")
                .rule(rule("*").required(["plain"]))
                .provide("conn_1"),
        )
        .field(
            multiple("b")
                .rule(rule("*").read_only(true))
                .provide("conn_1"),
        )
        .build();
    assert_eq!(permitted(&ctx), set(&["opposite", "plain"]));
    assert!(permits(&ctx, "plain") && permits(&ctx, "opposite"));
}

fn slack_scenario() -> ConnectorBuilder {
    connector("conn_1", "alice", "https://mcp.slack.com/mcp")
        .tool(tool("list_channels"))
        .tool(tool("send_message"))
}

#[test]
fn declared_tool_filter_scenario_3() {
    let ctx = with_rule(rule("*").required(["list_*"]), slack_scenario());
    assert_eq!(permitted(&ctx), set(&["list_channels"]));
    assert!(!permits(&ctx, "send_message"));
}

#[test]
fn allowlist_removal_makes_the_connector_ineligible_scenario_4() {
    let rule = || rule("*").required(["list_*"]);
    let ctx = with_rule(rule(), slack_scenario().allow(["send_message"]));
    assert_eq!(layer1(&ctx.connector).count(), 1);
    assert!(!eligible(&ctx));
    assert_eq!(permitted(&ctx), set(&[]));

    let ctx = with_rule(rule(), slack_scenario().allow(["list_channels"]));
    assert_eq!(permitted(&ctx), set(&["list_channels"]));
}

#[test]
fn an_empty_allowlist_permits_nothing_and_none_permits_everything() {
    let ctx = with_rule(rule("*"), slack_scenario().allow([]));
    assert_eq!(permitted(&ctx), set(&[]));
    assert!(eligible(&ctx), "no required patterns, so still eligible");
    let ctx = with_rule(rule("*"), slack_scenario());
    assert_eq!(permitted(&ctx), set(&["list_channels", "send_message"]));
}

#[test]
fn tools_added_upstream_after_authorization_are_never_permitted_scenario_6() {
    // The owner's allowlist names `archive_channel`, but the snapshot taken at
    // authorization does not have it.
    let ctx = with_rule(
        rule("*"),
        slack_scenario().allow(["list_channels", "archive_channel"]),
    );
    assert!(!in_snapshot(&ctx.connector, "archive_channel"));
    assert!(in_snapshot(&ctx.connector, "send_message"));
    let layer1: Vec<&str> = layer1(&ctx.connector).map(|t| t.name.as_str()).collect();
    assert_eq!(layer1, ["list_channels"]);
    assert_eq!(permitted(&ctx), set(&["list_channels"]));
    assert!(!permits(&ctx, "archive_channel"));
}

#[test]
fn unannotated_tool_is_hidden_by_read_only_scenario_5() {
    let ctx = with_rule(rule("*").read_only(true), slack_scenario());
    assert_eq!(permitted(&ctx), set(&[]));
    assert!(eligible(&ctx));
}

#[test]
fn hints_also_decide_whether_a_required_pattern_is_satisfied() {
    // `send_message` exists but is not read-only, so it does not satisfy `send_*`
    // under a read-only rule (specification section 12, item 6).
    let ctx = with_rule(
        rule("*").required(["send_*"]).read_only(true),
        slack_scenario(),
    );
    assert!(!eligible(&ctx));
}
