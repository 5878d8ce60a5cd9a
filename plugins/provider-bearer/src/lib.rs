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
//! A connector without a credential gets only the extra headers. The configuration is the
//! connector owner's data, so nothing in it may hold a placeholder: the credential goes
//! into the one header this plugin chose, never into a second header the owner named.

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

/// An RFC 9110 token, the syntax of a header name.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn literal(what: &str, value: &str) -> Result<(), String> {
    if value.contains(['{', '}']) {
        return Err(format!("{what} may not hold a placeholder or brace"));
    }
    Ok(())
}

pub struct ProviderBearer;

impl Provider for ProviderBearer {
    fn describe() -> PluginInfo {
        info("provider-bearer", env!("CARGO_PKG_VERSION"))
    }

    fn plan(request: PlanRequest) -> Result<InjectionPlan, String> {
        // Through a map: serde would also read the struct from a JSON array.
        let config: Config = serde_json::from_value(serde_json::Value::Object(config(&request)?))
            .map_err(|e| format!("invalid provider-bearer configuration: {e}"))?;
        if !is_header_name(&config.header) {
            return Err(format!(
                "header {:?} is not a valid header name",
                config.header
            ));
        }
        literal("scheme", &config.scheme)?;
        let mut headers: Vec<(String, String)> = Vec::new();
        if let Some(credential) = credential_placeholder(request.credential) {
            let value = if config.scheme.is_empty() {
                credential.to_owned()
            } else {
                format!("{} {credential}", config.scheme)
            };
            headers.push((config.header.clone(), value));
        }
        for (name, value) in config.extra_headers {
            if !is_header_name(&name) {
                return Err(format!("extra header {name:?} is not a valid header name"));
            }
            // Header names are case-insensitive: a second `authorization` would replace or
            // double the credential header.
            if name.eq_ignore_ascii_case(&config.header) {
                return Err(format!(
                    "extra header {name} would replace the credential header"
                ));
            }
            literal(&format!("extra header {name}"), &value)?;
            headers.push((name, value));
        }
        Ok(InjectionPlan {
            headers,
            query: Vec::new(),
        })
    }
}

portcullis_sdk::export_provider!(ProviderBearer);

#[cfg(test)]
mod tests;
