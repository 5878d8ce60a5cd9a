//! Plugins installed through the admin API survive a restart, and so does a chain that
//! names them.

use portcullis::app::spawn;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::*;

async fn plugins(proxy: &Proxy) -> Vec<Value> {
    let (status, answer) = proxy.api(Method::GET, "/plugins", None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn installed_plugins_are_loaded_again_at_start() {
    let first = Proxy::start().await;
    let (status, installed) = first.install("extra-access", "connector-access").await;
    assert_eq!(status, StatusCode::OK, "{installed}");
    let (_, mut chains) = first.api(Method::GET, "/chains", None).await;
    chains["access"]
        .as_array_mut()
        .unwrap()
        .push("extra-access".into());
    let (status, answer) = first
        .api(Method::PUT, "/chains", Some(chains.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let before = plugins(&first).await;
    let Proxy { server, dir, http } = first;
    server.shutdown().await;

    // Without the installed plugin in the store this start would fail: the chain names it.
    let restarted = config(dir.path());
    let second = Proxy {
        server: spawn(restarted)
            .await
            .expect("the installed plugin is loaded again"),
        dir,
        http,
    };
    let after = plugins(&second).await;
    let extra = after
        .iter()
        .find(|p| p["name"] == "extra-access")
        .expect("extra-access is loaded");
    assert_eq!(extra["builtin"], false);
    let sha = |list: &[Value]| {
        list.iter().find(|p| p["name"] == "extra-access").unwrap()["sha256"].clone()
    };
    assert_eq!(sha(&after), sha(&before));
    let (_, kept) = second.api(Method::GET, "/chains", None).await;
    assert_eq!(kept, chains);
    second.server.shutdown().await;
}

/// A plugin compiled once is kept in `<data-dir>/cache` (owner-only) for the next start.
/// (What a corrupt or foreign file does is checked by the runtime's `artifacts` tests: in
/// one process, the compiled form kept in memory answers first.)
#[tokio::test(flavor = "multi_thread")]
async fn compiled_plugins_are_cached_in_the_data_directory() {
    use std::os::unix::fs::PermissionsExt;
    let proxy = Proxy::start().await;
    // Another digest than any built-in, so this process has not compiled it yet.
    let mut wasm = portcullis_builtins::builtin("connector-access")
        .unwrap()
        .wasm
        .to_vec();
    let name = b"cache-test";
    let payload = std::process::id().to_le_bytes();
    wasm.extend([0, (1 + name.len() + payload.len()) as u8, name.len() as u8]);
    wasm.extend_from_slice(name);
    wasm.extend_from_slice(&payload);
    let (status, answer) = proxy.raw(Method::PUT, "/plugins/cached-access", wasm).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let cache = proxy.dir.path().join("cache");
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let files: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let digest = answer["sha256"].as_str().unwrap();
    let file = files
        .iter()
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with(digest))
        .unwrap_or_else(|| panic!("no cache file for {digest}: {files:?}"));

    assert!(file.metadata().unwrap().len() > 0);
    proxy.server.shutdown().await;
}
