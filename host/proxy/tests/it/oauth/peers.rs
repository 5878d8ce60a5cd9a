//! The real OAuth peers of `tests/oauth/`: `as.mjs` (oidc-provider as an MCP OAuth 2.1
//! authorization server) and `protected_mcp.py` (an MCP server of the official Python SDK
//! protected by it). They are installed by `tests/oauth/install.sh` into a cache directory
//! and started once per test binary; each runs with `--exit-with-stdin`, so it ends when
//! this process does, however it ends. A test that needs them and cannot have them fails,
//! saying why: it never passes without them.
//!
//! Tests share the peers safely because each Portcullis registers (or is given) a client
//! of its own, and the authorization server's counters, token lifetimes and revocations
//! are per client.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// One started peer: its ready line; its stdin is held open for the process's life.
struct Running {
    ready: Value,
    _child: Child,
    _stdin: ChildStdin,
}

/// An authorization server and the MCP server it protects.
pub struct Pair {
    /// The issuer, `http://127.0.0.1:<port>`.
    pub issuer: String,
    /// The protected MCP endpoint.
    pub mcp_url: String,
    _servers: Vec<Running>,
}

impl Pair {
    pub fn control(&self, path: &str) -> String {
        format!("{}/__test{path}", self.issuer)
    }
}

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// The interpreters and the oidc-provider directory `install.sh` set up.
struct Installed {
    node: String,
    python: String,
    oidc_provider_dir: String,
    logs: PathBuf,
}

fn install() -> Result<Installed, String> {
    let script = repo_file("tests/oauth/install.sh");
    let output = Command::new("bash")
        .arg(&script)
        .output()
        .map_err(|e| format!("could not run {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let get = |key: &str| -> Result<String, String> {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim_matches('\'').to_owned())
            .ok_or_else(|| format!("install.sh printed no {key}: {text}"))
    };
    let logs = std::env::temp_dir().join(format!("portcullis-oauth-peers-{}", std::process::id()));
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    Ok(Installed {
        node: get("PEERS_NODE")?,
        python: get("PEERS_PYTHON")?,
        oidc_provider_dir: get("PEERS_OIDC_PROVIDER_DIR")?,
        logs,
    })
}

fn installed() -> Result<&'static Installed, String> {
    static INSTALLED: OnceLock<Result<Installed, String>> = OnceLock::new();
    INSTALLED
        .get_or_init(install)
        .as_ref()
        .map_err(Clone::clone)
}

/// Starts `command` and waits for its one JSON ready line.
fn start(mut command: Command, name: &str, logs: &std::path::Path) -> Result<Running, String> {
    let log = std::fs::File::create(logs.join(format!("{name}.log"))).map_err(|e| e.to_string())?;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("could not start {name}: {e}"))?;
    let stdin = child.stdin.take().expect("piped stdin");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let ready: Value = serde_json::from_str(&line).map_err(|_| {
        format!(
            "{name} did not start (its log is {}): {line:?}",
            logs.join(format!("{name}.log")).display()
        )
    })?;
    Ok(Running {
        ready,
        _child: child,
        _stdin: stdin,
    })
}

fn start_pair(as_flags: &[&str], name: &str) -> Result<Pair, String> {
    let peers = installed()?;
    let mut auth_server = Command::new(&peers.node);
    auth_server
        .arg(repo_file("tests/oauth/as.mjs"))
        .args([
            "--exit-with-stdin",
            "--oidc-provider-dir",
            &peers.oidc_provider_dir,
        ])
        .args(as_flags);
    let auth_server = start(auth_server, &format!("{name}-as"), &peers.logs)?;
    let issuer = auth_server.ready["issuer"].as_str().unwrap().to_owned();
    let mut mcp = Command::new(&peers.python);
    mcp.arg(repo_file("tests/oauth/protected_mcp.py"))
        .args(["--exit-with-stdin", "--issuer", &issuer])
        .args(["--step-up", "delete_thing=mcp:admin"]);
    let mcp = start(mcp, &format!("{name}-mcp"), &peers.logs)?;
    let mcp_url = mcp.ready["url"].as_str().unwrap().to_owned();
    Ok(Pair {
        issuer,
        mcp_url,
        _servers: vec![auth_server, mcp],
    })
}

/// The pair most tests use: registration open, PKCE S256 advertised.
pub async fn peers() -> &'static Pair {
    static PAIR: OnceLock<Result<Pair, String>> = OnceLock::new();
    shared(&PAIR, &[], "main").await
}

/// A pair whose authorization server does not advertise PKCE S256 (it still requires it).
pub async fn peers_without_pkce() -> &'static Pair {
    static PAIR: OnceLock<Result<Pair, String>> = OnceLock::new();
    shared(&PAIR, &["--no-pkce-advertised"], "nopkce").await
}

/// A pair whose authorization server registers every dynamic client as a confidential
/// `client_secret_post` client, whatever it asks for.
pub async fn peers_registering_post() -> &'static Pair {
    static PAIR: OnceLock<Result<Pair, String>> = OnceLock::new();
    let flags = &["--registered-auth-method", "client_secret_post"];
    shared(&PAIR, flags, "post").await
}

/// Starts a pair once per test binary; every caller waits for the same start.
async fn shared(
    cell: &'static OnceLock<Result<Pair, String>>,
    flags: &'static [&'static str],
    name: &'static str,
) -> &'static Pair {
    let started = tokio::task::spawn_blocking(move || cell.get_or_init(|| start_pair(flags, name)))
        .await
        .unwrap();
    match started {
        Ok(pair) => pair,
        Err(why) => panic!("the OAuth test peers are not available: {why}"),
    }
}
