//! The shared store conformance suite against the Redis session store (accounts, keys and the
//! durable revocation log on SQLite, as in a deployment they are on SQL).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use latchkey_redis::RedisSessionStore;
use latchkey_sql::SqlStore;
use latchkey_testkit::redis::{ScratchPrefix, url};

#[tokio::test]
async fn the_redis_session_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("tempdir: {err}"));
    let counter = AtomicUsize::new(0);
    // Each check's keys are deleted when the suite ends (its sessions expire years from now).
    let prefixes = Mutex::new(Vec::new());
    latchkey_testkit::conformance::run_all(|| async {
        let path = dir.path().join(format!("store-{}.db", counter.fetch_add(1, Ordering::Relaxed)));
        let prefix = ScratchPrefix::new();
        let sql = SqlStore::open_sqlite_file(&path).await.unwrap_or_else(|err| panic!("open: {err}"));
        let redis = RedisSessionStore::open(&url(), prefix.prefix(), Arc::new(sql.clone()))
            .await
            .unwrap_or_else(|err| panic!("Redis is not reachable ({err}); run scripts/services"));
        prefixes.lock().unwrap_or_else(|p| p.into_inner()).push(prefix);
        let mut stores = sql.stores();
        stores.sessions = Arc::new(redis);
        stores
    })
    .await;
}
