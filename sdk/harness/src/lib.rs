//! # portcullis-plugin-harness
//!
//! Calls a compiled plugin component exactly as the proxy does. Where the SDK's native
//! harness (`portcullis_sdk::testing`) tests a plugin's logic as plain Rust, this one
//! tests the artifact an operator would load: the same admission (format, world,
//! `describe` smoke call), the same sandbox and limits, the same answer checks, through
//! [`portcullis_runtime::Runtime`] with a chain made of this plugin alone.
//!
//! ```ignore
//! let plugin = Harness::build(Path::new("plugins/declared-tools/Cargo.toml"))?;
//! let verdict = plugin.request(ctx, request).await;
//! assert!(verdict.value.is_allow());
//! ```
//!
//! A policy plugin sits in the access, request and tools chains; a provider plugin serves
//! the profiles named in [`Options::profiles`] (by default its reported name). Every call
//! is async, like the runtime's, and needs a tokio runtime with the blocking pool (any
//! `#[tokio::test]`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use portcullis_runtime::{
    ChainConfig, ChainEntry, Decision, DecisionContext, InitialPlugin, InjectionPlan, Limits,
    LoadError, McpRequest, OAuthProfile, OAuthRequest, PlanError, PlanRequest, PluginKind,
    PluginSummary, Runtime, RuntimeConfig, ToolSet, Verdict,
};
use portcullis_wasm_build::{
    BuildError, PluginBuild, PluginCrate, nested_target_dir, workspace_root,
};

/// The registry name the plugin under test is loaded as.
pub const PLUGIN_NAME: &str = "plugin-under-test";

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} has no `[package]` name")]
    Manifest(PathBuf),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("the runtime refused the plugin: {0}")]
    Load(#[from] LoadError),
    #[error("no injection plan: {0}")]
    Plan(#[from] PlanError),
    #[error("the plan's {0} needs a credential and none was given")]
    MissingCredential(String),
}

/// How the plugin is wired into the runtime.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The operator settings a policy plugin receives in its chain links.
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// The provider profile names a provider plugin serves; empty means its reported name.
    pub profiles: Vec<String>,
    pub limits: Limits,
}

/// An injection plan with the credential written in, as sent upstream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenderedPlan {
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
}

/// One plugin component loaded into a runtime of its own.
pub struct Harness {
    runtime: Runtime,
}

impl Harness {
    /// Loads component bytes with default options.
    pub fn load(wasm: &[u8]) -> Result<Self, HarnessError> {
        Self::load_with(wasm, Options::default())
    }

    pub fn load_with(wasm: &[u8], options: Options) -> Result<Self, HarnessError> {
        // A first runtime with no chains admits the component and reports its kind and
        // name; the second is wired for it. Compilation happens once: the runtime keeps
        // compiled artifacts by digest.
        let plugin = [InitialPlugin {
            name: PLUGIN_NAME,
            wasm,
            builtin: false,
        }];
        let unwired = RuntimeConfig {
            limits: options.limits.clone(),
            chains: ChainConfig {
                access: Vec::new(),
                request: Vec::new(),
                tools: Vec::new(),
                providers: Default::default(),
            },
            ..RuntimeConfig::default()
        };
        let summary = Runtime::new(unwired.clone(), &plugin)?
            .plugin(PLUGIN_NAME)
            .expect("the plugin was just loaded");
        let mut config = unwired;
        match summary.kind {
            PluginKind::Policy => {
                let link = ChainEntry::WithSettings {
                    plugin: PLUGIN_NAME.to_owned(),
                    settings: options.settings,
                };
                config.chains.access = vec![link.clone()];
                config.chains.request = vec![link.clone()];
                config.chains.tools = vec![link];
            }
            PluginKind::Provider => {
                let profiles = match options.profiles.is_empty() {
                    true => vec![summary.reported_name],
                    false => options.profiles,
                };
                config.chains.providers = profiles
                    .into_iter()
                    .map(|profile| (profile, PLUGIN_NAME.to_owned()))
                    .collect();
            }
        }
        Ok(Self {
            runtime: Runtime::new(config, &plugin)?,
        })
    }

