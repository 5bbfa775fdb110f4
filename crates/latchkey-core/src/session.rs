//! Sessions: one login on one device, carried either as a cookie or as tokens.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

pub use crate::ids::SessionId;
use crate::ids::UserId;
use crate::secret::{ServerSecret, TokenDigest, b64url, b64url_decode};

/// How the client carries a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    /// An opaque secret in an HttpOnly cookie.
    Cookie,
    /// A short-lived signed access token plus a rotating refresh token.
    Token,
}

impl SessionKind {
    /// The contract's name for the kind.
    pub fn as_str(&self) -> &'static str {
        match self {
            SessionKind::Cookie => "cookie",
            SessionKind::Token => "token",
        }
    }

    /// Parses the contract's name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "cookie" => Some(SessionKind::Cookie),
            "token" => Some(SessionKind::Token),
            _ => None,
        }
    }
}

/// Where a login came from, as shown in the device list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The `User-Agent` of the login request, truncated.
    pub user_agent: Option<String>,
    /// The client address of the login request.
    pub ip: Option<String>,
}

impl ClientInfo {
    /// Longest user agent kept, in bytes.
    pub const MAX_USER_AGENT: usize = 512;

    /// Builds client info, truncating an over-long user agent at a character boundary.
    pub fn new(user_agent: Option<&str>, ip: Option<String>) -> Self {
        let user_agent = user_agent.map(|ua| {
            let mut end = ua.len().min(Self::MAX_USER_AGENT);
            while !ua.is_char_boundary(end) {
                end -= 1;
            }
            ua[..end].to_owned()
        });
        Self { user_agent, ip }
    }
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Public id.
    pub id: SessionId,
    /// Whose session it is.
    pub user_id: UserId,
    /// Cookie or token.
    pub kind: SessionKind,
    /// Digest of the cookie secret (cookie sessions only).
    pub secret_digest: Option<TokenDigest>,
    /// Number of rotations so far (token sessions); the current refresh token is derived from
    /// it, so nothing secret is stored per token.
    pub refresh_counter: u64,
    /// When the last rotation happened, which starts the grace window for the token it
    /// retired.
    pub rotated_at: Option<OffsetDateTime>,
    /// When the session was made.
    pub created_at: OffsetDateTime,
    /// Last activity recorded (moves at most once per touch interval).
    pub last_seen_at: OffsetDateTime,
    /// When the session ends whatever the activity.
    pub absolute_expires_at: OffsetDateTime,
    /// Idle limit for this session's kind.
    pub idle_timeout: Duration,
    /// The login's client.
    pub client: ClientInfo,
    /// Set once revoked; revoked sessions never come back.
    pub revoked_at: Option<OffsetDateTime>,
}

impl Session {
    /// When the session ends if nothing happens before.
    pub fn idle_expires_at(&self) -> OffsetDateTime {
        self.last_seen_at + self.idle_timeout
    }

    /// When the session ends: the earlier of the idle and absolute limits.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.idle_expires_at().min(self.absolute_expires_at)
    }

    /// Whether the session can still be used at `now`.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && now < self.expires_at()
    }
}

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

    #[test]
    fn user_agents_are_truncated_at_a_character_boundary() {
        let long = "é".repeat(400);
        let info = ClientInfo::new(Some(&long), None);
        let kept = info.user_agent.unwrap_or_default();
        assert!(kept.len() <= ClientInfo::MAX_USER_AGENT);
        assert!(kept.chars().all(|c| c == 'é'));
    }
}
