//! The store traits: one per storage concept, implemented by every backend (SQLite today,
//! PostgreSQL and Redis next) and checked by one conformance suite.
//!
//! `Ok(None)` means "not found"; `Err` means the infrastructure failed and maps to 503.

pub(crate) mod error;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::account::{Account, UserId, Username};
use crate::audit::{AuditEvent, AuditFilter};
pub use crate::keys::StoredKey;
use crate::password::PasswordHash;
use crate::session::{Session, SessionId, SessionKind};
pub use crate::throttle::ThrottleStore;
pub use error::StoreError;

/// What creating an account can run into besides failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateAccount {
    /// The account was stored.
    Created,
    /// Another account already has the username.
    UsernameTaken,
}

/// Accounts.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Stores a new account unless its username is taken (atomically).
    async fn create(&self, account: &Account) -> Result<CreateAccount, StoreError>;
    /// Looks an account up by normalised username.
    async fn by_username(&self, username: &Username) -> Result<Option<Account>, StoreError>;
    /// Looks an account up by id.
    async fn by_id(&self, id: UserId) -> Result<Option<Account>, StoreError>;
    /// Every account, oldest first.
    async fn list(&self) -> Result<Vec<Account>, StoreError>;
    /// Replaces the password hash.
    async fn set_password_hash(&self, id: UserId, hash: &PasswordHash) -> Result<(), StoreError>;
    /// Disables or re-enables an account; `false` when no such account.
    async fn set_disabled(&self, id: UserId, disabled: bool) -> Result<bool, StoreError>;
}

/// Which sessions a revocation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeScope {
    /// One session, whoever owns it.
    One(SessionId),
    /// One session, only if `user` owns it.
    OneOf {
        /// The owner the session must have.
        user: UserId,
        /// The session.
        session: SessionId,
    },
    /// Every session of a user.
    AllOf(UserId),
    /// Every session of a user except one.
    AllOfExcept(UserId, SessionId),
}

/// A revocation as recorded: the revocation feed, the local denylists and instances that start
/// later all learn of revocations from these entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// Position in the revocation log; strictly increasing.
    pub cursor: i64,
    /// The session revoked.
    pub session_id: SessionId,
    /// Its kind.
    pub kind: SessionKind,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
    /// Until when an artefact of the session (an access token, a cached cookie check) could
    /// still be presented; past this the entry can be forgotten.
    pub until: OffsetDateTime,
}

/// The outcome of an attempt to rotate a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The counter moved from the expected value to the next one.
    Rotated,
    /// Someone else rotated first, or the session is revoked: re-read and decide again.
    Lost,
}

/// Sessions of both kinds, and the log of their revocations.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session.
    async fn insert(&self, session: &Session) -> Result<(), StoreError>;
    /// A session by id, revoked or not.
    async fn get(&self, id: SessionId) -> Result<Option<Session>, StoreError>;
    /// Records activity: moves `last_seen_at` forward.
    async fn touch(&self, id: SessionId, at: OffsetDateTime) -> Result<(), StoreError>;
    /// Atomically advances the refresh counter from `expected` to `expected + 1`, setting
    /// `rotated_at` and `last_seen_at` to `at`, only while the session is not revoked.
    async fn rotate(&self, id: SessionId, expected: u64, at: OffsetDateTime) -> Result<Rotation, StoreError>;
    /// Revokes the live sessions in `scope` and logs each revocation, with `until` computed per
    /// kind by `until`. Returns the new log entries (empty when nothing matched).
    async fn revoke(
        &self,
        scope: RevokeScope,
        at: OffsetDateTime,
        until: &(dyn Fn(SessionKind) -> OffsetDateTime + Send + Sync),
    ) -> Result<Vec<Revocation>, StoreError>;
    /// A user's sessions that are neither revoked nor expired at `now`, newest first.
    async fn list_live(&self, user: UserId, now: OffsetDateTime) -> Result<Vec<Session>, StoreError>;
    /// Revocation log entries after `cursor` whose `until` is later than `now`, in log order.
    async fn revocations_after(&self, cursor: i64, now: OffsetDateTime) -> Result<Vec<Revocation>, StoreError>;
    /// The newest cursor of the revocation log (0 when empty).
    async fn latest_cursor(&self) -> Result<i64, StoreError>;
    /// Number of sessions live at `now`, both kinds; `None` from a store that cannot count
    /// them cheaply.
    async fn count_live(&self, now: OffsetDateTime) -> Result<Option<u64>, StoreError>;
    /// Deletes sessions that ended before `before` and log entries no longer needed. A store
    /// whose sessions expire by themselves may leave this to its expiry.
    async fn purge(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// The durable log of revocations. Session stores that are not durable themselves (Redis)
/// append to it, so the fact that a session was revoked survives their restart.
#[async_trait]
pub trait RevocationLog: Send + Sync + 'static {
    /// Appends one entry per (session, kind, until), in order, announcing them to other
    /// instances; returns the entries with their positions.
    async fn append(
        &self,
        revoked: &[(SessionId, SessionKind, OffsetDateTime)],
        at: OffsetDateTime,
    ) -> Result<Vec<Revocation>, StoreError>;
    /// Entries after `cursor` whose `until` is later than `now`, in log order.
    async fn after(&self, cursor: i64, now: OffsetDateTime) -> Result<Vec<Revocation>, StoreError>;
    /// The newest position (0 when empty).
    async fn latest(&self) -> Result<i64, StoreError>;
}

