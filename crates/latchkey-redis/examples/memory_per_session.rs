//! Measures Redis memory per session: loads N sessions through the real store (half cookie,
//! half token, two per user, each with a typical browser user agent and an IPv4 address) into
//! Redis database 15, and compares `INFO memory`'s `used_memory` before and after. The
//! database is flushed before and after, so point it at a Redis where db 15 is free.
//!
//! `cargo run --release -p latchkey-redis --example memory_per_session -- 1000000`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use latchkey_core::accounts::UserId;
use latchkey_core::secret::SecretToken;
use latchkey_core::sessions::{ClientInfo, Session, SessionId, SessionKind};
use latchkey_core::store::SessionStore;
use latchkey_redis::RedisSessionStore;
use latchkey_sql::SqlStore;
use time::{Duration, OffsetDateTime};

const USER_AGENT: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";

async fn used_memory(connection: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO").arg("memory").query_async(connection).await.unwrap();
    info.lines().find_map(|line| line.strip_prefix("used_memory:")).and_then(|v| v.trim().parse().ok()).unwrap()
}

#[tokio::main]
async fn main() {
    let count: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let url = std::env::var("LATCHKEY_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/15".into());
    let mut admin = redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("FLUSHDB").query_async(&mut admin).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = SqlStore::open_sqlite_file(&dir.path().join("log.db")).await.unwrap();
    let store = Arc::new(
        RedisSessionStore::open(&latchkey_redis::RedisTarget::Standalone(url.clone()), "latchkey", Arc::new(log))
            .await
            .unwrap(),
    );

    let before = used_memory(&mut admin).await;
    let started = Instant::now();
    let now = OffsetDateTime::now_utc();
    let workers = 32;
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut user = UserId::generate();
            for i in (worker..count).step_by(workers) {
                if i % 2 == 0 {
                    user = UserId::generate();
                }
                let kind = if i % 2 == 0 { SessionKind::Cookie } else { SessionKind::Token };
                let session = Session {
                    id: SessionId::generate(),
                    user_id: user,
                    kind,
                    secret_digest: (kind == SessionKind::Cookie).then(|| SecretToken::generate().digest()),
                    refresh_counter: 0,
                    rotated_at: None,
                    created_at: now,
                    last_seen_at: now,
                    absolute_expires_at: now + Duration::days(7),
                    idle_timeout: Duration::hours(12),
                    client: ClientInfo::new(Some(USER_AGENT), Some(format!("203.0.{}.{}", (i / 256) % 256, i % 256))),
                    revoked_at: None,
                };
                store.insert(&session).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    let after = used_memory(&mut admin).await;
    let keys: u64 = redis::cmd("DBSIZE").query_async(&mut admin).await.unwrap();
    let _: () = redis::cmd("FLUSHDB").query_async(&mut admin).await.unwrap();
    println!(
        "{count} sessions ({keys} keys) in {:.1} s: used_memory {} -> {} bytes, {:.0} bytes per session including indexes \
         (its user agent of {} bytes packed to {})",
        elapsed.as_secs_f64(),
        before,
        after,
        (after - before) as f64 / count as f64,
        USER_AGENT.len(),
        latchkey_redis::user_agent::pack(USER_AGENT).len(),
    );
}
