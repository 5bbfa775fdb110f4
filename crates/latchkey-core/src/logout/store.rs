//! The store of apps' sign-ins and their logout deliveries, which every SQL backend implements
//! (shared by all instances; Redis deployments keep it in SQL beside the clients).

use async_trait::async_trait;
use time::OffsetDateTime;

use super::Delivery;
use crate::clients::ClientId;
use crate::ids::{SessionId, UserId};
use crate::store::StoreError;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// The app accepted the token.
    Delivered,
    /// It did not; try again at this time.
    RetryAt(OffsetDateTime),
    /// It did not, and the retries are over.
    Failed,
}

/// Apps' sign-ins under sign-ins at latchkey, and the deliveries their ends make.
#[async_trait]
pub trait AppSignInStore: Send + Sync + 'static {
    /// Records that `client` signed in under the sign-in `sso` of `user` (once per pair;
    /// `notify`: the app takes back-channel logout tokens).
    async fn record_sign_in(
        &self,
        client: &ClientId,
        sso: SessionId,
        user: UserId,
        notify: bool,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// The users with a sign-in to `client` that has not been seen to end (one entry per
    /// sign-in).
    async fn users_signed_in_to(&self, client: &ClientId) -> Result<Vec<UserId>, StoreError>;
    /// The sign-ins with apps under them that have not been seen to end, with their users.
    async fn open_sign_ins(&self) -> Result<Vec<(SessionId, UserId)>, StoreError>;
    /// Records that the sign-ins `sso` ended at `at`; the apps that take logout tokens get a
    /// pending delivery due at once. Returns how many deliveries became pending.
    async fn end_sign_ins(&self, sso: &[SessionId], at: OffsetDateTime) -> Result<u64, StoreError>;
    /// Claims up to `limit` pending deliveries due at `now` for this caller alone until
    /// `lease_until` (another instance skips them), counting the attempt.
    async fn claim_due(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Records how a claimed delivery's attempt ended.
    async fn settle(&self, client: &ClientId, sso: SessionId, outcome: Settlement) -> Result<(), StoreError>;
    /// Every delivery to `client`, newest sign-in end first.
    async fn deliveries_of(&self, client: &ClientId) -> Result<Vec<Delivery>, StoreError>;
    /// Deletes sign-ins that ended before `before` and are no longer pending; how many.
    async fn purge_sign_ins(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}
