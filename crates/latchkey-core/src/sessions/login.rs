//! Logging in: a checked password becomes a new session of the kind the client asked for,
//! within the sessions-per-user cap; and the user's list of live sessions.

use super::{ClientInfo, Session, SessionId, SessionKind};
use crate::accounts::{Account, UserId};
use crate::audit::{AuditEvent, AuditKind};
use crate::error::AuthError;
use crate::latchkey::Latchkey;
use crate::revocation::{RevocationCause, RevokeScope};
use crate::secret::SecretToken;
use crate::tokens::TokenPair;

/// What a login hands to the client.
#[derive(Debug)]
pub enum Credential {
    /// A cookie session's secret.
    Cookie(SecretToken),
    /// A token session's pair.
    Tokens(TokenPair),
}

/// A successful login.
#[derive(Debug)]
pub struct Login {
    /// Who logged in.
    pub account: Account,
    /// The new session.
    pub session: Session,
    /// Its credential.
    pub credential: Credential,
    /// The session's CSRF token (for cookie-carried credentials).
    pub csrf_token: String,
}

impl Latchkey {
    /// Logs in: checks the password and mints a new session of `kind`. Never reuses a
    /// credential the client already held.
    pub async fn log_in(
        &self,
        username: &str,
        password: String,
        kind: SessionKind,
        client: ClientInfo,
    ) -> Result<Login, AuthError> {
        let address = client.ip.as_deref().and_then(|ip| ip.parse().ok());
        let account = self.check_password(username, password, address).await?;
        let now = self.now();
        let policy = &self.inner.policy;
        let cookie_secret = (kind == SessionKind::Cookie).then(SecretToken::generate);
        let secret_digest = cookie_secret.as_ref().map(SecretToken::digest);
        let session = Session {
            id: secret_digest.as_ref().map_or_else(SessionId::generate, SessionId::for_cookie),
            user_id: account.id,
            kind,
            secret_digest,
            refresh_counter: 0,
            rotated_at: None,
            created_at: now,
            last_seen_at: now,
            absolute_expires_at: now + policy.absolute_timeout(kind),
            idle_timeout: policy.idle_timeout(kind),
            client,
            revoked_at: None,
            app: None,
        };
        self.inner.stores.sessions.insert(&session).await?;
        let credential = match cookie_secret {
            Some(secret) => Credential::Cookie(secret),
            None => Credential::Tokens(self.issue_tokens(&session, &account.username)?),
        };
        let csrf_token = self.csrf_token(session.id);
        let event = AuditEvent::new(AuditKind::LoginSucceeded, now)
            .user(account.id, &account.username)
            .session(session.id)
            .ip(session.client.ip.as_deref())
            .detail(kind.as_str());
        self.audit(event).await;
        self.end_sessions_past_the_cap(account.id, &session).await?;
        Ok(Login { account, session, credential, csrf_token })
    }

    /// Keeps a user within [`Policy::max_sessions_per_user`]: the sessions used longest ago
    /// (by recorded last use, then by creation) end, never the one just made nor, for an app's
    /// session, the sign-in it belongs to (ending that would end the new session with it).
    /// Audited as revocations with the cause `session_limit`.
    pub(crate) async fn end_sessions_past_the_cap(&self, user: UserId, newest: &Session) -> Result<(), AuthError> {
        let cap = usize::try_from(self.inner.policy.max_sessions_per_user).unwrap_or(usize::MAX).max(1);
        let now = self.now();
        // A count first: most logins are within the cap, and then no session needs reading.
        let at_most = self.inner.stores.sessions.count_live_of(user, now).await?;
        if usize::try_from(at_most).is_ok_and(|count| count <= cap) {
            return Ok(());
        }
        let mut live = self.inner.stores.sessions.list_live(user, now).await?;
        if live.len() <= cap {
            return Ok(());
        }
        let excess = live.len() - cap;
        let sign_in = newest.app.as_ref().map(|app| app.sso_session);
        live.retain(|session| session.id != newest.id && Some(session.id) != sign_in);
        live.sort_by_key(|session| (session.last_seen_at, session.created_at));
        for session in live.iter().take(excess) {
            self.revoke(RevokeScope::OneOf { user, session: session.id }, RevocationCause::SessionLimit).await?;
        }
        Ok(())
    }

    /// A user's live sessions, newest first.
    pub async fn sessions(&self, user: UserId) -> Result<Vec<Session>, AuthError> {
        Ok(self.inner.stores.sessions.list_live(user, self.now()).await?)
    }

    /// Number of live sessions, both kinds, where the store counts them.
    pub async fn count_live_sessions(&self) -> Result<Option<u64>, AuthError> {
        Ok(self.inner.stores.sessions.count_live(self.now()).await?)
    }
}
