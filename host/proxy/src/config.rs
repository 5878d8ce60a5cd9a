//! The proxy's configuration: a TOML file, then environment overrides.
//!
//! Every field has a default, so `portcullis serve` needs no file. Unknown keys are
//! errors, so a misspelt setting is never silently ignored. The two secrets (the admin
//! token and the master key) come only from the environment or the data directory,
//! never from the file, and never print in `Debug` output.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::egress::EgressConfig;
use crate::oauth::OAuthConfig;

/// A value that must not reach logs: `Debug` prints a placeholder.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    /// The address runs reach the proxy at, such as `https://mcp-proxy.example.com`;
    /// defaults to `http://<listen>`.
    pub public_base_url: Option<String>,
    pub data_dir: PathBuf,
    /// `postgres://…` (`PORTCULLIS_DATABASE_URL`): the PostgreSQL database that several
    /// replicas share; unset, the embedded SQLite file in the data directory. A secret:
    /// the URL may hold a password.
    pub database_url: Option<Secret>,
    pub upstream: EgressConfig,
    pub sessions: SessionConfig,
    pub http: HttpConfig,
    pub runs: RunConfig,
    pub plugins: portcullis_runtime::RuntimeConfig,
    pub limits: LimitsConfig,
    pub oauth: OAuthConfig,
    /// `PORTCULLIS_ADMIN_TOKEN`; when unset, a generated token kept in the data directory.
    #[serde(skip)]
    pub admin_token: Option<Secret>,
    /// `PORTCULLIS_MASTER_KEY` (base64 of 32 bytes); when unset, `<data-dir>/master.key`.
    #[serde(skip)]
    pub master_key: Option<Secret>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// A proxy session unused this long is closed.
    pub idle_timeout_secs: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// The largest request body accepted on the data plane and the admin API (plugin
    /// uploads have their own limit).
    pub max_body_bytes: usize,
    /// Browser origins allowed on the data plane; requests without `Origin` always pass.
    pub allowed_origins: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// A run's token stops working this long after the run started, finished or not.
    pub max_lifetime_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_base_url: None,
            data_dir: PathBuf::from("portcullis-data"),
            database_url: None,
            upstream: EgressConfig::default(),
            sessions: SessionConfig::default(),
            http: HttpConfig::default(),
            runs: RunConfig::default(),
            plugins: portcullis_runtime::RuntimeConfig::default(),
            limits: LimitsConfig::default(),
            oauth: OAuthConfig::default(),
            admin_token: None,
            master_key: None,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 1800,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 << 20,
            allowed_origins: Vec::new(),
        }
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            max_lifetime_secs: 86_400,
        }
    }
}

/// The `[limits]` table: every resource a run, a client or an upstream can make the
/// proxy hold, bounded. Exceeding one gives a clear error, never unbounded growth; the
/// README's "Limits" section says what each answer is. A rate of `0` means unlimited.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// The longest JSON-RPC method name a client may send, in bytes.
    pub method_bytes: usize,
    /// The longest tool name (`params.name` of `tools/call`), in bytes.
    pub tool_bytes: usize,
    /// The longest JSON-RPC id, in bytes of its JSON text.
    pub id_bytes: usize,
    /// Open proxy sessions per run.
    pub sessions_per_run: usize,
    /// Open answer streams (SSE answers and GET streams) per run.
    pub streams_per_run: usize,
    /// Open answer streams per session.
    pub streams_per_session: usize,
    /// Data-plane requests per second per run (bursts up to one second's worth).
    pub requests_per_second_per_run: u32,
    /// Data-plane requests per second per connector, over all runs.
    pub requests_per_second_per_connector: u32,
    /// The largest upstream JSON answer, in bytes.
    pub answer_bytes: usize,
    /// The largest upstream SSE event, in bytes.
    pub sse_event_bytes: usize,
    /// Audit records waiting to be written, in bytes.
    pub audit_queue_bytes: usize,
    /// Time a client has to send a request's headers (and an idle connection lives), in ms.
    pub header_read_timeout_ms: u64,
    /// Time a client has to send a request's whole body, in ms.
    pub body_read_timeout_ms: u64,
    /// Bytes of a data-plane body over `http.max_body_bytes` read and thrown away before
    /// the 413, so that a client still sending can read it; 0 never reads any.
    pub body_drain_bytes: usize,
    /// Open client connections; further connections wait to be accepted.
    pub max_connections: usize,
    /// Time a whole discovery (initialize and every tools/list page) may take, in ms.
    pub discovery_timeout_ms: u64,
    /// `tools/list` pages followed at discovery.
    pub discovery_pages: usize,
    /// The largest answer read from the upstream at discovery, in bytes.
    pub discovery_page_bytes: usize,
    /// The most tools a discovery snapshot holds.
    pub discovery_tools: usize,
    /// The largest discovery snapshot, in bytes of its stored JSON.
    pub discovery_snapshot_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            method_bytes: 256,
            tool_bytes: 256,
            id_bytes: 256,
            sessions_per_run: 64,
            streams_per_run: 128,
            streams_per_session: 16,
            requests_per_second_per_run: 100,
            requests_per_second_per_connector: 1_000,
            answer_bytes: 16 << 20,
            sse_event_bytes: 16 << 20,
            audit_queue_bytes: 16 << 20,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            body_drain_bytes: 16 << 20,
            max_connections: 4_096,
            discovery_timeout_ms: 30_000,
            discovery_pages: 100,
            discovery_page_bytes: 4 << 20,
            discovery_tools: 2_000,
            discovery_snapshot_bytes: 2 << 20,
        }
    }
}

