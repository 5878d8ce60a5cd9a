//! `provider-slack`: Slack's hosted MCP server (`https://mcp.slack.com/mcp`, spec 9.4).
//!
//! Slack's MCP tools act as the user who authorized them, with a user token (`xoxp-…`)
//! sent as `Authorization: Bearer`; Slack refuses bot tokens. What differs from the
//! standard OAuth flow, all of it in [`Provider::oauth`]:
//!
//! * **own client only**: Slack has no dynamic client registration, so the owner creates
//!   a Slack app (with "Model Context Protocol" switched on) and gives its client id and
//!   secret; a dynamic registration is refused here, with what to do instead;
//! * **`client_secret_post`**, the only client authentication Slack's token endpoint
//!   accepts;
//! * **user scopes in `user_scope`**: Slack reads `scope` as the app's bot scopes, so the
//!   profile requests no `scope` and puts the user scopes in `user_scope`. They are the
//!   configuration's `user_scopes`, else the scopes discovery found; with neither, the
//!   authorization is refused (Slack would grant nothing the tools can use);
//! * **the user token is nested**: Slack's token answer carries the user token as
//!   `authed_user.access_token` (beside it, `refresh_token` and `expires_in` when the app
//!   has token rotation on, which the host then uses to refresh).
//!
//! The endpoints are not the plugin's to give (a plugin never says where requests go):
//! discovery finds Slack's (`https://slack.com/oauth/v2_user/authorize` and
//! `https://slack.com/api/oauth.v2.user.access`) in the metadata `mcp.slack.com`
//! publishes, and an owner may name them as the own client's `authorization_url` and
//! `token_url`.
//!
//! Configuration (all optional):
//!
//! | key | meaning |
//! |---|---|
//! | `user_scopes` | the user scopes to request, such as `["search:read.public", "chat:write"]` |

use portcullis_sdk::provider::*;
use serde::Deserialize;

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    user_scopes: Option<Vec<String>>,
}

impl Config {
    fn read(json: &str) -> Result<Self, String> {
        let config: Config = typed_config(json, "provider-slack")?;
        if let Some(scopes) = &config.user_scopes {
            if scopes.is_empty() {
                return Err(
                    "provider-slack: user_scopes needs at least one scope; leave it out to \
                     request the scopes Slack's server lists"
                        .to_owned(),
                );
            }
            if let Some(bad) = scopes.iter().find(|s| !is_scope_token(s)) {
                return Err(format!(
                    "provider-slack: user scope {bad:?} is not a scope (such as `chat:write`)"
                ));
            }
        }
        Ok(config)
    }
}

/// An RFC 6749 scope token: visible ASCII without `"` and `\`.
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope.len() <= 256
        && scope
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

/// Where Slack's token answer carries the user token.
pub const USER_TOKEN_POINTER: &str = "/authed_user/access_token";

pub struct ProviderSlack;

impl Provider for ProviderSlack {
    fn describe() -> PluginInfo {
        info("provider-slack", env!("CARGO_PKG_VERSION"))
    }

    fn plan(request: PlanRequest) -> Result<InjectionPlan, String> {
        Config::read(&request.config)?;
        Ok(InjectionPlan {
            headers: credential_placeholder(request.credential)
                .map(|credential| ("Authorization".to_owned(), format!("Bearer {credential}")))
                .into_iter()
                .collect(),
            query: Vec::new(),
        })
    }

    fn oauth(request: OAuthRequest) -> Result<OAuthProfile, String> {
        if request.registration == Registration::Dynamic {
            return Err(
                "Slack does not register OAuth clients dynamically: create a Slack app with \
                 \"Model Context Protocol\" on, and connect with `\"registration\": \"own\"`, \
                 its client id and its client secret"
                    .to_owned(),
            );
        }
        let config = Config::read(&request.config)?;
        // The owner's scopes are user scopes too: Slack reads `scope` as bot scopes, and
        // the MCP server acts as the user.
        let scopes = config
            .user_scopes
            .or(request.requested_scopes)
            .unwrap_or(request.discovered_scopes);
        if scopes.is_empty() {
            return Err(
                "Slack's server lists no scopes: name the user scopes the tools need in the \
                 connector's provider configuration, `{\"user_scopes\": [\"search:read.public\", …]}`"
                    .to_owned(),
            );
        }
        Ok(OAuthProfile {
            scopes: Some(Vec::new()),
            authorization_params: vec![("user_scope".to_owned(), scopes.join(","))],
            client_auth: Some(ClientAuth::ClientSecretPost),
            access_token_pointer: Some(USER_TOKEN_POINTER.to_owned()),
            ..standard_profile()
        })
    }
}

portcullis_sdk::export_provider!(ProviderSlack);

#[cfg(test)]
mod tests;
