//! `provider-bearer`: the credential in one header.
//!
//! The default is `Authorization: Bearer <credential>`, right for most MCP servers. The
//! connector's provider configuration can change it:
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `header` | `"Authorization"` | the header that carries the credential |
//! | `scheme` | `"Bearer"` | written before the credential; `""` sends it bare (`X-API-Key: <key>`) |
//! | `extra_headers` | `{}` | static headers to add, name to value |
//!
//! A connector without a credential gets only the extra headers.

use std::collections::BTreeMap;

use portcullis_sdk::provider::*;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    header: String,
    scheme: String,
    extra_headers: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            header: "Authorization".to_owned(),
            scheme: "Bearer".to_owned(),
            extra_headers: BTreeMap::new(),
        }
    }
}

pub struct ProviderBearer;

impl Provider for ProviderBearer {
    fn describe() -> PluginInfo {
        info("provider-bearer", env!("CARGO_PKG_VERSION"))
    }

    fn plan(request: PlanRequest) -> Result<InjectionPlan, String> {
        let config: Config = serde_json::from_str(&request.config)
            .map_err(|e| format!("invalid provider-bearer configuration: {e}"))?;
        let mut headers: Vec<(String, String)> = Vec::new();
        if let Some(credential) = credential_placeholder(request.credential) {
            let value = if config.scheme.is_empty() {
                credential.to_owned()
            } else {
                format!("{} {credential}", config.scheme)
            };
            headers.push((config.header, value));
        }
        for (name, value) in config.extra_headers {
            if value.contains('{') {
                return Err(format!("extra header {name} may not hold a placeholder"));
            }
            headers.push((name, value));
        }
        Ok(InjectionPlan {
            headers,
            query: Vec::new(),
        })
    }
}

portcullis_sdk::export_provider!(ProviderBearer);
