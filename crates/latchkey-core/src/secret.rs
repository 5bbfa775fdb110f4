//! Secrets as types that do not print, are compared in constant time, and are stored only as
//! digests.

use std::fmt;

use aws_lc_rs::{aead, digest, hkdf, hmac};
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

/// The operator's master key: encrypts the private signing keys and the server secret before
/// they reach the store (AES-256-GCM, each value bound to its key id), so a copy of the
/// database alone signs nothing. Derived with HKDF-SHA256 from a file of at least 32 bytes.
pub struct MasterKey(aead::LessSafeKey);

/// Sealing failed in the crypto library.
#[derive(Debug, thiserror::Error)]
#[error("encrypting with the master key failed")]
pub struct SealFailed;

/// A master-key file shorter than [`MasterKey::MIN_BYTES`].
#[derive(Debug, thiserror::Error)]
#[error("a master key file must hold at least 32 bytes")]
pub struct MasterKeyTooShort;

impl MasterKey {
    /// Fewest bytes a master-key file may hold.
    pub const MIN_BYTES: usize = 32;
    const SEALED_PREFIX: &'static str = "enc:v1:";
    const NONCE_BYTES: usize = 12;

    /// Derives the key from a master-key file's contents.
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Self, MasterKeyTooShort> {
        if bytes.len() < Self::MIN_BYTES {
            return Err(MasterKeyTooShort);
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"latchkey/master-key/v1").extract(bytes);
        let okm = prk.expand(&[b"key-encryption"], &aead::AES_256_GCM).map_err(|_| MasterKeyTooShort)?;
        Ok(Self(aead::LessSafeKey::new(aead::UnboundKey::from(okm))))
    }

    /// Whether a stored value was sealed by a master key.
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(Self::SEALED_PREFIX)
    }

    /// Encrypts `plaintext` bound to `context` (the value's key id and algorithm).
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<String, SealFailed> {
        let mut nonce = [0u8; Self::NONCE_BYTES];
        fill_random(&mut nonce);
        let mut sealed = Zeroizing::new(plaintext.to_vec());
        self.0
            .seal_in_place_append_tag(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::from(context), &mut *sealed)
            .map_err(|_| SealFailed)?;
        let mut out = Vec::with_capacity(Self::NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(format!("{}{}", Self::SEALED_PREFIX, b64url(&out)))
    }

    /// Decrypts a sealed value bound to `context`; `None` when this key did not seal it for
    /// that context, or it was altered.
    pub fn open(&self, context: &[u8], sealed: &str) -> Option<Zeroizing<Vec<u8>>> {
        let bytes = b64url_decode(sealed.strip_prefix(Self::SEALED_PREFIX)?)?;
        if bytes.len() < Self::NONCE_BYTES {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(Self::NONCE_BYTES);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        let plaintext_len = self.0.open_in_place(nonce, aead::Aad::from(context), &mut buffer).ok()?.len();
        buffer.truncate(plaintext_len);
        Some(buffer)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
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

    #[test]
    fn a_sealed_value_opens_only_with_its_master_key_and_context() {
        let key = MasterKey::from_file_bytes(&[7u8; 32]).unwrap_or_else(|err| panic!("{err}"));
        let seal = |context: &[u8], text: &[u8]| key.seal(context, text).unwrap_or_else(|err| panic!("{err}"));
        let sealed = seal(b"kid-1\0EdDSA", b"-----BEGIN PRIVATE KEY-----");
        assert!(MasterKey::is_sealed(&sealed));
        assert!(!sealed.contains("PRIVATE"));
        let opened = key.open(b"kid-1\0EdDSA", &sealed).map(|bytes| bytes.to_vec());
        assert_eq!(opened.as_deref(), Some(b"-----BEGIN PRIVATE KEY-----".as_slice()));
        assert!(key.open(b"kid-2\0EdDSA", &sealed).is_none(), "bound to its key id");
        let other = MasterKey::from_file_bytes(&[8u8; 32]).unwrap_or_else(|err| panic!("{err}"));
        assert!(other.open(b"kid-1\0EdDSA", &sealed).is_none(), "another master key");
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(key.open(b"kid-1\0EdDSA", &String::from_utf8(tampered).unwrap_or_default()).is_none());
        assert_ne!(seal(b"c", b"same"), seal(b"c", b"same"), "a fresh nonce each time");
        assert!(MasterKey::from_file_bytes(&[1u8; 31]).is_err());
        assert_eq!(format!("{key:?}"), "MasterKey([redacted])");
    }
}
