//! Garbage at the canonical-ABI level: a provider component written by hand in WAT whose
//! `plan` answer no compiler for the WIT would produce. Wasmtime refuses to lift it; the
//! runtime turns that into a fault, not a crash, and keeps serving.

use portcullis_model::fixtures;
use portcullis_runtime::*;

use crate::support::*;

/// A provider component whose `describe` is well-formed and whose `plan` returns the
/// bytes of `answer` (a WAT data string) as its result record.
fn garbage_provider(answer: &str) -> Vec<u8> {
    let wat = r#"
(component
  (core module $m
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 4096))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $ptr i32)
      (local.set $ptr (i32.and (i32.add (global.get $next) (i32.const 7)) (i32.const -8)))
      (global.set $next (i32.add (local.get $ptr) (local.get 3)))
      (local.get $ptr))
    (data (i32.const 16) "garbage")
    (data (i32.const 32) "0.1.0")
    (data (i32.const 64) "\10\00\00\00\07\00\00\00\20\00\00\00\05\00\00\00")
    (data (i32.const 256) "\ff\fe")
    (data (i32.const 128) "ANSWER")
    (func (export "describe") (result i32) (i32.const 64))
    (func (export "plan") (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
      (i32.const 128)))
  (core instance $i (instantiate $m))
  (type $plugin-info' (record (field "name" string) (field "version" string)))
  (type $credential-kind' (enum "none" "api-key" "oauth-access-token"))
  (export $plugin-info "plugin-info" (type $plugin-info'))
  (export $credential-kind "credential-kind" (type $credential-kind'))
  (type $plan-request' (record
    (field "connector-id" string) (field "server-url" string) (field "provider" string)
    (field "config" string) (field "credential" $credential-kind)))
  (export $plan-request "plan-request" (type $plan-request'))
  (type $injection-plan' (record
    (field "headers" (list (tuple string string)))
    (field "query" (list (tuple string string)))))
  (export $injection-plan "injection-plan" (type $injection-plan'))
  (func $describe (result $plugin-info)
    (canon lift (core func $i "describe") (memory (core memory $i "memory"))
      (realloc (core func $i "realloc")) string-encoding=utf8))
  (func $plan (param "request" $plan-request) (result (result $injection-plan (error string)))
    (canon lift (core func $i "plan") (memory (core memory $i "memory"))
      (realloc (core func $i "realloc")) string-encoding=utf8))
  (instance $provider
    (export "plugin-info" (type $plugin-info))
    (export "credential-kind" (type $credential-kind))
    (export "plan-request" (type $plan-request))
    (export "injection-plan" (type $injection-plan))
    (export "describe" (func $describe))
    (export "plan" (func $plan)))
  (export "portcullis:plugin/provider@0.1.0" (instance $provider)))
"#;
    wat::parse_str(wat.replace("ANSWER", answer))
        .unwrap_or_else(|e| panic!("the garbage provider does not assemble: {e}"))
}

fn plan_request(provider: &str) -> PlanRequest {
    PlanRequest {
        provider: provider.into(),
        ..fixtures::plan_request(CredentialKind::ApiKey, "{}")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unliftable_answers_are_faults() {
    let rt = builtin_runtime();
    let cases = [
        ("out-of-range result discriminant", r"\05", "discriminant"),
        // `err` with a two-byte string at 256 that is not UTF-8.
        (
            "invalid UTF-8",
            r"\01\00\00\00\00\01\00\00\02\00\00\00",
            "utf-8",
        ),
        // `err` with a string that runs past the end of memory.
        (
            "out-of-bounds string",
            r"\01\00\00\00\00\ff\00\00\00\10\00\00",
            "out of bounds",
        ),
    ];
    for (what, answer, expected) in cases {
        let summary = rt
            .install("provider-bearer", garbage_provider(answer))
            .await
            .unwrap_or_else(|e| panic!("{what}: the garbage provider was refused: {e}"));
        assert_eq!(summary.reported_name, "garbage");
        let verdict = rt.injection_plan(plan_request("bearer")).await;
        let Some(Fault::Trap { plugin, detail }) = &verdict.fault else {
            panic!("{what}: {verdict:?}");
        };
        assert_eq!(plugin, "provider-bearer");
        assert!(detail.to_lowercase().contains(expected), "{what}: {detail}");
        assert!(matches!(verdict.value, Err(PlanError::Fault(_))), "{what}");

        let verdict = rt.injection_plan(plan_request("sentry")).await;
        assert!(verdict.value.is_ok(), "{what}: {verdict:?}");
        rt.rollback("provider-bearer").unwrap();
        let verdict = rt.injection_plan(plan_request("bearer")).await;
        assert!(verdict.value.is_ok(), "{what}: {verdict:?}");
    }
}
