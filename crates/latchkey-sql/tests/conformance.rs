//! The shared store conformance suite, run against both SQL backends.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use latchkey_sql::SqlStore;
use latchkey_testkit::postgres::ScratchDatabase;

#[tokio::test]
async fn the_sqlite_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("tempdir: {err}"));
    let counter = AtomicUsize::new(0);
    latchkey_testkit::conformance::run_all(|| {
        let path = dir.path().join(format!("store-{}.db", counter.fetch_add(1, Ordering::Relaxed)));
        async move { SqlStore::open_sqlite_file(&path).await.unwrap_or_else(|err| panic!("open: {err}")).stores() }
    })
    .await;
}

#[tokio::test]
async fn the_postgres_store_passes_the_conformance_suite() {
    // Each check gets its own database; they are dropped when the suite ends.
    let databases = Mutex::new(Vec::new());
    latchkey_testkit::conformance::run_all(|| async {
        let database = ScratchDatabase::create().await;
        let store = SqlStore::open(database.url()).await.unwrap_or_else(|err| panic!("open: {err}"));
        databases.lock().unwrap_or_else(|p| p.into_inner()).push(database);
        store.stores()
    })
    .await;
}
