use portcullis_sdk::provider::*;
use portcullis_sdk::testing::{plan_headers, plan_request};

use crate::ProviderSentry;

fn plan(credential: CredentialKind, config: &str) -> Result<InjectionPlan, String> {
    <ProviderSentry as Provider>::plan(plan_request(credential, config))
}

fn authorization(credential: CredentialKind) -> Vec<(String, String)> {
    plan_headers::<ProviderSentry>(credential, "{}")
}

#[test]
fn describes_itself() {
    assert_eq!(
        <ProviderSentry as Provider>::describe().name,
        "provider-sentry"
    );
}

#[test]
fn a_user_auth_token_is_sent_as_sentry_bearer_scenario_14() {
    assert_eq!(
        authorization(CredentialKind::ApiKey),
        [(
            "Authorization".to_owned(),
            "Sentry-Bearer {secret}".to_owned()
        )]
    );
}

#[test]
fn an_oauth_access_token_is_sent_as_bearer() {
    assert_eq!(
        authorization(CredentialKind::OauthAccessToken),
        [(
            "Authorization".to_owned(),
            "Bearer {access_token}".to_owned()
        )]
    );
}

#[test]
fn no_credential_means_no_header() {
    assert_eq!(authorization(CredentialKind::None), []);
}

#[test]
fn configuration_is_refused() {
    let refused = [
        (
            r#"{"scheme":"Bearer"}"#,
            "provider-sentry takes no configuration",
        ),
        ("[]", "must be a JSON object"),
        ("{", "not valid JSON"),
    ];
    for (config, expected) in refused {
        let error = plan(CredentialKind::ApiKey, config).unwrap_err();
        assert!(error.contains(expected), "{config}: {error}");
    }
}

#[test]
fn oauth_is_the_standard_flow_with_a_dynamic_client_only() {
    use portcullis_sdk::testing::{assert_standard_profile, oauth_request};
    let dynamic = oauth_request(Registration::Dynamic)
        .server_url("https://mcp.sentry.dev/mcp/acme/web")
        .build();
    assert_standard_profile(&<ProviderSentry as Provider>::oauth(dynamic).unwrap());
    let own = <ProviderSentry as Provider>::oauth(oauth_request(Registration::Own).build());
    assert!(own.unwrap_err().contains("\"registration\": \"dynamic\""));
    let configured = oauth_request(Registration::Dynamic)
        .config(r#"{"org":"acme"}"#)
        .build();
    assert!(<ProviderSentry as Provider>::oauth(configured).is_err());
}
