//! Failed-attempt counters in Redis, shared by every instance, so an attacker cannot spread
//! guesses over instances to multiply the allowance.
//!
//! Key `P:t:<throttle key>` holds `<count>:<latest failure, µs>` and expires `forget_after`
//! the latest failure, so counters of made-up usernames vanish by themselves. Key
//! `P:f:<throttle key>` counts the attempts whose passwords are being checked, and lapses if
//! an instance dies before ending its own. One key per
//! command: the same code runs on Redis Cluster.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use latchkey_core::store::{StoreError, ThrottleStore};
use latchkey_core::throttle::{Failures, ThrottleKey};
use redis::{AsyncCommands, Script};
use time::{Duration, OffsetDateTime};

use crate::connection::Connection;
use crate::{fail, record};

/// KEYS: counter. ARGV: at (µs), forget after (ms). Counts one failure; returns the count.
const RECORD_FAILURE: &str = r"
local v = redis.call('GET', KEYS[1])
local count = 0
if v then count = tonumber(string.match(v, '^(%d+):')) or 0 end
count = count + 1
redis.call('SET', KEYS[1], count .. ':' .. ARGV[1], 'PX', ARGV[2])
return count
";

/// KEYS: in-flight mark. ARGV: lapse (ms). One more attempt in flight; returns how many.
const BEGIN_ATTEMPT: &str = r"
local count = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return count
";

/// KEYS: in-flight mark. One attempt fewer in flight; the key goes at zero.
const END_ATTEMPT: &str = r"
local count = redis.call('DECR', KEYS[1])
if count <= 0 then redis.call('DEL', KEYS[1]) end
return 0
";

/// Counters of failed password attempts in Redis.
#[derive(Clone)]
pub struct RedisThrottle {
    connection: Connection,
    prefix: Arc<str>,
    record_failure: Arc<Script>,
    begin_attempt: Arc<Script>,
    end_attempt: Arc<Script>,
}

impl fmt::Debug for RedisThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisThrottle").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisThrottle {
    pub(crate) fn new(connection: Connection, prefix: Arc<str>) -> Self {
        Self {
            connection,
            prefix,
            record_failure: Arc::new(Script::new(RECORD_FAILURE)),
            begin_attempt: Arc::new(Script::new(BEGIN_ATTEMPT)),
            end_attempt: Arc::new(Script::new(END_ATTEMPT)),
        }
    }

    fn key(&self, key: &ThrottleKey) -> String {
        format!("{}:t:{}", self.prefix, key.as_str())
    }

    fn in_flight_key(&self, key: &ThrottleKey) -> String {
        format!("{}:f:{}", self.prefix, key.as_str())
    }
}

fn parse(value: &str) -> Result<Failures, StoreError> {
    let corrupt = || StoreError::Corrupt("a throttle counter is unreadable".into());
    let (count, micros) = value.split_once(':').ok_or_else(corrupt)?;
    let count = count.parse().map_err(|_| corrupt())?;
    let micros: i64 = micros.parse().map_err(|_| corrupt())?;
    let last_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).map_err(|_| corrupt())?;
    Ok(Failures { count, last_at })
}

#[async_trait]
impl ThrottleStore for RedisThrottle {
    async fn failures(&self, key: &ThrottleKey) -> Result<Option<Failures>, StoreError> {
        let value: Option<String> = self.connection.clone().get(self.key(key)).await.map_err(fail)?;
        value.as_deref().map(parse).transpose()
    }

    async fn record_failure(
        &self,
        key: &ThrottleKey,
        at: OffsetDateTime,
        forget_after: Duration,
    ) -> Result<Failures, StoreError> {
        let forget_ms = forget_after.whole_milliseconds().max(1);
        let count: u32 = self
            .record_failure
            .key(self.key(key))
            .arg(record::micros(at))
            .arg(i64::try_from(forget_ms).unwrap_or(i64::MAX))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(fail)?;
        Ok(Failures { count, last_at: at })
    }

    async fn clear(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        let _: u32 = self.connection.clone().del(self.key(key)).await.map_err(fail)?;
        Ok(())
    }

    async fn begin_attempt(&self, key: &ThrottleKey, lapse: Duration) -> Result<u32, StoreError> {
        let lapse_ms = i64::try_from(lapse.whole_milliseconds().max(1)).unwrap_or(i64::MAX);
        self.begin_attempt
            .key(self.in_flight_key(key))
            .arg(lapse_ms)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(fail)
    }

    async fn end_attempt(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        let _: i64 = self
            .end_attempt
            .key(self.in_flight_key(key))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(fail)?;
        Ok(())
    }
}
