//! The plugin commands that run without a proxy (`plugin keygen|sign|test`), and a
//! signature made by them accepted by a proxy that requires one.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

fn portcullis(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command.args(args).env_remove("PORTCULLIS_SIGNING_PASSWORD");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the portcullis binary runs")
}

fn succeeded(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_signed_by_plugin_sign_installs_where_signatures_are_required() {
    let keys = tempfile::tempdir().unwrap();
    let secret = keys.path().join("team.key").display().to_string();
    let public = keys.path().join("team.pub").display().to_string();
    succeeded(&portcullis(
        &[
            "plugin",
            "keygen",
            "--secret-key",
            &secret,
            "--public-key",
            &public,
        ],
        &[],
    ));
    let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the secret key is owner-only");
    let again = portcullis(
        &[
            "plugin",
            "keygen",
            "--secret-key",
            &secret,
            "--public-key",
            &public,
        ],
        &[],
    );
    assert!(!again.status.success(), "an existing key is never replaced");

    let wasm = portcullis_builtins::builtin("connector-access")
        .unwrap()
        .wasm;
    let file = write(keys.path(), "extra.wasm", wasm);
    succeeded(&portcullis(
        &["plugin", "sign", &file, "--secret-key", &secret],
        &[],
    ));
    let signature = format!("{file}.minisig");
    assert!(
        std::fs::read_to_string(&signature)
            .unwrap()
            .contains("file:extra.wasm")
    );

    let key_line = std::fs::read_to_string(&public).unwrap();
    let key_line = key_line.lines().nth(1).unwrap().to_owned();
    let h = Proxy::start_with(move |c| {
        c.plugins.require_signature = true;
        c.plugins.trusted_keys = vec![key_line];
    })
    .await;
    let env = [
        ("PORTCULLIS_URL", h.server.base_url.as_str()),
        ("PORTCULLIS_ADMIN_TOKEN", ADMIN_TOKEN),
    ];

    // The same signature over other bytes is refused.
    let other = write(keys.path(), "other.wasm", &[wasm, b"\0"].concat());
    let forged = portcullis(
        &[
            "plugin",
            "install",
            "extra",
            &other,
            "--signature",
            &signature,
        ],
        &env,
    );
    assert!(!forged.status.success());
    assert!(String::from_utf8_lossy(&forged.stderr).contains("signature_invalid"));

    succeeded(&portcullis(
        &[
            "plugin",
            "install",
            "extra",
            &file,
            "--signature",
            &signature,
        ],
        &env,
    ));
    let (_, shown) = h.api(Method::GET, "/plugins/extra", None).await;
    assert!(shown["signed_by"].is_string(), "{shown}");
    h.server.shutdown().await;
}

/// What `plugin test` prints for the component at `file` on `sample`.
fn plugin_test(dir: &Path, file: &str, sample: &Value) -> Value {
    let sample = write(dir, "sample.json", sample.to_string().as_bytes());
    let printed = succeeded(&portcullis(
        &["plugin", "test", file, "--request", &sample],
        &[],
    ));
    serde_json::from_str(&printed).unwrap()
}

#[test]
fn plugin_test_prints_the_answers_of_a_policy_and_of_a_provider() {
    let dir = tempfile::tempdir().unwrap();
    let allowlist = write(
        dir.path(),
        "allowlist.wasm",
        portcullis_builtins::builtin("connector-allowlist")
            .unwrap()
            .wasm,
    );
    let tool = |name: &str| json!({"name": name, "hints": {}});
    let sample = json!({
        "context": {
            "run": {"id": "run_1", "actor": "actor", "user": "user", "fields": []},
            "connector": {
                "id": "conn_1",
                "owner": "user",
                "server_url": "https://mcp.example.com/mcp",
                "provider": "bearer",
                "status": "authorized",
                "tools": [tool("list_channels"), tool("send_message")],
                "allowed_tools": ["list_channels"],
            },
        },
        "request": {"method": "tools/call", "tool": "send_message", "arguments": {"text": "hi"}},
    });
    let answers = plugin_test(dir.path(), &allowlist, &sample);
    assert_eq!(answers["plugin"]["kind"], "policy", "{answers}");
    assert_eq!(
        answers["permitted_tools"]["tools"],
        json!(["list_channels"])
    );
    assert_eq!(
        answers["request"]["answer"]["decision"], "deny",
        "{answers}"
    );
    assert_eq!(answers["request"]["fault"], Value::Null);

    let bearer = write(
        dir.path(),
        "bearer.wasm",
        portcullis_builtins::builtin("provider-bearer")
            .unwrap()
            .wasm,
    );
    let plan = json!({"plan": {
        "connector_id": "conn_1",
        "server_url": "https://mcp.example.com/mcp",
        "provider": "bearer",
        "config": "{}",
        "credential": "api_key",
    }});
    let answers = plugin_test(dir.path(), &bearer, &plan);
    assert_eq!(answers["plugin"]["kind"], "provider", "{answers}");
    assert_eq!(
        answers["plan"]["headers"],
        json!([["authorization", "Bearer {secret}"]]),
        "the credential is a placeholder: {answers}"
    );

    let not_a_sample = write(dir.path(), "bad.json", b"{\"contxt\": {}}");
    let refused = portcullis(
        &["plugin", "test", &allowlist, "--request", &not_a_sample],
        &[],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not a sample"));
}