impl LimitsConfig {
    /// Refuses a limit of 0 where it would refuse everything (only the rates mean
    /// "unlimited" at 0).
    fn check(&self) -> Result<(), String> {
        let sizes = [
            ("method_bytes", self.method_bytes),
            ("tool_bytes", self.tool_bytes),
            ("id_bytes", self.id_bytes),
            ("sessions_per_run", self.sessions_per_run),
            ("streams_per_run", self.streams_per_run),
            ("streams_per_session", self.streams_per_session),
            ("answer_bytes", self.answer_bytes),
            ("sse_event_bytes", self.sse_event_bytes),
            ("audit_queue_bytes", self.audit_queue_bytes),
            ("max_connections", self.max_connections),
            ("discovery_pages", self.discovery_pages),
            ("discovery_page_bytes", self.discovery_page_bytes),
            ("discovery_tools", self.discovery_tools),
            ("discovery_snapshot_bytes", self.discovery_snapshot_bytes),
        ];
        let times = [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
            ("discovery_timeout_ms", self.discovery_timeout_ms),
        ];
        let zero = sizes
            .iter()
            .find(|(_, v)| *v == 0)
            .map(|(name, _)| *name)
            .or_else(|| times.iter().find(|(_, v)| *v == 0).map(|(name, _)| *name));
        match zero {
            Some(name) => Err(format!(
                "limits.{name} must be at least 1 (leave it out for the default)"
            )),
            None => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("the configuration file {path} is invalid: {detail}")]
    Parse { path: String, detail: String },
    #[error("{var}={value:?} is not valid: {detail}")]
    Env {
        var: &'static str,
        value: String,
        detail: String,
    },
}

/// Looks up an environment variable; tests pass their own map instead of the process's.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Config {
    /// The file named by `file` or `PORTCULLIS_CONFIG` (if any), then the process
    /// environment's overrides.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(file, &|name| std::env::var(name).ok())
    }

    pub fn load_with(file: Option<&Path>, env: EnvLookup<'_>) -> Result<Self, ConfigError> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| env("PORTCULLIS_CONFIG").map(PathBuf::from));
        let mut config = match file {
            Some(path) => Self::from_file(&path)?,
            None => Self::default(),
        };
        config.apply_env(env)?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        Self::from_toml(&text).map_err(|detail| ConfigError::Parse {
            path: path.display().to_string(),
            detail,
        })
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        let config: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        config.limits.check()?;
        Ok(config)
    }

    fn apply_env(&mut self, env: EnvLookup<'_>) -> Result<(), ConfigError> {
        if let Some(value) = env("PORTCULLIS_LISTEN") {
            self.listen =
                value
                    .parse()
                    .map_err(|e: std::net::AddrParseError| ConfigError::Env {
                        var: "PORTCULLIS_LISTEN",
                        value: value.clone(),
                        detail: format!("{e}; use an address such as 127.0.0.1:8080"),
                    })?;
        }
        if let Some(value) = env("PORTCULLIS_PUBLIC_BASE_URL") {
            self.public_base_url = Some(value);
        }
        if let Some(value) = env("PORTCULLIS_DATA_DIR") {
            self.data_dir = PathBuf::from(value);
        }
        if let Some(value) = env("PORTCULLIS_DATABASE_URL").filter(|v| !v.is_empty()) {
            self.database_url = Some(Secret::new(value));
        }
        if let Some(value) = env("PORTCULLIS_ALLOW_PRIVATE_UPSTREAMS") {
            self.upstream.allow_private = match value.as_str() {
                "1" | "true" => true,
                "0" | "false" | "" => false,
                _ => {
                    return Err(ConfigError::Env {
                        var: "PORTCULLIS_ALLOW_PRIVATE_UPSTREAMS",
                        value,
                        detail: "use 1 or 0".to_owned(),
                    });
                }
            };
        }
        self.admin_token = secret_var(env, "PORTCULLIS_ADMIN_TOKEN")?.or(self.admin_token.take());
        self.master_key = secret_var(env, "PORTCULLIS_MASTER_KEY")?.or(self.master_key.take());
        Ok(())
    }

    /// The base of every URL handed to runs and clients, without a trailing slash.
    pub fn base_url(&self) -> String {
        match &self.public_base_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }
}

