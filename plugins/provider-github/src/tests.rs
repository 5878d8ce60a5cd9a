use portcullis_sdk::provider::*;
use portcullis_sdk::testing::{pairs, plan_headers, plan_request};

use crate::ProviderGithub;

fn plan(credential: CredentialKind, config: &str) -> Result<InjectionPlan, String> {
    <ProviderGithub as Provider>::plan(plan_request(credential, config))
}

fn headers(credential: CredentialKind, config: &str) -> Vec<(String, String)> {
    plan_headers::<ProviderGithub>(credential, config)
}

#[test]
fn describes_itself() {
    assert_eq!(
        <ProviderGithub as Provider>::describe().name,
        "provider-github"
    );
}

#[test]
fn default_is_a_bearer_token_and_nothing_else() {
    assert_eq!(
        headers(CredentialKind::ApiKey, "{}"),
        pairs([("Authorization", "Bearer {secret}")])
    );
    assert_eq!(
        headers(CredentialKind::OauthAccessToken, "{}"),
        pairs([("Authorization", "Bearer {access_token}")])
    );
    assert_eq!(headers(CredentialKind::None, "{}"), pairs([]));
}

#[test]
fn configuration_becomes_x_mcp_headers() {
    let config = r#"{
        "toolsets": ["repos", "issues"],
        "tools": ["get_me"],
        "exclude_tools": ["delete_file", "push_files"],
        "features": ["flag_a"],
        "readonly": true,
        "lockdown": false,
        "insiders": true
    }"#;
    assert_eq!(
        headers(CredentialKind::ApiKey, config),
        pairs([
            ("Authorization", "Bearer {secret}"),
            ("X-MCP-Toolsets", "repos,issues"),
            ("X-MCP-Tools", "get_me"),
            ("X-MCP-Exclude-Tools", "delete_file,push_files"),
            ("X-MCP-Features", "flag_a"),
            ("X-MCP-Readonly", "true"),
            ("X-MCP-Lockdown", "false"),
            ("X-MCP-Insiders", "true"),
        ])
    );
}

#[test]
fn one_setting_gives_one_header() {
    assert_eq!(
        headers(CredentialKind::None, r#"{"readonly":false}"#),
        pairs([("X-MCP-Readonly", "false")])
    );
}

#[test]
fn bad_entries_are_refused() {
    let refused = [
        (
            r#"{"toolsets":["repos,issues"]}"#,
            r#"X-MCP-Toolsets entry "repos,issues""#,
        ),
        (r#"{"toolsets":[""]}"#, r#"X-MCP-Toolsets entry """#),
        (
            r#"{"tools":["{secret}"]}"#,
            r#"X-MCP-Tools entry "{secret}""#,
        ),
        (
            r#"{"exclude_tools":["a b"]}"#,
            r#"X-MCP-Exclude-Tools entry "a b""#,
        ),
        (r#"{"features":["x\ny"]}"#, "X-MCP-Features entry"),
        (
            r#"{"toolsets":[]}"#,
            "X-MCP-Toolsets needs at least one entry",
        ),
        (r#"{"toolsets":"repos"}"#, "invalid type: string"),
        (r#"{"readonly":"yes"}"#, "invalid type: string"),
        (r#"{"read_only":true}"#, "unknown field `read_only`"),
        (r#"[["repos"]]"#, "must be a JSON object"),
    ];
    for (config, expected) in refused {
        let error = plan(CredentialKind::ApiKey, config).unwrap_err();
        assert!(error.contains(expected), "{config}: {error}");
    }
}

#[test]
fn oauth_needs_an_own_client_and_is_otherwise_the_standard_flow() {
    use portcullis_sdk::testing::{assert_standard_profile, oauth_request};
    let own = oauth_request(Registration::Own)
        .server_url("https://api.githubcopilot.com/mcp/")
        .config(r#"{"toolsets":["repos"]}"#)
        .build();
    assert_standard_profile(&<ProviderGithub as Provider>::oauth(own).unwrap());
    let dynamic = <ProviderGithub as Provider>::oauth(oauth_request(Registration::Dynamic).build());
    let refusal = dynamic.unwrap_err();
    assert!(refusal.contains("\"registration\": \"own\""), "{refusal}");
    let bad = oauth_request(Registration::Own)
        .config(r#"{"toolset":"repos"}"#)
        .build();
    assert!(<ProviderGithub as Provider>::oauth(bad).is_err());
}
