//! The audit trail: every security event as a structured record, kept by the store
//! ([`AuditLog`]) and written to the log under the `latchkey::audit` target.
//!
//! A record names who and what (user id and name, session, client address, a reason) and never
//! a secret: no password, token, cookie or CSRF token, and for a login on a name that is no
//! account not even the name, since people type passwords into username fields.
//!
//! Not here: deciding what is audited (each concept records its own events through
//! `Latchkey::audit`), and why a session was revoked ([`crate::revocation::RevocationCause`]).

use std::fmt;

use time::OffsetDateTime;

use async_trait::async_trait;
use tracing::{info, warn};

use crate::accounts::Username;
use crate::error::AuthError;
use crate::ids::{SessionId, UserId};
use crate::latchkey::Latchkey;
use crate::store::error::StoreError;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    /// An account was created.
    SignUp,
    /// A login made a session.
    LoginSucceeded,
    /// A login was refused (wrong password, unknown user, disabled account).
    LoginFailed,
    /// A counter of failed attempts reached its allowance: attempts now wait.
    Throttled,
    /// A user logged out (the scope is the detail).
    Logout,
    /// A session was revoked (why is the detail).
    SessionRevoked,
    /// A retired refresh token came back outside the grace window.
    RefreshReuseDetected,
    /// A user changed their password.
    PasswordChanged,
    /// An administrator disabled an account.
    UserDisabled,
    /// A new signing key took over.
    KeyRotated,
    /// A user allowed an app (the client id is the detail).
    ConsentGiven,
    /// A user pressed "Deny" on an app's consent page (the client id is the detail).
    ConsentDenied,
    /// A user withdrew an app's consent (the client id is the detail).
    ConsentWithdrawn,
    /// An app redeemed a code for a session of its own (the client id is the detail).
    AppAuthorized,
    /// A code was refused at the token endpoint (the reason is the detail).
    CodeRefused,
    /// An app did not accept a back-channel logout token (the app, attempt and reason are the
    /// detail).
    LogoutDeliveryFailed,
}

impl AuditKind {
    /// Every kind, for listings and parsing.
    pub const ALL: [AuditKind; 16] = [
        Self::SignUp,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::Throttled,
        Self::Logout,
        Self::SessionRevoked,
        Self::RefreshReuseDetected,
        Self::PasswordChanged,
        Self::UserDisabled,
        Self::KeyRotated,
        Self::ConsentGiven,
        Self::ConsentDenied,
        Self::ConsentWithdrawn,
        Self::AppAuthorized,
        Self::CodeRefused,
        Self::LogoutDeliveryFailed,
    ];

    /// The stable name stores and the CLI use.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::SignUp => "sign_up",
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::Throttled => "throttled",
            Self::Logout => "logout",
            Self::SessionRevoked => "session_revoked",
            Self::RefreshReuseDetected => "refresh_reuse_detected",
            Self::PasswordChanged => "password_changed",
            Self::UserDisabled => "user_disabled",
            Self::KeyRotated => "key_rotated",
            Self::ConsentGiven => "consent_given",
            Self::ConsentDenied => "consent_denied",
            Self::ConsentWithdrawn => "consent_withdrawn",
            Self::AppAuthorized => "app_authorized",
            Self::CodeRefused => "code_refused",
            Self::LogoutDeliveryFailed => "logout_delivery_failed",
        }
    }

    /// The kind of a stable name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One security event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When.
    pub at: OffsetDateTime,
    /// What.
    pub kind: AuditKind,
    /// Whose account, when one is concerned.
    pub user_id: Option<UserId>,
    /// Its name.
    pub username: Option<Username>,
    /// The session concerned.
    pub session_id: Option<SessionId>,
    /// The client address of the request, when the event came from one.
    pub ip: Option<String>,
    /// A short machine-readable reason or scope (`wrong_password`, `all`, a key id, ...).
    pub detail: Option<String>,
}

