//! Accounts and passwords: who can log in, the rules for usernames and new passwords, Argon2id
//! hashing on its own pool, the account store, and the service's sign-up, password check,
//! password change and disabling.
//!
//! Not here: sessions (a login makes one, see [`crate::sessions`]) and the throttling of
//! password attempts ([`crate::throttle`]).

mod hasher;
mod password;
mod service;
mod username;

use std::fmt;

use async_trait::async_trait;
use time::OffsetDateTime;

pub use crate::ids::UserId;
use crate::store::StoreError;
pub use hasher::{Argon2Settings, HashError, PasswordHash, PasswordHasher};
pub use password::{Password, PasswordError};
pub use username::{Username, UsernameError};

/// An account as stored.
#[derive(Clone)]
pub struct Account {
    /// Stable id.
    pub id: UserId,
    /// Normalised username.
    pub username: Username,
    /// Argon2id PHC string.
    pub password_hash: PasswordHash,
    /// When the account was made.
    pub created_at: OffsetDateTime,
    /// A disabled account cannot log in and has no live sessions.
    pub disabled: bool,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("created_at", &self.created_at)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// What creating an account can run into besides failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateAccount {
    /// The account was stored.
    Created,
    /// Another account already has the username.
    UsernameTaken,
}

/// Accounts.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Stores a new account unless its username is taken (atomically).
    async fn create(&self, account: &Account) -> Result<CreateAccount, StoreError>;
    /// Looks an account up by normalised username.
    async fn by_username(&self, username: &Username) -> Result<Option<Account>, StoreError>;
    /// Looks an account up by id.
    async fn by_id(&self, id: UserId) -> Result<Option<Account>, StoreError>;
    /// Every account, oldest first.
    async fn list(&self) -> Result<Vec<Account>, StoreError>;
    /// Replaces the password hash.
    async fn set_password_hash(&self, id: UserId, hash: &PasswordHash) -> Result<(), StoreError>;
    /// Disables or re-enables an account; `false` when no such account.
    async fn set_disabled(&self, id: UserId, disabled: bool) -> Result<bool, StoreError>;
}
