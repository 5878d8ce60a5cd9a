//! Portcullis as a child process: building the release binaries (the proxy, this crate's
//! `portcullis-bench-native`, the same proxy with the native decision backend, and
//! `portcullis-bench-floor`, the thinnest forwarder on the same stack), starting one on a
//! data directory, reading its resident memory, stopping it, and setting up connectors,
//! an actor and runs through its admin API. A [`Proxy`] kills its process when dropped,
//! so an error anywhere in the harness leaves nothing running.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};

use crate::http::{admin, healthy};

pub const ADMIN_TOKEN: &str = "portcullis-bench-admin-token";
/// Base64 of 32 fixed bytes: the benchmark's data is thrown away.
const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const USER: &str = "bench-user";
const ACTOR: &str = "bench-actor";

/// Which binary to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// `portcullis`: WebAssembly decisions only.
    Wasm,
    /// `portcullis-bench-native`: the built-ins' links answered by their native code.
    Native,
}

pub struct Binaries {
    pub wasm: PathBuf,
    pub native: PathBuf,
    pub floor: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ sits in the workspace")
        .to_owned()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Builds both release binaries (cargo does nothing when they are fresh) and copies each
/// aside, so that a later build cannot replace one under a running benchmark.
pub fn build(skip: bool) -> anyhow::Result<Binaries> {
    let out = target_dir().join("bench-bin");
    let binaries = Binaries {
        wasm: out.join("portcullis-wasm"),
        native: out.join("portcullis-native"),
        floor: out.join("portcullis-floor"),
    };
    let built = [&binaries.wasm, &binaries.native, &binaries.floor];
    if skip && built.iter().all(|b| b.exists()) {
        return Ok(binaries);
    }
    std::fs::create_dir_all(&out)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    for (package, binary, copy) in [
        ("portcullis", "portcullis", &binaries.wasm),
        (
            "portcullis-bench",
            "portcullis-bench-native",
            &binaries.native,
        ),
        (
            "portcullis-bench",
            "portcullis-bench-floor",
            &binaries.floor,
        ),
    ] {
        let mut command = Command::new(&cargo);
        command.current_dir(workspace_root()).args([
            "build",
            "--release",
            "-p",
            package,
            "--bin",
            binary,
        ]);
        eprintln!("building: {command:?}");
        let status = command.status().context("run cargo")?;
        if !status.success() {
            bail!("cargo build failed ({status})");
        }
        std::fs::copy(target_dir().join("release").join(binary), copy)?;
    }
    Ok(binaries)
}

/// A running Portcullis.
pub struct Proxy {
    pub addr: SocketAddr,
    child: Child,
    /// Spawn to first `/healthz` 200.
    pub ready_after: Duration,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    /// Starts `binary` on `data_dir` with `config` (TOML) on an ephemeral loopback port,
    /// and waits for `/healthz`.
    pub async fn start(
        binaries: &Binaries,
        binary: Binary,
        data_dir: &Path,
        config: &str,
    ) -> anyhow::Result<Self> {
        let path = match binary {
            Binary::Wasm => &binaries.wasm,
            Binary::Native => &binaries.native,
        };
        let config_file = data_dir.with_extension("toml");
        std::fs::write(&config_file, config)?;
        let log = std::fs::File::create(data_dir.with_extension("log"))?;
        let started = Instant::now();
        let mut child = Command::new(path)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .arg("--config")
            .arg(&config_file)
            .env("PORTCULLIS_ALLOW_PRIVATE_UPSTREAMS", "1")
            .env("PORTCULLIS_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("PORTCULLIS_MASTER_KEY", MASTER_KEY)
            .env("PORTCULLIS_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("start {}", path.display()))?;
        // The proxy prints its admin URL once it listens; the port is in it.
        let announced = announced(child.stdout.take().expect("piped"), "Admin API: http://");
        let mut proxy = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
            ready_after: Duration::ZERO,
        };
        let addr = match announced.await {
            Some(addr) => addr.trim_end_matches("/admin/v1").parse::<SocketAddr>()?,
            None => bail!(
                "the proxy did not start within 60 s; see {}",
                data_dir.with_extension("log").display()
            ),
        };
        proxy.addr = addr;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !healthy(addr).await {
            if Instant::now() > deadline {
                bail!("/healthz did not answer 200 within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        proxy.ready_after = started.elapsed();
        Ok(proxy)
    }

    /// Starts the floor forwarder (`portcullis-bench-floor`) in front of `upstream`.
    pub async fn floor(binaries: &Binaries, upstream: &str) -> anyhow::Result<Self> {
        let started = Instant::now();
        let mut child = Command::new(&binaries.floor)
            .args(["--upstream", upstream])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {}", binaries.floor.display()))?;
        let announced = announced(child.stdout.take().expect("piped"), "Floor: http://");
        let mut floor = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
            ready_after: Duration::ZERO,
        };
        floor.addr = announced
            .await
            .context("the floor forwarder did not start within 60 s")?
            .parse()?;
        floor.ready_after = started.elapsed();
        Ok(floor)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory (`VmRSS`) in bytes.
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .context("no VmRSS in /proc/<pid>/status")?;
        Ok(kb * 1024)
    }

    /// SIGTERM, then up to 10 s for the graceful shutdown, then SIGKILL.
    pub async fn stop(mut self) {
        // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Drop kills what is left.
    }

    pub async fn admin(&self, method: Method, path: &str, body: Value) -> anyhow::Result<Value> {
        let (status, answer) = admin(
            self.addr,
            ADMIN_TOKEN,
            method.clone(),
            path,
            Bytes::from(body.to_string()),
            "application/json",
        )
        .await?;
        if !status.is_success() {
            bail!("{method} {path} answered {status}: {answer}");
        }
        Ok(answer)
    }

    /// Installs `wasm` as plugin `name`; the status.
    pub async fn install_plugin(&self, name: &str, wasm: Bytes) -> anyhow::Result<StatusCode> {
        let path = format!("/plugins/{name}");
        let (status, _) = admin(
            self.addr,
            ADMIN_TOKEN,
            Method::PUT,
            &path,
            wasm,
            "application/wasm",
        )
        .await?;
        Ok(status)
    }
}

/// The rest of the first line of a child's `stdout` that starts with `prefix`, within
/// 60 s. A thread keeps draining stdout afterwards, so the child never blocks on a full
/// pipe, and ends when the child does.
async fn announced(stdout: ChildStdout, prefix: &'static str) -> Option<String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix(prefix)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(rest.to_owned());
            }
        }
    });
    match tokio::time::timeout(Duration::from_secs(60), rx).await {
        Ok(Ok(line)) => Some(line),
        _ => None,
    }
}

