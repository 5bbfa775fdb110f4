//! Introspection: whether a token latchkey issued is active right now (RFC 7662's question,
//! also userinfo's): an access token or a session's current refresh token, of a live,
//! unrevoked session of an enabled account, checked in the store rather than only in this
//! instance's memory, since these answers are the authoritative ones.

use super::RefreshToken;
use crate::error::AuthError;
use crate::ids::SessionId;
use crate::latchkey::Latchkey;
use crate::sessions::{Session, SessionKind};

/// A token that is active.
#[derive(Debug, Clone)]
pub struct ActiveToken {
    /// The session it belongs to.
    pub session: Session,
    /// Its owner's name.
    pub username: String,
    /// Whether it is an access token (else the session's current refresh token).
    pub access: bool,
    /// When it expires, seconds since the epoch.
    pub exp: i64,
    /// When it was issued, seconds since the epoch.
    pub iat: i64,
}

impl Latchkey {
    /// What `token` (an access token, or a session's current refresh token) is, if it is
    /// active: signed by latchkey, unexpired, of a live, unrevoked session of an enabled
    /// account. `None` for anything else, whatever the reason.
    pub async fn inspect_token(&self, token: &str) -> Result<Option<ActiveToken>, AuthError> {
        let now = self.now();
        // A refresh token names its session and its rotation; only the current one is active.
        let (session_id, rotation, exp, iat) = match RefreshToken::decode(token, &self.inner.server_secret) {
            Some(refresh) => (refresh.session_id, Some(refresh.counter), None, None),
            None => match self.verify_access_token(token, now).await? {
                Ok(claims) => match SessionId::parse(&claims.sid) {
                    Some(id) => (id, None, Some(claims.exp), Some(claims.iat)),
                    None => return Ok(None),
                },
                Err(_) => return Ok(None),
            },
        };
        if self.inner.revocations.denylist.denies(session_id, now) {
            return Ok(None);
        }
        let stores = &self.inner.stores;
        let Some(session) = stores.sessions.get(session_id).await?.filter(|session| session.is_live(now)) else {
            return Ok(None);
        };
        if rotation.is_some_and(|counter| session.kind != SessionKind::Token || counter != session.refresh_counter) {
            return Ok(None);
        }
        let Some(account) = stores.accounts.by_id(session.user_id).await?.filter(|account| !account.disabled) else {
            return Ok(None);
        };
        let exp = exp.unwrap_or_else(|| session.expires_at().unix_timestamp());
        let iat = iat.unwrap_or_else(|| session.rotated_at.unwrap_or(session.created_at).unix_timestamp());
        let access = rotation.is_none();
        Ok(Some(ActiveToken { username: account.username.as_str().to_owned(), session, access, exp, iat }))
    }
}
