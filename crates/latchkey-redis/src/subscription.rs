//! Revocations announced over Redis pub/sub, so every instance refuses a revoked session's
//! credentials within milliseconds, whichever SQL database holds the durable log.
//!
//! A message is only a hint that arrives fast: pub/sub delivers at most once and nothing while
//! a subscriber is disconnected. So a subscriber resynchronises from the durable log each time
//! it (re)connects ([`RevocationListener::connect`] is where to do that), and the periodic sync
//! bounds what a silently dead connection could miss.

use futures_util::StreamExt;
use latchkey_core::sessions::SessionId;
use latchkey_core::store::Revocation;
use redis::aio::ConnectionLike;
use time::OffsetDateTime;

use crate::record::micros;

/// The channel for keys under `prefix`.
pub(crate) fn channel(prefix: &str) -> String {
    format!("{prefix}:revoked")
}

/// Publishes `entries` (one line each: session id, then `until` in microseconds). Best
/// effort: the revocation is already durable and in force here; other instances also learn
/// of it from the log.
pub(crate) async fn announce(connection: &mut impl ConnectionLike, prefix: &str, entries: &[Revocation]) {
    let payload: String =
        entries.iter().map(|entry| format!("{} {}\n", entry.session_id, micros(entry.until))).collect();
    let _: Result<i64, _> = redis::cmd("PUBLISH").arg(channel(prefix)).arg(payload).query_async(connection).await;
}

/// One announced revocation: the session, and until when its credentials could be presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevocationMessage {
    /// The revoked session.
    pub session_id: SessionId,
    /// Past this, nothing of the session can still be presented.
    pub until: OffsetDateTime,
}

fn parse(payload: &str) -> Vec<RevocationMessage> {
    payload
        .lines()
        .filter_map(|line| {
            let (sid, until) = line.split_once(' ')?;
            let until =
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(until.parse::<i64>().ok()?) * 1_000).ok()?;
            Some(RevocationMessage { session_id: SessionId::parse(sid)?, until })
        })
        .collect()
}

/// A subscription to the revocation channel.
pub struct RevocationListener {
    messages: std::pin::Pin<Box<dyn futures_util::Stream<Item = redis::Msg> + Send>>,
}

impl std::fmt::Debug for RevocationListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationListener").finish_non_exhaustive()
    }
}

impl RevocationListener {
    /// Subscribes through `url` to the revocations of keys under `prefix`. Messages published
    /// before this returns are not received: resynchronise from the log after it.
    pub async fn connect(url: &str, prefix: &str) -> redis::RedisResult<Self> {
        let mut pubsub = redis::Client::open(url)?.get_async_pubsub().await?;
        pubsub.subscribe(channel(prefix)).await?;
        Ok(Self { messages: Box::pin(pubsub.into_on_message()) })
    }

    /// The next announced revocations; `None` once the connection is lost (reconnect, then
    /// resynchronise).
    pub async fn next(&mut self) -> Option<Vec<RevocationMessage>> {
        let message = self.messages.next().await?;
        Some(message.get_payload::<String>().map(|payload| parse(&payload)).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_and_garbage_is_skipped() {
        let sid = SessionId::generate();
        let payload = format!("{sid} 1900000000123456\nnot a line\n{sid} x\n");
        let parsed = parse(&payload);
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].session_id, sid);
        assert_eq!(micros(parsed[0].until), 1_900_000_000_123_456);
    }
}
