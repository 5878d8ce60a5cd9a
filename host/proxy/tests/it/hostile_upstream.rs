//! The data plane against a hostile upstream (issue 10): the `tools/list` filter fails
//! closed whatever ids, shapes and transports the upstream answers with.

use portcullis_test_upstreams::hostile::{self, Hostile, Reply, every_tool};
use portcullis_test_upstreams::wire;
use serde_json::{Value, json};

use crate::support::*;

/// The upstream's forms of each client id: equal as JSON-RPC ids, different as JSON.
const ID_FORMS: [(i64, &str); 7] = [
    (2, "2.0"),
    (1, "1e0"),
    (10, "1E+1"),
    (3, "3.00"),
    (0, "-0"),
    (5, "0.5e1"),
    (2, "2E+0"),
];

/// A scenario on a hostile upstream whose run may use `visible` only.
async fn scenario(session: bool) -> (Hostile, Scenario) {
    let upstream = hostile::hostile().await;
    let builder = Scenario::on(&upstream.url()).tools(json!({ "required": ["visible"] }));
    let builder = if session { builder.session() } else { builder };
    (upstream, builder.start().await)
}

/// How a test sends: in a session, or statelessly (2026-07-28).
#[derive(Clone, Copy, Debug)]
enum Mode {
    Session,
    Stateless,
}

async fn list(s: &Scenario, mode: Mode, id: i64) -> Answer {
    match mode {
        Mode::Session => s.list(id).await,
        Mode::Stateless => {
            let body = wire::stateless_request(id, "tools/list", json!({}));
            s.send_with(&body, wire::stateless_headers("tools/list", None))
                .await
        }
    }
}

/// `answer` as a JSON body, or as the one event of an SSE body.
fn reply(sse: bool, answer: String) -> Reply {
    if sse {
        Reply::sse(&[answer])
    } else {
        Reply::json(answer)
    }
}

/// Nothing outside the run's tools anywhere in what the client got.
#[track_caller]
fn nothing_hidden(answer: &Answer) {
    for name in [hostile::SMUGGLED, "hidden"] {
        assert!(
            !answer.text.contains(name),
            "{name} reached the client: {}",
            answer.text
        );
    }
}

/// The error a `tools/list` answer the proxy cannot filter is replaced with.
#[track_caller]
fn replaced_by_an_error(answer: &Answer, id: i64) {
    nothing_hidden(answer);
    let error = &answer.response(id)["error"];
    assert_eq!(error["code"], -32006, "{}", answer.text);
    assert_eq!(
        error["data"]["reason"], "malformed_answer",
        "{}",
        answer.text
    );
}

/// Issue 10, defect 2: an answer whose id is the request's as a JSON-RPC id (`2.0` for
/// `2`) is filtered, in JSON and SSE, in a session and statelessly, and goes back with the
/// client's own id.
#[tokio::test(flavor = "multi_thread")]
async fn lying_id_forms_are_filtered() {
    for mode in [Mode::Session, Mode::Stateless] {
        let (upstream, s) = scenario(matches!(mode, Mode::Session)).await;
        for sse in [false, true] {
            for (id, form) in ID_FORMS {
                upstream.on_list(move |_| reply(sse, every_tool(form)));
                let answer = list(&s, mode, id).await;
                nothing_hidden(&answer);
                assert_eq!(
                    answer.tool_names(id),
                    ["visible"],
                    "{mode:?} sse={sse} {form}: {}",
                    answer.text
                );
                let reply = answer.response(id);
                assert_eq!(reply["id"], json!(id), "{}", answer.text);
            }
        }
    }
}

/// What an upstream answers, made from the request's id text.
type MakeAnswer = dyn Fn(&str) -> String + Send + Sync;

