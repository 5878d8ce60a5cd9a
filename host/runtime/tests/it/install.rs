//! Installing, refusing and rolling back plugins, and swapping one under load.

use std::collections::HashMap;
use std::sync::Arc;

use portcullis_runtime::*;

use crate::support::*;

/// `wasm` with a custom section appended: a valid component with another digest, which
/// stands in for a second version of the same plugin.
fn variant(wasm: &[u8], tag: u8) -> Vec<u8> {
    let name = b"portcullis-test-variant";
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.push(tag);
    let mut bytes = wasm.to_vec();
    bytes.push(0); // custom section id
    bytes.push(section.len() as u8); // one-byte LEB128: the section is short
    bytes.extend_from_slice(&section);
    bytes
}

fn sha256(rt: &Runtime, name: &str) -> String {
    rt.plugin(name).expect("loaded").sha256
}

#[tokio::test(flavor = "multi_thread")]
async fn non_components_are_refused_and_the_old_version_stays() {
    let rt = builtin_runtime();
    let before = sha256(&rt, "declared-tools");
    let generation = rt.generation();
    let core_module = wat::parse_str("(module (func (export \"f\")))").unwrap();
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut truncated = builtin("declared-tools").to_vec();
    truncated.truncate(truncated.len() / 2);
    for (what, bytes) in [("core module", core_module), ("random bytes", random)] {
        let error = rt.install("declared-tools", bytes).await.unwrap_err();
        assert!(matches!(error, LoadError::NotAComponent), "{what}: {error}");
    }
    let error = rt.install("declared-tools", truncated).await.unwrap_err();
    assert!(matches!(error, LoadError::Compile(_)), "{error}");
    assert_eq!(sha256(&rt, "declared-tools"), before);
    assert_eq!(rt.generation(), generation);
    let verdict = rt.request(context("run_1"), call("list_channels")).await;
    assert_eq!(verdict.value, Decision::Allow, "{verdict:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_of_another_world_is_refused() {
    let rt = builtin_runtime();
    let empty = wat::parse_str("(component)").unwrap();
    let error = rt.install("declared-tools", empty).await.unwrap_err();
    assert!(matches!(error, LoadError::UnknownWorld { .. }), "{error}");
    let error = rt
        .install("bad-name!", builtin("declared-tools").to_vec())
        .await
        .unwrap_err();
    assert!(matches!(error, LoadError::InvalidName(_)), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kind_change_is_refused_for_a_name_in_a_chain() {
    let rt = builtin_runtime();
    let before = sha256(&rt, "declared-tools");
    let provider = builtin("provider-bearer").to_vec();
    let error = rt.install("declared-tools", provider).await.unwrap_err();
    assert!(
        matches!(
            &error,
            LoadError::KindChange {
                current: "policy",
                offered: "provider",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(sha256(&rt, "declared-tools"), before);
    let policy = builtin("declared-tools").to_vec();
    let error = rt.install("provider-bearer", policy).await.unwrap_err();
    assert!(matches!(&error, LoadError::KindChange { .. }), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_restores_the_previous_version() {
    let rt = builtin_runtime();
    let original = sha256(&rt, "connector-allowlist");
    assert!(matches!(
        rt.rollback("connector-allowlist"),
        Err(LoadError::NoPrevious(_))
    ));
    assert!(matches!(
        rt.rollback("nonexistent"),
        Err(LoadError::NotFound(_))
    ));
    let generation = rt.generation();
    let installed = rt
        .install(
            "connector-allowlist",
            variant(builtin("connector-allowlist"), 1),
        )
        .await
        .unwrap();
    assert_ne!(installed.sha256, original);
    assert_eq!(installed.previous.as_ref().unwrap().sha256, original);
    assert!(!installed.builtin);
    assert_eq!(rt.generation(), generation + 1);
    let rolled = rt.rollback("connector-allowlist").unwrap();
    assert_eq!(rolled.sha256, original);
    assert_eq!(rolled.previous.unwrap().sha256, installed.sha256);
    assert_eq!(rt.generation(), generation + 2);
    let verdict = rt.request(context("run_1"), call("list_channels")).await;
    assert_eq!(&*verdict.plugins[1].sha256, original);
}

/// Eight tasks keep deciding while another installs two versions of `declared-tools` in
/// turn: no call fails, and every verdict names the version of the generation it reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swapping_under_load_is_seamless() {
    let rt = Arc::new(builtin_runtime());
    let versions = [
        variant(builtin("declared-tools"), 1),
        variant(builtin("declared-tools"), 2),
    ];
    let mut by_generation = HashMap::new();
    by_generation.insert(rt.generation(), sha256(&rt, "declared-tools"));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let workers: Vec<_> = (0..8)
        .map(|worker| {
            let rt = rt.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let verdict = if worker % 2 == 0 {
                        rt.request(context("run_1"), call("list_channels")).await
                    } else {
                        rt.permitted_tools(context("run_1")).await.map(|set| {
                            match set.contains("list_channels") {
                                true => Decision::Allow,
                                false => panic!("wrong tool set {set:?}"),
                            }
                        })
                    };
                    seen.push(verdict);
                }
                seen
            })
        })
        .collect();

    let mut last = rt.generation();
    for round in 0..20 {
        let summary = rt
            .install("declared-tools", versions[round % 2].clone())
            .await
            .unwrap();
        let generation = rt.generation();
        assert!(generation > last);
        last = generation;
        by_generation.insert(generation, summary.sha256);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let mut total = 0;
    for worker in workers {
        for verdict in worker.await.unwrap() {
            total += 1;
            assert_eq!(verdict.fault, None, "{verdict:?}");
            assert_eq!(verdict.value, Decision::Allow, "{verdict:?}");
            let names: Vec<&str> = verdict.plugins.iter().map(|s| &*s.name).collect();
            assert_eq!(names, ["declared-tools", "connector-allowlist"]);
            assert_eq!(
                &*verdict.plugins[0].sha256, by_generation[&verdict.generation],
                "generation {} stamped a version it did not hold",
                verdict.generation
            );
        }
    }
    assert!(total >= 8, "only {total} decisions ran during the swaps");
}
