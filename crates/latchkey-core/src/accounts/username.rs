//! Usernames: PRECIS (RFC 8265) identifiers, normalised, with the UTS #39 skeleton that finds
//! look-alikes.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

/// Why a username was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// Fewer than 3 or more than 64 characters after normalisation.
    #[error("a username has 3 to 64 characters")]
    Length,
    /// Control characters or whitespace are not allowed.
    #[error("a username may not contain control characters or spaces")]
    ForbiddenCharacter,
    /// A character outside the PRECIS IdentifierClass: invisible, bidirectional control,
    /// unassigned, space, symbol or control.
    #[error(
        "a username may contain letters and digits of any script and printable ASCII only; U+{0:04X} is none of these"
    )]
    NotAnIdentifier(u32),
}

/// A username, normalised (Unicode NFKC, then lowercase) so that look-alike spellings of the
/// same name are one account. Valid by construction.
///
/// Shared, not copied, when cloned: every authenticated request hands its caller's name on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(Arc<str>);

impl Serialize for Username {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

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
        Ok(Self(normalised.into()))
    }

    /// Normalises and checks the username of a new account: [`Self::parse`], and then every
    /// character must be valid in the PRECIS IdentifierClass (RFC 8264 §4.2, as RFC 8265's
    /// UsernameCaseMapped uses it) — letters and digits of any script and printable ASCII, so
    /// no zero-width, soft hyphen, byte-order mark, bidirectional override, Hangul filler, tag
    /// or unassigned character can make one name look like another. Names of existing accounts
    /// are only [`Self::parse`]d, so they can still log in.
    pub fn parse_new(raw: &str) -> Result<Self, UsernameError> {
        use precis_core::{Error, IdentifierClass, StringClass};
        let username = Self::parse(raw)?;
        match IdentifierClass::default().allows(username.as_str()) {
            Ok(()) => Ok(username),
            Err(Error::BadCodepoint(info)) => Err(UsernameError::NotAnIdentifier(info.cp)),
            Err(_) => Err(UsernameError::NotAnIdentifier(0)),
        }
    }

    /// The confusable skeleton (Unicode TS #39 §4): two names with the same skeleton look
    /// alike (`paypal` with a Cyrillic `а`, `l` and `1`), so only one of them may be an account.
    pub fn skeleton(&self) -> String {
        unicode_security::confusable_detection::skeleton(&self.0).collect()
    }

    /// Rebuilds a username a store wrote; it was valid when written.
    pub fn from_trusted(stored: String) -> Self {
        Self(stored.into())
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
    fn new_usernames_are_precis_identifiers_without_invisible_or_bidi_tricks() {
        for fine in ["alice", "straße", "日本語", "élodie", "o'brien", "a.b-c_d+e@example"] {
            assert!(Username::parse_new(fine).is_ok(), "{fine}");
        }
        let tricks = [
            "alice\u{200B}",
            "\u{FEFF}alice",
            "al\u{00AD}ice",
            "\u{202E}ecila",
            "al\u{2066}ice",
            "\u{3164}alice",
            "alice\u{E0041}",
            "ali\u{0301}\u{20DD}ce",
            "alice\u{2665}",
            "\u{0378}abc",
        ];
        for trick in tricks {
            assert!(
                matches!(
                    Username::parse_new(trick),
                    Err(UsernameError::NotAnIdentifier(_) | UsernameError::ForbiddenCharacter)
                ),
                "{trick:?} was accepted"
            );
            // An existing account of such a name can still be looked up.
            let _ = Username::parse(trick);
        }
    }

    #[test]
    fn look_alike_names_share_a_skeleton() {
        let skeleton = |name: &str| Username::parse(name).map(|u| u.skeleton()).unwrap_or_default();
        assert_eq!(skeleton("paypal"), skeleton("pаypal"), "Cyrillic a");
        assert_eq!(skeleton("admin1"), skeleton("adminl"));
        assert_ne!(skeleton("alice"), skeleton("bob"));
    }

    #[test]
    fn usernames_with_control_characters_are_refused() {
        assert_eq!(Username::parse("al\u{0007}ice"), Err(UsernameError::ForbiddenCharacter));
        assert_eq!(Username::parse("al ice"), Err(UsernameError::ForbiddenCharacter));
    }
}
