//! Measures Redis memory per session: loads N sessions through the real store (half cookie,
//! half token, two per user, each with a typical browser user agent and an IPv4 address) into
//! Redis database 15, and compares `INFO memory`'s `used_memory` before and after. Then writes
//! session data of DATA_BYTES (compact JSON) to each through the store and reports what the data
//! costs per session beyond its own size (API.md, "Session data"; goal: at most 100 bytes). The
//! database is flushed before and after, so point it at a Redis where db 15 is free.
//!
//! `cargo run --release -p latchkey-redis --example memory_per_session -- 1000000 [DATA_BYTES, default 1024]`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use latchkey_core::accounts::UserId;
use latchkey_core::secret::SecretToken;
use latchkey_core::sessions::{ClientInfo, DataWrite, Session, SessionId, SessionKind};
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
    let data_bytes: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(1024);
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
            let mut ids = Vec::new();
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
                    app: None,
                };
                store.insert(&session).await.unwrap();
                ids.push(session.id);
            }
            ids
        }));
    }
    let mut ids = Vec::with_capacity(count);
    for task in tasks {
        ids.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    let after = used_memory(&mut admin).await;
    let keys: u64 = redis::cmd("DBSIZE").query_async(&mut admin).await.unwrap();

    // The same sessions with data of `data_bytes` each, written through the store: a cart (JSON
    // of items, as apps keep), then text that never repeats, from the likely to the worst case
    // found for zstd (a mix of characters of every UTF-8 length).
    let mut costs = Vec::new();
    let shapes = [
        ("a cart", cart_of(data_bytes)),
        ("random base64url", noise_of(data_bytes)),
        ("random characters of every script", random_text_of(data_bytes, Alphabet::AnyScript)),
        ("random characters of every UTF-8 length", random_text_of(data_bytes, Alphabet::EveryLength)),
    ];
    for (version, (shape, data)) in shapes.into_iter().enumerate() {
        assert_eq!(data.len(), data_bytes, "{shape} of the asked size");
        let data = Arc::new(data);
        let chunk = count.div_ceil(workers).max(1);
        let writes: Vec<_> = ids
            .chunks(chunk)
            .map(|chunk| {
                let (store, data, chunk) = (Arc::clone(&store), Arc::clone(&data), chunk.to_vec());
                tokio::spawn(async move {
                    for id in chunk {
                        assert_eq!(store.write_data(id, version as u64, &data).await.unwrap(), DataWrite::Written);
                    }
                })
            })
            .collect();
        for write in writes {
            write.await.unwrap();
        }
        let now_used = used_memory(&mut admin).await;
        costs.push((shape, data.len(), now_used));
    }
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
    for (shape, size, used) in costs {
        let cost = (used as f64 - after as f64) / count as f64;
        println!(
            "with {size} bytes of session data each ({shape}): used_memory -> {used} bytes, {cost:.0} bytes more per \
             session than without data: the data's size {} {:.0} bytes (goal: plus at most 100)",
            if cost >= size as f64 { "plus" } else { "minus" },
            (cost - size as f64).abs(),
        );
    }
}

/// A cart as compact JSON of exactly `size` bytes (at least a few dozen): items with a SKU, a
/// name, a quantity and a price, picked pseudo-randomly, and a note that pads to the size.
fn cart_of(size: usize) -> String {
    const NAMES: [&str; 8] = [
        "Organic apples",
        "Pears, 1 kg",
        "Dried figs",
        "Oat milk",
        "Dark chocolate",
        "Coffee beans",
        "Sourdough",
        "Honey",
    ];
    let mut seed = 0x2545_f491_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut items = Vec::new();
    loop {
        let n = next();
        let item = format!(
            r#"{{"sku":"A-{:05}","name":"{}","qty":{},"price":{}.{:02}}}"#,
            n % 100_000,
            NAMES[(n >> 20) as usize % NAMES.len()],
            1 + (n >> 30) % 5,
            1 + (n >> 35) % 40,
            (n >> 42) % 100
        );
        let candidate = format!(r#"{{"cart":[{}],"note":""}}"#, [items.clone(), vec![item.clone()]].concat().join(","));
        if candidate.len() > size {
            break;
        }
        items.push(item);
    }
    let bare = format!(r#"{{"cart":[{}],"note":""}}"#, items.join(","));
    format!(r#"{{"cart":[{}],"note":"{}"}}"#, items.join(","), "-".repeat(size.saturating_sub(bare.len())))
}

/// Compact JSON of exactly `size` bytes whose text never repeats: one member of random
/// base64url characters (ids, tokens, digests).
fn noise_of(size: usize) -> String {
    let mut random = vec![0u8; size];
    latchkey_core::secret::fill_random(&mut random);
    let text: String =
        latchkey_core::secret::b64url(&random).chars().take(size.saturating_sub(r#"{"k":""}"#.len())).collect();
    format!(r#"{{"k":"{text}"}}"#)
}

/// Which characters [`random_text_of`] draws.
#[derive(Clone, Copy)]
enum Alphabet {
    /// Any character of the Basic Multilingual Plane past ASCII: prose in any script.
    AnyScript,
    /// Half printable ASCII, the rest of two, three and four UTF-8 bytes: the mix that leaves
    /// zstd the least to gain of those tried.
    EveryLength,
}

/// Compact JSON of exactly `size` bytes: one member of random characters from `alphabet`,
/// padded with spaces to the byte.
fn random_text_of(size: usize, alphabet: Alphabet) -> String {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |below: u32| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % u64::from(below)) as u32
    };
    let mut text = String::new();
    let room = size.saturating_sub(r#"{"k":""}"#.len());
    loop {
        let code_point = match (alphabet, next(100)) {
            (Alphabet::EveryLength, 0..50) => 0x20 + next(0x5f),
            (Alphabet::EveryLength, 50..70) => 0x80 + next(0x780),
            (Alphabet::EveryLength, 85..100) => 0x1_0000 + next(0x10_0000),
            _ => 0x80 + next(0xff80),
        };
        // Surrogates are not characters, and a quote or backslash would need escaping.
        let Some(character) = char::from_u32(code_point).filter(|c| !matches!(c, '"' | '\\')) else { continue };
        if text.len() + character.len_utf8() > room {
            break;
        }
        text.push(character);
    }
    let padding = " ".repeat(room - text.len());
    format!(r#"{{"k":"{text}{padding}"}}"#)
}
