//! latchkey's Redis session store: sessions of both kinds in standalone Redis or Redis Cluster,
//! each session one compact value that expires with the session (so Redis never accumulates
//! dead sessions), a per-user index for device lists, and atomic rotation and revocation in
//! single-key Lua scripts.
//!
//! Redis may keep nothing on disk, so it is never the only record that a session was revoked:
//! every revocation is first appended to the durable [`RevocationLog`] (PostgreSQL or SQLite),
//! then marked here, then announced on a pub/sub channel ([`RevocationListener`]). A Redis
//! restart can lose live sessions (their users log in again), never a revocation.
//!
//! Keys, under a configurable prefix `P` (ids as their 16 raw bytes, which halves the key):
//! - `P:s:<sid>`: the session, packed by [`record`], with the app's data for it at the end.
//!   Expires when the session ends, data and all.
//! - `P:t:<counter>`: a failed-attempt counter ([`RedisThrottle`]).
//! - `P:u:<user>`: sorted set of the user's session ids, scored by each session's absolute
//!   end (ms). Expires with the latest absolute end among them; entries whose session ended
//!   are pruned whenever the user logs in again or lists or revokes sessions.
//!
//! Every command names one key, so the store works unchanged on Redis Cluster. The index is
//! written before a session and cleaned after it, so it always holds every live session: a
//! "log out everywhere" never misses one.

mod connection;
mod record;
mod subscription;
mod throttle;
pub mod user_agent;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::try_join_all;
use latchkey_core::accounts::UserId;
use latchkey_core::sessions::{DataWrite, Session, SessionId, SessionKind, StoredData};
use latchkey_core::store::{Revocation, RevocationLog, RevokeScope, Rotation, SessionStore, StoreError, StoreHealth};
use redis::{AsyncCommands, Script};
use time::OffsetDateTime;

use connection::Connection;
pub use connection::RedisTarget;
pub use subscription::{RevocationListener, RevocationMessage};
pub use throttle::RedisThrottle;

/// Lua shared by the scripts: reads and writes the packed session's fixed-offset fields (see
/// [`record`]) and computes its end in milliseconds.
const RECORD_LUA: &str = r"
local function field(v, at) return (struct.unpack('<i8', v, at + 1)) end
local function with_field(v, at, n) return string.sub(v, 1, at) .. struct.pack('<i8', n) .. string.sub(v, at + 9) end
local function has_flag(v, flag) return string.byte(v, 3) % (flag * 2) >= flag end
local function with_flag(v, flag)
  if has_flag(v, flag) then return v end
  return string.sub(v, 1, 2) .. string.char(string.byte(v, 3) + flag) .. string.sub(v, 4)
end
local function without_flag(v, flag)
  if not has_flag(v, flag) then return v end
  return string.sub(v, 1, 2) .. string.char(string.byte(v, 3) - flag) .. string.sub(v, 4)
