//! The revocation log: what a revocation records, why, which sessions it ends, and the durable
//! log's store trait.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::ids::{SessionId, UserId};
use crate::sessions::SessionKind;
use crate::store::error::StoreError;

/// Why sessions were revoked: the detail of [`crate::audit::AuditKind::SessionRevoked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationCause {
    /// The user logged out.
    Logout,
    /// The user revoked one of their devices.
    DeviceRevoked,
    /// A token was revoked (RFC 7009).
    TokenRevoked,
    /// The user changed their password (the other sessions end).
    PasswordChanged,
    /// An administrator disabled the account.
    UserDisabled,
    /// A retired refresh token was reused.
    RefreshReuse,
    /// An administrator revoked it.
    Admin,
    /// A newer login of its user passed the sessions-per-user cap and this was the session
    /// used longest ago.
    SessionLimit,
    /// The user withdrew the app's consent (its sessions end).
    ConsentWithdrawn,
    /// An authorization code was presented again (what its first use issued ends).
    CodeReplayed,
    /// The sign-in at latchkey that an app's session came from expired (single sign-on).
    SignInExpired,
    /// The operator removed the app (`latchkey client remove`).
    ClientRemoved,
}

impl RevocationCause {
    /// The stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::DeviceRevoked => "device_revoked",
            Self::TokenRevoked => "token_revoked",
            Self::PasswordChanged => "password_changed",
            Self::UserDisabled => "user_disabled",
            Self::RefreshReuse => "refresh_reuse",
            Self::Admin => "admin",
            Self::SessionLimit => "session_limit",
            Self::ConsentWithdrawn => "consent_withdrawn",
            Self::CodeReplayed => "code_replayed",
            Self::SignInExpired => "sign_in_expired",
            Self::ClientRemoved => "client_removed",
        }
    }
}

/// Which sessions a revocation ends. Ending a session ends the apps' sessions under it too
/// (single sign-on), on every backend.
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
    /// Every session of a user except one (and the apps' sessions under it).
    AllOfExcept(UserId, SessionId),
    /// The apps' sessions of a user under one sign-in, not the sign-in itself (it ended
    /// already: expired, or gone from its store).
    UnderSignIn {
        /// The user.
        user: UserId,
        /// The sign-in.
        sign_in: SessionId,
    },
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
