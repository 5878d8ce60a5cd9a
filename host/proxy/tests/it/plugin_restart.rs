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
