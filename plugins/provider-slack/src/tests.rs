//! The facts of spec 9.4, natively.

use portcullis_sdk::provider::*;
use portcullis_sdk::testing::*;

use crate::{ProviderSlack, USER_TOKEN_POINTER};

fn profile(request: OAuthRequest) -> Result<OAuthProfile, String> {
    <ProviderSlack as Provider>::oauth(request)
}

fn own() -> OAuthRequestBuilder {
    oauth_request(Registration::Own)
        .server_url("https://mcp.slack.com/mcp")
        .client_auth_methods([ClientAuth::ClientSecretPost])
}

#[test]
fn describes_itself() {
    assert_eq!(
        <ProviderSlack as Provider>::describe().name,
        "provider-slack"
    );
}

#[test]
fn a_user_token_goes_in_bearer() {
    let headers = plan_headers::<ProviderSlack>(CredentialKind::OauthAccessToken, "{}");
    assert_eq!(headers, pairs([("Authorization", "Bearer {access_token}")]));
    let headers = plan_headers::<ProviderSlack>(CredentialKind::ApiKey, "{}");
    assert_eq!(headers, pairs([("Authorization", "Bearer {secret}")]));
    assert_eq!(
        plan_headers::<ProviderSlack>(CredentialKind::None, "{}"),
        pairs([])
    );
}

#[test]
fn the_profile_is_an_own_confidential_client_with_user_scopes_and_the_nested_user_token() {
    let p = profile(
        own()
            .discovered_scopes(["search:read.public", "chat:write"])
            .build(),
    )
    .unwrap();
    assert_profile_accepted(&p);
    assert_eq!(p.client_auth, Some(ClientAuth::ClientSecretPost));
    // No `scope` (Slack's bot scopes): the user scopes go in `user_scope`, comma-separated.
    assert_eq!(p.scopes, Some(Vec::new()));
    assert_eq!(
        param(&p.authorization_params, "user_scope"),
        Some("search:read.public,chat:write")
    );
    assert_eq!(p.access_token_pointer.as_deref(), Some(USER_TOKEN_POINTER));
    assert_eq!(USER_TOKEN_POINTER, "/authed_user/access_token");
    assert!(p.token_params.is_empty());
}

#[test]
fn configured_user_scopes_replace_the_discovered_ones() {
    let request = own()
        .discovered_scopes(["search:read.public", "chat:write"])
        .config(r#"{"user_scopes": ["channels:history", "users:read"]}"#)
        .build();
    let p = profile(request).unwrap();
    assert_eq!(
        param(&p.authorization_params, "user_scope"),
        Some("channels:history,users:read")
    );
}

#[test]
fn the_owners_scopes_are_user_scopes_and_never_bot_scopes() {
    let request = own()
        .discovered_scopes(["search:read.public", "chat:write"])
        .requested_scopes(["channels:history"])
        .build();
    let p = profile(request).unwrap();
    assert_eq!(p.scopes, Some(Vec::new()));
    assert_eq!(
        param(&p.authorization_params, "user_scope"),
        Some("channels:history")
    );
    let configured = own()
        .requested_scopes(["channels:history"])
        .config(r#"{"user_scopes": ["users:read"]}"#)
        .build();
    let p = profile(configured).unwrap();
    assert_eq!(
        param(&p.authorization_params, "user_scope"),
        Some("users:read")
    );
}

#[test]
fn refusals_say_what_to_do() {
    let dynamic = profile(oauth_request(Registration::Dynamic).build()).unwrap_err();
    assert!(dynamic.contains("\"registration\": \"own\""), "{dynamic}");
    let no_scopes = profile(own().build()).unwrap_err();
    assert!(no_scopes.contains("user_scopes"), "{no_scopes}");
    for config in [
        r#"{"user_scopes": []}"#,
        r#"{"user_scopes": ["chat write"]}"#,
        r#"{"user_scopes": ["a\"b"]}"#,
        r#"{"scopes": ["chat:write"]}"#,
        r#"["chat:write"]"#,
        "not json",
    ] {
        let request = own()
            .discovered_scopes(["chat:write"])
            .config(config)
            .build();
        assert!(profile(request).is_err(), "{config}");
        let plan = <ProviderSlack as Provider>::plan(plan_request(CredentialKind::ApiKey, config));
        assert!(plan.is_err(), "{config}");
    }
}
