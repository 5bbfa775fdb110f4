//! The rules a new password must meet, and the password as a type that never prints.

use std::fmt;

use zeroize::Zeroizing;
use zxcvbn::matching::patterns::MatchPattern;

/// Why a password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Fewer than 8 characters.
    #[error("a password has at least 8 characters")]
    TooShort,
    /// More than 256 characters.
    #[error("a password has at most 256 characters")]
    TooLong,
    /// On the list of passwords every attacker tries first.
    #[error("this password is too common")]
    Common,
}

/// Words that make a password easy to guess here in particular, whatever the breach lists say.
const CONTEXT_WORDS: &[&str] = &["latchkey", "latchkey1", "latchkey123"];

/// Longest password that can be a whole entry of the breach list (its entries are short): longer
/// ones skip the look-up.
const LONGEST_LISTED: usize = 64;

/// Whether `password` is one attackers try first: an entry of the 30,000 most common passwords
/// of the published breach corpus that zxcvbn ships (matched whole, whatever the case, also
/// reversed or with l33t substitutions, as cracking tools try them), the username, or a word
/// of this service.
fn is_common(password: &str, username: &str) -> bool {
    let lowered = password.to_lowercase();
    if lowered == username || CONTEXT_WORDS.contains(&lowered.as_str()) {
        return true;
    }
    let chars = lowered.chars().count();
    if chars > LONGEST_LISTED {
        return false;
    }
    // Lowered, so that capitals (which zxcvbn scores as extra guesses) cannot hide an entry.
    let estimate = zxcvbn::zxcvbn(&lowered, &[]);
    match estimate.sequence() {
        // zxcvbn's dictionaries are told apart by `DictionaryType`, which it does not export
        // by name; its default is the breached-passwords list (checked by a unit test below).
        [whole] if whole.i == 0 && whole.j + 1 == chars => {
            matches!(&whole.pattern, MatchPattern::Dictionary(dictionary) if dictionary.dictionary_name == Default::default())
        }
        _ => false,
    }
}

/// A password as the user sent it. Never printed, zeroized on drop, compared only through its
/// hash.
pub struct Password(Zeroizing<String>);

impl Password {
    /// Shortest accepted password, in Unicode scalar values.
    pub const MIN_CHARS: usize = 8;
    /// Longest accepted password, in Unicode scalar values; checked before any hashing so a
    /// huge password costs nothing.
    pub const MAX_CHARS: usize = 256;

    /// Checks a new password of the user named `username` against the policy (length; not a
    /// common password, not the username). There are no composition rules and nothing is
    /// truncated.
    pub fn parse_new(raw: String, username: &str) -> Result<Self, PasswordError> {
        let raw = Zeroizing::new(raw);
        let candidate = Self::parse_presented(raw.to_string()).ok_or(PasswordError::TooLong)?;
        let chars = candidate.0.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        if is_common(&candidate.0, username) {
            return Err(PasswordError::Common);
        }
        Ok(candidate)
    }

    /// Accepts a password presented at login, exactly as sent; `None` when it is longer than
    /// any password could be, which is then simply a wrong password.
    pub fn parse_presented(raw: String) -> Option<Self> {
        let raw = Zeroizing::new(raw);
        // Byte length bounds the char count from above, so this cheap check comes first.
        if raw.len() > Self::MAX_CHARS * 4 || raw.chars().count() > Self::MAX_CHARS {
            return None;
        }
        Some(Self(raw))
    }

    /// The password's bytes, for hashing and for keying its throttle counter.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_password(raw: &str) -> Result<Password, PasswordError> {
        Password::parse_new(raw.to_owned(), "alice")
    }

    #[test]
    fn the_policy_counts_characters_not_bytes() {
        assert_eq!(new_password("short").err(), Some(PasswordError::TooShort));
        assert!(new_password("ñññññññ").is_err(), "7 chars, 14 bytes");
        assert!(new_password("ññññññññ").is_ok());
        assert!(new_password(&"x".repeat(256)).is_ok());
        assert_eq!(new_password(&"x".repeat(257)).err(), Some(PasswordError::TooLong));
    }

    #[test]
    fn breached_passwords_are_refused_whatever_their_case_and_simple_disguises() {
        for common in ["password123", "PassWord123", "iloveyou", "qwertyuiop", "sunshine", "p@ssw0rd", "drowssap"] {
            assert_eq!(new_password(common).err(), Some(PasswordError::Common), "{common}");
        }
        for context in ["latchkey", "Latchkey123"] {
            assert_eq!(new_password(context).err(), Some(PasswordError::Common), "{context}");
        }
        let same = Password::parse_new("Alexander-The-Great".into(), "alexander-the-great");
        assert_eq!(same.err(), Some(PasswordError::Common), "the username itself");
        for fine in ["correct horse battery", "password manager generated: k3Jq9vLp", "ñandú de la pampa"] {
            assert!(new_password(fine).is_ok(), "{fine} is refused although only its parts are common");
        }
    }
}
