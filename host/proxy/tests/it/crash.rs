//! Crash safety: the real `portcullis serve` binary is killed with SIGKILL while it
//! writes (connectors created and deleted, runs started and finished, audit records),
//! then started again on the same data directory. Every change a client saw
//! acknowledged is still there, no finished run's token works again, and the start is
//! clean.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::process::serve;
use crate::support::*;

/// What the clients saw acknowledged before the kill.
#[derive(Default)]
struct Acknowledged {
    created: Vec<String>,
    deleted: Vec<String>,
    /// (run id, token)
    finished: Vec<(String, String)>,
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_while_writing_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo().await;
    let (child, api) = serve(dir.path());
    let create = json!({"owner": "alice", "server_url": demo.url, "auth": {"method": "none"}});
    let (status, used) = api
        .call(Method::POST, "/connectors", Some(create.clone()))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED, "{used}");
    let used = id(&used);
    let properties = json!({"conn": field("string", json!([{"url": "*"}]))});
    let schema = json!({"input_schema": {"title": "A", "type": "object", "schemaVersion": 1, "properties": properties}});
    let (status, _) = api
        .call(Method::PUT, "/actors/a", Some(schema))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED);

    // Writers that go on until the server dies under them.
    let seen = Arc::new(Mutex::new(Acknowledged::default()));
    let mut workers = Vec::new();
    {
        let (api, seen, create) = (api.clone(), seen.clone(), create.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let Ok((StatusCode::CREATED, made)) = api
                    .call(Method::POST, "/connectors", Some(create.clone()))
                    .await
                else {
                    return;
                };
                let made = id(&made);
                let delete = {
                    let mut seen = seen.lock().unwrap();
                    seen.created.push(made.clone());
                    seen.created.len() % 2 == 0
                };
                if delete {
                    let path = format!("/connectors/{made}");
                    let Ok((StatusCode::NO_CONTENT, _)) =
                        api.call(Method::DELETE, &path, None).await
                    else {
                        return;
                    };
                    seen.lock().unwrap().deleted.push(made);
                }
            }
        }));
    }
    for _ in 0..2 {
        let (api, seen, used) = (api.clone(), seen.clone(), used.clone());
        workers.push(tokio::spawn(async move {
            let start = json!({"actor": "a", "user": "alice", "input": {"conn": used}});
            loop {
                let Ok((StatusCode::CREATED, run)) =
                    api.call(Method::POST, "/runs", Some(start.clone())).await
                else {
                    return;
                };
                let token = run["token"].as_str().unwrap().to_owned();
                // A data-plane request: an audit record to write.
                if api.initialize(&used, &token).await.is_err() {
                    return;
                }
                let path = format!("/runs/{}/finish", id(&run));
                let Ok((StatusCode::OK, _)) = api.call(Method::POST, &path, Some(json!({}))).await
                else {
                    return;
                };
                seen.lock().unwrap().finished.push((id(&run), token));
            }
        }));
    }

    // Kill it mid-write, once every kind of write has been acknowledged a few times.
    let patience = Instant::now() + Duration::from_secs(60);
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let seen = seen.lock().unwrap();
        if seen.deleted.len() >= 3 && seen.finished.len() >= 6 {
            break;
        }
        assert!(Instant::now() < patience, "the writers made no progress");
    }
    drop(child);
    for worker in workers {
        worker.await.unwrap();
    }

    let (child, api) = serve(dir.path());
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    for made in &seen.created {
        let (status, _) = api
            .call(Method::GET, &format!("/connectors/{made}"), None)
            .await
            .unwrap();
        let expected = if seen.deleted.contains(made) {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        assert_eq!(status, expected, "connector {made} after the crash");
    }
    for (run, token) in &seen.finished {
        let (_, shown) = api
            .call(Method::GET, &format!("/runs/{run}"), None)
            .await
            .unwrap();
        assert_eq!(shown["status"], "succeeded", "run {run} after the crash");
        assert_eq!(
            api.initialize(&used, token).await.unwrap(),
            StatusCode::UNAUTHORIZED,
            "a finished run's token works again after the crash"
        );
    }
    // A clean start: it takes new writes, and its audit answers.
    let (status, _) = api
        .call(Method::POST, "/connectors", Some(create))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = api.call(Method::GET, "/audit", None).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    drop(child);
}
