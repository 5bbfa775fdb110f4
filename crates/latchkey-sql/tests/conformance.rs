//! The shared store conformance suite, run against the embedded SQLite store.

use latchkey_sql::SqliteStore;

#[tokio::test]
async fn the_sqlite_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("tempdir: {err}"));
    let counter = std::sync::atomic::AtomicUsize::new(0);
    latchkey_testkit::conformance::run_all(|| {
        let path = dir.path().join(format!("store-{}.db", counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
        async move { SqliteStore::open_path(&path).await.unwrap_or_else(|err| panic!("open: {err}")).stores() }
    })
    .await;
}
