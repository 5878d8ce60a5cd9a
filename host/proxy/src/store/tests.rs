//! The store's contract, one suite run against both back ends: every test is an `async fn`
//! taking an `Arc<dyn Store>`, and [`on_both_backends!`] stamps it out once on a fresh
//! SQLite file and once on a fresh PostgreSQL database (the test binary's cluster, see
//! `portcullis_test_upstreams::postgres`, which fails the test when PostgreSQL cannot start).

mod oauth;
mod plugins;
pub(super) mod records;

use std::sync::Arc;

use super::{PgStore, SqliteStore, Store};

/// A store and what keeps it alive.
pub struct Backend {
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("p.db")).await.unwrap();
        Self {
            store: Arc::new(store),
            _dir: Some(dir),
        }
    }

    pub async fn postgres() -> Self {
        let url = portcullis_test_upstreams::postgres::fresh_database();
        Self {
            store: Arc::new(PgStore::open(&url).await.unwrap()),
            _dir: None,
        }
    }
}

/// `on_both_backends!(a, b)` in a module whose `async fn a(store: Arc<dyn Store>)` and
/// `b` are the tests: adds `sqlite::a`, `postgres::a`, `sqlite::b` and `postgres::b`.
macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let backend = $crate::store::tests::Backend::sqlite().await;
                    super::$test(backend.store.clone()).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let backend = $crate::store::tests::Backend::postgres().await;
                    super::$test(backend.store.clone()).await;
                    backend.store.close().await;
                }
            )+
        }
    };
}
use on_both_backends;
