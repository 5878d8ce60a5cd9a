//! `provider-sentry`: Sentry's hosted MCP server (`https://mcp.sentry.dev/mcp`).
//!
//! Sentry reserves `Bearer` for access tokens its own MCP OAuth server issued; a Sentry
//! user auth token must be sent as `Authorization: Sentry-Bearer <token>`, or Sentry takes
//! it for an invalid OAuth token. So an API-key connector gets `Sentry-Bearer` and an
//! OAuth connector gets `Bearer`. There is no configuration.
//!
//! OAuth (spec 9.5): Sentry's MCP server runs its own authorization server, which
//! registers clients dynamically (`/oauth/register`): the standard flow, and an own
//! client is refused. Its tokens are bound to the exact MCP URL they were issued for
//! (`/mcp/{org}/{project}`), which the host's `resource` already is.

use portcullis_sdk::provider::*;

pub struct ProviderSentry;

impl Provider for ProviderSentry {
    fn describe() -> PluginInfo {
        info("provider-sentry", env!("CARGO_PKG_VERSION"))
    }

    fn plan(request: PlanRequest) -> Result<InjectionPlan, String> {
        match config(&request) {
            Ok(config) if config.is_empty() => {}
            Ok(_) => return Err(NO_CONFIGURATION.to_owned()),
            Err(e) => return Err(e),
        }
        let authorization = match request.credential {
            CredentialKind::None => None,
            CredentialKind::ApiKey => Some(format!("Sentry-Bearer {SECRET}")),
            CredentialKind::OauthAccessToken => Some(format!("Bearer {ACCESS_TOKEN}")),
        };
        Ok(InjectionPlan {
            headers: authorization
                .map(|value| ("Authorization".to_owned(), value))
                .into_iter()
                .collect(),
            query: Vec::new(),
        })
    }

    fn oauth(request: OAuthRequest) -> Result<OAuthProfile, String> {
        if !oauth_config(&request)?.is_empty() {
            return Err(NO_CONFIGURATION.to_owned());
        }
        match request.registration {
            Registration::Dynamic => Ok(standard_profile()),
            Registration::Own => Err(
                "Sentry's MCP server registers its OAuth clients dynamically: connect with \
                 `\"registration\": \"dynamic\"` (or use a user auth token as an API key)"
                    .to_owned(),
            ),
        }
    }
}

const NO_CONFIGURATION: &str = "provider-sentry takes no configuration";

portcullis_sdk::export_provider!(ProviderSentry);

#[cfg(test)]
mod tests;
