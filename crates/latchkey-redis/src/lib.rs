//! latchkey's Redis session store: sessions of both kinds in Redis, each key expiring with the
//! session it holds (so Redis never accumulates dead sessions), a per-user index for device
//! lists, and atomic rotation and revocation in Lua scripts.
//!
//! Redis may keep nothing on disk, so it is never the only record that a session was revoked:
//! every revocation is first appended to the durable [`RevocationLog`] (PostgreSQL or SQLite),
//! then marked here. A Redis restart can lose live sessions (their users log in again), never a
//! revocation.
//!
//! Keys, under a configurable prefix `P`:
//! - `P:s:<sid>`: hash, the session (`u` user, `k` kind, `d` cookie digest, `n` rotation
//!   counter, `r` rotated at, `c` created, `l` last seen, `a` absolute expiry, `i` idle timeout,
//!   `ua`, `ip`, `x` revoked at; times in microseconds). Expires when the session ends.
//! - `P:d:<digest>`: the session id of a cookie secret's digest. Expires with the session.
//! - `P:u:<user>`: sorted set of the user's sessions by creation. Expires with the last one.
//! - `P:expiry`: sorted set of unrevoked sessions by expiry, for counting and purging.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use latchkey_core::account::UserId;
use latchkey_core::secret::TokenDigest;
use latchkey_core::session::{ClientInfo, Session, SessionId, SessionKind};
use latchkey_core::store::{Revocation, RevocationLog, RevokeScope, Rotation, SessionStore, StoreError, StoreHealth};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Lua shared by the scripts that move a session's expiry: recomputes it from the stored
/// idle and absolute limits and extends every key that must live as long.
const EXTEND: &str = r"
local function extend(session, at, prefix, sid)
  local idle = tonumber(redis.call('HGET', session, 'i'))
  local absolute = tonumber(redis.call('HGET', session, 'a'))
  local expiry = math.min(absolute, at + idle)
  local ms = math.floor(expiry / 1000)
  redis.call('PEXPIREAT', session, ms)
  local digest = redis.call('HGET', session, 'd')
  if digest then redis.call('PEXPIREAT', prefix .. ':d:' .. digest, ms) end
  local user = prefix .. ':u:' .. redis.call('HGET', session, 'u')
  if redis.call('PEXPIRETIME', user) < ms then redis.call('PEXPIREAT', user, ms) end
  redis.call('ZADD', prefix .. ':expiry', expiry, sid)
end
";

/// KEYS: session. ARGV: prefix, sid, created, then field/value pairs.
const INSERT: &str = r"
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('ZADD', ARGV[1] .. ':u:' .. redis.call('HGET', KEYS[1], 'u'), ARGV[3], ARGV[2])
local digest = redis.call('HGET', KEYS[1], 'd')
if digest then redis.call('SET', ARGV[1] .. ':d:' .. digest, ARGV[2]) end
extend(KEYS[1], tonumber(redis.call('HGET', KEYS[1], 'l')), ARGV[1], ARGV[2])
return 1
";

/// KEYS: session. ARGV: prefix, sid, at.
const TOUCH: &str = r"
local last = tonumber(redis.call('HGET', KEYS[1], 'l'))
if not last or last >= tonumber(ARGV[3]) or redis.call('HEXISTS', KEYS[1], 'x') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'l', ARGV[3])
extend(KEYS[1], tonumber(ARGV[3]), ARGV[1], ARGV[2])
return 1
";

/// KEYS: session. ARGV: prefix, sid, at, expected counter.
const ROTATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'x') == 1 then return 0 end
if redis.call('HGET', KEYS[1], 'n') ~= ARGV[4] then return 0 end
redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 'r', ARGV[3], 'l', ARGV[3])
extend(KEYS[1], tonumber(ARGV[3]), ARGV[1], ARGV[2])
return 1
";

