//! What the service answers besides success, one enum for the whole domain; the HTTP layer
//! maps it once to the contract's problem+json.

use crate::accounts::{HashError, PasswordError, UsernameError};
use crate::clients::ClientError;
use crate::keys::KeyError;
use crate::policy::PolicyError;
use crate::sessions::DataError;
use crate::store::StoreError;
use crate::throttle::Throttled;

/// Everything the service can answer besides success: decisions (up to `RotationPending`) and
/// failures of configuration or infrastructure (from `Policy` on).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Sign-up with a username another account has.
    #[error("username taken")]
    UsernameTaken,
    /// A username that fails the policy.
    #[error("invalid username: {0}")]
    InvalidUsername(#[from] UsernameError),
    /// A new password that fails the policy.
    #[error("invalid password: {0}")]
    InvalidPassword(#[from] PasswordError),
    /// Unknown user, wrong password or disabled account: deliberately one answer.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// A signed-in user's current password, asked for again before a change, is wrong.
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    /// Too many failed password attempts: this one was refused unchecked.
    #[error("too many failed attempts; retry in {}s", .0.retry_after.whole_seconds())]
    Throttled(Throttled),
    /// A refresh token that is not valid (any reason).
    #[error("invalid grant")]
    InvalidGrant,
    /// An app's authentication failed: unknown client, wrong secret, or a secret from a public
    /// client (RFC 6749 §5.2 `invalid_client`).
    #[error("client authentication failed")]
    InvalidClient,
    /// A session id that is not the caller's.
    #[error("not found")]
    NotFound,
    /// A client that cannot be registered or changed as asked.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A change to a session's data that was refused.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A rotation by hand while the next key is already published and waiting to sign.
    #[error("a new signing key is already published and waiting to sign; rotate at once to replace it now")]
    RotationPending,
    /// The policy breaks one of its rules.
    #[error("invalid policy: {0}")]
    Policy(#[from] PolicyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Password hashing failed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// Signing failed or the keys are unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
}