impl AuditEvent {
    /// An event of `kind` at `at` with nothing else known yet.
    pub fn new(kind: AuditKind, at: OffsetDateTime) -> Self {
        Self { at, kind, user_id: None, username: None, session_id: None, ip: None, detail: None }
    }

    /// With the account concerned.
    pub fn user(mut self, id: UserId, username: &Username) -> Self {
        self.user_id = Some(id);
        self.username = Some(username.clone());
        self
    }

    /// With the account concerned, when only its id is at hand.
    pub fn user_id(mut self, id: UserId) -> Self {
        self.user_id = Some(id);
        self
    }

    /// With the session concerned.
    pub fn session(mut self, id: SessionId) -> Self {
        self.session_id = Some(id);
        self
    }

    /// With the client address.
    pub fn ip(mut self, ip: Option<&str>) -> Self {
        self.ip = ip.map(str::to_owned);
        self
    }

    /// With a reason or scope.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// Which events a listing returns, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this user's.
    pub user: Option<UserId>,
    /// Only this kind.
    pub kind: Option<AuditKind>,
    /// Only at or after this.
    pub since: Option<OffsetDateTime>,
    /// Only before this.
    pub until: Option<OffsetDateTime>,
    /// At most this many.
    pub limit: u32,
}

impl Default for AuditFilter {
    fn default() -> Self {
        Self { user: None, kind: None, since: None, until: None, limit: 100 }
    }
}

impl AuditFilter {
    /// Whether `event` passes the filter (the limit aside): the one reading of a filter, for
    /// stores that filter in memory and for tests.
    pub fn admits(&self, event: &AuditEvent) -> bool {
        self.user.is_none_or(|user| event.user_id == Some(user))
            && self.kind.is_none_or(|kind| event.kind == kind)
            && self.since.is_none_or(|since| event.at >= since)
            && self.until.is_none_or(|until| event.at < until)
    }
}

/// The audit trail: security events, durable, listed newest first.
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Appends an event.
    async fn record(&self, event: &AuditEvent) -> Result<(), StoreError>;
    /// The events that pass `filter`, newest first, at most `filter.limit`.
    async fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError>;
}

impl Latchkey {
    /// Records a security event in the store's audit trail and in the log. A trail that cannot
    /// be written does not fail the request it describes (the log still has the event).
    pub(crate) async fn audit(&self, event: AuditEvent) {
        info!(
            target: "latchkey::audit",
            event = event.kind.as_str(),
            user.id = event.user_id.map(|id| id.to_string()),
            user.name = event.username.as_ref().map(Username::as_str),
            session.id = event.session_id.map(|id| id.to_string()),
            client.ip = event.ip.as_deref(),
            detail = event.detail.as_deref(),
            "audit"
        );
        if let Err(err) = self.inner.stores.audit.record(&event).await {
            warn!(error = %err, event = event.kind.as_str(), "the audit trail could not be written");
        }
    }

    /// The audit trail's events that pass `filter`, newest first.
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, AuthError> {
        Ok(self.inner.stores.audit.list(filter).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for kind in AuditKind::ALL {
            assert_eq!(AuditKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(AuditKind::parse("nonsense"), None);
    }

    #[test]
    fn a_filter_admits_by_user_kind_and_time() {
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let user = UserId::generate();
        let name = Username::parse("alice").unwrap_or_else(|err| panic!("{err}"));
        let event = AuditEvent::new(AuditKind::LoginFailed, at).user(user, &name);
        assert!(AuditFilter::default().admits(&event));
        assert!(AuditFilter { user: Some(user), ..AuditFilter::default() }.admits(&event));
        assert!(!AuditFilter { user: Some(UserId::generate()), ..AuditFilter::default() }.admits(&event));
        assert!(!AuditFilter { kind: Some(AuditKind::Logout), ..AuditFilter::default() }.admits(&event));
        assert!(
            AuditFilter { since: Some(at), until: Some(at + time::Duration::SECOND), ..AuditFilter::default() }
                .admits(&event)
        );
        assert!(!AuditFilter { until: Some(at), ..AuditFilter::default() }.admits(&event));
    }
}
