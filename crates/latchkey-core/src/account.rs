//! Accounts: who can log in.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use crate::password::PasswordHash;

/// A user's stable public identifier (the `sub` of access tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(Uuid);

impl UserId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    /// Parses the textual form; `None` for anything that is not a UUID.
    pub fn parse(text: &str) -> Option<Self> {
        Uuid::try_parse(text).ok().map(Self)
    }

    /// The underlying UUID, for stores.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// Rebuilds an id read back from a store.
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Why a username was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// Fewer than 3 or more than 64 characters after normalisation.
    #[error("a username has 3 to 64 characters")]
    Length,
    /// Control characters or whitespace are not allowed.
    #[error("a username may not contain control characters or spaces")]
    ForbiddenCharacter,
}

/// A username, normalised (Unicode NFKC, then lowercase) so that look-alike spellings of the
/// same name are one account. Valid by construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    /// Shortest accepted username, in Unicode scalar values.
    pub const MIN_CHARS: usize = 3;
    /// Longest accepted username, in Unicode scalar values.
    pub const MAX_CHARS: usize = 64;

    /// Normalises and checks a username as typed.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        // Cap the work before normalising: NFKC can expand, but never a 1 KiB string into
        // anything we would accept.
        if raw.len() > Self::MAX_CHARS * 16 {
            return Err(UsernameError::Length);
        }
        let normalised: String = raw.nfkc().collect::<String>().to_lowercase();
        let chars = normalised.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&chars) {
            return Err(UsernameError::Length);
        }
        if normalised.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(UsernameError::ForbiddenCharacter);
        }
        Ok(Self(normalised))
    }

    /// Rebuilds a username a store wrote; it was valid when written.
    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_with_nfkc_and_lowercase() {
        let fullwidth = Username::parse("ＡＬＩＣＥ").map(|u| u.as_str().to_owned());
        assert_eq!(fullwidth, Ok("alice".to_owned()));
    }

    #[test]
    fn usernames_outside_the_length_bounds_are_refused() {
        assert_eq!(Username::parse("ab"), Err(UsernameError::Length));
        assert!(Username::parse(&"a".repeat(64)).is_ok());
        assert_eq!(Username::parse(&"a".repeat(65)), Err(UsernameError::Length));
        // 3 scalar values, 9 bytes: lengths count characters, not bytes.
        assert!(Username::parse("日本語").is_ok());
    }

    #[test]
    fn usernames_with_control_characters_are_refused() {
        assert_eq!(Username::parse("al\u{0007}ice"), Err(UsernameError::ForbiddenCharacter));
        assert_eq!(Username::parse("al ice"), Err(UsernameError::ForbiddenCharacter));
    }
}
