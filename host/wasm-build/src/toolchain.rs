//! Makes sure the Rust toolchain running this build can compile for `wasm32-wasip2`.
//!
//! `rust-toolchain.toml` lists the target, but rustup adds listed targets only when its
//! automatic installs are on, and the machines this project builds on run with
//! `RUSTUP_AUTO_INSTALL=0`. So the build asks the compiler where its standard libraries
//! live, and when the target's is missing it runs `rustup target add` for the toolchain in
//! use, then checks again. The user types nothing extra; without rustup, or when the
//! download fails, the build stops with one line that says what to run.
//!
//! Several builds may reach this at once (the build script of `host/builtins` and test
//! binaries that build plugins), so a failed `rustup` run is not an error when the target
//! is present afterwards: another process installed it.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::TARGET;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "could not run `{rustc} --print sysroot` to find the Rust standard libraries: {detail}"
    )]
    Sysroot { rustc: String, detail: String },
    #[error(
        "the Rust toolchain at {sysroot} lacks the {TARGET} target and rustup is not on PATH to add it: \
         install Rust with rustup (https://rustup.rs), or add the {TARGET} standard library to this toolchain"
    )]
    NoRustup { sysroot: PathBuf },
    #[error(
        "adding the {TARGET} target failed ({detail}); run `{command}` by hand (it needs the network once), then build again"
    )]
    AddFailed { command: String, detail: String },
}

/// The programs and toolchain the check uses; [`ensure_target`] reads them from the
/// environment cargo gives a build.
#[derive(Clone, Debug)]
pub struct Toolchain {
    pub rustc: OsString,
    pub rustup: OsString,
    /// The rustup toolchain to add the target to; `None` lets rustup pick the active one.
    pub name: Option<String>,
}

impl Toolchain {
    /// The compiler cargo uses (`RUSTC`), rustup from `PATH`, and the toolchain rustup
    /// selected for this build (`RUSTUP_TOOLCHAIN`).
    pub fn from_env() -> Self {
        Self {
            rustc: std::env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc")),
            rustup: OsString::from("rustup"),
            name: std::env::var("RUSTUP_TOOLCHAIN")
                .ok()
                .filter(|name| !name.is_empty()),
        }
    }
}

/// Adds `wasm32-wasip2` to the toolchain in use when it lacks it.
pub fn ensure_target() -> Result<(), TargetError> {
    ensure_target_with(&Toolchain::from_env())
}

/// [`ensure_target`] with explicit programs, for tests.
pub fn ensure_target_with(toolchain: &Toolchain) -> Result<(), TargetError> {
    let sysroot = sysroot(&toolchain.rustc)?;
    if has_target(&sysroot) {
        return Ok(());
    }
    let name = toolchain
        .name
        .clone()
        .or_else(|| rustup_toolchain_of(&sysroot));
    let mut command = Command::new(&toolchain.rustup);
    command.args(["target", "add", TARGET]);
    if let Some(name) = &name {
        command.args(["--toolchain", name]);
    }
    let shown = match &name {
        Some(name) => format!("rustup target add {TARGET} --toolchain {name}"),
        None => format!("rustup target add {TARGET}"),
    };
    eprintln!(
        "portcullis: the toolchain at {} lacks {TARGET}; running `{shown}`",
        sysroot.display()
    );
    let outcome = command.status();
    if has_target(&sysroot) {
        return Ok(());
    }
    let detail = match outcome {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(TargetError::NoRustup { sysroot });
        }
        Err(error) => format!("could not start rustup: {error}"),
        Ok(status) if status.success() => {
            format!(
                "rustup succeeded but {} is still missing",
                target_dir(&sysroot).display()
            )
        }
        Ok(status) => format!("rustup {status}"),
    };
    Err(TargetError::AddFailed {
        command: shown,
        detail,
    })
}

