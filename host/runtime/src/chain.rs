//! Which plugins make each decision, in which order, and how their answers combine.
//!
//! * `access` and `request`: every plugin of the chain is asked in order; the first deny
//!   wins (deny overrides) and the plugins after it are not called.
//! * `tools`: the permitted set is the intersection of every plugin's answer.
//! * `providers`: the provider plugin for each provider profile name a connector may
//!   carry (`bearer`, `sentry`, `github`, ...).
//!
//! The defaults are the built-in plugins, so the proxy needs no configuration file.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::registry::{Plugin, PluginKind};

/// The chain configuration, as written in the `[plugins.chains]` table.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    pub access: Vec<ChainEntry>,
    pub request: Vec<ChainEntry>,
    pub tools: Vec<ChainEntry>,
    /// Provider profile name to provider plugin name.
    pub providers: BTreeMap<String, String>,
}

/// One link of a policy chain: a plugin name, or a plugin with operator settings.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ChainEntry {
    Name(String),
    WithSettings {
        plugin: String,
        #[serde(default)]
        settings: serde_json::Map<String, serde_json::Value>,
    },
}

impl ChainEntry {
    pub fn plugin(&self) -> &str {
        match self {
            ChainEntry::Name(name) => name,
            ChainEntry::WithSettings { plugin, .. } => plugin,
        }
    }

    fn settings_json(&self) -> String {
        match self {
            ChainEntry::Name(_) => "{}".to_owned(),
            ChainEntry::WithSettings { settings, .. } => {
                serde_json::Value::Object(settings.clone()).to_string()
            }
        }
    }
}

impl Default for ChainConfig {
    fn default() -> Self {
        let names = |names: &[&str]| {
            names
                .iter()
                .map(|n| ChainEntry::Name((*n).to_owned()))
                .collect()
        };
        Self {
            access: names(&["connector-access"]),
            request: names(&["declared-tools", "connector-allowlist"]),
            tools: names(&["declared-tools", "connector-allowlist"]),
            providers: [
                ("bearer", "provider-bearer"),
                ("sentry", "provider-sentry"),
                ("github", "provider-github"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        }
    }
}

impl ChainConfig {
    /// The chain name and plugin name of every reference, for error messages.
    fn references(&self) -> impl Iterator<Item = (&'static str, &str, PluginKind)> {
        self.access
            .iter()
            .map(|e| ("access", e.plugin(), PluginKind::Policy))
            .chain(
                self.request
                    .iter()
                    .map(|e| ("request", e.plugin(), PluginKind::Policy)),
            )
            .chain(
                self.tools
                    .iter()
                    .map(|e| ("tools", e.plugin(), PluginKind::Policy)),
            )
            .chain(
                self.providers
                    .values()
                    .map(|p| ("providers", p.as_str(), PluginKind::Provider)),
            )
    }

    /// The chain that uses `name` as a plugin of a kind other than `kind`, if any.
    pub fn conflicting_use(&self, name: &str, kind: PluginKind) -> Option<&'static str> {
        self.references()
            .find(|(_, plugin, wanted)| *plugin == name && *wanted != kind)
            .map(|(chain, _, _)| chain)
    }
}

/// A chain link bound to a loaded plugin version.
#[derive(Clone)]
pub(crate) struct Link {
    pub plugin: Arc<Plugin>,
    pub settings: Arc<str>,
}

#[derive(Clone)]
pub(crate) struct ResolvedChains {
    pub access: Arc<[Link]>,
    pub request: Arc<[Link]>,
    pub tools: Arc<[Link]>,
    pub providers: BTreeMap<String, Arc<Plugin>>,
    pub request_reads_arguments: bool,
}

impl ResolvedChains {
    pub fn resolve(
        config: &ChainConfig,
        plugins: &BTreeMap<Arc<str>, Arc<Plugin>>,
    ) -> Result<Self, String> {
        let find = |chain: &str, name: &str, kind: PluginKind| -> Result<Arc<Plugin>, String> {
            let plugin = plugins.get(name).ok_or_else(|| {
                format!("the {chain} chain names plugin `{name}`, which is not loaded")
            })?;
            if plugin.kind != kind {
                return Err(format!(
                    "the {chain} chain needs a {} plugin, but `{name}` is a {} plugin",
                    kind.as_str(),
                    plugin.kind.as_str()
                ));
            }
            Ok(plugin.clone())
        };
        let links = |chain: &str, entries: &[ChainEntry]| -> Result<Arc<[Link]>, String> {
            entries
                .iter()
                .map(|entry| {
                    Ok(Link {
                        plugin: find(chain, entry.plugin(), PluginKind::Policy)?,
                        settings: entry.settings_json().into(),
                    })
                })
                .collect()
        };
        let request = links("request", &config.request)?;
        let providers = config
            .providers
            .iter()
            .map(|(profile, name)| {
                Ok((
                    profile.clone(),
                    find("providers", name, PluginKind::Provider)?,
                ))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            access: links("access", &config.access)?,
            request_reads_arguments: request.iter().any(|l| l.plugin.reads_arguments),
            request,
            tools: links("tools", &config.tools)?,
            providers,
        })
    }
}
