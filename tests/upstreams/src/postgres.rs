//! A real PostgreSQL for the tests of the PostgreSQL store and of several replicas: one
//! throwaway cluster per test binary, started by `tests/pg/pg-server.sh` (which installs
//! Debian's `postgresql` first when `initdb` is missing), and a fresh database per test.
//!
//! The cluster runs as an unprivileged user in a temporary directory, on `127.0.0.1` and a
//! free port; the script watches this process and stops the cluster and removes its
//! directory once the test binary exits, however it exits. If PostgreSQL cannot be
//! started, every test that asks for it panics with the script's own message: a PostgreSQL
//! test never passes by skipping.

use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../pg/pg-server.sh");

/// The cluster of this test binary.
#[derive(Debug)]
pub struct Cluster {
    /// `postgres://portcullis@127.0.0.1:PORT/portcullis?sslmode=disable`; the role may
    /// create databases.
    pub url: String,
    /// Where `psql` and the server binaries are.
    pub bindir: String,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static DATABASES: AtomicU32 = AtomicU32::new(0);

/// The cluster of this test binary, started on first use (a few seconds).
///
/// # Panics
/// When PostgreSQL cannot be installed or started, with the reason.
pub fn cluster() -> &'static Cluster {
    match CLUSTER.get_or_init(|| start(SCRIPT)) {
        Ok(cluster) => cluster,
        Err(e) => panic!(
            "this test needs a PostgreSQL server and none could be started: {e}\n\
             (tests/pg/pg-server.sh installs Debian's `postgresql` package when initdb is \
             missing; that needs root or password-less sudo)"
        ),
    }
}

fn start(script: &str) -> Result<Cluster, String> {
    let out = Command::new("bash")
        .arg(script)
        .arg("start")
        .arg("--watch-pid")
        .arg(std::process::id().to_string())
        .output()
        .map_err(|e| format!("cannot run {script}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{script} start failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let value = |key: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_owned)
            .ok_or_else(|| format!("{script} start printed no {key}:\n{stdout}"))
    };
    Ok(Cluster {
        url: value("DATABASE_URL")?,
        bindir: value("PG_BINDIR")?,
    })
}

impl Cluster {
    /// Runs one SQL statement as the `portcullis` role, in its own database.
    ///
    /// # Panics
    /// When `psql` fails, with its message.
    pub fn psql(&self, sql: &str) {
        let out = Command::new(format!("{}/psql", self.bindir))
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.url,
                "-c",
                sql,
            ])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The URL of `database` on this cluster.
    pub fn url_of(&self, database: &str) -> String {
        self.url
            .replacen("/portcullis?", &format!("/{database}?"), 1)
    }
}

/// A new empty database of its own on this binary's cluster, as a `postgres://` URL.
///
/// # Panics
/// As [`cluster`], or when the database cannot be created.
pub fn fresh_database() -> String {
    let cluster = cluster();
    let name = format!(
        "t{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::Relaxed)
    );
    cluster.psql(&format!("CREATE DATABASE {name}"));
    cluster.url_of(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_gives_each_test_a_database_of_its_own() {
        let (a, b) = (fresh_database(), fresh_database());
        assert_ne!(a, b);
        assert!(a.starts_with("postgres://portcullis@127.0.0.1:"), "{a}");
        cluster().psql("SELECT 1");
    }

    #[test]
    fn a_server_that_cannot_start_is_an_error_with_the_reason() {
        let dir = tempfile_dir();
        let script = format!("{dir}/fails.sh");
        std::fs::write(
            &script,
            "echo 'initdb: cannot create directory' >&2; exit 1\n",
        )
        .unwrap();
        let err = start(&script).unwrap_err();
        assert!(err.contains("start failed"), "{err}");
        assert!(err.contains("initdb: cannot create directory"), "{err}");
        let silent = format!("{dir}/silent.sh");
        std::fs::write(&silent, "exit 0\n").unwrap();
        assert!(
            start(&silent)
                .unwrap_err()
                .contains("printed no DATABASE_URL")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> String {
        let dir = std::env::temp_dir().join(format!("pg-helper-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.display().to_string()
    }
}
