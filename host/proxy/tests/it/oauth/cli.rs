//! `portcullis connector probe` and `portcullis connector add --oauth`, run as the binary
//! an operator runs: the latter prints the authorization URL and waits for the callback.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::*;

fn portcullis(h: &Proxy) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command
        .env("PORTCULLIS_URL", h.url(""))
        .env("PORTCULLIS_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_probes_and_adds_an_oauth_connector() {
    let pair = peers().await;
    let h = Proxy::start().await;
    let probe = portcullis(&h)
        .args(["connector", "probe", &pair.mcp_url])
        .output()
        .await
        .unwrap();
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let report: Value = serde_json::from_slice(&probe.stdout).unwrap();
    assert_eq!(report["authorization_server"]["issuer"], pair.issuer);

    let mut add = portcullis(&h)
        .args([
            "connector",
            "add",
            "--owner",
            "alice",
            "--server-url",
            &pair.mcp_url,
            "--oauth",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(add.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let url = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the CLI printed no URL");
        printed.push(line.clone());
        if line.starts_with("http") {
            break line;
        }
    };
    let landing = land(&visit(&h, &url, "alice").await).await;
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.page);
    let status = add.wait().await.unwrap();
    while let Some(line) = lines.next_line().await.unwrap() {
        printed.push(line);
    }
    assert!(status.success(), "{printed:?}");
    let shown: Value =
        serde_json::from_str(&printed[printed.iter().position(|l| l == "{").unwrap()..].join("\n"))
            .unwrap();
    assert_eq!(shown["status"], "authorized");
    assert_eq!(
        connector(&h, shown["id"].as_str().unwrap()).await["status"],
        "authorized"
    );
}