/// What the benchmark traffic needs on one proxy.
#[derive(Clone, Debug)]
pub struct Setup {
    pub echo_connector: String,
    pub list_connector: String,
    pub run_token: String,
}

/// Creates a connector for the echo upstream and one for the 100-tool upstream, an actor
/// whose rules permit `echo` on the first and `tool_000`..`tool_009` on the second, and a
/// run that provides both.
pub async fn setup(proxy: &Proxy, echo_url: &str, list_url: &str) -> anyhow::Result<Setup> {
    let connector = |url: &str| {
        json!({
            "owner": USER,
            "server_url": url,
            "auth": { "method": "api_key", "secret": "sk-bench-not-a-secret" },
        })
    };
    let echo = proxy
        .admin(Method::POST, "/connectors", connector(echo_url))
        .await?;
    let list = proxy
        .admin(Method::POST, "/connectors", connector(list_url))
        .await?;
    let field = |required: &str| {
        json!({
            "title": "Connector", "description": "An MCP connector", "type": "string",
            "resourceType": "mcpConnector",
            "mcpServers": [{ "url": "http://127.0.0.1:*", "tools": { "required": [required] } }],
        })
    };
    let schema = json!({
        "title": "benchmark actor", "type": "object", "schemaVersion": 1,
        "properties": { "echo": field("echo"), "list": field("tool_00*") },
    });
    proxy
        .admin(
            Method::PUT,
            &format!("/actors/{ACTOR}"),
            json!({ "input_schema": schema }),
        )
        .await?;
    let id = |v: &Value| {
        v["id"]
            .as_str()
            .map(str::to_owned)
            .context("no connector id")
    };
    let mut setup = Setup {
        echo_connector: id(&echo)?,
        list_connector: id(&list)?,
        run_token: String::new(),
    };
    setup.run_token = new_run(proxy, &setup).await?.1;
    Ok(setup)
}

/// Starts a run of the benchmark's actor on both connectors; its id and token.
pub async fn new_run(proxy: &Proxy, setup: &Setup) -> anyhow::Result<(String, String)> {
    let run = proxy
        .admin(
            Method::POST,
            "/runs",
            json!({ "actor": ACTOR, "user": USER,
                    "input": { "echo": setup.echo_connector, "list": setup.list_connector } }),
        )
        .await?;
    let field = |name: &str| {
        run[name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no run {name}: {run}"))
    };
    Ok((field("id")?, field("token")?))
}

/// Finishes run `id`.
pub async fn finish_run(proxy: &Proxy, id: &str) -> anyhow::Result<()> {
    proxy
        .admin(Method::POST, &format!("/runs/{id}/finish"), json!({}))
        .await?;
    Ok(())
}
