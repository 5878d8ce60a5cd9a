//! Evaluations: the calls asked together about one run on one connector
//! (`Runtime::requests`, `Runtime::access_and_tools`) share one instance per plugin, and
//! nothing else does: the next evaluation, and the call after a fault, start afresh. The
//! hostile plugin's `state` command counts its calls in a static, so it shows which
//! instance answered.

use std::sync::OnceLock;

use portcullis_runtime::*;

use crate::support::*;

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(hostile_runtime)
}

/// What each verdict says: the deny message, or `allow`, and the fault if any.
fn said(verdicts: &[Verdict<Decision>]) -> Vec<(String, Option<Fault>)> {
    verdicts
        .iter()
        .map(|v| {
            let said = match &v.value {
                Decision::Allow => "allow".to_owned(),
                Decision::Deny(denial) => denial.message.clone(),
            };
            (said, v.fault.clone())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_evaluation_shares_an_instance_and_the_next_starts_afresh() {
    let rt = runtime();
    let counted = |n: &str| (n.to_owned(), None);
    for _ in 0..3 {
        let verdicts = rt.requests(context("run_1"), vec![call("state"); 3]).await;
        assert_eq!(
            said(&verdicts),
            [counted("1"), counted("2"), counted("3")],
            "{verdicts:?}"
        );
    }
    let alone = rt.request(context("run_1"), call("state")).await;
    assert_eq!(said(&[alone]), [counted("1")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fault_drops_the_instance_and_the_next_call_gets_a_fresh_one() {
    let rt = runtime();
    let verdicts = rt
        .requests(
            context("run_1"),
            vec![
                call("state"),
                call("trap"),
                call("state"),
                call("spin"),
                call("state"),
            ],
        )
        .await;
    let said = said(&verdicts);
    assert_eq!(said[0], ("1".to_owned(), None));
    assert!(
        matches!(said[1].1, Some(Fault::Trap { .. })),
        "{verdicts:?}"
    );
    assert_eq!(
        said[2],
        ("1".to_owned(), None),
        "a fresh instance after the trap"
    );
    assert_eq!(
        said[3].1,
        Some(Fault::CpuDeadline("hostile".into())),
        "{verdicts:?}"
    );
    assert_eq!(
        said[4],
        ("1".to_owned(), None),
        "a fresh instance after the deadline"
    );
    for verdict in &verdicts {
        assert_eq!(&*verdict.plugins[0].name, "hostile");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn asked_together_the_chains_answer_as_asked_alone() {
    let rt = runtime();
    for run in ["run_1", "panic", "spin", "state"] {
        let (access, tools) = rt.access_and_tools(context(run)).await;
        let alone = (
            rt.access(context(run)).await,
            rt.permitted_tools(context(run)).await,
        );
        assert_eq!((&access, &tools), (&alone.0, &alone.1), "run {run}");
    }
    let messages = ["list_channels", "send_message", "panic", "undeclared"].map(call);
    let together = rt.requests(context("run_1"), messages.to_vec()).await;
    for (message, verdict) in messages.into_iter().zip(together) {
        let alone = rt.request(context("run_1"), message.clone()).await;
        assert_eq!(verdict, alone, "{message:?}");
    }
}
