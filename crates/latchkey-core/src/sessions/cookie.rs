//! Checking a cookie session: the secret's digest names the session, answered from this
//! instance's cache for at most the cookie cache's lifetime (every hit checked against the
//! denylist and the expiry), with sliding expiry written at most once per touch interval; and
//! the session's CSRF token, derived rather than stored.

use std::sync::Arc;

use moka::sync::Cache;
use time::Duration;

use super::{Caller, Profile, Session, SessionId, SessionKind};
use crate::accounts::Username;
use crate::error::AuthError;
use crate::latchkey::Latchkey;
use crate::policy::Policy;
use crate::secret::{SecretToken, TokenDigest, b64url, b64url_decode};

const CSRF_PURPOSE: &str = "latchkey/csrf-token/v1";

/// A cookie check's cached result.
pub(crate) struct CookieEntry {
    session: Session,
    username: Username,
}

/// This instance's memory of sessions: cookie checks and the profiles of `/v1/me`, each kept for
/// at most the cookie cache's lifetime (the propagation bound).
///
/// Why caches: a cookie check would otherwise be a store read on every request. They are safe
/// because every hit is checked against the denylist and the session's expiry at `now`.
pub(crate) struct SessionCaches {
    pub(crate) cookies: Cache<TokenDigest, Arc<CookieEntry>>,
    pub(crate) profiles: Cache<SessionId, Arc<Profile>>,
}

impl SessionCaches {
    /// Empty caches sized and timed by `policy`.
    pub(crate) fn new(policy: &Policy) -> Self {
        let lifetime = policy.cookie_cache_ttl.unsigned_abs();
        Self {
            cookies: Cache::builder().max_capacity(100_000).time_to_live(lifetime).build(),
            profiles: Cache::builder().max_capacity(100_000).time_to_live(lifetime).build(),
        }
    }
}

impl Latchkey {
    /// Checks a cookie session's secret. `Ok(None)` for anything that is not a live session.
    pub async fn authenticate_cookie(&self, presented: &str) -> Result<Option<Caller>, AuthError> {
        let Some(digest) = SecretToken::digest_presented(presented) else { return Ok(None) };
        let now = self.now();
        let cached = self.inner.sessions.cookies.get(&digest);
        let from_cache = cached.is_some();
        let mut entry = match cached {
            Some(entry) => entry,
            None => match self.load_cookie_entry(&digest).await? {
                Some(entry) => entry,
                None => return Ok(None),
            },
        };
        // A cached copy may have aged out while another instance recorded newer activity: the
        // store decides before a session is refused as idle, so that a refusal is final.
        if from_cache && !entry.session.is_live(now) && entry.session.revoked_at.is_none() {
            self.inner.sessions.cookies.invalidate(&digest);
            entry = match self.load_cookie_entry(&digest).await? {
                Some(entry) => entry,
                None => return Ok(None),
            };
        }
        let session = &entry.session;
        let stored_digest_matches = session.secret_digest.is_some_and(|stored| stored.matches(&digest));
        if !stored_digest_matches || !session.is_live(now) || self.inner.revocations.denylist.denies(session.id, now) {
            self.inner.sessions.cookies.invalidate(&digest);
            return Ok(None);
        }
        if now - session.last_seen_at >= self.inner.policy.touch_interval_for(self.inner.policy.session_idle_timeout) {
            self.inner.stores.sessions.touch(session.id, now).await?;
            let touched = Session { last_seen_at: now, ..session.clone() };
            if self.inner.policy.cookie_cache_ttl > Duration::ZERO {
                let entry = CookieEntry { session: touched, username: entry.username.clone() };
                self.inner.sessions.cookies.insert(digest, Arc::new(entry));
            }
        }
        Ok(Some(Caller {
            user_id: session.user_id,
            username: entry.username.clone(),
            session_id: session.id,
            kind: SessionKind::Cookie,
        }))
    }

    /// Reads a cookie session and its user's name from the store, and caches them when the
    /// cache is on. `None` for no session or a disabled user.
    async fn load_cookie_entry(&self, digest: &TokenDigest) -> Result<Option<Arc<CookieEntry>>, AuthError> {
        let id = SessionId::for_cookie(digest);
        let Some(session) = self.inner.stores.sessions.get(id).await? else { return Ok(None) };
        let username = match self.inner.stores.accounts.by_id(session.user_id).await? {
            Some(account) if !account.disabled => account.username,
            _ => return Ok(None),
        };
        let entry = Arc::new(CookieEntry { session, username });
        if self.inner.policy.cookie_cache_ttl > Duration::ZERO {
            self.inner.sessions.cookies.insert(*digest, Arc::clone(&entry));
        }
        Ok(Some(entry))
    }

    /// The CSRF token of a session: derived from its id under the server secret, so it is
    /// stable for the session's life and needs no storage.
    pub fn csrf_token(&self, session: SessionId) -> String {
        b64url(&self.inner.server_secret.mac(CSRF_PURPOSE, &[session.as_uuid().as_bytes()]))
    }

    /// Whether `presented` is the session's CSRF token (constant time).
    pub fn csrf_matches(&self, session: SessionId, presented: &str) -> bool {
        let Some(bytes) = b64url_decode(presented) else { return false };
        self.inner.server_secret.verify(CSRF_PURPOSE, &[session.as_uuid().as_bytes()], &bytes)
    }
}
