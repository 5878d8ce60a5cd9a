use portcullis_sdk::provider::*;
use portcullis_sdk::testing::{pairs, plan_headers, plan_request};

use crate::ProviderBearer;

fn plan(credential: CredentialKind, config: &str) -> Result<InjectionPlan, String> {
    <ProviderBearer as Provider>::plan(plan_request(credential, config))
}

fn headers(credential: CredentialKind, config: &str) -> Vec<(String, String)> {
    plan_headers::<ProviderBearer>(credential, config)
}

#[test]
fn describes_itself() {
    assert_eq!(
        <ProviderBearer as Provider>::describe().name,
        "provider-bearer"
    );
}

#[test]
fn default_is_authorization_bearer() {
    assert_eq!(
        headers(CredentialKind::ApiKey, "{}"),
        pairs([("Authorization", "Bearer {secret}")])
    );
    assert_eq!(
        headers(CredentialKind::OauthAccessToken, "{}"),
        pairs([("Authorization", "Bearer {access_token}")])
    );
}

#[test]
fn custom_header_with_an_empty_scheme_sends_the_key_bare() {
    assert_eq!(
        headers(
            CredentialKind::ApiKey,
            r#"{"header":"X-API-Key","scheme":""}"#
        ),
        pairs([("X-API-Key", "{secret}")])
    );
    assert_eq!(
        headers(CredentialKind::ApiKey, r#"{"scheme":"Token"}"#),
        pairs([("Authorization", "Token {secret}")])
    );
}

#[test]
fn extra_headers_follow_the_credential() {
    let config = r#"{"extra_headers":{"Notion-Version":"2025-09-03","X-Team":"t1"}}"#;
    assert_eq!(
        headers(CredentialKind::ApiKey, config),
        pairs([
            ("Authorization", "Bearer {secret}"),
            ("Notion-Version", "2025-09-03"),
            ("X-Team", "t1"),
        ])
    );
}

#[test]
fn no_credential_means_no_auth_header() {
    assert_eq!(headers(CredentialKind::None, "{}"), pairs([]));
    assert_eq!(
        headers(CredentialKind::None, r#"{"extra_headers":{"X-Team":"t1"}}"#),
        pairs([("X-Team", "t1")])
    );
}

#[test]
fn bad_configuration_is_refused() {
    let refused = [
        (r#"{"headr":"X"}"#, "unknown field `headr`"),
        ("[]", "must be a JSON object"),
        (r#"["X-API-Key",""]"#, "must be a JSON object"),
        ("nope", "not valid JSON"),
        (
            r#"{"header":""}"#,
            r#"header "" is not a valid header name"#,
        ),
        (r#"{"header":"X Key"}"#, "is not a valid header name"),
        (
            r#"{"scheme":"{secret}"}"#,
            "scheme may not hold a placeholder",
        ),
        (
            r#"{"extra_headers":{"X-Copy":"{secret}"}}"#,
            "extra header X-Copy may not hold",
        ),
        (
            r#"{"extra_headers":{"X-Brace":"a}"}}"#,
            "extra header X-Brace may not hold",
        ),
        (
            r#"{"extra_headers":{"authorization":"x"}}"#,
            "would replace the credential header",
        ),
        (
            r#"{"extra_headers":{"Bad Name":"x"}}"#,
            "is not a valid header name",
        ),
        (r#"{"extra_headers":{"X-N":1}}"#, "invalid type: integer"),
    ];
    for (config, expected) in refused {
        let error = plan(CredentialKind::ApiKey, config).unwrap_err();
        assert!(error.contains(expected), "{config}: {error}");
    }
}

#[test]
fn oauth_is_the_standard_flow() {
    use portcullis_sdk::testing::{assert_standard_profile, oauth_request};
    for registration in [Registration::Dynamic, Registration::Own] {
        let request = oauth_request(registration)
            .discovered_scopes(["read"])
            .build();
        assert_standard_profile(&<ProviderBearer as Provider>::oauth(request).unwrap());
    }
}
