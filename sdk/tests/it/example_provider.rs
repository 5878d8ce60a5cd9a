//! The example provider plugin of the README (Writing a plugin), compiled and tested here
//! so the documentation cannot drift from an SDK that still builds it: the text between
//! the marker lines must appear verbatim in the document.

// ---- example: provider src/lib.rs ----
//! acme-provider: Acme's MCP server reads an API key from `X-Acme-Key` and an OAuth token
//! from `Authorization`; its OAuth needs an own client and asks for consent every time.

use portcullis_sdk::provider::*;

pub struct Acme;

impl Provider for Acme {
    fn describe() -> PluginInfo {
        info("acme-provider", env!("CARGO_PKG_VERSION"))
    }
    fn plan(request: PlanRequest) -> Result<InjectionPlan, String> {
        let header = match request.credential {
            CredentialKind::None => None,
            CredentialKind::ApiKey => Some(("X-Acme-Key".to_owned(), SECRET.to_owned())),
            CredentialKind::OauthAccessToken => {
                Some(("Authorization".to_owned(), format!("Bearer {ACCESS_TOKEN}")))
            }
        };
        let headers = header.into_iter().collect();
        Ok(InjectionPlan {
            headers,
            query: Vec::new(),
        })
    }
    fn oauth(request: OAuthRequest) -> Result<OAuthProfile, String> {
        if request.registration == Registration::Dynamic {
            return Err("Acme registers no client dynamically: use an own client".to_owned());
        }
        Ok(OAuthProfile {
            authorization_params: vec![("prompt".to_owned(), "consent".to_owned())],
            client_auth: Some(ClientAuth::ClientSecretPost),
            ..standard_profile()
        })
    }
}

portcullis_sdk::export_provider!(Acme);
// ---- end ----

// ---- example: provider tests ----
#[cfg(test)]
mod tests {
    use portcullis_sdk::provider::*;
    use portcullis_sdk::testing::*;

    use super::Acme;

    #[test]
    fn the_credential_goes_where_acme_reads_it() {
        let key = plan_headers::<Acme>(CredentialKind::ApiKey, "{}");
        assert_eq!(key, pairs([("X-Acme-Key", "{secret}")]));
        let token = plan_headers::<Acme>(CredentialKind::OauthAccessToken, "{}");
        assert_eq!(token, pairs([("Authorization", "Bearer {access_token}")]));
    }

    #[test]
    fn oauth_asks_for_consent_with_an_own_client() {
        let profile = Acme::oauth(oauth_request(Registration::Own).build()).unwrap();
        assert_profile_accepted(&profile);
        assert_eq!(
            param(&profile.authorization_params, "prompt"),
            Some("consent")
        );
        assert_eq!(profile.client_auth, Some(ClientAuth::ClientSecretPost));
        assert!(Acme::oauth(oauth_request(Registration::Dynamic).build()).is_err());
    }
}
// ---- end ----

#[test]
fn the_documentation_shows_this_exact_code() {
    let doc = include_str!("../../../README.md");
    let source = include_str!("example_provider.rs");
    for marker in [
        "// ---- example: provider src/lib.rs ----",
        "// ---- example: provider tests ----",
    ] {
        let code = super::example_plugin::between(source, marker);
        assert!(
            doc.contains(&format!("```rust\n{code}```")),
            "README.md lacks the block after {marker:?}:\n{code}"
        );
    }
}
