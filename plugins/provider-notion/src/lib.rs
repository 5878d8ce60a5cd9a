//! `provider-notion`: Notion's hosted MCP server (`https://mcp.notion.com/mcp`, spec 9.3).
//!
//! The hosted server is OAuth-only: an authorization code with PKCE, the client registered
//! dynamically at Notion's authorization server (found by discovery), the access token as
//! `Authorization: Bearer`. So this provider
//!
//! * refuses an API key: Notion's integration tokens (`ntn_…`) belong to the REST API and
//!   the local open-source server, and the hosted server is not documented to take them;
//! * refuses an own client: the hosted server's clients are registered dynamically;
//! * otherwise takes the standard flow (the inherited [`Provider::oauth`]).
//!
//! There is no configuration.

use portcullis_sdk::provider::*;

pub struct ProviderNotion;

fn no_config(json: &str) -> Result<(), String> {
    let config: serde_json::Map<String, serde_json::Value> = typed_config(json, "provider-notion")?;
    if config.is_empty() {
        Ok(())
    } else {
        Err("provider-notion takes no configuration".to_owned())
    }
}

impl Provider for ProviderNotion {
    fn describe() -> PluginInfo {
        info("provider-notion", env!("CARGO_PKG_VERSION"))
    }

    fn plan(request: PlanRequest) -> Result<InjectionPlan, String> {
        no_config(&request.config)?;
        let authorization = match request.credential {
            CredentialKind::None => None,
            CredentialKind::ApiKey => {
                return Err(
                    "Notion's hosted MCP server accepts only OAuth: connect it with \
                     `\"auth\": {\"method\": \"oauth\", \"registration\": \"dynamic\"}`, not an \
                     API key"
                        .to_owned(),
                );
            }
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
        no_config(&request.config)?;
        match request.registration {
            Registration::Dynamic => Ok(standard_profile()),
            Registration::Own => Err(
                "Notion's hosted MCP server registers its OAuth clients dynamically: connect \
                 with `\"registration\": \"dynamic\"`"
                    .to_owned(),
            ),
        }
    }
}

portcullis_sdk::export_provider!(ProviderNotion);

#[cfg(test)]
mod tests;