/// Issue 10, defect 2: an answer to a `tools/list` that cannot be read, has no id, has a
/// duplicate key or whose `result.tools` is not an array is replaced by an error, never
/// forwarded unfiltered; one with another id is still filtered.
#[tokio::test(flavor = "multi_thread")]
async fn unfilterable_answers_fail_closed() {
    let smuggled = || json!([{"name": hostile::SMUGGLED, "inputSchema": {}}]);
    let broken: Vec<(&str, Box<MakeAnswer>)> = vec![
        (
            "not JSON",
            Box::new(|id| format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"tools":["smuggled""#)),
        ),
        (
            "no id",
            Box::new(|_| every_tool("1").replace(r#""id":1,"#, "")),
        ),
        ("a null id", Box::new(|_| every_tool("null"))),
        (
            "tools not an array",
            Box::new(move |id| {
                format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"result":{{"tools":{{"x":{}}}}}}}"#,
                    smuggled()
                )
            }),
        ),
        (
            "no tools",
            Box::new(move |id| {
                format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"result":{{"other":{}}}}}"#,
                    smuggled()
                )
            }),
        ),
        (
            "a result that is not an object",
            Box::new(|id| format!(r#"{{"jsonrpc":"2.0","id":{id},"result":"smuggled"}}"#)),
        ),
        (
            "a duplicate result",
            Box::new(move |id| {
                format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"result":{{"tools":[]}},"result":{{"tools":{}}}}}"#,
                    smuggled()
                )
            }),
        ),
        (
            "a duplicate id",
            Box::new(|id| every_tool(id).replacen(r#""id":"#, r#""id":"x","id":"#, 1)),
        ),
    ];
    let broken: Vec<_> = broken
        .into_iter()
        .map(|(w, f)| (w, std::sync::Arc::new(f)))
        .collect();
    for mode in [Mode::Session, Mode::Stateless] {
        let (upstream, s) = scenario(matches!(mode, Mode::Session)).await;
        for sse in [false, true] {
            for (what, make) in &broken {
                let make = make.clone();
                upstream.on_list(move |id| reply(sse, make(id)));
                let answer = list(&s, mode, 4).await;
                assert!(
                    !answer.messages.is_empty(),
                    "{mode:?} sse={sse} {what}: no answer: {}",
                    answer.text
                );
                replaced_by_an_error(&answer, 4);
            }
            // Another id: not this request's answer, but filtered all the same.
            upstream.on_list(move |_| reply(sse, every_tool("999")));
            let answer = list(&s, mode, 4).await;
            nothing_hidden(&answer);
        }
    }
}

/// Issue 10, defect 2: lists an upstream sends on a GET stream are filtered, and those
/// without an id or unreadable are dropped.
#[tokio::test(flavor = "multi_thread")]
async fn lists_on_other_streams_are_filtered() {
    let (upstream, s) = scenario(true).await;
    upstream.on_get(|_| {
        Reply::sse(&[
            every_tool("7"),
            every_tool("7.0"),
            r#"{"jsonrpc":"2.0","result":{"tools":[{"name":"smuggled"}]}}"#.to_owned(),
            "{not json smuggled".to_owned(),
        ])
    });
    let response = s
        .env
        .http
        .get(s.env.mcp_url(&s.conn))
        .headers(wire::mcp_headers(Some(s.session())))
        .header("accept", "text/event-stream")
        .bearer_auth(&s.run.token)
        .send()
        .await
        .unwrap();
    let answer = Answer::read(response).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    nothing_hidden(&answer);
    let lists: Vec<&Value> = answer
        .messages
        .iter()
        .filter(|m| m["result"]["tools"].is_array())
        .collect();
    assert_eq!(lists.len(), 2, "{}", answer.text);
    for list in lists {
        assert_eq!(list["result"]["tools"][0]["name"], "visible");
    }
}

