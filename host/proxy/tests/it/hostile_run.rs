//! The data plane against a hostile run (issue 10): what a run sends cannot make the
//! proxy keep more, whatever methods, ids and tool names it chooses.

use portcullis::data::Footprint;
use portcullis_test_upstreams as upstreams;
use portcullis_test_upstreams::wire;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use crate::support::*;

/// A scenario on rmcp's session server with the rate limits off, so that a test can send
/// as fast as it likes.
async fn unlimited() -> (upstreams::Upstream, Scenario) {
    let upstream = upstreams::sessions().await;
    let s = Scenario::on(&upstream.url())
        .configure(|c| {
            c.limits.requests_per_second_per_run = 0;
            c.limits.requests_per_second_per_connector = 0;
        })
        .session()
        .start()
        .await;
    (upstream, s)
}

async fn metrics(s: &Scenario) -> String {
    let response = s.env.http.get(s.env.url("/metrics")).send().await.unwrap();
    response.text().await.unwrap()
}

fn footprint(s: &Scenario) -> Footprint {
    s.env.server.state.data.footprint()
}

fn stateless_headers() -> HeaderMap {
    let mut headers = wire::mcp_headers(None);
    headers.insert(
        "mcp-protocol-version",
        HeaderValue::from_static(wire::STATELESS_PROTOCOL_VERSION),
    );
    headers
}

/// Sends request `id` of `method`, in the session and statelessly (2026-07-28).
async fn both_ways(s: &Scenario, id: i64, method: &str) -> [Answer; 2] {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": {}});
    let in_session = s.send(&body).await;
    let stateless = s
        .env
        .post_with(
            &s.conn,
            Some(&s.run.token),
            None,
            &body,
            stateless_headers(),
        )
        .await;
    [in_session, stateless]
}

/// Issue 10, defect 1: many distinct methods, huge ones (refused, with the request's id)
/// and ones within the length limit (decided, audited), leave `/metrics`, the request
/// memo, the session and run tables and the pending `tools/list` count where they were.
#[tokio::test(flavor = "multi_thread")]
async fn distinct_methods_leave_nothing_behind() {
    let (_upstream, s) = unlimited().await;
    // The usual traffic first, so that its series and memo entries exist.
    assert!(s.list(1).await.response(1).get("result").is_some());
    let _ = both_ways(&s, 2, "ping").await;
    let metrics_before = metrics(&s).await.len();
    let before = footprint(&s);

    let huge = "m".repeat(64 << 10);
    for i in 0..200 {
        for answer in both_ways(&s, i, &format!("x/{i}/{huge}")).await {
            assert_eq!(answer.status, 400, "{}", answer.text);
            let error = &answer.response(i)["error"];
            assert_eq!(error["code"], -32600, "{}", answer.text);
            assert!(answer.text.len() < 1024, "the method was echoed");
        }
    }
    let long = "n".repeat(200);
    for i in 0..400 {
        for answer in both_ways(&s, i, &format!("y/{i}/{long}")).await {
            assert!(answer.status < 500, "{}: {}", answer.status, answer.text);
            assert!(!answer.text.contains(&long), "the method was echoed");
        }
        let tool = format!("t/{i}/{long}");
        let _ = s.call(i, &tool, json!({})).await;
    }

    let after = footprint(&s);
    assert_eq!(after.sessions, before.sessions, "{after:?}");
    assert_eq!(after.runs, before.runs, "{after:?}");
    assert_eq!(after.lists_due, 0, "{after:?}");
    assert!(
        after.memoized_requests <= before.memoized_requests + 2,
        "{before:?} -> {after:?}"
    );
    let metrics_after = metrics(&s).await;
    assert!(
        metrics_after.len() < metrics_before + 4 * 1024,
        "/metrics grew from {metrics_before} to {} bytes",
        metrics_after.len()
    );
    assert!(!metrics_after.contains("nnnn") && !metrics_after.contains("mmmm"));

    // What was audited is cut to the field limit.
    let audit = s.env.audit_once(&s.run, |_| true).await;
    assert!(!audit.is_empty());
    for record in &audit {
        for field in ["method", "tool", "reason"] {
            let len = record[field].as_str().map_or(0, str::len);
            assert!(len <= 256, "{field} of {len} bytes audited");
        }
    }
}

