//! The audit log's hash chain: `portcullis audit verify` passes on a real log and names
//! the first bad record on copies with one record edited, one removed, and two swapped.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::Method;
use serde_json::json;
use sqlx::{Connection, Row, SqliteConnection};

use crate::support::*;

const DATABASE: &str = "portcullis.db";

/// A data directory with a real audit log of `count` records (admin changes and their
/// refusals), its server stopped.
async fn audited_data_dir(count: usize) -> tempfile::TempDir {
    let h = Proxy::start().await;
    let (_, chains) = h.api(Method::GET, "/chains", None).await;
    for i in 0..count {
        let body = if i % 2 == 0 {
            chains.clone()
        } else {
            json!({"request": ["nope"]})
        };
        h.api(Method::PUT, "/chains", Some(body)).await;
    }
    for _ in 0..200 {
        let (_, records) = h.api(Method::GET, "/audit?kind=admin", None).await;
        if records.as_array().unwrap().len() >= count {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let Proxy { server, dir, .. } = h;
    server.shutdown().await;
    dir
}

fn copy(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    std::fs::copy(from.join(DATABASE), to.path().join(DATABASE)).unwrap();
    to
}

async fn tamper(dir: &Path, statements: &[String]) {
    let url = format!("sqlite://{}", dir.join(DATABASE).display());
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();
}

async fn seqs(dir: &Path) -> Vec<i64> {
    let url = format!("sqlite://{}", dir.join(DATABASE).display());
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    let rows = sqlx::query("SELECT seq FROM audit ORDER BY seq")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    rows.iter().map(|r| r.get::<i64, _>("seq")).collect()
}

/// Runs `portcullis audit verify --data-dir DIR`: success, and what it printed.
fn verify(dir: &Path) -> (bool, String) {
    let output = Command::new(PathBuf::from(env!("CARGO_BIN_EXE_portcullis")))
        .args(["audit", "verify", "--data-dir"])
        .arg(dir)
        .output()
        .expect("the portcullis binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_passes_on_a_real_log_and_names_the_first_tampered_record() {
    let dir = audited_data_dir(6).await;
    let (ok, text) = verify(dir.path());
    assert!(ok, "{text}");
    assert!(text.contains("6 chained records"), "{text}");
    let seq = seqs(dir.path()).await;
    assert_eq!(seq.len(), 6);

    let edited = copy(dir.path());
    tamper(
        edited.path(),
        &[format!(
            "UPDATE audit SET decision = 'allow', reason = NULL WHERE seq = {}",
            seq[3]
        )],
    )
    .await;
    let (ok, text) = verify(edited.path());
    assert!(!ok);
    assert!(text.contains(&format!("record {} ", seq[3])), "{text}");
    assert!(text.contains("edited"), "{text}");

    let removed = copy(dir.path());
    tamper(
        removed.path(),
        &[format!("DELETE FROM audit WHERE seq = {}", seq[2])],
    )
    .await;
    let (ok, text) = verify(removed.path());
    assert!(!ok);
    assert!(text.contains(&format!("record {} ", seq[3])), "{text}");
    assert!(text.contains("removed"), "{text}");

    // Two records swap places: each row takes the other's content.
    let swapped = copy(dir.path());
    let (a, b) = (seq[1], seq[2]);
    tamper(
        swapped.path(),
        &[
            format!("UPDATE audit SET seq = -1 WHERE seq = {a}"),
            format!("UPDATE audit SET seq = {a} WHERE seq = {b}"),
            format!("UPDATE audit SET seq = {b} WHERE seq = -1"),
        ],
    )
    .await;
    let (ok, text) = verify(swapped.path());
    assert!(!ok);
    assert!(text.contains(&format!("record {a} ")), "{text}");

    // The original is untouched by the checks.
    assert!(verify(dir.path()).0);
    let (ok, text) = verify(Path::new("/nonexistent-portcullis-dir"));
    assert!(!ok && text.contains("does not exist"), "{text}");
}