end
-- The value without its data's trailer (flag 32), and the data's version (0 without data).
local function without_data(v)
  if not has_flag(v, 32) then return v, 0 end
  local n = struct.unpack('<I4', v, #v - 3)
  local version = struct.unpack('<i8', v, #v - 11)
  return without_flag(string.sub(v, 1, #v - 12 - n), 32), version
end
local function ends_at_ms(v) return math.floor(math.min(field(v, 27), field(v, 3) + field(v, 35)) / 1000) end
-- Sets rotated at (flag 1) or revoked at (flag 2), which follow the fixed fields in that
-- order and take room only once set.
local function with_time(v, flag, n)
  local at = 59
  if flag == 2 and has_flag(v, 1) then at = 67 end
  if has_flag(v, flag) then return with_field(v, at, n) end
  return with_flag(string.sub(v, 1, at) .. struct.pack('<i8', n) .. string.sub(v, at + 1), flag)
end
";

/// KEYS: session. ARGV: at. Moves `last_seen` forward on a live session and its end with it.
const TOUCH: &str = r"
local v = redis.call('GET', KEYS[1])
local at = tonumber(ARGV[1])
if not v or has_flag(v, 2) or field(v, 3) >= at then return 0 end
v = with_field(v, 3, at)
redis.call('SET', KEYS[1], v, 'PXAT', ends_at_ms(v))
return 1
";

/// KEYS: session. ARGV: at, expected counter. The refresh rotation's compare-and-swap.
const ROTATE: &str = r"
local v = redis.call('GET', KEYS[1])
local at = tonumber(ARGV[1])
if not v or has_flag(v, 2) or field(v, 11) ~= tonumber(ARGV[2]) then return 0 end
v = with_time(with_field(with_field(v, 11, field(v, 11) + 1), 3, at), 1, at)
redis.call('SET', KEYS[1], v, 'PXAT', ends_at_ms(v))
return 1
";

/// KEYS: session. ARGV: at. Marks an unrevoked session revoked and drops its data (it keeps
/// its expiry, so a retried refresh token still finds it revoked); 1, or 0 when already
/// revoked or gone.
const REVOKE: &str = r"
local v = redis.call('GET', KEYS[1])
if not v or has_flag(v, 2) then return 0 end
redis.call('SET', KEYS[1], with_time((without_data(v)), 2, tonumber(ARGV[1])), 'KEEPTTL')
return 1
";

/// KEYS: session. ARGV: expected data version, the new data. The data's compare-and-swap: on
/// an unrevoked session whose data is at the expected version, replaces the data's trailer
/// (the session keeps its expiry, so the data expires with it); 1, or 0.
const WRITE_DATA: &str = r"
local v = redis.call('GET', KEYS[1])
if not v or has_flag(v, 2) then return 0 end
local record, version = without_data(v)
if version ~= tonumber(ARGV[1]) then return 0 end
local data = ARGV[2]
redis.call('SET', KEYS[1], with_flag(record, 32) .. data .. struct.pack('<i8', version + 1) .. struct.pack('<I4', #data), 'KEEPTTL')
return 1
";

/// KEYS: user index. ARGV: sid, absolute end (ms), prune before (ms). Adds a session, drops
/// the entries of sessions surely ended, and keeps the index alive as long as its longest.
const INDEX: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if redis.call('PEXPIRETIME', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return 1
";

/// Sessions in Redis; revocations appended to a durable log.
#[derive(Clone)]
pub struct RedisSessionStore {
    connection: Connection,
    prefix: Arc<str>,
    log: Arc<dyn RevocationLog>,
    scripts: Arc<Scripts>,
}

struct Scripts {
    touch: Script,
    rotate: Script,
    revoke: Script,
    write_data: Script,
    index: Script,
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

fn millis(at: OffsetDateTime) -> i64 {
    record::micros(at).div_euclid(1_000)
}

impl RedisSessionStore {
    /// Connects to `target`; keys go under `prefix`; revocations are appended to `log` first.
    /// The connection reconnects by itself after an outage.
    pub async fn open(target: &RedisTarget, prefix: &str, log: Arc<dyn RevocationLog>) -> Result<Self, RedisOpenError> {
        let with_record = |body: &str| Script::new(&format!("{RECORD_LUA}\n{body}"));
        Ok(Self {
            connection: Connection::open(target).await?,
            prefix: prefix.into(),
            log,
            scripts: Arc::new(Scripts {
                touch: with_record(TOUCH),
                rotate: with_record(ROTATE),
                revoke: with_record(REVOKE),
                write_data: with_record(WRITE_DATA),
                index: Script::new(INDEX),
            }),
        })
    }

    /// Failed-attempt counters on the same connection, under the same prefix.
    pub fn throttle(&self) -> RedisThrottle {
        RedisThrottle::new(self.connection.clone(), Arc::clone(&self.prefix))
    }

    fn key(&self, kind: &str, id: &[u8; 16]) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.prefix.len() + kind.len() + 18);
        key.extend_from_slice(self.prefix.as_bytes());
        key.push(b':');
        key.extend_from_slice(kind.as_bytes());
        key.push(b':');
        key.extend_from_slice(id);
        key
    }

    fn session_key(&self, id: SessionId) -> Vec<u8> {
        self.key("s", id.as_uuid().as_bytes())
    }

    fn user_key(&self, user: UserId) -> Vec<u8> {
        self.key("u", user.as_uuid().as_bytes())
    }

    /// Runs a per-session script (KEYS: the session).
    async fn run(&self, script: &Script, id: SessionId, args: &[i64]) -> Result<i64, StoreError> {
        let mut invocation = script.key(self.session_key(id));
        for arg in args {
            invocation.arg(*arg);
        }
        invocation.invoke_async(&mut self.connection.clone()).await.map_err(fail)
    }

    /// The sessions among `ids`, read concurrently (one key each, so this works on a cluster,
    /// and a multiplexed connection pipelines them anyway).
    async fn read_many(&self, ids: &[SessionId]) -> Result<Vec<(SessionId, Option<Session>)>, StoreError> {
        let reads = ids.iter().map(|id| async move {
            let value: Option<Vec<u8>> = self.connection.clone().get(self.session_key(*id)).await.map_err(fail)?;
            let session = value.map(|bytes| record::decode(*id, &bytes)).transpose()?;
            Ok::<_, StoreError>((*id, session))
        });
        try_join_all(reads).await
    }

    /// The ids in a user's index.
    async fn indexed(&self, user: UserId) -> Result<Vec<SessionId>, StoreError> {
        let members: Vec<Vec<u8>> = self.connection.clone().zrange(self.user_key(user), 0, -1).await.map_err(fail)?;
        Ok(members.iter().filter_map(|member| record::session_id(member)).collect())
    }

    /// Drops index entries of sessions that are gone, revoked or ended. Best effort: a stale
    /// entry only costs a read until the next clean-up.
    async fn unindex(&self, user: UserId, ids: &[SessionId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let members: Vec<Vec<u8>> = ids.iter().map(|id| id.as_uuid().as_bytes().to_vec()).collect();
        let _: i64 = self.connection.clone().zrem(self.user_key(user), members).await.map_err(fail)?;
        Ok(())
    }

    /// A user's indexed sessions, and drops the entries of those no longer live at `now`.
    async fn indexed_sessions(&self, user: UserId, now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
        let read = self.read_many(&self.indexed(user).await?).await?;
        let (live, dead): (Vec<_>, Vec<_>) = read
            .into_iter()
            .partition(|(_, session)| session.as_ref().is_some_and(|s| s.user_id == user && s.is_live(now)));
        let dead: Vec<SessionId> = dead.into_iter().map(|(id, _)| id).collect();
        self.unindex(user, &dead).await?;
        Ok(live.into_iter().filter_map(|(_, session)| session).collect())
    }
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn insert(&self, session: &Session) -> Result<(), StoreError> {
        // The index first: a live session is never missing from it.
        let _: i64 = self
            .scripts
            .index
            .key(self.user_key(session.user_id))
            .arg(session.id.as_uuid().as_bytes().as_slice())
            .arg(millis(session.absolute_expires_at))
            .arg(millis(session.created_at))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(fail)?;
        let ends = millis(session.expires_at());
        let _: () = redis::cmd("SET")
            .arg(self.session_key(session.id))
            .arg(record::encode(session))
            .arg("PXAT")
            .arg(ends)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn get(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        let value: Option<Vec<u8>> = self.connection.clone().get(self.session_key(id)).await.map_err(fail)?;
        value.map(|bytes| record::decode(id, &bytes)).transpose()
    }

    async fn get_with_data(&self, id: SessionId) -> Result<Option<(Session, StoredData)>, StoreError> {
        let value: Option<Vec<u8>> = self.connection.clone().get(self.session_key(id)).await.map_err(fail)?;
        value.map(|bytes| record::decode_with_data(id, &bytes)).transpose()
    }

    async fn write_data(&self, id: SessionId, expected: u64, json: &str) -> Result<DataWrite, StoreError> {
        let Ok(expected) = i64::try_from(expected) else { return Ok(DataWrite::Lost) };
        let written: i64 = self
            .scripts
            .write_data
            .key(self.session_key(id))
            .arg(expected)
            .arg(record::pack_data(json))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(fail)?;
        Ok(if written == 1 { DataWrite::Written } else { DataWrite::Lost })
    }

    async fn touch(&self, id: SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        self.run(&self.scripts.touch, id, &[record::micros(at)]).await.map(|_| ())
    }

    async fn rotate(&self, id: SessionId, expected: u64, at: OffsetDateTime) -> Result<Rotation, StoreError> {
        let Ok(expected) = i64::try_from(expected) else { return Ok(Rotation::Lost) };
        let rotated = self.run(&self.scripts.rotate, id, &[record::micros(at), expected]).await?;
        Ok(if rotated == 1 { Rotation::Rotated } else { Rotation::Lost })
    }

    async fn revoke(
        &self,
        scope: RevokeScope,
        at: OffsetDateTime,
        until: &(dyn Fn(SessionKind) -> OffsetDateTime + Send + Sync),
    ) -> Result<Vec<Revocation>, StoreError> {
        // A session's end is also the end of the app sessions under it (single sign-on), which
        // are sessions of the same user; the session kept by "all but this one" keeps its apps.
        let under = |session: &Session, sso: SessionId| session.app.as_ref().is_some_and(|app| app.sso_session == sso);
        let one = |id: SessionId, user: Option<UserId>| async move {
            let Some(session) = self.get(id).await? else {
                return Ok::<_, StoreError>(Vec::new());
            };
            if user.is_some_and(|user| user != session.user_id) {
                return Ok(Vec::new());
            }
            let mut live: Vec<Session> = self
                .indexed_sessions(session.user_id, at)
                .await?
                .into_iter()
                .filter(|other| other.id != id && under(other, id))
                .collect();
            if session.is_live(at) {
                live.push(session);
            }
            Ok(live)
        };
        let live: Vec<Session> = match scope {
            RevokeScope::One(id) => one(id, None).await?,
            RevokeScope::OneOf { user, session } => one(session, Some(user)).await?,
            RevokeScope::AllOf(user) => self.indexed_sessions(user, at).await?,
            RevokeScope::UnderSignIn { user, sign_in } => {
                self.indexed_sessions(user, at).await?.into_iter().filter(|s| under(s, sign_in)).collect()
            }
            RevokeScope::AllOfExcept(user, keep) => {
                self.indexed_sessions(user, at).await?.into_iter().filter(|s| s.id != keep && !under(s, keep)).collect()
            }
        };
        if live.is_empty() {
            return Ok(Vec::new());
        }
        let entries: Vec<(SessionId, SessionKind, OffsetDateTime)> =
            live.iter().map(|s| (s.id, s.kind, until(s.kind))).collect();
        // The durable fact first: if Redis fails after this, every instance's denylist still
        // learns of the revocation, and a retry finds the sessions live and marks them.
        let logged = self.log.append(&entries, at).await?;
        // One script call per session, sent together: each names its own key (a cluster may
        // hold them on different nodes), and `invoke` reloads a script Redis lost where a
        // pipelined EVALSHA would not.
        let at_micros = [record::micros(at)];
        try_join_all(live.iter().map(|session| self.run(&self.scripts.revoke, session.id, &at_micros))).await?;
        // Every scope names sessions of one user.
        if let Some(user) = live.first().map(|session| session.user_id) {
            let ids: Vec<SessionId> = live.iter().map(|session| session.id).collect();
            self.unindex(user, &ids).await?;
        }
        subscription::announce(&mut self.connection.clone(), &self.prefix, &logged).await;
        Ok(logged)
    }

    async fn list_live(&self, user: UserId, now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
        let mut live = self.indexed_sessions(user, now).await?;
        live.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(live)
    }

    /// The size of the user's index: every live session is in it, and so are ended ones until
    /// a read or an insert sweeps them.
    async fn count_live_of(&self, user: UserId, _now: OffsetDateTime) -> Result<u64, StoreError> {
        self.connection.clone().zcard(self.user_key(user)).await.map_err(fail)
    }

    /// Not counted: Redis would need an index of every session by its end to count them,
    /// which would cost more memory than the session itself.
    async fn count_live(&self, _now: OffsetDateTime) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    /// Nothing to do: every key expires with what it holds.
    async fn purge(&self, _before: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(0)
    }
}

#[async_trait]
impl StoreHealth for RedisSessionStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING").query_async(&mut self.connection.clone()).await.map_err(fail)?;
        Ok(())
    }

    fn operations(&self) -> Vec<(&'static str, u64)> {
        vec![("redis", self.connection.requests())]
    }
}