/// Issue 10, defect 1: a `tools/list` answer that never comes (another id, or a stream
/// that ends first) leaves nothing due, so later messages are not all parsed forever.
#[tokio::test(flavor = "multi_thread")]
async fn unanswered_lists_are_not_kept() {
    let upstream = upstreams::hostile().await;
    let s = Scenario::on(&upstream.url()).session().start().await;
    upstream.on_list(|_| upstreams::Reply::json(upstreams::hostile::every_tool("999")));
    for id in 0..50 {
        let _ = s.list(id).await;
    }
    upstream.on_list(|_| upstreams::Reply::sse(&[r#"{"jsonrpc":"2.0","method":"ping"}"#]));
    for id in 50..100 {
        let _ = s.list(id).await;
    }
    assert_eq!(footprint(&s).lists_due, 0);
}

/// Ids of every JSON type: strings and numbers pass, the rest are refused; an id too
/// long is refused without being echoed.
#[tokio::test(flavor = "multi_thread")]
async fn ids_of_every_type() {
    let (_upstream, s) = unlimited().await;
    let long = "i".repeat(4096);
    let refused: [Value; 5] = [
        Value::Null,
        json!(true),
        json!([1]),
        json!({"a": 1}),
        json!(long),
    ];
    for id in refused {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "ping"});
        let answer = s.send(&body).await;
        assert_eq!(answer.status, 400, "{id}: {}", answer.text);
        assert_eq!(
            answer.messages[0]["error"]["code"], -32600,
            "{}",
            answer.text
        );
        assert!(!answer.text.contains(&long));
    }
    for id in [json!("a"), json!(7), json!(-7), json!("")] {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "ping"});
        let answer = s.send(&body).await;
        assert_eq!(answer.status, 200, "{id}: {}", answer.text);
        assert_eq!(answer.messages[0]["id"], id, "{}", answer.text);
    }
}

/// Issue 10, "done when": 10,000 requests with distinct 64 KiB method names, in a
/// session and statelessly, leave RSS and `/metrics` within a few MB of where they
/// started. Run with `cargo test -p portcullis --test it -- --ignored ten_thousand`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a stress test of a minute or more; run by hand"]
async fn ten_thousand_huge_methods_stay_flat() {
    let (_upstream, s) = unlimited().await;
    let huge = "m".repeat(64 << 10);
    // A first round settles the allocator and the connection pools.
    for i in 0..500 {
        let _ = both_ways(&s, i, &format!("x/{i}/{huge}")).await;
    }
    let (rss_before, metrics_before) = (rss_kib(), metrics(&s).await.len());
    for i in 0..10_000 {
        let _ = both_ways(&s, i, &format!("z/{i}/{huge}")).await;
    }
    let (rss_after, metrics_after) = (rss_kib(), metrics(&s).await.len());
    eprintln!(
        "RSS {rss_before} KiB -> {rss_after} KiB; /metrics {metrics_before} -> {metrics_after} bytes; {:?}",
        footprint(&s)
    );
    assert!(
        rss_after < rss_before + 16 * 1024,
        "RSS grew by more than 16 MiB"
    );
    assert!(metrics_after < metrics_before + 1024);
}

/// A proxy with short header and body timeouts and at most `connections` connections.
async fn slow_limits(connections: usize) -> (upstreams::Upstream, Scenario) {
    let upstream = upstreams::sessions().await;
    let s = Scenario::on(&upstream.url())
        .configure(move |c| {
            c.limits.header_read_timeout_ms = 500;
            c.limits.body_read_timeout_ms = 500;
            c.limits.max_connections = connections;
        })
        .start()
        .await;
    (upstream, s)
}

/// Reads what the server sends until it closes the connection, for at most 10 s.
async fn until_closed(read: &mut tokio::net::tcp::OwnedReadHalf) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read_all = async {
        let mut buf = [0u8; 4096];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read_all)
        .await
        .ok()?;
    Some(String::from_utf8_lossy(&got).into_owned())
}