/// KEYS: session. ARGV: prefix, sid, at. Marks a live session revoked and drops it from the
/// indexes; returns 1, or 0 when it was not live.
const REVOKE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'x') == 1 then return 0 end
local f = redis.call('HMGET', KEYS[1], 'u', 'd')
redis.call('HSET', KEYS[1], 'x', ARGV[3])
if f[2] then redis.call('DEL', ARGV[1] .. ':d:' .. f[2]) end
redis.call('ZREM', ARGV[1] .. ':u:' .. f[1], ARGV[2])
redis.call('ZREM', ARGV[1] .. ':expiry', ARGV[2])
return 1
";

/// KEYS: none. ARGV: prefix, before. Deletes unrevoked sessions that ended before `before`.
const PURGE: &str = r"
local ended = redis.call('ZRANGEBYSCORE', ARGV[1] .. ':expiry', '-inf', '(' .. ARGV[2])
for _, sid in ipairs(ended) do
  local session = ARGV[1] .. ':s:' .. sid
  local f = redis.call('HMGET', session, 'u', 'd')
  if f[1] then redis.call('ZREM', ARGV[1] .. ':u:' .. f[1], sid) end
  if f[2] then redis.call('DEL', ARGV[1] .. ':d:' .. f[2]) end
  redis.call('DEL', session)
  redis.call('ZREM', ARGV[1] .. ':expiry', sid)
end
return #ended
";

/// Sessions in Redis; revocations appended to a durable log.
#[derive(Clone)]
pub struct RedisSessionStore {
    connection: ConnectionManager,
    prefix: Arc<str>,
    log: Arc<dyn RevocationLog>,
    scripts: Arc<Scripts>,
}

struct Scripts {
    insert: Script,
    touch: Script,
    rotate: Script,
    revoke: Script,
    purge: Script,
}

impl fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSessionStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// Why the Redis store could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to Redis: {0}")]
pub struct RedisOpenError(#[from] redis::RedisError);

fn fail(err: redis::RedisError) -> StoreError {
    StoreError::unavailable(err)
}

fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("Redis session field {what}"))
}

impl RedisSessionStore {
    /// Connects to `url` (`redis://host:port/db`); keys go under `prefix`; revocations are
    /// appended to `log` first. The connection reconnects by itself after an outage.
    pub async fn open(url: &str, prefix: &str, log: Arc<dyn RevocationLog>) -> Result<Self, RedisOpenError> {
        let client = redis::Client::open(url)?;
        // Fail closed promptly: while Redis is unreachable a request waits at most about a
        // second, then answers 503; the manager keeps reconnecting in the background.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(std::time::Duration::from_millis(500))
            .set_response_timeout(std::time::Duration::from_secs(1))
            .set_number_of_retries(1)
            .set_max_delay(500);
        let connection = ConnectionManager::new_with_config(client, config).await?;
        let with_extend = |body: &str| Script::new(&format!("{EXTEND}\n{body}"));
        Ok(Self {
            connection,
            prefix: prefix.into(),
            log,
            scripts: Arc::new(Scripts {
                insert: with_extend(INSERT),
                touch: with_extend(TOUCH),
                rotate: with_extend(ROTATE),
                revoke: Script::new(REVOKE),
                purge: Script::new(PURGE),
            }),
        })
    }

    fn session_key(&self, id: SessionId) -> String {
        format!("{}:s:{id}", self.prefix)
    }

    fn digest_key(&self, digest: &TokenDigest) -> String {
        format!("{}:d:{}", self.prefix, hex(digest.as_bytes()))
    }

    fn user_key(&self, user: UserId) -> String {
        format!("{}:u:{user}", self.prefix)
    }

    /// Runs one of the per-session scripts (ARGV: prefix, sid, at, then `extra`).
    async fn run(
        &self,
        script: &Script,
        id: SessionId,
        at: OffsetDateTime,
        extra: Option<String>,
    ) -> Result<i64, StoreError> {
        let mut invocation = script.key(self.session_key(id));
        invocation.arg(&*self.prefix).arg(id.to_string()).arg(micros(at));
        if let Some(extra) = extra {
            invocation.arg(extra);
        }
        invocation.invoke_async(&mut self.connection.clone()).await.map_err(fail)
    }

