//! Custody of the keys: what the operator brings (a signing key file, a master key) and
//! sealing private material at rest under the master key, bound to each key's id.

use std::fmt;

use aws_lc_rs::{aead, hkdf};
use zeroize::Zeroizing;

#[cfg(feature = "server")]
use super::KeyError;
use super::StoredKey;
use crate::secret::{b64url, b64url_decode, fill_random};

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

/// What the operator brings to the keys.
#[derive(Debug, Default)]
pub struct KeyCustody {
    /// A signing key of the operator's own, used instead of generated ones.
    pub file_key: Option<StoredKey>,
    /// Seals the private keys and the server secret before they reach the store.
    pub master_key: Option<MasterKey>,
}

/// The associated data a key is sealed under: its id and algorithm, so a sealed value moved
/// to another row does not open.
#[cfg(feature = "server")]
fn seal_context(key: &StoredKey) -> Vec<u8> {
    [key.kid.as_bytes(), b"\0", key.alg.as_bytes()].concat()
}

/// `key` as the store should hold it: sealed when a master key is configured.
#[cfg(feature = "server")]
pub(crate) fn sealed(master_key: Option<&MasterKey>, key: StoredKey) -> Result<StoredKey, KeyError> {
    let Some(master_key) = master_key else { return Ok(key) };
    let material = master_key
        .seal(&seal_context(&key), key.material.as_bytes())
        .map_err(|_| KeyError::SealFailed(key.kid.clone()))?;
    Ok(StoredKey { material, ..key })
}

/// Stored keys with their material in the clear, ready to load.
#[cfg(feature = "server")]
pub(crate) fn opened(master_key: Option<&MasterKey>, stored: Vec<StoredKey>) -> Result<Vec<StoredKey>, KeyError> {
    stored
        .into_iter()
        .map(|key| {
            if !MasterKey::is_sealed(&key.material) {
                return Ok(key);
            }
            let master_key = master_key.ok_or_else(|| KeyError::Sealed(key.kid.clone()))?;
            let clear = master_key
                .open(&seal_context(&key), &key.material)
                .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
                .ok_or_else(|| KeyError::WrongMasterKey(key.kid.clone()))?;
            Ok(StoredKey { material: clear, ..key })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