/// A `tools/list` answer that comes after its own stream ended, on the stream of a later
/// request, is filtered too, also when its keys are written with escapes.
#[tokio::test(flavor = "multi_thread")]
async fn a_late_list_on_another_request_stream_is_filtered() {
    let (upstream, s) = scenario(true).await;
    upstream.on_list(|_| Reply::sse(&[": no answer here"]));
    upstream.on_call(|id| {
        Reply::sse(&[
            every_tool("20"),
            every_tool("22").replace("\"tools\"", "\"\\u0074ools\""),
            format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[]}}}}"#),
        ])
    });
    let unanswered = s.list(20).await;
    nothing_hidden(&unanswered);
    let answer = s.call(21, "visible", json!({})).await;
    nothing_hidden(&answer);
    assert!(
        answer.response(21).get("result").is_some(),
        "{}",
        answer.text
    );
}

const MIB: usize = 1 << 20;

/// Issue 10, defects 4 and 21: a 200 MiB JSON answer is never buffered: one the proxy
/// must read (`tools/list`) ends with ERR-10 at `limits.answer_bytes`, one it passes
/// through is cut off there; an SSE event without a newline ends the stream with an
/// ERR-10 event at `limits.sse_event_bytes`.
#[tokio::test(flavor = "multi_thread")]
async fn huge_answers_end_at_the_limit() {
    let upstream = hostile::hostile().await;
    let s = Scenario::on(&upstream.url())
        .tools(json!({ "required": ["visible"] }))
        .configure(|c| {
            c.limits.answer_bytes = MIB;
            c.limits.sse_event_bytes = MIB;
        })
        .session()
        .start()
        .await;
    let rss_before = rss_kib();

    let json_prefix = |id: &str| {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":""#)
    };
    upstream.on_list(move |id| {
        Reply::endless("application/json", json_prefix(id), b'a', Some(200 * MIB))
    });
    let answer = s.list(1).await;
    assert_eq!(answer.status, 502, "{}", answer.text);
    assert_eq!(answer.response(1)["error"]["code"], -32006);
    assert_eq!(
        answer.response(1)["error"]["data"]["reason"],
        "answer_too_large"
    );

    upstream.on_call(move |id| {
        Reply::endless("application/json", json_prefix(id), b'a', Some(200 * MIB))
    });
    let response = s
        .post_raw(wire::call_tool(2, "visible", json!({})).to_string())
        .await;
    let (received, broken) = drain(response).await;
    assert!(broken, "a cut-off answer must not look complete");
    assert!(received <= 2 * MIB, "{received} bytes passed a 1 MiB limit");

    upstream.on_call(|_| Reply::endless("text/event-stream", "data: ", b'a', None));
    let answer = s.call(3, "visible", json!({})).await;
    assert_eq!(answer.status, 200);
    let error = &answer.response(3)["error"];
    assert_eq!(error["code"], -32006, "{}", answer.text);
    assert_eq!(error["data"]["reason"], "event_too_large");

    let grown = rss_kib().saturating_sub(rss_before);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
}

