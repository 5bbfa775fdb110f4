//! Who a check found: the caller, and the profile they may see of themselves (`/v1/me`),
//! served from memory like a check.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use super::{Session, SessionId, SessionKind};
use crate::accounts::{UserId, Username};
use crate::error::AuthError;
use crate::latchkey::Latchkey;

/// An authenticated caller: who, and through which session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user.
    pub user_id: UserId,
    /// The user's name.
    pub username: Username,
    /// The session the credential belongs to.
    pub session_id: SessionId,
    /// The session's kind.
    pub kind: SessionKind,
}

/// What a caller may see of themselves (`/v1/me`): their account, without its password hash,
/// and the session their credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The user's name.
    pub username: Username,
    /// When the account was made.
    pub created_at: OffsetDateTime,
    /// The session (its user is the account's id).
    pub session: Session,
}

impl Latchkey {
    /// The caller's profile: their account and the session the credential belongs to, if it
    /// is live and theirs. Served from this instance's memory like a cookie check (for at most
    /// the cookie cache's time to live, the propagation bound), so asking who one is costs what a
    /// check costs: every hit is checked against the denylist, which revocations (and so
    /// disabling an account or changing its password) reach on every instance, and against the
    /// session's expiry at `now`.
    pub async fn profile(&self, caller: &Caller) -> Result<Option<Arc<Profile>>, AuthError> {
        let now = self.now();
        if self.inner.revocations.denylist.denies(caller.session_id, now) {
            return Ok(None);
        }
        let cache = &self.inner.sessions.profiles;
        if let Some(cached) = cache.get(&caller.session_id) {
            if cached.session.user_id == caller.user_id && cached.session.is_live(now) {
                return Ok(Some(cached));
            }
            // A cached copy may have aged out while newer activity was recorded (see
            // `authenticate_cookie`): the store decides.
            cache.invalidate(&caller.session_id);
        }
        let stores = &self.inner.stores;
        let Some(session) = stores.sessions.get(caller.session_id).await? else { return Ok(None) };
        if session.user_id != caller.user_id || !session.is_live(now) {
            return Ok(None);
        }
        let Some(account) = stores.accounts.by_id(caller.user_id).await? else { return Ok(None) };
        let profile = Arc::new(Profile { username: account.username, created_at: account.created_at, session });
        if self.inner.policy.cookie_cache_ttl > Duration::ZERO {
            cache.insert(caller.session_id, Arc::clone(&profile));
        }
        Ok(Some(profile))
    }
}
