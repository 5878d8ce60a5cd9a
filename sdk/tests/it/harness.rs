//! The native harness itself: what plugin tests rely on.

use portcullis_sdk::log::{self, Level};
use portcullis_sdk::policy::ToolSet;
use portcullis_sdk::provider::CredentialKind;
use portcullis_sdk::testing::*;

#[test]
fn log_lines_are_captured_per_thread_and_taken_once() {
    log::info("first");
    log::warn("second");
    let lines = take_logs();
    assert_eq!(lines.len(), 2);
    assert!(matches!(lines[0].0, Level::Info) && lines[0].1 == "first");
    assert!(matches!(lines[1].0, Level::Warn) && lines[1].1 == "second");
    assert!(take_logs().is_empty());
}

#[test]
fn request_builders_fill_the_mcp_message() {
    let message = call("send_message");
    assert_eq!(message.method, "tools/call");
    assert_eq!(message.tool.as_deref(), Some("send_message"));
    assert_eq!(message.arguments, None);
    assert_eq!(message.protocol_version, "2025-11-25");
    assert_eq!(request("ping").tool, None);

    let plan = plan_request(CredentialKind::OauthAccessToken, "{}");
    assert_eq!(plan.config, "{}");
    assert!(matches!(plan.credential, CredentialKind::OauthAccessToken));
}

#[test]
fn only_names_sorts_and_tells_all_apart() {
    assert_eq!(only_names(&ToolSet::All), None);
    let set = ToolSet::Only(vec!["b".into(), "a".into()]);
    assert_eq!(only_names(&set), Some(vec!["a", "b"]));
}

#[test]
fn provide_on_the_context_and_on_the_field_are_the_same() {
    let a = context()
        .field(multiple("f").rule(rule("*")))
        .provide("f", "conn_1")
        .build();
    let b = context()
        .field(multiple("f").rule(rule("*")).provide("conn_1"))
        .build();
    assert_eq!(a.run.fields[0].provided, b.run.fields[0].provided);
    assert_eq!(a.run.fields[0].provided, ["conn_1"]);
}

#[test]
#[should_panic(expected = "expected deny DenyCode::ToolNotPermitted/not_declared, got allow")]
fn assert_denied_fails_on_an_allow() {
    assert_denied(
        &portcullis_sdk::policy::Decision::Allow,
        portcullis_sdk::policy::DenyCode::ToolNotPermitted,
        "not_declared",
    );
}