fn sysroot(rustc: &OsString) -> Result<PathBuf, TargetError> {
    let failure = |detail: String| TargetError::Sysroot {
        rustc: rustc.to_string_lossy().into_owned(),
        detail,
    };
    let output = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|error| failure(error.to_string()))?;
    if !output.status.success() {
        return Err(failure(format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if path.is_empty() {
        return Err(failure("it printed nothing".into()));
    }
    Ok(PathBuf::from(path))
}

fn target_dir(sysroot: &Path) -> PathBuf {
    sysroot.join("lib").join("rustlib").join(TARGET).join("lib")
}

fn has_target(sysroot: &Path) -> bool {
    target_dir(sysroot).is_dir()
}

/// A rustup toolchain's sysroot is `<RUSTUP_HOME>/toolchains/<name>`.
fn rustup_toolchain_of(sysroot: &Path) -> Option<String> {
    let parent = sysroot.parent()?;
    (parent.file_name()? == "toolchains")
        .then(|| sysroot.file_name()?.to_str().map(str::to_owned))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Serializes the tests that write and run scripts: a script one thread is writing is
    /// inherited, open for writing, by a process another thread forks at that moment, and
    /// running it then fails with "text file busy".
    static SCRIPTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// A scratch directory with a fake `rustc` that prints a sysroot inside it.
    struct Scratch {
        dir: PathBuf,
        _serial: std::sync::MutexGuard<'static, ()>,
    }

    impl Scratch {
        fn new(test: &str) -> Self {
            let serial = SCRIPTS
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let dir = std::env::temp_dir().join(format!(
                "portcullis-wasm-build-{test}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("toolchains/stable-test")).unwrap();
            let scratch = Self {
                dir,
                _serial: serial,
            };
            scratch.script("rustc", &format!("echo {}", scratch.sysroot().display()));
            scratch
        }

        fn sysroot(&self) -> PathBuf {
            self.dir.join("toolchains/stable-test")
        }

        fn script(&self, name: &str, body: &str) -> OsString {
            let path = self.dir.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path.into_os_string()
        }

        fn toolchain(&self, rustup: OsString) -> Toolchain {
            Toolchain {
                rustc: self.dir.join("rustc").into_os_string(),
                rustup,
                name: None,
            }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn present_target_runs_no_rustup() {
        let scratch = Scratch::new("present");
        std::fs::create_dir_all(target_dir(&scratch.sysroot())).unwrap();
        let rustup = scratch.script("rustup", "exit 7");
        ensure_target_with(&scratch.toolchain(rustup)).unwrap();
    }

    #[test]
    fn missing_target_is_added_for_the_toolchain_in_use() {
        let scratch = Scratch::new("add");
        let log = scratch.dir.join("rustup.log");
        let rustup = scratch.script(
            "rustup",
            &format!(
                "echo \"$@\" > {}\nmkdir -p {}",
                log.display(),
                target_dir(&scratch.sysroot()).display()
            ),
        );
        ensure_target_with(&scratch.toolchain(rustup)).unwrap();
        assert_eq!(
            std::fs::read_to_string(log).unwrap().trim(),
            format!("target add {TARGET} --toolchain stable-test")
        );
    }

    #[test]
    fn a_failed_download_names_the_command_to_run() {
        let scratch = Scratch::new("fail");
        let rustup = scratch.script("rustup", "exit 1");
        let error = ensure_target_with(&scratch.toolchain(rustup)).unwrap_err();
        assert!(matches!(error, TargetError::AddFailed { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!(
                "adding the {TARGET} target failed (rustup exit status: 1); run \
                 `rustup target add {TARGET} --toolchain stable-test` by hand (it needs the network once), then build again"
            )
        );
    }

    #[test]
    fn without_rustup_the_error_says_how_to_get_it() {
        let scratch = Scratch::new("norustup");
        let missing = scratch.dir.join("no-such-rustup").into_os_string();
        let error = ensure_target_with(&scratch.toolchain(missing)).unwrap_err();
        assert!(matches!(error, TargetError::NoRustup { .. }), "{error:?}");
        assert!(error.to_string().contains("https://rustup.rs"), "{error}");
    }

    #[test]
    fn an_explicit_toolchain_name_wins() {
        let scratch = Scratch::new("named");
        let log = scratch.dir.join("rustup.log");
        let rustup = scratch.script("rustup", &format!("echo \"$@\" > {}", log.display()));
        let mut toolchain = scratch.toolchain(rustup);
        toolchain.name = Some("1.95.0-x86_64-unknown-linux-gnu".into());
        let error = ensure_target_with(&toolchain).unwrap_err();
        assert!(error.to_string().contains("still missing"), "{error}");
        assert_eq!(
            std::fs::read_to_string(log).unwrap().trim(),
            format!("target add {TARGET} --toolchain 1.95.0-x86_64-unknown-linux-gnu")
        );
    }

    #[test]
    fn toolchain_name_comes_from_a_rustup_sysroot_only() {
        assert_eq!(
            rustup_toolchain_of(Path::new("/r/.rustup/toolchains/stable-x86_64")),
            Some("stable-x86_64".into())
        );
        assert_eq!(rustup_toolchain_of(Path::new("/usr/lib/rust")), None);
    }
}
