//! The facts of spec 9.3, natively.

use portcullis_sdk::provider::*;
use portcullis_sdk::testing::*;

use crate::ProviderNotion;

fn plan(credential: CredentialKind, config: &str) -> Result<InjectionPlan, String> {
    <ProviderNotion as Provider>::plan(plan_request(credential, config))
}

#[test]
fn describes_itself() {
    assert_eq!(
        <ProviderNotion as Provider>::describe().name,
        "provider-notion"
    );
}

#[test]
fn an_oauth_token_goes_in_bearer() {
    assert_eq!(
        plan_headers::<ProviderNotion>(CredentialKind::OauthAccessToken, "{}"),
        pairs([("Authorization", "Bearer {access_token}")])
    );
    assert_eq!(
        plan_headers::<ProviderNotion>(CredentialKind::None, "{}"),
        pairs([])
    );
}

#[test]
fn an_api_key_is_refused_with_what_to_do() {
    let refusal = plan(CredentialKind::ApiKey, "{}").unwrap_err();
    assert!(refusal.contains("only OAuth"), "{refusal}");
    assert!(
        refusal.contains("\"registration\": \"dynamic\""),
        "{refusal}"
    );
}

#[test]
fn dynamic_registration_takes_the_standard_flow_and_an_own_client_is_refused() {
    let request = oauth_request(Registration::Dynamic)
        .server_url("https://mcp.notion.com/mcp")
        .discovered_scopes(["read"])
        .build();
    let profile = <ProviderNotion as Provider>::oauth(request).unwrap();
    assert_standard_profile(&profile);
    let own = <ProviderNotion as Provider>::oauth(oauth_request(Registration::Own).build());
    assert!(own.unwrap_err().contains("dynamically"));
}

#[test]
fn configuration_is_refused() {
    for config in [r#"{"token":"x"}"#, "[]", "not json"] {
        assert!(
            plan(CredentialKind::OauthAccessToken, config).is_err(),
            "{config}"
        );
        let request = oauth_request(Registration::Dynamic).config(config).build();
        assert!(
            <ProviderNotion as Provider>::oauth(request).is_err(),
            "{config}"
        );
    }
}