/// Signing keys and the server secret, shared by every instance.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Every stored key, oldest first.
    async fn list(&self) -> Result<Vec<StoredKey>, StoreError>;
    /// Adds a key and retires, in the same transaction, every unretired key of the same
    /// algorithm (`retire_others_at`), so that exactly one signs.
    async fn insert_active(&self, key: &StoredKey, retire_others_at: OffsetDateTime) -> Result<(), StoreError>;
    /// Schedules a rotation: stores `key` (whose `created_at` is when it starts signing) and
    /// retires the current key of its algorithm at that same instant, in one transaction and
    /// only if the current key was made at or before `due`. Returns whether it did: when
    /// several instances find the rotation due at once, exactly one schedules it.
    async fn schedule_rotation(&self, key: &StoredKey, due: OffsetDateTime) -> Result<bool, StoreError>;
    /// Adds a key only if no key of its algorithm exists yet (first start of several
    /// instances at once); returns whether it was added.
    async fn insert_if_absent(&self, key: &StoredKey) -> Result<bool, StoreError>;
    /// Replaces a key's stored material (sealing it under a newly configured master key);
    /// `false` when no such key.
    async fn replace_material(&self, kid: &str, material: &str) -> Result<bool, StoreError>;
    /// Deletes keys retired before `before`.
    async fn delete_retired_before(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// The audit trail: security events, durable, listed newest first.
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Appends an event.
    async fn record(&self, event: &AuditEvent) -> Result<(), StoreError>;
    /// The events that pass `filter`, newest first, at most `filter.limit`.
    async fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError>;
}

/// The stores a latchkey service runs on.
#[derive(Clone)]
pub struct Stores {
    /// Accounts.
    pub accounts: std::sync::Arc<dyn AccountStore>,
    /// Sessions and revocations.
    pub sessions: std::sync::Arc<dyn SessionStore>,
    /// Keys.
    pub keys: std::sync::Arc<dyn KeyStore>,
    /// Counters of failed password attempts.
    pub throttle: std::sync::Arc<dyn ThrottleStore>,
    /// The audit trail.
    pub audit: std::sync::Arc<dyn AuditLog>,
    /// Whether the stores answer (for `/readyz`).
    pub health: std::sync::Arc<dyn StoreHealth>,
}

/// Readiness of a backend.
#[async_trait]
pub trait StoreHealth: Send + Sync + 'static {
    /// `Ok` when the backend answers a trivial query.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Ready only when every one of several backends is (SQL and Redis, say).
pub struct AllHealthy(pub Vec<std::sync::Arc<dyn StoreHealth>>);

#[async_trait]
impl StoreHealth for AllHealthy {
    async fn ping(&self) -> Result<(), StoreError> {
        for backend in &self.0 {
            backend.ping().await?;
        }
        Ok(())
    }
}
