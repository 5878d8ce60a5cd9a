use portcullis_sdk::policy::*;
use portcullis_sdk::testing::*;

use crate::ConnectorAccess;

fn access(ctx: DecisionContext) -> Decision {
    <ConnectorAccess as Policy>::access(ctx)
}

fn run(field: FieldBuilder, connector: ConnectorBuilder) -> DecisionContext {
    context()
        .connector(connector)
        .field(field.provide("conn_1"))
        .build()
}

fn at(url: &str) -> ConnectorBuilder {
    connector("conn_1", "alice", url)
}

#[test]
fn describes_itself() {
    let info = <ConnectorAccess as Policy>::describe();
    assert_eq!(info.plugin.name, "connector-access");
    assert_eq!(info.plugin.version, env!("CARGO_PKG_VERSION"));
    assert!(!info.reads_arguments);
}

#[test]
fn read_only_slack_monitor() {
    let tools = |c: ConnectorBuilder| {
        c.tool(tool("list_channels").read_only())
            .tool(tool("get_user").read_only())
            .tool(tool("read_history").read_only())
            .tool(tool("send_message"))
    };
    let slack = || tools(at("https://mcp.slack.com/mcp"));
    assert_allowed(&access(run(examples::read_only_slack_monitor(), slack())));

    let other = tools(at("https://mcp.discord.com/mcp"));
    let decision = access(run(examples::read_only_slack_monitor(), other));
    assert_denied(
        &decision,
        DenyCode::ConnectorUnavailable,
        "no_matching_rule",
    );

    // `read_history` is no longer read-only: `read_*` is unsatisfied (ERR-3).
    let mut ctx = run(examples::read_only_slack_monitor(), slack());
    ctx.connector.tools[2].hints.read_only = Some(false);
    let decision = access(ctx);
    assert_denied(
        &decision,
        DenyCode::ConnectorUnavailable,
        "no_matching_rule",
    );
}

#[test]
fn general_purpose_agent_accepts_any_server() {
    for url in [
        "https://mcp.notion.com/mcp",
        "https://api.githubcopilot.com/mcp/",
    ] {
        assert_allowed(&access(run(examples::general_purpose_agent(), at(url))));
    }
}

#[test]
fn multi_service_messaging() {
    let tools = |c: ConnectorBuilder| {
        c.tool(tool("send_message"))
            .tool(tool("post_embed"))
            .tool(tool("list_channels"))
    };
    for url in ["https://mcp.slack.com/mcp", "https://mcp.discord.com/mcp"] {
        assert_allowed(&access(run(
            examples::multi_service_messaging(),
            tools(at(url)),
        )));
    }
    let notion = tools(at("https://mcp.notion.com/mcp"));
    let decision = access(run(examples::multi_service_messaging(), notion));
    assert_denied(
        &decision,
        DenyCode::ConnectorUnavailable,
        "no_matching_rule",
    );

    let without_post = at("https://mcp.slack.com/mcp")
        .tool(tool("send_message"))
        .tool(tool("list_channels"));
    let decision = access(run(examples::multi_service_messaging(), without_post));
    assert_denied(
        &decision,
        DenyCode::ConnectorUnavailable,
        "no_matching_rule",
    );
}

#[test]
fn output_writing_actor_needs_one_writing_tool() {
    let logger = at("https://logs.example.com/mcp").tool(tool("log_event"));
    assert_allowed(&access(run(examples::output_writing(), logger)));
    let reader = at("https://logs.example.com/mcp").tool(tool("read_events"));
    let decision = access(run(examples::output_writing(), reader));
    assert_denied(
        &decision,
        DenyCode::ConnectorUnavailable,
        "no_matching_rule",
    );
}

#[test]
fn combined_rule() {
    let ok = at("https://mcp.example.com/v2/mcp").tool(tool("read_doc").read_only());
    assert_allowed(&access(run(examples::combined(), ok)));
    let mutating = at("https://mcp.example.com/v2/mcp").tool(tool("read_doc"));
    let decision = access(run(examples::combined(), mutating));
    assert_denied(
        &decision,
        DenyCode::ConnectorUnavailable,
        "no_matching_rule",
    );
}

#[test]
fn another_users_connector_is_unavailable() {
    let ctx = context()
        .user("bob")
        .connector(at("https://mcp.slack.com/mcp"))
        .field(examples::general_purpose_agent().provide("conn_1"))
        .build();
    assert_denied(&access(ctx), DenyCode::ConnectorUnavailable, "not_owner");
}

#[test]
fn a_connector_needing_reauthorization_is_unavailable() {
    let connector = at("https://mcp.slack.com/mcp").status(ConnectorStatus::NeedsReauthorization);
    let decision = access(run(examples::general_purpose_agent(), connector));
    assert_denied(&decision, DenyCode::ConnectorUnavailable, "not_authorized");
}

#[test]
fn a_connector_missing_from_the_input_is_unavailable_scenario_2() {
    let ctx = context()
        .connector(at("https://mcp.slack.com/mcp"))
        .field(examples::general_purpose_agent().provide("conn_0"))
        .build();
    assert_denied(&access(ctx), DenyCode::ConnectorUnavailable, "not_provided");
}

#[test]
fn a_connector_in_an_array_field_is_available_scenario_15() {
    let ctx = context()
        .connector(at("https://mcp.slack.com/mcp"))
        .field(
            examples::general_purpose_agent()
                .provide("conn_0")
                .provide("conn_1"),
        )
        .build();
    assert_allowed(&access(ctx));
}

#[test]
fn only_the_rules_of_the_carrying_field_count() {
    let ctx = context()
        .connector(at("https://mcp.notion.com/mcp"))
        .field(
            single("slack")
                .rule(rule("https://mcp.slack.com/mcp"))
                .provide("conn_1"),
        )
        .field(examples::general_purpose_agent().provide("conn_2"))
        .build();
    assert_denied(
        &access(ctx),
        DenyCode::ConnectorUnavailable,
        "no_matching_rule",
    );
}

#[test]
fn allowlist_removal_makes_the_connector_unavailable_scenario_4() {
    let field = || single("slack").rule(rule("https://mcp.slack.com/mcp").required(["list_*"]));
    let slack = || {
        at("https://mcp.slack.com/mcp")
            .tool(tool("list_channels"))
            .tool(tool("send_message"))
    };
    assert_allowed(&access(run(field(), slack())));
    let restricted = slack().allow(["send_message"]);
    let decision = access(run(field(), restricted));
    assert_denied(
        &decision,
        DenyCode::ConnectorUnavailable,
        "no_matching_rule",
    );
}

#[test]
fn requests_and_tools_are_left_to_other_policies() {
    let ctx = || {
        run(
            examples::general_purpose_agent(),
            at("https://x.example/mcp"),
        )
    };
    assert_allowed(&<ConnectorAccess as Policy>::request(
        ctx(),
        call("anything"),
    ));
    assert_allowed(&<ConnectorAccess as Policy>::request(
        ctx(),
        request("resources/list"),
    ));
    assert_eq!(
        only_names(&<ConnectorAccess as Policy>::permitted_tools(ctx())),
        None
    );
}
