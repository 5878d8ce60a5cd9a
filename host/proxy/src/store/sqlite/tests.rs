//! Durability settings and what start-up does to databases written by older versions.

use super::*;

#[tokio::test]
async fn every_connection_syncs_fully() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("p.db")).await.unwrap();
    // Hold several connections at once so that more than one is checked.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut conn = store.pool.acquire().await.unwrap();
        let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(
            level, 2,
            "synchronous=FULL (2), so a committed write survives power loss"
        );
        held.push(conn);
    }
}
