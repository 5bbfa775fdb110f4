//! The stores of codes and consent, which every SQL backend implements (they must be shared
//! by all instances: a code issued by one is redeemed on another exactly once).

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{AuthorizationCode, Consent};
use crate::clients::ClientId;
use crate::ids::{SessionId, UserId};
use crate::secret::TokenDigest;
use crate::store::StoreError;

/// What presenting a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// The first presentation: the code, now used (its bindings and expiry are the caller's to
    /// check; a failed check still used it up).
    First(AuthorizationCode),
    /// A code already presented: what its first use issued (the app session), if it got that
    /// far, so that a replay can revoke it.
    Replayed {
        /// The app session the first redemption created.
        issued: Option<SessionId>,
    },
    /// No such code (never issued, or purged).
    Unknown,
}

/// Authorization codes.
#[async_trait]
pub trait CodeStore: Send + Sync + 'static {
    /// Stores a new code.
    async fn insert(&self, code: &AuthorizationCode) -> Result<(), StoreError>;
    /// Marks the code `digest` used at `at` and returns it — exactly once, whichever instance
    /// asks; every later presentation is [`Redemption::Replayed`].
    async fn redeem(&self, digest: &TokenDigest, at: OffsetDateTime) -> Result<Redemption, StoreError>;
    /// Records the app session the code's first redemption created.
    async fn record_issued(&self, digest: &TokenDigest, session: SessionId) -> Result<(), StoreError>;
    /// Deletes codes issued before `before` (long past their lifetime); how many.
    async fn purge_codes(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// Users' consent to apps.
#[async_trait]
pub trait ConsentStore: Send + Sync + 'static {
    /// Records a consent, replacing the user's earlier one for the same app.
    async fn grant(&self, consent: &Consent) -> Result<(), StoreError>;
    /// The user's consent to the app, if any.
    async fn consent(&self, user: UserId, client: &ClientId) -> Result<Option<Consent>, StoreError>;
    /// Every app the user has allowed, newest consent first.
    async fn consents_of(&self, user: UserId) -> Result<Vec<Consent>, StoreError>;
    /// Withdraws a consent; whether there was one.
    async fn withdraw(&self, user: UserId, client: &ClientId) -> Result<bool, StoreError>;
}
