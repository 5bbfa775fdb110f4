//! The bearer check: an access token verified once and cached until its `exp`, every hit
//! checked against the denylist; unknown `kid`s reload the keys at a bounded rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use moka::sync::Cache;
use time::OffsetDateTime;
use tokio::sync::Mutex as AsyncMutex;

use super::{AccessClaims, MAX_TOKEN_BYTES, TokenRejection, is_expired};
use crate::accounts::{UserId, Username};
use crate::error::AuthError;
use crate::latchkey::Latchkey;
use crate::policy::Policy;
use crate::secret::TokenDigest;
use crate::sessions::{Caller, SessionId, SessionKind};

/// The shortest time between two key reloads caused by tokens with an unknown `kid`. A key
/// published ahead of its use (every rotation but an emergency) is known long before, and the
/// periodic sync picks up any change within the sync interval anyway.
pub const UNKNOWN_KID_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// A bearer check's cached result: the token verified once, and verifies again until `exp`.
struct BearerEntry {
    caller: Caller,
    exp: i64,
}

/// This instance's memory of bearer checks: each token verified once and answered from here
/// until its `exp` (every hit checked against the denylist), and the bounded reload of keys for
/// tokens naming an unknown `kid`.
pub(crate) struct BearerChecks {
    cache: Cache<TokenDigest, Arc<BearerEntry>>,
    // When a token with an unknown `kid` last reloaded the keys.
    unknown_kid_reload: AsyncMutex<Option<std::time::Instant>>,
    unknown_kid_reloads: AtomicU64,
}

impl BearerChecks {
    /// An empty cache that keeps a token for its lifetime under `policy`, and a little longer
    /// (entries are checked against `exp` anyway).
    pub(crate) fn new(policy: &Policy) -> Self {
        let lifetime = policy.access_token_ttl.unsigned_abs() + std::time::Duration::from_secs(5);
        Self {
            cache: Cache::builder().max_capacity(100_000).time_to_live(lifetime).build(),
            unknown_kid_reload: AsyncMutex::new(None),
            unknown_kid_reloads: AtomicU64::new(0),
        }
    }
}

impl Latchkey {
    /// How often tokens naming an unknown `kid` made this instance reload its keys.
    pub fn unknown_kid_reloads(&self) -> u64 {
        self.inner.bearer.unknown_kid_reloads.load(Ordering::Relaxed)
    }

    /// Checks an access token: signature and claims (cached per token until it expires), then
    /// the denylist. `Err(Ok(rejection))`-style detail is given so the caller can answer RFC
    /// 6750's `invalid_token`.
    pub async fn authenticate_bearer(&self, token: &str) -> Result<Result<Caller, TokenRejection>, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Ok(Err(TokenRejection::Malformed));
        }
        let digest = TokenDigest::of(token.as_bytes());
        let now = self.now();
        let entry = match self.inner.bearer.cache.get(&digest) {
            Some(entry) => entry,
            None => {
                let claims = match self.verify_access_token(token, now).await? {
                    Ok(claims) => claims,
                    Err(rejection) => return Ok(Err(rejection)),
                };
                let (Some(user_id), Some(session_id), Ok(username)) = (
                    UserId::parse(&claims.sub),
                    SessionId::parse(&claims.sid),
                    Username::parse(&claims.preferred_username),
                ) else {
                    return Ok(Err(TokenRejection::Invalid("claims of the wrong form".into())));
                };
                let caller = Caller { user_id, username, session_id, kind: SessionKind::Token };
                let entry = Arc::new(BearerEntry { caller, exp: claims.exp });
                self.inner.bearer.cache.insert(digest, Arc::clone(&entry));
                entry
            }
        };
        if is_expired(entry.exp, now) {
            self.inner.bearer.cache.invalidate(&digest);
            return Ok(Err(TokenRejection::Expired));
        }
        if self.inner.revocations.denylist.denies(entry.caller.session_id, now) {
            return Ok(Err(TokenRejection::Invalid("session revoked".into())));
        }
        Ok(Ok(entry.caller.clone()))
    }

    /// Verifies a token's signature and claims. A token naming a `kid` this instance has not
    /// seen (an emergency rotation made by another instance or the CLI) may reload the keys, at
    /// most once per [`UNKNOWN_KID_RELOAD_INTERVAL`] however many such tokens arrive: anybody
    /// can send them, and each reload is a store read.
    pub(crate) async fn verify_access_token(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Result<AccessClaims, TokenRejection>, AuthError> {
        match self.keys().verify(token, now) {
            Err(TokenRejection::UnknownKey) => {
                // Concurrent requests queue here; the first reloads and the rest find it done.
                let mut last_reload = self.inner.bearer.unknown_kid_reload.lock().await;
                if last_reload.is_none_or(|at| at.elapsed() >= UNKNOWN_KID_RELOAD_INTERVAL) {
                    *last_reload = Some(std::time::Instant::now());
                    self.inner.bearer.unknown_kid_reloads.fetch_add(1, Ordering::Relaxed);
                    self.reload_keys().await?;
                }
                drop(last_reload);
                Ok(self.keys().verify(token, now))
            }
            other => Ok(other),
        }
    }
}