/// A secret from the environment. Set but empty is refused rather than read as unset: an
/// operator who exported an empty variable (a template's missing value) would otherwise get
/// a generated admin token or key without noticing.
fn secret_var(env: EnvLookup<'_>, var: &'static str) -> Result<Option<Secret>, ConfigError> {
    match env(var) {
        None => Ok(None),
        Some(value) if value.is_empty() => Err(ConfigError::Env {
            var,
            value,
            detail: "it is set but empty; give it a value or unset it".to_owned(),
        }),
        Some(value) => Ok(Some(Secret::new(value))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn limits_are_read_and_zero_sizes_refused() {
        let config =
            Config::from_toml("[limits]\nmethod_bytes = 64\nrequests_per_second_per_run = 0\n")
                .unwrap();
        assert_eq!(config.limits.method_bytes, 64);
        assert_eq!(config.limits.requests_per_second_per_run, 0);
        assert_eq!(config.limits.tool_bytes, LimitsConfig::default().tool_bytes);
        let error = Config::from_toml("[limits]\nmax_connections = 0\n").unwrap_err();
        assert!(error.contains("limits.max_connections"), "{error}");
        let error = Config::from_toml("[limits]\nbody_read_timeout_ms = 0\n").unwrap_err();
        assert!(error.contains("limits.body_read_timeout_ms"), "{error}");
        assert!(Config::from_toml("[limits]\nno_such_limit = 1\n").is_err());
    }

    #[test]
    fn empty_file_gives_defaults() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.base_url(), "http://127.0.0.1:8080");
        assert_eq!(config.http.max_body_bytes, 4 << 20);
        assert_eq!(config.runs.max_lifetime_secs, 86_400);
    }

    #[test]
    fn file_values_and_unknown_keys() {
        let config = Config::from_toml(
            "listen = \"0.0.0.0:9000\"\npublic_base_url = \"https://p.example.com/\"\n\
             [upstream]\nallow_private = true\n[runs]\nmax_lifetime_secs = 60\n\
             [plugins.limits]\ncpu_deadline_ms = 5\n",
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.base_url(), "https://p.example.com");
        assert!(config.upstream.allow_private);
        assert_eq!(config.runs.max_lifetime_secs, 60);
        assert_eq!(config.plugins.limits.cpu_deadline_ms, 5);
        let err = Config::from_toml("[http]\nmax_body = 1\n").unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
        assert!(Config::from_toml("admin_token = \"x\"\n").is_err());
    }

    #[test]
    fn environment_overrides() {
        let vars: HashMap<&str, &str> = [
            ("PORTCULLIS_LISTEN", "127.0.0.1:0"),
            ("PORTCULLIS_DATA_DIR", "/tmp/x"),
            ("PORTCULLIS_ALLOW_PRIVATE_UPSTREAMS", "1"),
            ("PORTCULLIS_ADMIN_TOKEN", "admin-secret"),
        ]
        .into();
        let env = |name: &str| vars.get(name).map(|v| v.to_string());
        let config = Config::load_with(None, &env).unwrap();
        assert_eq!(config.listen.port(), 0);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert!(config.upstream.allow_private);
        assert_eq!(
            config.admin_token.as_ref().unwrap().expose(),
            "admin-secret"
        );
        assert!(!format!("{config:?}").contains("admin-secret"));
        for var in ["PORTCULLIS_ADMIN_TOKEN", "PORTCULLIS_MASTER_KEY"] {
            let empty = |name: &str| (name == var).then(String::new);
            let error = Config::load_with(None, &empty).unwrap_err().to_string();
            assert!(error.contains(var) && error.contains("empty"), "{error}");
        }

        assert!(
            config.database_url.is_none(),
            "the embedded SQLite by default"
        );
        let bad = |name: &str| (name == "PORTCULLIS_LISTEN").then(|| "nope".to_owned());
        let err = Config::load_with(None, &bad).unwrap_err().to_string();
        assert!(err.contains("PORTCULLIS_LISTEN"), "{err}");
    }

    #[test]
    fn the_database_url_comes_from_the_file_or_the_environment_and_is_never_shown() {
        let file = "database_url = \"postgres://p:file-pass@db.example.com/p\"\n";
        let config = Config::from_toml(file).unwrap();
        let url = config.database_url.as_ref().unwrap();
        assert_eq!(url.expose(), "postgres://p:file-pass@db.example.com/p");
        assert!(!format!("{config:?}").contains("file-pass"));

        let env = |name: &str| {
            (name == "PORTCULLIS_DATABASE_URL").then(|| "postgres://p:env-pass@h/p".to_owned())
        };
        let config = Config::load_with(None, &env).unwrap();
        assert_eq!(
            config.database_url.as_ref().map(Secret::expose),
            Some("postgres://p:env-pass@h/p")
        );
        assert!(!format!("{config:?}").contains("env-pass"));
    }
}
