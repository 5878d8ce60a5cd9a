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
//!
//! These headers change which tools the server offers, so a connector must be
//! re-authorized (re-discovered) after its configuration changes.

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
}

pub struct ProviderGithub;

fn list(name: &str, values: &[String]) -> Result<(String, String), String> {
    if let Some(bad) = values
        .iter()
        .find(|v| v.is_empty() || v.contains([',', '{', '}']))
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
        let config: Config = serde_json::from_str(&request.config)
            .map_err(|e| format!("invalid provider-github configuration: {e}"))?;
        let mut headers = Vec::new();
        if let Some(credential) = credential_placeholder(request.credential) {
            headers.push(("Authorization".to_owned(), format!("Bearer {credential}")));
        }
        for (header, values) in [
            ("X-MCP-Toolsets", &config.toolsets),
            ("X-MCP-Tools", &config.tools),
            ("X-MCP-Exclude-Tools", &config.exclude_tools),
        ] {
            if let Some(values) = values {
                headers.push(list(header, values)?);
            }
        }
        for (header, flag) in [
            ("X-MCP-Readonly", config.readonly),
            ("X-MCP-Lockdown", config.lockdown),
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
}

portcullis_sdk::export_provider!(ProviderGithub);
