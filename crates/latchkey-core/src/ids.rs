//! The public identifiers of users, sessions and apps (clients): what tokens name (`sub`, `sid`), what the
//! denylist and the revocation feed speak of, and all a verifier of tokens needs to know of
//! accounts and sessions. They live apart from the accounts and sessions they identify so that
//! verifying a token needs neither (see the `server` feature).

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::secret::{TokenDigest, b64url, fill_random};

/// Defines a public id: a UUID newtype, random when new, written hyphenated, and moved in and
/// out of stores as its UUID. One definition, so both ids parse and print alike.
macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
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

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A user's stable public identifier (the `sub` of access tokens).
    UserId
);

uuid_id!(
    /// A session's public id: safe to show, log and put in the `sid` claim.
    SessionId
);

impl SessionId {
    /// The id of the cookie session whose secret has `digest`: a second, domain-separated
    /// hash of the secret. A cookie session is thus found by a hash of its secret (the
    /// contract's "keyed by a hash of the secret") with a plain lookup by id, and a store needs
    /// no second index. The id is public; it reveals nothing that helps find the secret.
    pub fn for_cookie(digest: &TokenDigest) -> Self {
        let hashed = TokenDigest::of(&[b"latchkey cookie session id\0".as_slice(), digest.as_bytes()].concat());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&hashed.as_bytes()[..16]);
        Self(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }
}

/// A client's public identifier (`client_id`): 22 base64url characters of 128 random bits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

impl ClientId {
    /// A new random id.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        fill_random(&mut bytes);
        Self(b64url(&bytes))
    }

    /// An id as presented (a request's `client_id`, an operator's argument): 1 to 64 characters
    /// of `A-Z a-z 0-9 . _ -`, else `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let valid = !text.is_empty()
            && text.len() <= 64
            && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
        valid.then(|| Self(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_what_they_print_and_nothing_else() {
        let user = UserId::generate();
        assert_eq!(UserId::parse(&user.to_string()), Some(user));
        let session = SessionId::generate();
        assert_eq!(SessionId::parse(&session.to_string()), Some(session));
        assert_eq!(SessionId::from_uuid(session.as_uuid()), session);
        assert_eq!(UserId::parse("not-a-uuid"), None);
        assert_eq!(session.to_string().len(), 36, "hyphenated");
    }
}
