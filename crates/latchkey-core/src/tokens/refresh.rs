//! Refresh tokens: derived from (session, rotation counter) under the server secret, so the
//! store keeps none; and refreshing, with rotation, the two-tab grace and reuse detection.

use std::fmt;

use tracing::warn;
use uuid::Uuid;

use super::TokenPair;
use crate::audit::{AuditEvent, AuditKind};
use crate::error::AuthError;
use crate::ids::{ClientId, SessionId};
use crate::latchkey::Latchkey;
use crate::revocation::{RevocationCause, RevokeScope};
use crate::secret::{ServerSecret, b64url, b64url_decode};
use crate::sessions::{Rotation, Session, SessionKind};

/// Lengths of the parts of a refresh token.
const SID_LEN: usize = 16;
const COUNTER_LEN: usize = 8;
const MAC_LEN: usize = 32;
const REFRESH_PURPOSE: &str = "latchkey/refresh-token/v1";

/// A refresh token as presented: the session it belongs to and the rotation counter it was
/// minted for, authenticated by an HMAC under the server secret.
///
/// Deriving the token from (session, counter) means the store keeps no token at all, and the
/// current token can be handed again to a second tab that refreshed inside the grace window
/// without retiring what the first tab received.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RefreshToken {
    /// The session the token belongs to.
    pub session_id: SessionId,
    /// The rotation the token was minted for.
    pub counter: u64,
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshToken")
            .field("session_id", &self.session_id)
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl RefreshToken {
    /// The token string for this (session, counter), as the client receives it.
    pub fn encode(&self, secret: &ServerSecret) -> String {
        let sid = self.session_id.as_uuid();
        let counter = self.counter.to_be_bytes();
        let mac = secret.mac(REFRESH_PURPOSE, &[sid.as_bytes(), &counter]);
        let mut raw = Vec::with_capacity(SID_LEN + COUNTER_LEN + MAC_LEN);
        raw.extend_from_slice(sid.as_bytes());
        raw.extend_from_slice(&counter);
        raw.extend_from_slice(&mac);
        b64url(&raw)
    }

    /// Decodes and authenticates a presented token; `None` for anything latchkey did not mint.
    pub fn decode(presented: &str, secret: &ServerSecret) -> Option<Self> {
        if presented.len() > 128 {
            return None;
        }
        let raw = b64url_decode(presented)?;
        if raw.len() != SID_LEN + COUNTER_LEN + MAC_LEN {
            return None;
        }
        let (sid, rest) = raw.split_at(SID_LEN);
        let (counter, mac) = rest.split_at(COUNTER_LEN);
        if !secret.verify(REFRESH_PURPOSE, &[sid, counter], mac) {
            return None;
        }
        let session_id = SessionId::from_uuid(Uuid::from_slice(sid).ok()?);
        let counter = u64::from_be_bytes(counter.try_into().ok()?);
        Some(Self { session_id, counter })
    }
}

impl Latchkey {
    /// Exchanges a refresh token for a new pair (RFC 9700 §4.14 rotation). The token retired by
    /// the most recent rotation is answered with the current pair within the grace window; any
    /// other retired token revokes the whole session.
    ///
    /// An app's session is refreshed only by its own app (`client`, authenticated by the
    /// caller); a first-party session only without one.
    pub async fn refresh(&self, presented: &str, client: Option<&ClientId>) -> Result<(Session, TokenPair), AuthError> {
        let token = RefreshToken::decode(presented, &self.inner.server_secret).ok_or(AuthError::InvalidGrant)?;
        let sessions = &self.inner.stores.sessions;
        // Two passes at most: losing the rotation race means another request rotated this very
        // token a moment ago, which the second pass answers through the grace window.
        for _ in 0..2 {
            let now = self.now();
            // The denylist too: a store that logs a revocation before marking the session (Redis)
            // may still hold it live if the mark failed.
            let session = match sessions.get(token.session_id).await? {
                Some(session)
                    if session.kind == SessionKind::Token
                        && session.is_live(now)
                        && !self.inner.revocations.denylist.denies(session.id, now) =>
                {
                    session
                }
                _ => return Err(AuthError::InvalidGrant),
            };
            if session.app.as_ref().map(|app| &app.client_id) != client {
                return Err(AuthError::InvalidGrant);
            }
            let account = match self.inner.stores.accounts.by_id(session.user_id).await? {
                Some(account) if !account.disabled => account,
                _ => return Err(AuthError::InvalidGrant),
            };
            if token.counter == session.refresh_counter {
                match sessions.rotate(session.id, token.counter, now).await? {
                    Rotation::Rotated => {
                        let rotated = Session {
                            refresh_counter: session.refresh_counter + 1,
                            rotated_at: Some(now),
                            last_seen_at: now,
                            ..session
                        };
                        let pair = self.issue_tokens(&rotated, &account.username)?;
                        return Ok((rotated, pair));
                    }
                    Rotation::Lost => continue,
                }
            }
            let in_grace = token.counter + 1 == session.refresh_counter
                && session.rotated_at.is_some_and(|at| now - at <= self.inner.policy.refresh_reuse_grace);
            if in_grace {
                let pair = self.issue_tokens(&session, &account.username)?;
                return Ok((session, pair));
            }
            warn!(session.id = %session.id, user.id = %session.user_id, "refresh token reuse detected; revoking the session");
            let event = AuditEvent::new(AuditKind::RefreshReuseDetected, now)
                .user(account.id, &account.username)
                .session(session.id);
            self.audit(event).await;
            self.revoke(RevokeScope::One(session.id), RevocationCause::RefreshReuse).await?;
            return Err(AuthError::InvalidGrant);
        }
        Err(AuthError::InvalidGrant)
    }

    /// The session a presented refresh token names, if latchkey minted it (revoked or not).
    pub fn refresh_token_session(&self, presented: &str) -> Option<SessionId> {
        RefreshToken::decode(presented, &self.inner.server_secret).map(|token| token.session_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_token_round_trips_only_under_its_own_secret() {
        let (secret, _) = ServerSecret::generate();
        let (other, _) = ServerSecret::generate();
        let token = RefreshToken { session_id: SessionId::generate(), counter: 7 };
        let text = token.encode(&secret);
        assert_eq!(RefreshToken::decode(&text, &secret), Some(token));
        assert_eq!(RefreshToken::decode(&text, &other), None);
    }

    #[test]
    fn a_tampered_refresh_token_is_refused() {
        let (secret, _) = ServerSecret::generate();
        let token = RefreshToken { session_id: SessionId::generate(), counter: 1 };
        let mut raw = b64url_decode(&token.encode(&secret)).unwrap_or_default();
        raw[SID_LEN + COUNTER_LEN - 1] ^= 1; // counter 1 -> 0
        assert_eq!(RefreshToken::decode(&b64url(&raw), &secret), None);
        assert_eq!(RefreshToken::decode("not a token", &secret), None);
    }
}