/// Black-box FLT-ANNOT-FLIP, spec 4.4.10: a permitted tool whose annotations in the live
/// `tools/list` answer stop matching the rule's hints is hidden from that answer (JSON
/// and SSE) and its `tools/call` refused as a tool outside the permitted set, decided by
/// the plugin chains on the live hints; a tool whose live hints still match is kept, and
/// the flipped one comes back once its live hints match again.
#[tokio::test(flavor = "multi_thread")]
async fn live_annotations_that_stop_matching_hide_the_tool() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let upstream = hostile::hostile().await;
    let flipped = Arc::new(AtomicBool::new(false));
    let sse = Arc::new(AtomicBool::new(false));
    upstream.on_list({
        let (flipped, sse) = (flipped.clone(), sse.clone());
        move |id| {
            // `visible` turns destructive when flipped; `hidden` stays read-only.
            let read_only = !flipped.load(Ordering::Relaxed);
            let tools = json!([
                {"name": "visible", "inputSchema": {"type": "object"},
                 "annotations": {"readOnlyHint": read_only, "destructiveHint": !read_only}},
                {"name": "hidden", "inputSchema": {"type": "object"},
                 "annotations": {"readOnlyHint": true}},
            ]);
            reply(
                sse.load(Ordering::Relaxed),
                format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"tools":{tools}}}}}"#),
            )
        }
    });
    let s = Scenario::on(&upstream.url())
        .tools(json!({ "readOnly": true }))
        .session()
        .start()
        .await;
    let calls = || {
        upstream
            .requests()
            .iter()
            .filter(|r| r.rpc_method().as_deref() == Some("tools/call"))
            .count()
    };
    assert_eq!(s.list(2).await.tool_names(2), ["hidden", "visible"]);

    flipped.store(true, Ordering::Relaxed);
    for (id, as_sse) in [(3, false), (4, true)] {
        sse.store(as_sse, Ordering::Relaxed);
        assert_eq!(s.list(id).await.tool_names(id), ["hidden"], "sse: {as_sse}");
    }
    let before = calls();
    let refused = s.call(5, "visible", json!({})).await;
    assert_eq!(
        refused.response(5)["error"]["code"],
        -32602,
        "{}",
        refused.text
    );
    assert_eq!(calls(), before, "the flipped tool's call was forwarded");
    let kept = s.call(6, "hidden", json!({})).await;
    assert!(kept.response(6).get("result").is_some(), "{}", kept.text);

    flipped.store(false, Ordering::Relaxed);
    sse.store(false, Ordering::Relaxed);
    assert_eq!(s.list(7).await.tool_names(7), ["hidden", "visible"]);
    let back = s.call(8, "visible", json!({})).await;
    assert!(back.response(8).get("result").is_some(), "{}", back.text);
}

/// Issue 11: the filtered form of a `tools/list` result is kept per connector and serves
/// only the same result text again, with the request's own id, in JSON and SSE. The same
/// result beside a repeated key is still refused, a changed list is filtered anew, and a
/// run with another permitted set gets its own list.
#[tokio::test(flavor = "multi_thread")]
async fn a_kept_listing_serves_only_the_same_result() {
    for sse in [false, true] {
        let (upstream, s) = scenario(true).await;
        let listings = || s.env.server.state.data.footprint().listings;
        upstream.on_list(move |id| reply(sse, every_tool(id)));
        let first = s.list(1).await;
        assert_eq!(first.tool_names(1), ["visible"], "{}", first.text);
        assert_eq!(listings(), 1, "the filtered result is kept");
        let again = s.list(2).await;
        nothing_hidden(&again);
        assert_eq!(again.response(2)["id"], 2, "{}", again.text);
        assert_eq!(
            again.response(2)["result"],
            first.response(1)["result"],
            "sse={sse}"
        );

        upstream.on_list(move |id| {
            reply(
                sse,
                every_tool(id).replacen(r#""id":"#, r#""id":"x","id":"#, 1),
            )
        });
        replaced_by_an_error(&s.list(3).await, 3);
        upstream.on_list(move |id| {
            reply(
                sse,
                format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"_meta":{{"a":1,"a":2}},"result":{}}}"#,
                    serde_json::from_str::<Value>(&every_tool(id)).unwrap()["result"]
                ),
            )
        });
        replaced_by_an_error(&s.list(4).await, 4);

        upstream.on_list(move |id| {
            reply(
                sse,
                every_tool(id).replace(r#""name":"visible""#, r#""name":"renamed""#),
            )
        });
        let changed = s.list(5).await;
        nothing_hidden(&changed);
        assert!(changed.tool_names(5).is_empty(), "{}", changed.text);

        upstream.on_list(move |id| reply(sse, every_tool(id)));
        assert_eq!(s.list(6).await.tool_names(6), ["visible"]);
        s.env.actor("wider", any_loopback(None)).await;
        let wider = s.env.run("wider", "alice", json!({ "conn": s.conn })).await;
        let body = wire::stateless_request(7, "tools/list", json!({}));
        let answer = s
            .env
            .post_with(
                &s.conn,
                Some(&wider.token),
                None,
                &body,
                wire::stateless_headers("tools/list", None),
            )
            .await;
        let mut names = answer.tool_names(7);
        names.sort();
        assert_eq!(names, ["hidden", "visible"], "{}", answer.text);
    }
}
