//! The shared store conformance suite against the Redis session store, on a standalone server
//! and on a three-master Redis Cluster (accounts, keys and the durable revocation log on
//! SQLite, as in a deployment they are on SQL); then what only Redis does: keys that expire
//! with their session, and revocations announced over pub/sub.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use latchkey_core::accounts::UserId;
use latchkey_core::secret::SecretToken;
use latchkey_core::sessions::{ClientInfo, Session, SessionId, SessionKind};
use latchkey_core::store::{RevokeScope, SessionStore};
use latchkey_redis::{RedisSessionStore, RedisTarget, RevocationListener};
use latchkey_sql::SqlStore;
use latchkey_testkit::redis::{ScratchPrefix, url};
use latchkey_testkit::redis_cluster::RedisCluster;
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};

async fn sql_in(dir: &TempDir, counter: &AtomicUsize) -> SqlStore {
    let path = dir.path().join(format!("store-{}.db", counter.fetch_add(1, Ordering::Relaxed)));
    SqlStore::open_sqlite_file(&path).await.unwrap_or_else(|err| panic!("open: {err}"))
}

async fn open(target: &RedisTarget, prefix: &str, sql: &SqlStore) -> RedisSessionStore {
    RedisSessionStore::open(target, prefix, Arc::new(sql.clone()))
        .await
        .unwrap_or_else(|err| panic!("Redis is not reachable ({err}); run scripts/services"))
}

#[tokio::test]
async fn the_redis_session_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("tempdir: {err}"));
    let counter = AtomicUsize::new(0);
    // Each check's keys are deleted when the suite ends (its sessions expire years from now).
    let prefixes = Mutex::new(Vec::new());
    latchkey_testkit::conformance::run_all(|| async {
        let prefix = ScratchPrefix::new();
        let sql = sql_in(&dir, &counter).await;
        let redis = open(&RedisTarget::Standalone(url()), prefix.prefix(), &sql).await;
        prefixes.lock().unwrap_or_else(|p| p.into_inner()).push(prefix);
        let mut stores = sql.stores();
        stores.throttle = Arc::new(redis.throttle());
        stores.sessions = Arc::new(redis);
        stores
    })
    .await;
}

#[tokio::test]
async fn the_redis_session_store_passes_the_conformance_suite_on_a_cluster() {
    let cluster = RedisCluster::start();
    let target = RedisTarget::Cluster(cluster.node_urls());
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("tempdir: {err}"));
    let counter = AtomicUsize::new(0);
    latchkey_testkit::conformance::run_all(|| async {
        let sql = sql_in(&dir, &counter).await;
        let redis = open(&target, &format!("check{}", counter.load(Ordering::Relaxed)), &sql).await;
        let mut stores = sql.stores();
        stores.throttle = Arc::new(redis.throttle());
        stores.sessions = Arc::new(redis);
        stores
    })
    .await;
    let spread = cluster.keys_per_node();
    assert!(spread.iter().filter(|&&keys| keys > 0).count() >= 2, "keys did not spread over the masters: {spread:?}");
}

fn session(user: UserId, kind: SessionKind, now: OffsetDateTime, lifetime: Duration) -> Session {
    let secret_digest = (kind == SessionKind::Cookie).then(|| SecretToken::generate().digest());
    Session {
        id: secret_digest.as_ref().map_or_else(SessionId::generate, SessionId::for_cookie),
        user_id: user,
        kind,
        secret_digest,
        refresh_counter: 0,
        rotated_at: None,
        created_at: now,
        last_seen_at: now,
        absolute_expires_at: now + lifetime,
        idle_timeout: Duration::hours(1),
        client: ClientInfo::new(Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/132.0"), Some("192.0.2.7".into())),
        revoked_at: None,
        app: None,
    }
}

async fn keys_under(prefix: &str) -> Vec<Vec<u8>> {
    let mut connection = redis::Client::open(url())
        .and_then(|client| client.get_connection())
        .unwrap_or_else(|err| panic!("Redis: {err}"));
    redis::cmd("KEYS").arg(format!("{prefix}:*")).query(&mut connection).unwrap_or_else(|err| panic!("KEYS: {err}"))
}

#[tokio::test]
async fn every_key_expires_with_the_sessions_it_holds() {
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("tempdir: {err}"));
    let sql = sql_in(&dir, &AtomicUsize::new(0)).await;
    let prefix = ScratchPrefix::new();
    let store = open(&RedisTarget::Standalone(url()), prefix.prefix(), &sql).await;
    let user = UserId::generate();
    let now = OffsetDateTime::now_utc();
    let short = session(user, SessionKind::Cookie, now, Duration::milliseconds(600));
    let longer = session(user, SessionKind::Token, now, Duration::milliseconds(1_200));
    for s in [&short, &longer] {
        store.insert(s).await.unwrap_or_else(|err| panic!("insert: {err}"));
    }
    assert_eq!(keys_under(prefix.prefix()).await.len(), 3, "two sessions and the user's index");
    tokio::time::sleep(StdDuration::from_millis(900)).await;
    assert!(store.get(short.id).await.unwrap_or_else(|err| panic!("get: {err}")).is_none(), "ended session kept");
    assert!(store.get(longer.id).await.unwrap_or_else(|err| panic!("get: {err}")).is_some(), "live session lost");
    tokio::time::sleep(StdDuration::from_millis(700)).await;
    assert_eq!(keys_under(prefix.prefix()).await, Vec::<Vec<u8>>::new(), "dead data left in Redis");
}

#[tokio::test]
async fn revocations_are_announced_over_pub_sub() {
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("tempdir: {err}"));
    let sql = sql_in(&dir, &AtomicUsize::new(0)).await;
    let prefix = ScratchPrefix::new();
    let store = open(&RedisTarget::Standalone(url()), prefix.prefix(), &sql).await;
    let mut listener =
        RevocationListener::connect(&url(), prefix.prefix()).await.unwrap_or_else(|err| panic!("subscribe: {err}"));
    let user = UserId::generate();
    let now = OffsetDateTime::now_utc();
    let sessions = [
        session(user, SessionKind::Cookie, now, Duration::hours(1)),
        session(user, SessionKind::Token, now, Duration::hours(1)),
    ];
    for s in &sessions {
        store.insert(s).await.unwrap_or_else(|err| panic!("insert: {err}"));
    }
    let until = |_: SessionKind| now + Duration::minutes(5);
    let revoked = store.revoke(RevokeScope::AllOf(user), now, &until).await.unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(revoked.len(), 2);
    let announced = tokio::time::timeout(StdDuration::from_secs(5), listener.next())
        .await
        .unwrap_or_else(|_| panic!("no announcement within 5 s"))
        .unwrap_or_else(|| panic!("subscription dropped"));
    let mut ids: Vec<SessionId> = announced.iter().map(|message| message.session_id).collect();
    let mut expected: Vec<SessionId> = sessions.iter().map(|s| s.id).collect();
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected);
    assert!(
        announced.iter().all(|message| (message.until - until(SessionKind::Token)).abs() < Duration::microseconds(1))
    );
    assert!(store.list_live(user, now).await.unwrap_or_else(|err| panic!("{err}")).is_empty());
}
