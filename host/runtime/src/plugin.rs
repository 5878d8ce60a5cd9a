//! One loaded plugin version: what admission learned about it, and its pre-instantiated
//! form, the handle every call instantiates afresh. Also what the admin API shows of it,
//! and [`Admitted`], a version admitted but not yet part of a registry.

use std::sync::Arc;
use std::time::SystemTime;

use portcullis_model::Stamp;
use serde::Serialize;

use crate::abi::Pre;
use crate::counters::PluginStats;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    Policy,
    Provider,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Policy => "policy",
            PluginKind::Provider => "provider",
        }
    }
}

/// One loaded plugin version.
pub struct Plugin {
    /// The registry name chains refer to.
    pub name: Arc<str>,
    pub kind: PluginKind,
    /// The name and version the component reports about itself.
    pub reported_name: String,
    pub version: Arc<str>,
    /// Hex sha256 of the component bytes.
    pub sha256: Arc<str>,
    pub loaded_at: SystemTime,
    /// Embedded in the binary rather than loaded by an operator.
    pub builtin: bool,
    /// Whether `request` needs tool arguments (policy plugins only).
    pub reads_arguments: bool,
    /// Linked once, instantiated per call; shareable across threads.
    pub(crate) pre: Pre,
    /// The counters of this plugin's name (`metering`).
    pub(crate) stats: Arc<PluginStats>,
}

impl Plugin {
    /// What the audit log records of this version.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            name: self.name.clone(),
            version: self.version.clone(),
            sha256: self.sha256.clone(),
        }
    }

    pub(crate) fn summary(&self, previous: Option<&Plugin>) -> PluginSummary {
        PluginSummary {
            name: self.name.to_string(),
            kind: self.kind,
            version: self.version.to_string(),
            reported_name: self.reported_name.clone(),
            sha256: self.sha256.to_string(),
            loaded_at: self.loaded_at,
            builtin: self.builtin,
            reads_arguments: self.reads_arguments,
            previous: previous.map(|p| PreviousVersion {
                version: p.version.to_string(),
                sha256: p.sha256.to_string(),
                loaded_at: p.loaded_at,
            }),
        }
    }
}

/// A plugin as the admin API lists it.
#[derive(Clone, Debug, Serialize)]
pub struct PluginSummary {
    pub name: String,
    pub kind: PluginKind,
    pub version: String,
    pub reported_name: String,
    pub sha256: String,
    #[serde(with = "unix_seconds")]
    pub loaded_at: SystemTime,
    pub builtin: bool,
    pub reads_arguments: bool,
    pub previous: Option<PreviousVersion>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PreviousVersion {
    pub version: String,
    pub sha256: String,
    #[serde(with = "unix_seconds")]
    pub loaded_at: SystemTime,
}

mod unix_seconds {
    use std::time::{SystemTime, UNIX_EPOCH};

    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        s.serialize_u64(secs)
    }
}

/// A component admission accepted, not yet serving: hand it to a [`Draft`](crate::Draft)
/// to install it or make it a shadow candidate.
#[derive(Clone)]
pub struct Admitted(pub(crate) Arc<Plugin>);

impl Admitted {
    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn kind(&self) -> PluginKind {
        self.0.kind
    }

    pub fn sha256(&self) -> &str {
        &self.0.sha256
    }

    pub fn summary(&self) -> PluginSummary {
        self.0.summary(None)
    }
}
