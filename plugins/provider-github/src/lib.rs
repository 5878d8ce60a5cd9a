//! `provider-github`: GitHub's remote MCP server (`https://api.githubcopilot.com/mcp/`).
//!
//! `Authorization: Bearer <PAT or OAuth token>`, plus GitHub's server-configuration
//! headers from the connector's provider configuration:
//!
//! | key | header | value |
//! |---|---|---|
//! | `toolsets` | `X-MCP-Toolsets` | list of toolset names, such as `["repos", "issues"]` |
//! | `tools` | `X-MCP-Tools` | list of tool names |
//! | `exclude_tools` | `X-MCP-Exclude-Tools` | list of tool names |
//! | `readonly` | `X-MCP-Readonly` | boolean |
//! | `lockdown` | `X-MCP-Lockdown` | boolean |
//! | `insiders` | `X-MCP-Insiders` | boolean |
//! | `features` | `X-MCP-Features` | list of feature flags |
//!
//! These headers change which tools the server offers, so a connector must be
//! re-authorized (re-discovered) after its configuration changes.
//!
//! OAuth (spec 9.2): GitHub does not register clients dynamically, so an OAuth connector
//! uses an own client (a GitHub OAuth App or GitHub App the owner created, whose client id
//! and secret the owner gives); a dynamic registration is refused with what to do
//! instead. Otherwise the flow is the standard one: discovery finds GitHub's endpoints in
//! the server's metadata (GitHub asks clients to follow it rather than hard-code them),
//! and an owner may name them (`https://github.com/login/oauth/authorize`,
//! `https://github.com/login/oauth/access_token`).

use portcullis_sdk::provider::*;
use serde::Deserialize;

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    toolsets: Option<Vec<String>>,
    tools: Option<Vec<String>>,
    exclude_tools: Option<Vec<String>>,
    readonly: Option<bool>,
    lockdown: Option<bool>,
    insiders: Option<bool>,
    features: Option<Vec<String>>,
}

pub struct ProviderGithub;

fn list(name: &str, values: &[String]) -> Result<(String, String), String> {
    // GitHub reads an empty header as "the defaults"; an empty list that meant "none"
    // would silently grant the default toolsets instead.
    if values.is_empty() {
        return Err(format!(
            "{name} needs at least one entry; leave the key out for the server's default"
        ));
    }
    if let Some(bad) = values
        .iter()
        .find(|v| v.is_empty() || v.contains(|c: char| ",{}".contains(c) || c.is_whitespace()))
    {
        return Err(format!("{name} entry {bad:?} is not a plain name"));
    }
    Ok((name.to_owned(), values.join(",")))
}

impl Provider for ProviderGithub {
    fn describe() -> PluginInfo {
        info("provider-github", env!("CARGO_PKG_VERSION"))
    }

    fn plan(request: PlanRequest) -> Result<InjectionPlan, String> {
        // Through a map: serde would also read the struct from a JSON array.
        let config: Config = serde_json::from_value(serde_json::Value::Object(config(&request)?))
            .map_err(|e| format!("invalid provider-github configuration: {e}"))?;
        let mut headers = Vec::new();
        if let Some(credential) = credential_placeholder(request.credential) {
            headers.push(("Authorization".to_owned(), format!("Bearer {credential}")));
        }
        for (header, values) in [
            ("X-MCP-Toolsets", &config.toolsets),
            ("X-MCP-Tools", &config.tools),
            ("X-MCP-Exclude-Tools", &config.exclude_tools),
            ("X-MCP-Features", &config.features),
        ] {
            if let Some(values) = values {
                headers.push(list(header, values)?);
            }
        }
        for (header, flag) in [
            ("X-MCP-Readonly", config.readonly),
            ("X-MCP-Lockdown", config.lockdown),
            ("X-MCP-Insiders", config.insiders),
        ] {
            if let Some(flag) = flag {
                headers.push((header.to_owned(), flag.to_string()));
            }
        }
        Ok(InjectionPlan {
            headers,
            query: Vec::new(),
        })
    }

    fn oauth(request: OAuthRequest) -> Result<OAuthProfile, String> {
        typed_config::<Config>(&request.config, "provider-github")?;
        match request.registration {
            Registration::Own => Ok(standard_profile()),
            Registration::Dynamic => Err(
                "GitHub does not register OAuth clients dynamically: create a GitHub OAuth App \
                 (or GitHub App) with Portcullis' callback URL, and connect with \
                 `\"registration\": \"own\"`, its client id and its client secret"
                    .to_owned(),
            ),
        }
    }
}

portcullis_sdk::export_provider!(ProviderGithub);

#[cfg(test)]
mod tests;
