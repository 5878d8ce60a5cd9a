//! Operating plugins through the runtime: chain configurations changed live and checked
//! by trial calls, removals refused while a chain names the plugin, shadow candidates,
//! per-plugin metrics and inspection.

use std::time::Duration;

use portcullis_runtime::*;

use crate::support::*;

fn config(json: serde_json::Value) -> ChainConfig {
    serde_json::from_value(json).expect("a chain configuration")
}

#[tokio::test(flavor = "multi_thread")]
async fn chains_change_live_and_bad_settings_are_refused_by_a_trial_call() {
    let rt = builtin_runtime();
    let mut chains = rt.chains();
    chains.request = vec![ChainEntry::WithSettings {
        plugin: "declared-tools".into(),
        settings: serde_json::from_str(r#"{"allow_methods": 5}"#).unwrap(),
    }];
    let generation = rt.generation();
    let error = rt.check_chains(&chains).await.unwrap_err();
    assert!(
        matches!(&error, LoadError::Settings { chain: "request", plugin, .. } if plugin == "declared-tools"),
        "{error}"
    );
    assert_eq!(rt.generation(), generation, "a check changes nothing");

    let unknown = config(serde_json::json!({"request": ["nope"]}));
    assert!(matches!(
        rt.check_chains(&unknown).await,
        Err(LoadError::Chain(_))
    ));
    let wrong_kind = config(serde_json::json!({"request": ["provider-bearer"]}));
    assert!(matches!(
        rt.check_chains(&wrong_kind).await,
        Err(LoadError::Chain(_))
    ));

    // Only declared-tools in the request chain: send_message is not declared, so it is
    // denied by declared-tools, and connector-allowlist is no longer stamped.
    chains.request = vec![ChainEntry::WithSettings {
        plugin: "declared-tools".into(),
        settings: serde_json::from_str(r#"{"allow_methods": ["resources/*"]}"#).unwrap(),
    }];
    rt.check_chains(&chains).await.unwrap();
    rt.change(|draft| {
        draft.set_chains(chains.clone());
        Ok(())
    })
    .unwrap();
    assert!(rt.generation() > generation);
    assert_eq!(rt.chains(), chains);
    let verdict = rt.request(context("run_1"), call("list_channels")).await;
    let names: Vec<&str> = verdict.plugins.iter().map(|s| &*s.name).collect();
    assert_eq!(names, ["declared-tools"]);
    let mut read = call("x");
    read.method = "resources/read".into();
    read.tool = None;
    assert!(rt.request(context("run_1"), read).await.value.is_allow());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_in_a_chain_cannot_be_removed() {
    let rt = builtin_runtime();
    let error = rt
        .change(|draft| draft.remove("connector-allowlist"))
        .unwrap_err();
    match &error {
        LoadError::InUse { chains, .. } => assert_eq!(chains, &["request", "tools"]),
        other => panic!("{other}"),
    }
    assert!(rt.plugin("connector-allowlist").is_some());
    rt.change(|draft| {
        let mut chains = draft.chains().clone();
        chains
            .request
            .retain(|e| e.plugin() != "connector-allowlist");
        chains.tools.retain(|e| e.plugin() != "connector-allowlist");
        draft.set_chains(chains);
        draft.remove("connector-allowlist")
    })
    .unwrap();
    assert!(rt.plugin("connector-allowlist").is_none());
    assert!(matches!(
        rt.change(|draft| draft.remove("connector-allowlist")),
        Err(LoadError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shadow_is_counted_off_the_path_and_never_answers() {
    // `hostile` allows every ordinary call; declared-tools, as its candidate, denies what
    // the run did not declare (`send_message`).
    let rt = hostile_runtime();
    let candidate = rt
        .admit("hostile", builtin("declared-tools").to_vec(), false)
        .await
        .unwrap();
    let candidate_sha = candidate.sha256().to_owned();
    rt.change(|draft| draft.set_shadow(candidate)).unwrap();
    assert!(rt.shadowing());
    let live_sha = rt.plugin("hostile").unwrap().sha256;

    let mut expected_disagreements = 0;
    for tool in [
        "list_channels",
        "send_message",
        "list_channels",
        "send_message",
    ] {
        let ctx = context("run_1");
        let request = call(tool);
        let verdict = rt.request(ctx.clone(), request.clone()).await;
        assert_eq!(&*verdict.plugins[0].sha256, live_sha.as_str());
        rt.observe_request(&ctx, &request);
        expected_disagreements += usize::from(tool == "send_message");
    }
    let report = wait_for(|| {
        let report = rt.shadow("hostile").unwrap();
        (report.agreements + report.disagreements == 4).then_some(report)
    })
    .await;
    assert_eq!(report.candidate.sha256, candidate_sha);
    assert_eq!(report.agreements, 2);
    assert_eq!(report.disagreements as usize, expected_disagreements);
    assert_eq!(report.skipped, 0);
    assert!(report.samples.iter().all(|s| {
        s.tool.as_deref() == Some("send_message")
            && s.live.decision == "allow"
            && s.candidate.decision == "deny"
    }));
    let samples = serde_json::to_string(&report.samples).unwrap();
    assert!(!samples.contains("arguments"), "{samples}");

    // Promoting makes the candidate serve and ends the shadow.
    rt.change(|draft| draft.promote_shadow("hostile")).unwrap();
    assert!(rt.shadow("hostile").is_none());
    assert_eq!(rt.plugin("hostile").unwrap().sha256, candidate_sha);
    let verdict = rt.request(context("run_1"), call("send_message")).await;
    assert!(!verdict.value.is_allow());
    assert!(matches!(
        rt.change(|draft| draft.promote_shadow("hostile")),
        Err(LoadError::NoShadow(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_cannot_be_shadowed() {
    let rt = builtin_runtime();
    let candidate = rt
        .admit(
            "provider-bearer",
            builtin("provider-bearer").to_vec(),
            false,
        )
        .await
        .unwrap();
    assert!(matches!(
        rt.change(|draft| draft.set_shadow(candidate)),
        Err(LoadError::ShadowUnsupported(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_and_faults_are_counted_per_plugin() {
    let rt = hostile_runtime();
    rt.request(context("run_1"), call("list_channels")).await;
    rt.request(context("run_1"), call("trap")).await;
    let metrics = rt.plugin_metrics();
    let of = |name: &str| metrics.iter().find(|m| m.plugin == name).unwrap().clone();
    let hostile = of("hostile");
    assert_eq!(hostile.calls, 2);
    let traps = hostile
        .faults
        .iter()
        .find(|f| f.0 == "plugin_trap")
        .unwrap();
    assert_eq!(traps.1, 1);
    assert_eq!(hostile.latency_buckets.last().unwrap().1, 2);
    assert_eq!(of("declared-tools").calls, 1, "the trap stopped the chain");
    assert_eq!(metrics.len(), rt.plugins().len());
}

#[test]
fn inspect_reads_the_world_imports_and_exports() {
    let wasm = builtin("declared-tools");
    let inspection = inspect(wasm).unwrap();
    assert_eq!(
        inspection.world.as_deref(),
        Some("portcullis:plugin/policy-plugin")
    );
    assert_eq!(inspection.wit_version.as_deref(), Some("0.1.0"));
    assert_eq!(inspection.size, wasm.len());
    let export = inspection
        .exports
        .iter()
        .find(|e| e.name == "portcullis:plugin/policy@0.1.0")
        .expect("the policy export");
    assert!(
        export
            .functions
            .iter()
            .any(|f| f.starts_with("request: func(")),
        "{export:?}"
    );
    assert!(
        inspection
            .imports
            .iter()
            .any(|i| i.name == "portcullis:plugin/types@0.1.0"),
        "{:?}",
        inspection.imports
    );
    assert!(inspect(b"not wasm").is_err());
}

async fn wait_for<T>(mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..500 {
        if let Some(value) = check() {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the condition did not hold within 10 s")
}
