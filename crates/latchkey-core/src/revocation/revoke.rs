//! Ending sessions: revoking by scope (into the store's log and this instance's denylist at
//! once), a user's own device, an RFC 7009 token, and logout.

use super::{Revocation, RevocationCause, RevokeScope};
use crate::audit::{AuditEvent, AuditKind};
use crate::error::AuthError;
use crate::ids::{ClientId, SessionId};
use crate::latchkey::Latchkey;
use crate::sessions::{Caller, SessionKind};
use crate::tokens::RefreshToken;
use tracing::warn;

/// Which sessions a logout ends; the contract's `scope`, `current` when absent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogoutScope {
    /// The caller's own.
    #[default]
    Current,
    /// Every other session of the caller's.
    Others,
    /// All of the caller's sessions.
    All,
}

impl LogoutScope {
    /// The contract's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Others => "others",
            Self::All => "all",
        }
    }
}

impl Latchkey {
    /// Revokes sessions for `cause`; on this instance their credentials are refused from the
    /// moment this returns.
    pub async fn revoke(&self, scope: RevokeScope, cause: RevocationCause) -> Result<Vec<Revocation>, AuthError> {
        let now = self.now();
        let policy = &self.inner.policy;
        let until = |kind: SessionKind| match kind {
            SessionKind::Token => now + policy.access_token_window(),
            SessionKind::Cookie => now + policy.cookie_cache_ttl,
        };
        let revoked = self.inner.stores.sessions.revoke(scope, now, &until).await?;
        // The owner's id comes with the scope; no lookup on the revocation path for the trail.
        let owner = match scope {
            RevokeScope::One(_) => None,
            RevokeScope::OneOf { user, .. }
            | RevokeScope::AllOf(user)
            | RevokeScope::AllOfExcept(user, _)
            | RevokeScope::UnderSignIn { user, .. } => Some(user),
        };
        for entry in &revoked {
            self.inner.revocations.denylist.insert(entry.session_id, entry.until);
            self.inner.sessions.profiles.invalidate(&entry.session_id);
        }
        for entry in &revoked {
            let mut event =
                AuditEvent::new(AuditKind::SessionRevoked, now).session(entry.session_id).detail(cause.as_str());
            event.user_id = owner;
            self.audit(event).await;
        }
        if !revoked.is_empty() {
            // Publishes the new log entries (in log order) to feed subscribers now rather than
            // at the next periodic sync. The revocation itself is already in force; a failure
            // here only delays the feed until that sync.
            if let Err(err) = self.sync_revocations().await {
                warn!(error = %err, "publishing revocations failed; the next sync will");
            }
        }
        // After the feed: apps that verify tokens themselves learn of the revocation first.
        self.sign_ins_ended(&revoked).await;
        Ok(revoked)
    }

    /// Revokes one of the caller's sessions; `NotFound` when it is not theirs.
    pub async fn revoke_own(&self, caller: &Caller, session: SessionId) -> Result<(), AuthError> {
        let revoked =
            self.revoke(RevokeScope::OneOf { user: caller.user_id, session }, RevocationCause::DeviceRevoked).await?;
        if revoked.is_empty() { Err(AuthError::NotFound) } else { Ok(()) }
    }

    /// RFC 7009: revokes the session of a refresh or access token, if it is one of ours.
    /// Unknown tokens are not an error. An app's token is revoked only by that app (`client`,
    /// authenticated by the caller): without client authentication it is `InvalidClient`, and
    /// from another app, or an app's request for a first-party token, nothing happens (as for
    /// an unknown token).
    pub async fn revoke_token(&self, token: &str, client: Option<&ClientId>) -> Result<(), AuthError> {
        // An access token names its app itself; a refresh token's app is in its session.
        let (session, issued_to) = match RefreshToken::decode(token, &self.inner.server_secret) {
            Some(refresh) => {
                let app = self.inner.stores.sessions.get(refresh.session_id).await?.and_then(|session| session.app);
                (Some(refresh.session_id), app.map(|app| app.client_id))
            }
            None => match self.verify_access_token(token, self.now()).await? {
                Ok(claims) => (SessionId::parse(&claims.sid), claims.client_id.as_deref().and_then(ClientId::parse)),
                Err(_) => (None, None),
            },
        };
        let Some(session) = session else { return Ok(()) };
        match (issued_to.as_ref(), client) {
            (Some(_), None) => return Err(AuthError::InvalidClient),
            (issued_to, client) if issued_to != client => return Ok(()),
            _ => {}
        }
        self.revoke(RevokeScope::One(session), RevocationCause::TokenRevoked).await?;
        Ok(())
    }

    /// Logs the caller out of the sessions `scope` names.
    pub async fn log_out(&self, caller: &Caller, scope: LogoutScope) -> Result<(), AuthError> {
        let revoke = match scope {
            LogoutScope::Current => RevokeScope::One(caller.session_id),
            LogoutScope::Others => RevokeScope::AllOfExcept(caller.user_id, caller.session_id),
            LogoutScope::All => RevokeScope::AllOf(caller.user_id),
        };
        let event = AuditEvent::new(AuditKind::Logout, self.now())
            .user(caller.user_id, &caller.username)
            .session(caller.session_id)
            .detail(scope.as_str());
        self.audit(event).await;
        self.revoke(revoke, RevocationCause::Logout).await?;
        Ok(())
    }
}
