//! The real `portcullis serve` binary as a child process, for the tests that kill it
//! (`crash`) or run several of it (`replicas`), and a small client of its admin API.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use portcullis_test_upstreams::wire;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{ADMIN_TOKEN, MASTER_KEY};

/// A `portcullis serve` process, killed with SIGKILL when dropped (also when a test
/// fails).
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `portcullis serve` on `dir` with `env` added to the test's usual environment;
/// answers the process and a client of its API once it announced its address.
pub fn serve_with(dir: &Path, env: &[(&str, &str)]) -> (Process, Api) {
    let config = dir.join("test.toml");
    // Debug builds on two shared cores: the plugin deadlines of the test harness. The rate
    // limits are off, as in `support::config`: load tests must not depend on this
    // machine's speed.
    std::fs::write(
        &config,
        "[plugins.limits]\ncpu_deadline_ms = 2000\nwall_timeout_ms = 10000\n\
         [limits]\nrequests_per_second_per_run = 0\nrequests_per_second_per_connector = 0\n",
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir)
        .env("PORTCULLIS_LISTEN", "127.0.0.1:0")
        .env("PORTCULLIS_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("PORTCULLIS_MASTER_KEY", MASTER_KEY)
        .env("PORTCULLIS_ALLOW_PRIVATE_UPSTREAMS", "1")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Process(child);
    let stdout = BufReader::new(child.0.stdout.take().unwrap());
    let base = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.strip_prefix("Admin API: ")
                .map(|api| api.trim_end_matches("/admin/v1").to_owned())
        })
        .expect("portcullis serve started and announced its address");
    let api = Api {
        base,
        http: reqwest::Client::new(),
    };
    (child, api)
}

/// Starts `portcullis serve` on `dir` with the test's usual environment.
pub fn serve(dir: &Path) -> (Process, Api) {
    serve_with(dir, &[])
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Result<(StatusCode, Value)> {
        let mut request = self
            .http
            .request(method, format!("{}/admin/v1{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .timeout(Duration::from_secs(30));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// An admin API request with `bytes` as its body (a plugin upload).
    pub async fn upload(
        &self,
        method: Method,
        path: &str,
        bytes: Vec<u8>,
    ) -> reqwest::Result<(StatusCode, Value)> {
        let response = self
            .http
            .request(method, format!("{}/admin/v1{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .timeout(Duration::from_secs(60))
            .body(bytes)
            .send()
            .await?;
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// The status of an `initialize` with a run token.
    pub async fn initialize(&self, connector: &str, token: &str) -> reqwest::Result<StatusCode> {
        let response = self
            .http
            .post(format!("{}/mcp/{connector}", self.base))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .json(&wire::initialize(1))
            .send()
            .await?;
        Ok(response.status())
    }
}
