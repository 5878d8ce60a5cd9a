//! Plugins installed through the admin API survive a restart, so a chain may name them.

use portcullis::app::spawn;
use portcullis::config::{Config, Secret};
use portcullis_runtime::ChainEntry;
use serde_json::Value;

const ADMIN_TOKEN: &str = "admin-token-for-plugin-restart";

fn config(data_dir: &std::path::Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_owned(),
        admin_token: Some(Secret::new(ADMIN_TOKEN)),
        master_key: Some(Secret::new("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")),
        ..Config::default()
    }
}

async fn plugins(base: &str) -> Vec<Value> {
    let answer: Value = reqwest::Client::new()
        .get(format!("{base}/admin/v1/plugins"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn installed_plugins_are_loaded_again_at_start() {
    let data_dir = tempfile::tempdir().unwrap();
    let first = spawn(config(data_dir.path())).await.unwrap();
    let http = reqwest::Client::new();
    let access = portcullis_builtins::builtin("connector-access")
        .unwrap()
        .wasm;
    let installed = http
        .put(format!("{}/admin/v1/plugins/extra-access", first.base_url))
        .bearer_auth(ADMIN_TOKEN)
        .body(access.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        installed.status(),
        200,
        "{}",
        installed.text().await.unwrap()
    );
    let before: Vec<Value> = plugins(&first.base_url).await;
    first.shutdown().await;

    // Without the installed plugin on disk this start would fail: the chain names it.
    let mut restarted = config(data_dir.path());
    restarted
        .plugins
        .chains
        .access
        .push(ChainEntry::Name("extra-access".to_owned()));
    let second = spawn(restarted)
        .await
        .expect("the installed plugin is loaded again");
    let after = plugins(&second.base_url).await;
    let extra = after
        .iter()
        .find(|p| p["name"] == "extra-access")
        .expect("extra-access is loaded");
    assert_eq!(extra["builtin"], false);
    let sha = |list: &[Value]| {
        list.iter().find(|p| p["name"] == "extra-access").unwrap()["sha256"].clone()
    };
    assert_eq!(sha(&after), sha(&before));
    second.shutdown().await;
}
