//! Sessions: one login on one device, carried either as a cookie or as tokens (the one
//! concept). Here are the session record and its expiry rules, the session store, logging in
//! (with the sessions-per-user cap), checking a cookie session (with its cache and CSRF token),
//! the caller a check yields with the profile it may see, and the data an app keeps in a
//! session.
//!
//! Not here: what a token session hands out and how it is refreshed ([`crate::tokens`]), and how
//! a session ends early ([`crate::revocation`]).
//!
//! Without the `server` feature only the record is compiled (a verifier needs no more).

#[cfg(feature = "server")]
mod caller;
#[cfg(feature = "server")]
mod cookie;
#[cfg(feature = "server")]
mod data;
#[cfg(feature = "server")]
mod login;
#[cfg(feature = "server")]
mod store;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

pub use crate::ids::SessionId;
use crate::ids::{ClientId, UserId};
use crate::secret::TokenDigest;
#[cfg(feature = "server")]
pub use caller::{Caller, Profile};
#[cfg(feature = "server")]
pub(crate) use cookie::SessionCaches;
#[cfg(feature = "server")]
pub use data::{DataChange, DataError, DataTag, DataWrite, MAX_DATA_BYTES, Precondition, SessionData, StoredData};
#[cfg(feature = "server")]
pub use login::{Credential, Login};
#[cfg(feature = "server")]
pub use store::{Rotation, SessionStore};

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
    /// Set when this is an app's session under a sign-in at latchkey (single sign-on).
    pub app: Option<AppSession>,
}

/// What makes a token session an app's (single sign-on): which app, the sign-in at latchkey
/// (the SSO session) it was authorized under and ends with, and what the app may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSession {
    /// The app.
    pub client_id: ClientId,
    /// The user's cookie session at latchkey that the app's authorization came from.
    pub sso_session: SessionId,
    /// The scopes granted, `openid` first.
    pub scopes: Vec<String>,
}

impl AppSession {
    /// The scopes as the `scope` claim and parameter spell them: space-separated.
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_truncated_at_a_character_boundary() {
        let long = "é".repeat(400);
        let info = ClientInfo::new(Some(&long), None);
        let kept = info.user_agent.unwrap_or_default();
        assert!(kept.len() <= ClientInfo::MAX_USER_AGENT);
        assert!(kept.chars().all(|c| c == 'é'));
    }
}
