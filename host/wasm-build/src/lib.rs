//! Builds plugin crates into WebAssembly components.
//!
//! Owns one thing: running `cargo build --target wasm32-wasip2` for a list of packages of a
//! workspace and reporting where each component landed. It is used by the build script
//! that embeds the built-in plugins, by the test suites that build hostile plugins, and by
//! the plugin test harness, so every one of them builds plugins the same way.
//!
//! The nested cargo runs with its own target directory: the outer cargo holds the lock on
//! its own, and sharing it would deadlock. It also runs with a scrubbed environment, since
//! a build script inherits variables (`RUSTFLAGS` for the host, clippy's wrapper, the
//! outer target's `CARGO_CFG_*`) that describe the outer build, not this one.
//!
//! Before it builds, it makes sure the toolchain in use has the `wasm32-wasip2` standard
//! library (see [`ensure_target`]): `rust-toolchain.toml` lists the target, but rustup adds
//! listed targets only when automatic installs are on, and a fresh machine may have them off.

mod toolchain;

pub use toolchain::{TargetError, ensure_target};

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target every plugin is built for; [`ensure_target`] installs it when it is missing.
pub const TARGET: &str = "wasm32-wasip2";

/// The cargo profile plugins are built with (defined in the workspace manifest).
pub const PROFILE: &str = "plugin";

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("could not start cargo ({cargo}): {source}; is a Rust toolchain on PATH?")]
    Spawn {
        cargo: String,
        source: std::io::Error,
    },
    #[error(
        "cargo build of plugins {packages:?} for {TARGET} failed ({status}); the compiler output above says why"
    )]
    Failed {
        packages: Vec<String>,
        status: std::process::ExitStatus,
    },
    #[error("cargo reported success but {0} is missing")]
    MissingArtifact(PathBuf),
}

/// One plugin crate to build.
#[derive(Clone, Debug)]
pub struct PluginCrate {
    /// The cargo package name, such as `portcullis-plugin-declared-tools`.
    pub package: String,
}

impl PluginCrate {
    pub fn new(package: impl Into<String>) -> Self {
        Self {
            package: package.into(),
        }
    }

    /// The file name cargo gives the component of this package.
    pub fn artifact_name(&self) -> String {
        format!("{}.wasm", self.package.replace('-', "_"))
    }
}

/// A nested cargo build of plugin crates from one workspace.
#[derive(Clone, Debug)]
pub struct PluginBuild {
    manifest_path: PathBuf,
    target_dir: PathBuf,
    features: Vec<String>,
}

impl PluginBuild {
    /// `manifest_path` is the workspace (or package) `Cargo.toml`; `target_dir` must not
    /// be the target directory of a cargo process that is running this code.
    pub fn new(manifest_path: impl Into<PathBuf>, target_dir: impl Into<PathBuf>) -> Self {
        Self {
            manifest_path: manifest_path.into(),
            target_dir: target_dir.into(),
            features: Vec::new(),
        }
    }

    /// Builds with these cargo features too, such as `portcullis-sdk/contract-v0-1-0`
    /// (the built-ins as components of an older contract). Components built with other
    /// features belong in a target directory of their own.
    pub fn with_features<S: Into<String>>(mut self, features: impl IntoIterator<Item = S>) -> Self {
        self.features.extend(features.into_iter().map(Into::into));
        self
    }

    /// Builds every crate in one cargo invocation and returns the component paths, in order.
    /// Adds the `wasm32-wasip2` target to the toolchain first when it lacks it.
    pub fn build(&self, crates: &[PluginCrate]) -> Result<Vec<PathBuf>, BuildError> {
        ensure_target()?;
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        let mut command = Command::new(&cargo);
        command
            .arg("build")
            .arg("--quiet")
            .arg("--target")
            .arg(TARGET)
            .arg("--profile")
            .arg(PROFILE)
            .arg("--manifest-path")
            .arg(&self.manifest_path)
            .arg("--target-dir")
            .arg(&self.target_dir);
        for krate in crates {
            command.arg("-p").arg(&krate.package);
        }
        if !self.features.is_empty() {
            command.arg("--features").arg(self.features.join(","));
        }
        scrub_environment(&mut command);
        let status = command.status().map_err(|source| BuildError::Spawn {
            cargo: cargo.to_string_lossy().into_owned(),
            source,
        })?;
        if !status.success() {
            return Err(BuildError::Failed {
                packages: crates.iter().map(|c| c.package.clone()).collect(),
                status,
            });
        }
        crates
            .iter()
            .map(|krate| {
                let path = self.artifact_dir().join(krate.artifact_name());
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(BuildError::MissingArtifact(path))
                }
            })
            .collect()
    }

    /// Where cargo puts the components.
    pub fn artifact_dir(&self) -> PathBuf {
        self.target_dir.join(TARGET).join(PROFILE)
    }
}

/// The workspace root of a crate inside this repository, found by walking up from
/// `start` to the first `Cargo.toml` that declares `[workspace]`.
pub fn workspace_root(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|dir| {
        let manifest = dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).ok()?;
        text.lines()
            .any(|line| line.trim() == "[workspace]")
            .then(|| dir.to_path_buf())
    })
}

/// The directory nested plugin builds use: `<workspace target dir>/plugin-build`, which
/// honours `CARGO_TARGET_DIR` like cargo does.
pub fn nested_target_dir(workspace_root: &Path) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root.join("target"));
    base.join("plugin-build")
}

/// Removes what describes the outer build: its flags, wrappers, target and profile
/// variables. Registry and network settings (`CARGO_HOME`, `CARGO_NET_*`,
/// `CARGO_REGISTRIES_*`, `CARGO_HTTP_*`) and the jobserver stay.
fn scrub_environment(command: &mut Command) {
    const KEEP_PREFIXES: [&str; 5] = [
        "CARGO_HOME",
        "CARGO_NET_",
        "CARGO_REGISTRIES_",
        "CARGO_HTTP_",
        "CARGO_MAKEFLAGS",
    ];
    const REMOVE: [&str; 14] = [
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_LINKER",
        "TARGET",
        "HOST",
        "OUT_DIR",
        "OPT_LEVEL",
        "PROFILE",
        "DEBUG",
        "NUM_JOBS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ];
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let outer_cargo_variable =
            key.starts_with("CARGO_") && !KEEP_PREFIXES.iter().any(|p| key.starts_with(p));
        if outer_cargo_variable || REMOVE.contains(&key) || key.starts_with("DEP_") {
            command.env_remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_name_follows_cargo_naming() {
        assert_eq!(
            PluginCrate::new("portcullis-plugin-declared-tools").artifact_name(),
            "portcullis_plugin_declared_tools.wasm"
        );
    }

    #[test]
    fn finds_this_workspace() {
        let root = workspace_root(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(
            root.join("wit").is_dir(),
            "{root:?} is not the repository root"
        );
    }
}
