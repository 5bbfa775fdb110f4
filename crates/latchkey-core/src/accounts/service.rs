//! The service's account operations: sign-up, the password check every login and password
//! change goes through (throttled, audited), changing a password, disabling an account.

use std::net::IpAddr;

use time::OffsetDateTime;

use super::{Account, CreateAccount, Password, UserId, Username};
use crate::audit::{AuditEvent, AuditKind};
use crate::error::AuthError;
use crate::latchkey::Latchkey;
use crate::revocation::{RevocationCause, RevokeScope};
use crate::sessions::Caller;
use crate::throttle::{Admission, AttemptKeys};

impl Latchkey {
    /// Creates an account.
    pub async fn sign_up(&self, username: &str, password: String) -> Result<Account, AuthError> {
        let username = Username::parse_new(username)?;
        let password = Password::parse_new(password, username.as_str())?;
        let account = Account {
            id: UserId::generate(),
            username,
            password_hash: self.inner.hasher.hash(&password).await?,
            created_at: self.now(),
            disabled: false,
        };
        match self.inner.stores.accounts.create(&account).await? {
            CreateAccount::Created => {
                self.audit(AuditEvent::new(AuditKind::SignUp, account.created_at).user(account.id, &account.username))
                    .await;
                Ok(account)
            }
            CreateAccount::UsernameTaken => Err(AuthError::UsernameTaken),
        }
    }

    /// Checks a username and password presented from `address`. Unknown users, wrong
    /// passwords and disabled accounts cost the same Argon2 work and give the same answer; a
    /// password longer than any password can be is refused without hashing. Throttled
    /// attempts are refused before any of that (see [`crate::throttle`]).
    pub async fn check_password(
        &self,
        username: &str,
        password: String,
        address: Option<IpAddr>,
    ) -> Result<Account, AuthError> {
        let hasher = &self.inner.hasher;
        let password = Password::parse_presented(password);
        let username = Username::parse(username).map_err(|_| username.to_owned());
        let keys = AttemptKeys::new(
            &self.inner.server_secret,
            username.as_ref().map_or_else(String::as_str, Username::as_str),
            address,
            password.as_ref().map(Password::as_bytes),
        );
        let now = self.now();
        let admission = self.inner.throttle.admit(&keys, now).await?.map_err(AuthError::Throttled)?;
        let account = match &username {
            Ok(username) => self.inner.stores.accounts.by_username(username).await?,
            Err(_) => None,
        };
        let matched = match &password {
            Some(password) => hasher.verify(password, account.as_ref().map(|a| &a.password_hash)).await?,
            None => false,
        };
        let refusal = match (&account, &password) {
            (None, _) => Some("unknown_user"),
            (Some(_), None) => Some("password_too_long"),
            (Some(_), Some(_)) if !matched => Some("wrong_password"),
            (Some(account), Some(_)) if account.disabled => Some("disabled"),
            _ => None,
        };
        let ip = address.map(|ip| ip.to_string());
        let (account, password) = match (account, password, refusal) {
            (Some(account), Some(password), None) => (account, password),
            (account, _, refusal) => {
                let mut event = AuditEvent::new(AuditKind::LoginFailed, now).ip(ip.as_deref());
                if let Some(account) = &account {
                    event = event.user(account.id, &account.username);
                }
                self.audit(event.detail(refusal.unwrap_or("refused"))).await;
                self.attempt_failed(&keys, admission, self.now(), ip.as_deref()).await?;
                return Err(AuthError::InvalidCredentials);
            }
        };
        self.inner.throttle.succeeded(&keys, admission).await?;
        if hasher.needs_rehash(&account.password_hash) {
            let upgraded = hasher.hash(&password).await?;
            self.inner.stores.accounts.set_password_hash(account.id, &upgraded).await?;
        }
        Ok(account)
    }

    /// Counts a failed attempt and audits the counters it brought to their allowance.
    async fn attempt_failed(
        &self,
        keys: &AttemptKeys,
        admission: Admission,
        now: OffsetDateTime,
        ip: Option<&str>,
    ) -> Result<(), AuthError> {
        for scope in self.inner.throttle.failed(keys, admission, now).await? {
            self.audit(AuditEvent::new(AuditKind::Throttled, now).ip(ip).detail(scope.as_str())).await;
        }
        Ok(())
    }

    /// Changes the caller's password and revokes every other session of theirs.
    pub async fn change_password(&self, caller: &Caller, current: String, new: String) -> Result<(), AuthError> {
        let account = self.inner.stores.accounts.by_id(caller.user_id).await?.ok_or(AuthError::InvalidCredentials)?;
        // The current password is guessed against the account's counter too: a stolen session
        // must not become an unthrottled password oracle.
        let keys = AttemptKeys::new(&self.inner.server_secret, account.username.as_str(), None, None);
        let now = self.now();
        let admission = self.inner.throttle.admit(&keys, now).await?.map_err(AuthError::Throttled)?;
        let current = Password::parse_presented(current);
        let matched = match &current {
            Some(current) => self.inner.hasher.verify(current, Some(&account.password_hash)).await?,
            None => false,
        };
        if !matched {
            let event = AuditEvent::new(AuditKind::LoginFailed, now)
                .user(account.id, &account.username)
                .session(caller.session_id)
                .detail("wrong_current_password");
            self.audit(event).await;
            self.attempt_failed(&keys, admission, self.now(), None).await?;
            return Err(AuthError::WrongCurrentPassword);
        }
        self.inner.throttle.succeeded(&keys, admission).await?;
        let new = Password::parse_new(new, account.username.as_str())?;
        let hash = self.inner.hasher.hash(&new).await?;
        self.inner.stores.accounts.set_password_hash(account.id, &hash).await?;
        let event = AuditEvent::new(AuditKind::PasswordChanged, now)
            .user(account.id, &account.username)
            .session(caller.session_id);
        self.audit(event).await;
        self.revoke(RevokeScope::AllOfExcept(account.id, caller.session_id), RevocationCause::PasswordChanged).await?;
        Ok(())
    }

    /// Disables an account and revokes all its sessions; `NotFound` when no such user.
    pub async fn disable_user(&self, username: &str) -> Result<Account, AuthError> {
        let account = self.account_by_name(username).await?.ok_or(AuthError::NotFound)?;
        self.inner.stores.accounts.set_disabled(account.id, true).await?;
        self.audit(AuditEvent::new(AuditKind::UserDisabled, self.now()).user(account.id, &account.username)).await;
        self.revoke(RevokeScope::AllOf(account.id), RevocationCause::UserDisabled).await?;
        Ok(Account { disabled: true, ..account })
    }

    /// An account by id.
    pub async fn account(&self, id: UserId) -> Result<Option<Account>, AuthError> {
        Ok(self.inner.stores.accounts.by_id(id).await?)
    }

    /// An account by username.
    pub async fn account_by_name(&self, username: &str) -> Result<Option<Account>, AuthError> {
        let Ok(username) = Username::parse(username) else { return Ok(None) };
        Ok(self.inner.stores.accounts.by_username(&username).await?)
    }

    /// Every account.
    pub async fn accounts(&self) -> Result<Vec<Account>, AuthError> {
        Ok(self.inner.stores.accounts.list().await?)
    }
}
