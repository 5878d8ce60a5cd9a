//! The facts of spec 9.6, natively.

use portcullis_sdk::provider::*;
use portcullis_sdk::testing::*;

use crate::ProviderSupabase;

fn plan(credential: CredentialKind, config: &str) -> Result<InjectionPlan, String> {
    <ProviderSupabase as Provider>::plan(plan_request(credential, config))
}

#[test]
fn describes_itself() {
    assert_eq!(
        <ProviderSupabase as Provider>::describe().name,
        "provider-supabase"
    );
}

#[test]
fn a_pat_or_an_oauth_token_goes_in_bearer() {
    assert_eq!(
        plan_headers::<ProviderSupabase>(CredentialKind::ApiKey, "{}"),
        pairs([("Authorization", "Bearer {secret}")])
    );
    assert_eq!(
        plan_headers::<ProviderSupabase>(CredentialKind::OauthAccessToken, "{}"),
        pairs([("Authorization", "Bearer {access_token}")])
    );
}

#[test]
fn the_configuration_becomes_the_query_options() {
    let config =
        r#"{"project_ref":"abcdefghij0123456789","read_only":true,"features":["database","docs"]}"#;
    let options = plan(CredentialKind::ApiKey, config).unwrap();
    assert_eq!(
        options.query,
        pairs([
            ("project_ref", "abcdefghij0123456789"),
            ("read_only", "true"),
            ("features", "database,docs"),
        ])
    );
    let text = plan(CredentialKind::ApiKey, r#"{"features":"database, docs"}"#).unwrap();
    assert_eq!(text.query, pairs([("features", "database,docs")]));
    let default = plan(CredentialKind::ApiKey, r#"{"read_only":false}"#).unwrap();
    assert!(default.query.is_empty(), "{:?}", default.query);
}

#[test]
fn invalid_options_are_refused_in_the_plan_and_before_authorization() {
    for config in [
        r#"{"project_ref":"short"}"#,
        r#"{"project_ref":"ABCDEFGHIJ0123456789"}"#,
        r#"{"project_ref":"abcdefghij012345678&"}"#,
        r#"{"project_ref":"abcdefghij0123456789&read_only=false"}"#,
        r#"{"project_ref":7}"#,
        r#"{"read_only":"yes"}"#,
        r#"{"features":[]}"#,
        r#"{"features":["sql"]}"#,
        r#"{"features":["docs","docs"]}"#,
        r#"{"features":""}"#,
        r#"{"features":"docs,,database"}"#,
        r#"{"features":7}"#,
        r#"{"projectRef":"abcdefghij0123456789"}"#,
        "[]",
        "not json",
    ] {
        assert!(plan(CredentialKind::ApiKey, config).is_err(), "{config}");
        let request = oauth_request(Registration::Dynamic).config(config).build();
        assert!(
            <ProviderSupabase as Provider>::oauth(request).is_err(),
            "{config}"
        );
    }
}

#[test]
fn oauth_is_the_standard_flow() {
    let request = oauth_request(Registration::Dynamic)
        .server_url("https://mcp.supabase.com/mcp")
        .config(r#"{"project_ref":"abcdefghij0123456789"}"#)
        .build();
    assert_standard_profile(&<ProviderSupabase as Provider>::oauth(request).unwrap());
}
