//! Installed plugin versions, their heads and the chain configuration, on both back ends.

use std::sync::Arc;

use super::on_both_backends;
use crate::store::{PluginHead, PluginVersionRecord, Store};

on_both_backends!(
    versions_are_kept_once_with_their_bytes,
    heads_move_and_prune_all_but_the_protected,
    a_deleted_name_has_no_versions_and_no_head,
    the_chain_configuration_is_one_value,
);

fn version(sha: &str, at: i64) -> PluginVersionRecord {
    PluginVersionRecord {
        name: "policy".to_owned(),
        sha256: sha.to_owned(),
        version: format!("0.{at}.0"),
        installed_at: at,
        signed_by: None,
        signature: None,
    }
}

async fn versions_are_kept_once_with_their_bytes(store: Arc<dyn Store>) {
    store
        .put_plugin_version(&version("aa", 1), b"first")
        .await
        .unwrap();
    let signed = PluginVersionRecord {
        installed_at: 9,
        signed_by: Some("key".to_owned()),
        signature: Some("sig".to_owned()),
        ..version("aa", 1)
    };
    store.put_plugin_version(&signed, b"first").await.unwrap();
    store
        .put_plugin_version(&version("bb", 2), &[0, 255, 7])
        .await
        .unwrap();
    let kept = store.plugin_versions("policy").await.unwrap();
    assert_eq!(
        kept,
        [
            version("bb", 2),
            PluginVersionRecord {
                installed_at: 1,
                ..signed
            }
        ],
        "newest first; the first install time stays, a signature fills in"
    );
    assert_eq!(
        store.plugin_component("policy", "bb").await.unwrap(),
        Some(vec![0, 255, 7])
    );
    assert_eq!(store.plugin_component("policy", "cc").await.unwrap(), None);
    assert!(store.plugin_versions("other").await.unwrap().is_empty());
}

fn head(current: Option<&str>, previous: Option<&str>) -> PluginHead {
    PluginHead {
        name: "policy".to_owned(),
        current: current.map(str::to_owned),
        previous: previous.map(str::to_owned),
    }
}

async fn heads_move_and_prune_all_but_the_protected(store: Arc<dyn Store>) {
    for (sha, at) in [
        ("v1", 1),
        ("v2", 2),
        ("v3", 3),
        ("v4", 4),
        ("v5", 5),
        ("v6", 6),
    ] {
        store
            .put_plugin_version(&version(sha, at), sha.as_bytes())
            .await
            .unwrap();
    }
    assert!(store.plugin_heads().await.unwrap().is_empty());
    store
        .set_plugin_current("policy", "v1", Some("builtin"), 10, None)
        .await
        .unwrap();
    assert_eq!(
        store.plugin_heads().await.unwrap(),
        [head(Some("v1"), Some("builtin"))]
    );
    store
        .set_plugin_current("policy", "v1", Some("builtin"), 10, None)
        .await
        .unwrap();
    assert_eq!(
        store.plugin_heads().await.unwrap(),
        [head(Some("v1"), Some("builtin"))],
        "the same version again keeps the real previous one"
    );
    // Keep three: the current (v6), the previous (v1), the protected (v2); v5, v4 and v3
    // are the oldest beyond that.
    store
        .set_plugin_current("policy", "v6", None, 3, Some("v2"))
        .await
        .unwrap();
    assert_eq!(
        store.plugin_heads().await.unwrap(),
        [head(Some("v6"), Some("v1"))]
    );
    let mut kept: Vec<String> = store
        .plugin_versions("policy")
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.sha256)
        .collect();
    kept.sort();
    assert_eq!(kept, ["v1", "v2", "v6"]);
}

async fn a_deleted_name_has_no_versions_and_no_head(store: Arc<dyn Store>) {
    store
        .put_plugin_version(&version("v1", 1), b"x")
        .await
        .unwrap();
    store
        .set_plugin_current("policy", "v1", None, 5, None)
        .await
        .unwrap();
    store.delete_plugin("policy").await.unwrap();
    assert!(store.plugin_versions("policy").await.unwrap().is_empty());
    assert_eq!(store.plugin_heads().await.unwrap(), [head(None, None)]);
}

async fn the_chain_configuration_is_one_value(store: Arc<dyn Store>) {
    assert_eq!(store.chain_config().await.unwrap(), None);
    store.set_chain_config("{\"a\":1}").await.unwrap();
    store.set_chain_config("{\"b\":2}").await.unwrap();
    assert_eq!(
        store.chain_config().await.unwrap().as_deref(),
        Some("{\"b\":2}")
    );
}