/// Issue 10, defect 3: a client sending its headers byte by byte, or nothing at all, is
/// disconnected after the header timeout.
#[tokio::test(flavor = "multi_thread")]
async fn slow_headers_and_idle_connections_are_dropped() {
    use tokio::io::AsyncWriteExt;
    let (_upstream, s) = slow_limits(64).await;
    let idle = tokio::net::TcpStream::connect(s.env.server.addr)
        .await
        .unwrap();
    let (mut idle_read, _idle_write) = idle.into_split();

    let slow = tokio::net::TcpStream::connect(s.env.server.addr)
        .await
        .unwrap();
    let (mut read, mut write) = slow.into_split();
    let head = format!(
        "POST /mcp/{} HTTP/1.1\r\nhost: x\r\nx-filler: {}",
        s.conn,
        "a".repeat(10_000)
    );
    let writer = tokio::spawn(async move {
        for byte in head.bytes() {
            if write.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
    assert!(
        until_closed(&mut read).await.is_some(),
        "a client sending its headers byte by byte was kept"
    );
    writer.abort();
    assert!(
        until_closed(&mut idle_read).await.is_some(),
        "an idle connection was kept"
    );
}

/// Issue 10, defect 3: a body sent slowly gets 408; a request with a wrong token is
/// refused without its body ever being read.
#[tokio::test(flavor = "multi_thread")]
async fn slow_bodies_time_out_and_tokens_come_first() {
    use tokio::io::AsyncWriteExt;
    let (_upstream, s) = slow_limits(64).await;
    let request = |token: &str, length: usize| {
        format!(
            "POST /mcp/{} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
             accept: application/json, text/event-stream\r\ncontent-type: application/json\r\n\
             content-length: {length}\r\n\r\n",
            s.conn
        )
    };

    let stream = tokio::net::TcpStream::connect(s.env.server.addr)
        .await
        .unwrap();
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(request(&s.run.token, 1_000).as_bytes())
        .await
        .unwrap();
    let writer = tokio::spawn(async move {
        for _ in 0..1_000 {
            if write.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    let answer = until_closed(&mut read)
        .await
        .expect("the slow body was waited for");
    writer.abort();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // A wrong token with a body that never comes: answered at once, from the headers.
    let stream = tokio::net::TcpStream::connect(s.env.server.addr)
        .await
        .unwrap();
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(request("not-a-run-token", 1 << 20).as_bytes())
        .await
        .unwrap();
    let answer = until_closed(&mut read)
        .await
        .expect("the body was waited for");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    drop(write);
}

/// Black-box DP-413: a client that writes its whole oversized body before reading (as
/// Python's `http.client` does) reads the 413, since the proxy drains what is declared
/// within `limits.body_drain_bytes`; one that declares more than that, or trickles, is
/// answered without being waited for past the read timeout.
#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_are_answered_readably() {
    use std::io::{Read, Write};
    use tokio::io::AsyncWriteExt;
    let upstream = upstreams::sessions().await;
    let s = Scenario::on(&upstream.url())
        .configure(|c| {
            c.http.max_body_bytes = 64 << 10;
            c.limits.body_read_timeout_ms = 500;
        })
        .start()
        .await;
    let head = |length: usize| {
        format!(
            "POST /mcp/{} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
             accept: application/json, text/event-stream\r\ncontent-type: application/json\r\n\
             content-length: {length}\r\n\r\n",
            s.conn, s.run.token
        )
    };

    // Blocking, whole body first, then the answer.
    let before = upstream.requests().len();
    let addr = s.env.server.addr;
    let mut request = head(4 << 20).into_bytes();
    request.extend(std::iter::repeat_n(b' ', 4 << 20));
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(&request)
            .expect("the whole body could be sent");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("-32600"), "{answer}");
    assert_eq!(upstream.requests().len(), before);

    // Declared within the drain bound but trickled, or declared far beyond it: 413 within
    // the read timeout, never waited for longer.
    for length in [1 << 20, 1 << 40] {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut read, mut write) = stream.into_split();
        write.write_all(head(length).as_bytes()).await.unwrap();
        let writer = tokio::spawn(async move {
            for _ in 0..1_000 {
                if write.write_all(b" ").await.is_err() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        });
        let started = std::time::Instant::now();
        let answer = until_closed(&mut read)
            .await
            .expect("the trickled body was waited for");
        writer.abort();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(answer.starts_with("HTTP/1.1 413"), "{length}: {answer}");
    }
}

/// Issue 10, defect 3: past `limits.max_connections` a connection waits to be accepted
/// until another closes.
#[tokio::test(flavor = "multi_thread")]
async fn connections_are_capped() {
    let upstream = upstreams::sessions().await;
    let s = Scenario::on(&upstream.url())
        .configure(|c| {
            c.limits.max_connections = 2;
            c.limits.header_read_timeout_ms = 3_000;
        })
        .start()
        .await;
    // The scenario's own client keeps its connections alive in its pool, and they count
    // against the cap: wait until the server has closed them as idle.
    tokio::time::sleep(std::time::Duration::from_millis(3_500)).await;
    let healthz = || {
        let client = reqwest::Client::new();
        let url = s.env.url("/healthz");
        async move {
            client
                .get(url)
                .timeout(std::time::Duration::from_millis(700))
                .send()
                .await
        }
    };
    assert!(healthz().await.is_ok());
    let held: Vec<_> = futures_util::future::join_all(
        (0..2).map(|_| tokio::net::TcpStream::connect(s.env.server.addr)),
    )
    .await;
    // Give the server time to accept both before the third arrives (generously: on a
    // loaded two-core machine the accepts can lag).
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    assert!(healthz().await.is_err(), "a third connection was served");
    drop(held);
    let mut served = false;
    for _ in 0..20 {
        if healthz().await.is_ok() {
            served = true;
            break;
        }
    }
    assert!(
        served,
        "the server did not accept again after connections closed"
    );
}
