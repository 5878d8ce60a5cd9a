//! The chain configuration: which plugins make each decision, in which order.
//!
//! * `access` and `request`: policy plugins asked in order, deny overrides;
//! * `tools`: policy plugins whose permitted sets are intersected;
//! * `providers`: the provider plugin for each provider profile name a connector may carry
//!   (`bearer`, `sentry`, `github`, ...).
//!
//! It is the `[plugins.chains]` table of the proxy's configuration, and the body of
//! `GET/PUT /admin/v1/chains` in the same shape (it serializes as it is written). Every
//! field left out of the table keeps its default, and the defaults are the built-in
//! plugins' roles as the built-in list (`portcullis-builtins-list`) gives them, so the
//! proxy needs no configuration file. A link with settings is strict: a key other than
//! `plugin` and `settings` is refused, so a misspelt `settings` is never silently empty.
//! The runtime resolves and runs the chains.

use std::collections::BTreeMap;

use portcullis_builtins_list::{self as builtins, Chain};
use serde::{Deserialize, Serialize};

/// The chain configuration, as written in the `[plugins.chains]` table.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    pub access: Vec<ChainEntry>,
    pub request: Vec<ChainEntry>,
    pub tools: Vec<ChainEntry>,
    /// Provider profile name to provider plugin name.
    pub providers: BTreeMap<String, String>,
}

/// One link of a policy chain: a plugin name, or a plugin with operator settings.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(untagged, try_from = "RawEntry")]
pub enum ChainEntry {
    Name(String),
    WithSettings {
        plugin: String,
        #[serde(default)]
        settings: serde_json::Map<String, serde_json::Value>,
    },
}

/// How a link is read: a name, or a table with exactly `plugin` and `settings`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawEntry {
    Name(String),
    Table(Table),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    plugin: String,
    #[serde(default)]
    settings: serde_json::Map<String, serde_json::Value>,
}

impl TryFrom<RawEntry> for ChainEntry {
    type Error = &'static str;

    fn try_from(raw: RawEntry) -> Result<Self, Self::Error> {
        Ok(match raw {
            RawEntry::Name(name) => ChainEntry::Name(name),
            RawEntry::Table(Table { plugin, settings }) => {
                ChainEntry::WithSettings { plugin, settings }
            }
        })
    }
}

impl ChainConfig {
    /// The chains that name plugin `name`: `access`, `request`, `tools`, `providers`.
    pub fn chains_using(&self, name: &str) -> Vec<&'static str> {
        let policies = [
            ("access", &self.access),
            ("request", &self.request),
            ("tools", &self.tools),
        ];
        let mut using: Vec<&'static str> = policies
            .into_iter()
            .filter(|(_, entries)| entries.iter().any(|e| e.plugin() == name))
            .map(|(chain, _)| chain)
            .collect();
        if self.providers.values().any(|p| p == name) {
            using.push("providers");
        }
        using
    }
}

impl ChainEntry {
    pub fn plugin(&self) -> &str {
        match self {
            ChainEntry::Name(name) => name,
            ChainEntry::WithSettings { plugin, .. } => plugin,
        }
    }

    /// The operator settings as the JSON object text a plugin receives.
    pub fn settings_json(&self) -> String {
        match self {
            ChainEntry::Name(_) => "{}".to_owned(),
            ChainEntry::WithSettings { settings, .. } => {
                serde_json::Value::Object(settings.clone()).to_string()
            }
        }
    }
}

/// The built-in plugins in their roles.
impl Default for ChainConfig {
    fn default() -> Self {
        let policies = |chain| {
            builtins::policies_in(chain)
                .map(|name| ChainEntry::Name(name.to_owned()))
                .collect()
        };
        Self {
            access: policies(Chain::Access),
            request: policies(Chain::Request),
            tools: policies(Chain::Tools),
            providers: builtins::providers()
                .map(|(profile, plugin)| (profile.to_owned(), plugin.to_owned()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(entries: &[ChainEntry]) -> Vec<&str> {
        entries.iter().map(ChainEntry::plugin).collect()
    }

    #[test]
    fn the_defaults_are_the_built_ins() {
        let chains = ChainConfig::default();
        assert_eq!(names(&chains.access), ["connector-access"]);
        assert_eq!(
            names(&chains.request),
            ["declared-tools", "connector-allowlist"]
        );
        assert_eq!(
            names(&chains.tools),
            ["declared-tools", "connector-allowlist"]
        );
        let providers: Vec<(&str, &str)> = chains
            .providers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            providers,
            [
                ("bearer", "provider-bearer"),
                ("github", "provider-github"),
                ("sentry", "provider-sentry")
            ]
        );
    }

    #[test]
    fn a_table_overrides_only_the_fields_it_names() {
        let chains: ChainConfig = serde_json::from_str(
            r#"{"request": ["declared-tools", {"plugin": "no-deletes", "settings": {"a": 1}}]}"#,
        )
        .unwrap();
        assert_eq!(names(&chains.request), ["declared-tools", "no-deletes"]);
        assert_eq!(chains.request[1].settings_json(), r#"{"a":1}"#);
        assert_eq!(chains.request[0].settings_json(), "{}");
        let defaults = ChainConfig::default();
        assert_eq!(chains.access, defaults.access);
        assert_eq!(chains.tools, defaults.tools);
        assert_eq!(chains.providers, defaults.providers);
    }

    #[test]
    fn links_are_strict_and_serialize_as_written() {
        let error = serde_json::from_str::<ChainConfig>(
            r#"{"request": [{"plugin": "no-deletes", "setings": {}}]}"#,
        )
        .unwrap_err();
        assert!(error.to_string().contains("did not match"), "{error}");
        let text = r#"{"access":["connector-access"],"request":["declared-tools",{"plugin":"no-deletes","settings":{"a":1}}],"tools":[],"providers":{"bearer":"provider-bearer"}}"#;
        let chains: ChainConfig = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&chains).unwrap(), text);
        assert_eq!(chains.chains_using("no-deletes"), ["request"]);
        assert_eq!(chains.chains_using("provider-bearer"), ["providers"]);
        assert!(chains.chains_using("other").is_empty());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = serde_json::from_str::<ChainConfig>(r#"{"acess": []}"#).unwrap_err();
        assert!(
            error.to_string().starts_with("unknown field `acess`"),
            "{error}"
        );
    }
}
