//! The session store every backend implements.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{DataWrite, Session, SessionId, SessionKind, StoredData};
use crate::ids::UserId;
#[cfg(doc)]
use crate::revocation::RevocationLog;
use crate::revocation::{Revocation, RevokeScope};
use crate::store::StoreError;

/// The outcome of an attempt to rotate a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The counter moved from the expected value to the next one.
    Rotated,
    /// Someone else rotated first, or the session is revoked: re-read and decide again.
    Lost,
}

/// Sessions of both kinds. Revoking logs each revocation (see [`RevocationLog`], which is
/// where the log is read).
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session.
    async fn insert(&self, session: &Session) -> Result<(), StoreError>;
    /// A session by id, revoked or not.
    async fn get(&self, id: SessionId) -> Result<Option<Session>, StoreError>;
    /// A session by id, revoked or not, with its data (`{}` at version 0 when never written,
    /// and again once the session is revoked: its data ends with it).
    async fn get_with_data(&self, id: SessionId) -> Result<Option<(Session, StoredData)>, StoreError>;
    /// Atomically replaces the session's data with `json` as version `expected + 1`, only while
    /// its data is at version `expected` and the session is not revoked. The data lives and
    /// expires with the session; touching or rotating it keeps the data.
    async fn write_data(&self, id: SessionId, expected: u64, json: &str) -> Result<DataWrite, StoreError>;
    /// Records activity: moves `last_seen_at` forward.
    async fn touch(&self, id: SessionId, at: OffsetDateTime) -> Result<(), StoreError>;
    /// Atomically advances the refresh counter from `expected` to `expected + 1`, setting
    /// `rotated_at` and `last_seen_at` to `at`, only while the session is not revoked.
    async fn rotate(&self, id: SessionId, expected: u64, at: OffsetDateTime) -> Result<Rotation, StoreError>;
    /// Revokes the live sessions in `scope`, drops their data, and logs each revocation, with
    /// `until` computed per kind by `until`. Returns the new log entries (empty when nothing matched).
    async fn revoke(
        &self,
        scope: RevokeScope,
        at: OffsetDateTime,
        until: &(dyn Fn(SessionKind) -> OffsetDateTime + Send + Sync),
    ) -> Result<Vec<Revocation>, StoreError>;
    /// A user's sessions that are neither revoked nor expired at `now`, newest first.
    async fn list_live(&self, user: UserId, now: OffsetDateTime) -> Result<Vec<Session>, StoreError>;
    /// At least the number of `user`'s sessions live at `now`, never fewer: exact where the
    /// store can count them, else also counting ended sessions it has not yet swept. Tells
    /// whether a user is within a cap without reading the sessions.
    async fn count_live_of(&self, user: UserId, now: OffsetDateTime) -> Result<u64, StoreError>;
    /// Number of sessions live at `now`, both kinds; `None` from a store that cannot count
    /// them cheaply.
    async fn count_live(&self, now: OffsetDateTime) -> Result<Option<u64>, StoreError>;
    /// Deletes sessions that ended before `before` and log entries no longer needed. A store
    /// whose sessions expire by themselves may leave this to its expiry.
    async fn purge(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}
