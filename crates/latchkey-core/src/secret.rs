//! Secrets as types that do not print, are compared in constant time, and are stored only as
//! digests.

use std::fmt;

use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Number of random bytes in every opaque secret latchkey mints (256 bits).
pub const SECRET_BYTES: usize = 32;

/// Fills `buf` from the operating system's CSPRNG.
///
/// # Panics
/// When the operating system cannot supply randomness: continuing would mint guessable
/// secrets, so there is no safe fallback.
pub fn fill_random(buf: &mut [u8]) {
    #[allow(clippy::expect_used)]
    getrandom::fill(buf).expect("the operating system's CSPRNG failed");
}

/// Encodes bytes as unpadded base64url, the alphabet of every latchkey secret.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url; `None` for anything else.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// An opaque 256-bit secret held by a client (a session cookie), base64url-encoded.
#[derive(Clone)]
pub struct SecretToken(Zeroizing<String>);

impl SecretToken {
    /// Mints a new secret from the OS CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
        fill_random(bytes.as_mut());
        Self(Zeroizing::new(b64url(bytes.as_ref())))
    }

    /// The digest of a presented secret, if it has the exact shape latchkey mints (43
    /// base64url characters, 32 bytes); `None` otherwise. Nothing is copied or allocated: this
    /// runs on every cookie check.
    pub fn digest_presented(presented: &str) -> Option<TokenDigest> {
        if presented.len() != 43 {
            return None;
        }
        // One spare byte, so that input decoding to more than 32 bytes is an error, not a panic.
        let mut bytes = Zeroizing::new([0u8; SECRET_BYTES + 1]);
        let decoded = URL_SAFE_NO_PAD.decode_slice(presented, bytes.as_mut()).ok()?;
        (decoded == SECRET_BYTES).then(|| TokenDigest::of(presented.as_bytes()))
    }

    /// The secret as the client must receive it. Callers put it on the wire, never in a log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 digest under which the store keeps this secret.
    pub fn digest(&self) -> TokenDigest {
        TokenDigest::of(self.0.as_bytes())
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken([redacted])")
    }
}

/// The SHA-256 digest of a secret: what a store keeps, so a copy of the store cannot be
/// replayed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// Digests arbitrary bytes.
    pub fn of(bytes: &[u8]) -> Self {
        let hashed = digest::digest(&digest::SHA256, bytes);
        let mut out = [0u8; 32];
        out.copy_from_slice(hashed.as_ref());
        Self(out)
    }

    /// Rebuilds a digest read back from a store; `None` unless it is 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The raw digest bytes, for a store to persist.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time comparison.
    pub fn matches(&self, other: &TokenDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

/// The server-wide secret from which refresh tokens and CSRF tokens are derived (HMAC-SHA256),
/// so that nothing secret is stored per session. It lives in the key store beside the signing
/// keys and is shared by every instance.
#[derive(Clone)]
pub struct ServerSecret(hmac::Key);

impl ServerSecret {
    /// Mints a new random server secret; returns it with its bytes for the store to persist.
    pub fn generate() -> (Self, Zeroizing<Vec<u8>>) {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        fill_random(&mut bytes);
        (Self::from_bytes(&bytes), bytes)
    }

    /// Rebuilds the secret from stored bytes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// HMAC-SHA256 of `parts`, with `purpose` first as a domain separator so a MAC minted for
    /// one purpose never verifies for another.
    pub fn mac(&self, purpose: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(purpose.as_bytes());
        ctx.update(&[0]);
        for part in parts {
            ctx.update(part);
        }
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Constant-time check of a presented MAC.
    pub fn verify(&self, purpose: &str, parts: &[&[u8]], presented: &[u8]) -> bool {
        let expected = self.mac(purpose, parts);
        expected.as_slice().ct_eq(presented).into()
    }
}

impl fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSecret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_secrets_parse_back_and_differ() {
        let a = SecretToken::generate();
        let b = SecretToken::generate();
        assert_ne!(a.expose(), b.expose());
        let parsed = SecretToken::digest_presented(a.expose());
        assert!(parsed.is_some_and(|d| d.matches(&a.digest())));
    }

    #[test]
    fn secrets_of_the_wrong_shape_are_refused() {
        assert!(SecretToken::digest_presented("").is_none());
        assert!(SecretToken::digest_presented("short").is_none());
        assert!(SecretToken::digest_presented(&"!".repeat(43)).is_none());
        assert!(SecretToken::digest_presented(&"A".repeat(44)).is_none(), "33 bytes");
        // 43 characters whose last one carries bits past the 32nd byte: not canonical.
        assert!(SecretToken::digest_presented(&format!("{}B", "A".repeat(42))).is_none());
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let secret = SecretToken::generate();
        let printed = format!("{secret:?}");
        assert!(!printed.contains(secret.expose()));
        assert!(printed.contains("redacted"));
    }

    #[test]
    fn a_mac_for_one_purpose_does_not_verify_for_another() {
        let (key, _) = ServerSecret::generate();
        let mac = key.mac("csrf", &[b"abc"]);
        assert!(key.verify("csrf", &[b"abc"], &mac));
        assert!(!key.verify("refresh", &[b"abc"], &mac));
        assert!(!key.verify("csrf", &[b"abd"], &mac));
    }
}