    /// The live sessions among `ids`, read in one round trip.
    async fn read_many(&self, ids: &[SessionId]) -> Result<Vec<(SessionId, Option<Session>)>, StoreError> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hgetall(self.session_key(*id));
        }
        let maps: Vec<HashMap<String, String>> = pipe.query_async(&mut self.connection.clone()).await.map_err(fail)?;
        ids.iter().zip(maps).map(|(id, map)| Ok((*id, decode(*id, &map)?))).collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok())).collect()
}

/// A session from its hash; `None` for an empty (missing) hash.
fn decode(id: SessionId, map: &HashMap<String, String>) -> Result<Option<Session>, StoreError> {
    if map.is_empty() {
        return Ok(None);
    }
    let int = |field: &str| -> Result<i64, StoreError> {
        map.get(field).and_then(|value| value.parse().ok()).ok_or_else(|| corrupt(field))
    };
    let time = |field: &str| -> Result<OffsetDateTime, StoreError> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(int(field)?) * 1_000).map_err(|_| corrupt(field))
    };
    let optional_time = |field: &str| -> Result<Option<OffsetDateTime>, StoreError> {
        if map.contains_key(field) { time(field).map(Some) } else { Ok(None) }
    };
    let user = map.get("u").and_then(|u| Uuid::try_parse(u).ok()).ok_or_else(|| corrupt("u"))?;
    let kind = map.get("k").and_then(|k| SessionKind::parse(k)).ok_or_else(|| corrupt("k"))?;
    let secret_digest = match map.get("d") {
        Some(text) => Some(unhex(text).as_deref().and_then(TokenDigest::from_slice).ok_or_else(|| corrupt("d"))?),
        None => None,
    };
    Ok(Some(Session {
        id,
        user_id: UserId::from_uuid(user),
        kind,
        secret_digest,
        refresh_counter: u64::try_from(int("n")?).map_err(|_| corrupt("n"))?,
        rotated_at: optional_time("r")?,
        created_at: time("c")?,
        last_seen_at: time("l")?,
        absolute_expires_at: time("a")?,
        idle_timeout: Duration::microseconds(int("i")?),
        client: ClientInfo { user_agent: map.get("ua").cloned(), ip: map.get("ip").cloned() },
        revoked_at: optional_time("x")?,
    }))
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn insert(&self, session: &Session) -> Result<(), StoreError> {
        let mut invocation = self.scripts.insert.prepare_invoke();
        invocation
            .key(self.session_key(session.id))
            .arg(&*self.prefix)
            .arg(session.id.to_string())
            .arg(micros(session.created_at));
        let mut field = |name: &str, value: String| {
            invocation.arg(name).arg(value);
        };
        field("u", session.user_id.to_string());
        field("k", session.kind.as_str().to_owned());
        if let Some(digest) = &session.secret_digest {
            field("d", hex(digest.as_bytes()));
        }
        field("n", session.refresh_counter.to_string());
        if let Some(at) = session.rotated_at {
            field("r", micros(at).to_string());
        }
        field("c", micros(session.created_at).to_string());
        field("l", micros(session.last_seen_at).to_string());
        field("a", micros(session.absolute_expires_at).to_string());
        field("i", session.idle_timeout.whole_microseconds().to_string());
        if let Some(user_agent) = &session.client.user_agent {
            field("ua", user_agent.clone());
        }
        if let Some(ip) = &session.client.ip {
            field("ip", ip.clone());
        }
        if let Some(at) = session.revoked_at {
            field("x", micros(at).to_string());
        }
        let _: i64 = invocation.invoke_async(&mut self.connection.clone()).await.map_err(fail)?;
        Ok(())
    }

    async fn get(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        let map: HashMap<String, String> = self.connection.clone().hgetall(self.session_key(id)).await.map_err(fail)?;
        decode(id, &map)
    }

    async fn by_secret(&self, digest: &TokenDigest) -> Result<Option<Session>, StoreError> {
        let sid: Option<String> = self.connection.clone().get(self.digest_key(digest)).await.map_err(fail)?;
        let Some(id) = sid.as_deref().and_then(SessionId::parse) else { return Ok(None) };
        Ok(self.get(id).await?.filter(|session| session.secret_digest.is_some_and(|stored| stored.matches(digest))))
    }

    async fn touch(&self, id: SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        self.run(&self.scripts.touch, id, at, None).await.map(|_| ())
    }

    async fn rotate(&self, id: SessionId, expected: u64, at: OffsetDateTime) -> Result<Rotation, StoreError> {
        let rotated = self.run(&self.scripts.rotate, id, at, Some(expected.to_string())).await?;
        Ok(if rotated == 1 { Rotation::Rotated } else { Rotation::Lost })
    }

    async fn revoke(
        &self,
        scope: RevokeScope,
        at: OffsetDateTime,
        until: &(dyn Fn(SessionKind) -> OffsetDateTime + Send + Sync),
    ) -> Result<Vec<Revocation>, StoreError> {
        let (candidates, owner, keep) = match scope {
            RevokeScope::One(id) => (vec![id], None, None),
            RevokeScope::OneOf { user, session } => (vec![session], Some(user), None),
            RevokeScope::AllOf(user) | RevokeScope::AllOfExcept(user, _) => {
                let members: Vec<String> =
                    self.connection.clone().zrange(self.user_key(user), 0, -1).await.map_err(fail)?;
                let keep = match scope {
                    RevokeScope::AllOfExcept(_, keep) => Some(keep),
                    _ => None,
                };
                (members.iter().filter_map(|id| SessionId::parse(id)).collect(), Some(user), keep)
            }
        };
        let live: Vec<(SessionId, SessionKind, OffsetDateTime)> = self
            .read_many(&candidates)
            .await?
            .into_iter()
            .filter_map(|(id, session)| session.map(|session| (id, session)))
            .filter(|(id, session)| {
                session.is_live(at) && owner.is_none_or(|user| session.user_id == user) && Some(*id) != keep
            })
            .map(|(id, session)| (id, session.kind, until(session.kind)))
            .collect();
        if live.is_empty() {
            return Ok(Vec::new());
        }
        // The durable fact first: if Redis fails after this, every instance's denylist still
        // learns of the revocation, and a retry finds the sessions live and marks them.
        let entries = self.log.append(&live, at).await?;
        // One script call per session (invoke loads the script if Redis lost it; a pipelined
        // EVALSHA would not). Revocations touch few sessions.
        for (id, _, _) in &live {
            self.run(&self.scripts.revoke, *id, at, None).await?;
        }
        Ok(entries)
    }

    async fn list_live(&self, user: UserId, now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
        let members: Vec<String> = self.connection.clone().zrange(self.user_key(user), 0, -1).await.map_err(fail)?;
        let ids: Vec<SessionId> = members.iter().filter_map(|id| SessionId::parse(id)).collect();
        let mut live: Vec<Session> = self
            .read_many(&ids)
            .await?
            .into_iter()
            .filter_map(|(_, session)| session)
            .filter(|session| session.user_id == user && session.is_live(now))
            .collect();
        live.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(live)
    }

    async fn revocations_after(&self, cursor: i64, now: OffsetDateTime) -> Result<Vec<Revocation>, StoreError> {
        self.log.after(cursor, now).await
    }

    async fn latest_cursor(&self) -> Result<i64, StoreError> {
        self.log.latest().await
    }

    async fn count_live(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let key = format!("{}:expiry", self.prefix);
        let count: u64 =
            self.connection.clone().zcount(key, format!("({}", micros(now)), "+inf").await.map_err(fail)?;
        Ok(count)
    }

    async fn purge(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let purged: u64 = self
            .scripts
            .purge
            .arg(&*self.prefix)
            .arg(micros(before))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(fail)?;
        Ok(purged)
    }
}

#[async_trait]
impl StoreHealth for RedisSessionStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING").query_async(&mut self.connection.clone()).await.map_err(fail)?;
        Ok(())
    }
}
