//! `provider-supabase`: Supabase's hosted MCP server (`https://mcp.supabase.com/mcp`, spec
//! 9.6).
//!
//! `Authorization: Bearer` with an OAuth access token (the hosted server's authorization
//! server registers clients dynamically: the standard flow) or a personal access token
//! (`sbp_…`) given as an API key. The connector's provider configuration becomes the
//! server's query options, which change the tools it offers:
//!
//! | key | query parameter | value |
//! |---|---|---|
//! | `project_ref` | `project_ref` | the project's reference: 20 lowercase letters or digits |
//! | `read_only` | `read_only` | boolean; only `true` is sent (`false` is the server's default) |
//! | `features` | `features` | feature groups, as a list or a comma-separated string: `account`, `docs`, `database`, `debugging`, `development`, `functions`, `storage`, `branching` |
//!
//! Everything is validated: an unknown key, a reference that is not one, an unknown or
//! repeated feature is refused, in the plan and before an authorization alike. Since the
//! options change the tool set, a connector must be re-authorized (re-discovered) after
//! its configuration changes.

use portcullis_sdk::provider::*;
use serde::Deserialize;

/// The feature groups the server knows (spec 9.6).
pub const FEATURES: [&str; 8] = [
    "account",
    "docs",
    "database",
    "debugging",
    "development",
    "functions",
    "storage",
    "branching",
];

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    project_ref: Option<String>,
    read_only: Option<bool>,
    features: Option<Features>,
}

/// `["database", "docs"]`, or `"database,docs"` as the server's query parameter reads.
#[derive(Deserialize)]
#[serde(untagged)]
enum Features {
    List(Vec<String>),
    Text(String),
}

impl Features {
    fn into_list(self) -> Vec<String> {
        match self {
            Features::List(list) => list,
            Features::Text(text) if text.is_empty() => Vec::new(),
            Features::Text(text) => text.split(',').map(|f| f.trim().to_owned()).collect(),
        }
    }
}

impl Config {
    /// The configuration, validated, as the query parameters it stands for.
    fn query(json: &str) -> Result<Vec<(String, String)>, String> {
        let config: Config = typed_config(json, "provider-supabase")?;
        let mut query = Vec::new();
        if let Some(reference) = config.project_ref {
            let valid = reference.len() == 20
                && reference
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !valid {
                return Err(format!(
                    "provider-supabase: project_ref {reference:?} is not a project reference \
                     (20 lowercase letters or digits, from the project's URL or settings)"
                ));
            }
            query.push(("project_ref".to_owned(), reference));
        }
        if config.read_only == Some(true) {
            query.push(("read_only".to_owned(), "true".to_owned()));
        }
        if let Some(features) = config.features.map(Features::into_list) {
            if features.is_empty() {
                return Err(
                    "provider-supabase: features needs at least one feature group; leave it out \
                     for the server's default"
                        .to_owned(),
                );
            }
            for (i, feature) in features.iter().enumerate() {
                if !FEATURES.contains(&feature.as_str()) {
                    return Err(format!(
                        "provider-supabase: unknown feature group {feature:?} (known: {})",
                        FEATURES.join(", ")
                    ));
                }
                if features[..i].contains(feature) {
                    return Err(format!(
                        "provider-supabase: feature group {feature:?} is listed twice"
                    ));
                }
            }
            query.push(("features".to_owned(), features.join(",")));
        }
        Ok(query)
    }
}

pub struct ProviderSupabase;

impl Provider for ProviderSupabase {
    fn describe() -> PluginInfo {
        info("provider-supabase", env!("CARGO_PKG_VERSION"))
    }

    fn plan(request: PlanRequest) -> Result<InjectionPlan, String> {
        let query = Config::query(&request.config)?;
        Ok(InjectionPlan {
            headers: credential_placeholder(request.credential)
                .map(|credential| ("Authorization".to_owned(), format!("Bearer {credential}")))
                .into_iter()
                .collect(),
            query,
        })
    }

    fn oauth(request: OAuthRequest) -> Result<OAuthProfile, String> {
        Config::query(&request.config)?;
        Ok(standard_profile())
    }
}

portcullis_sdk::export_provider!(ProviderSupabase);

#[cfg(test)]
mod tests;