    /// Loads a `.wasm` file.
    pub fn load_file(path: &Path, options: Options) -> Result<Self, HarnessError> {
        let wasm = std::fs::read(path).map_err(|source| HarnessError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::load_with(&wasm, options)
    }

    /// Builds the plugin crate at `manifest_path` for `wasm32-wasip2`, as the built-in
    /// plugins are built, and loads the component.
    pub fn build(manifest_path: &Path) -> Result<Self, HarnessError> {
        Self::build_with(manifest_path, Options::default())
    }

    pub fn build_with(manifest_path: &Path, options: Options) -> Result<Self, HarnessError> {
        let path = build_component(manifest_path)?;
        Self::load_file(&path, options)
    }

    /// The runtime, for anything the shorthands below do not cover.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The plugin as the admin API would list it.
    pub fn summary(&self) -> PluginSummary {
        self.runtime
            .plugin(PLUGIN_NAME)
            .expect("the harness never unloads its plugin")
    }

    pub async fn access(&self, ctx: DecisionContext) -> Verdict<Decision> {
        self.runtime.access(Arc::new(ctx)).await
    }

    pub async fn request(&self, ctx: DecisionContext, request: McpRequest) -> Verdict<Decision> {
        self.runtime.request(Arc::new(ctx), request).await
    }

    pub async fn permitted_tools(&self, ctx: DecisionContext) -> Verdict<ToolSet> {
        self.runtime.permitted_tools(Arc::new(ctx)).await
    }

    pub async fn injection_plan(
        &self,
        request: PlanRequest,
    ) -> Verdict<Result<InjectionPlan, PlanError>> {
        self.runtime.injection_plan(request).await
    }

    /// The provider's OAuth profile for `request`, checked as the host checks it: a
    /// profile the host would refuse is a [`PlanError::Fault`].
    pub async fn oauth_profile(
        &self,
        request: OAuthRequest,
    ) -> Verdict<Result<OAuthProfile, PlanError>> {
        self.runtime.oauth_profile(request).await
    }

    /// The plan for `request` with `credential` in place of every placeholder.
    pub async fn rendered_plan(
        &self,
        request: PlanRequest,
        credential: Option<&str>,
    ) -> Result<RenderedPlan, HarnessError> {
        let plan = self.injection_plan(request).await.value?;
        let render = |entries: Vec<(String, portcullis_runtime::Template)>| {
            entries
                .into_iter()
                .map(|(name, template)| match template.render(credential) {
                    Some(value) => Ok((name, value)),
                    None => Err(HarnessError::MissingCredential(name)),
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(RenderedPlan {
            headers: render(plan.headers)?,
            query: render(plan.query)?,
        })
    }
}

/// Builds the crate of `manifest_path` into the nested target directory of its
/// workspace (or of the crate itself, outside a workspace) and returns the component.
fn build_component(manifest_path: &Path) -> Result<PathBuf, HarnessError> {
    let text = std::fs::read_to_string(manifest_path).map_err(|source| HarnessError::Read {
        path: manifest_path.to_owned(),
        source,
    })?;
    let package =
        package_name(&text).ok_or_else(|| HarnessError::Manifest(manifest_path.into()))?;
    let crate_dir = manifest_path.parent().unwrap_or(Path::new("."));
    let root = workspace_root(crate_dir).unwrap_or_else(|| crate_dir.to_owned());
    let build = PluginBuild::new(manifest_path, nested_target_dir(&root));
    let mut paths = build.build(&[PluginCrate::new(package)])?;
    Ok(paths.remove(0))
}

/// The `name` of the `[package]` table: enough of TOML for a plugin manifest, where the
/// name is a plain basic string.
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        let value = line
            .strip_prefix("name")
            .and_then(|rest| rest.trim_start().strip_prefix('='));
        if let (true, Some(value)) = (in_package, value) {
            return Some(
                value
                    .trim()
                    .strip_prefix('"')?
                    .strip_suffix('"')?
                    .to_owned(),
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::package_name;

    #[test]
    fn reads_the_package_name() {
        let manifest = "[lib]\nname = \"x\"\n\n[package]\nnamespace = 1\nname = \"my-plugin\"\n";
        assert_eq!(package_name(manifest).as_deref(), Some("my-plugin"));
        assert_eq!(package_name("[workspace]\nmembers = []\n"), None);
    }
}
