//! Signing keys: their material and algorithms, the key set an instance signs and verifies
//! with, the JWKS, custody (the operator's file key and master key, sealing at rest), the key
//! store, and bootstrap and rotation.
//!
//! Not here: the rules an access token is held to ([`crate::tokens`]); the server secret's own
//! uses (MACs of refresh tokens, CSRF tokens, throttle keys: [`crate::secret`]), although it is
//! stored and sealed like a key.

mod custody;
mod material;
#[cfg(feature = "server")]
mod rotation;
mod set;
#[cfg(feature = "server")]
mod store;

use std::fmt;
use std::str::FromStr;

use jsonwebtoken::Algorithm;
use time::{Duration, OffsetDateTime};

pub use custody::{KeyCustody, MasterKey, MasterKeyTooShort, SealFailed};
pub use material::{from_key_file, generate};
#[cfg(feature = "server")]
pub use rotation::KeyStatus;
#[cfg(feature = "server")]
pub(crate) use rotation::Keyring;
pub use set::KeySet;
#[cfg(feature = "server")]
pub use store::KeyStore;

/// The `alg` under which the server secret is stored in the key store.
pub const SERVER_SECRET_ALG: &str = "server-secret";

/// A signing key (or the server secret) as stored. The material is private.
#[derive(Clone)]
pub struct StoredKey {
    /// Key id: the `kid` of tokens it signs.
    pub kid: String,
    /// `EdDSA`, `ES256`, `RS256`, `HS256`, or `server-secret`.
    pub alg: String,
    /// PEM for asymmetric keys, base64url for symmetric ones.
    pub material: String,
    /// When it was made (the newest unretired key of the configured algorithm signs).
    pub created_at: OffsetDateTime,
    /// When it stopped signing; it keeps verifying until its tokens have expired.
    pub retired_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// The algorithms latchkey signs access tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    /// Ed25519 (default): smallest signatures, fast.
    EdDSA,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    RS256,
    /// HMAC-SHA256 with a shared secret; never published in the JWKS.
    HS256,
}

impl SigningAlgorithm {
    /// The JOSE name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
            Self::HS256 => "HS256",
        }
    }

    pub(crate) fn jwt(&self) -> Algorithm {
        match self {
            Self::EdDSA => Algorithm::EdDSA,
            Self::ES256 => Algorithm::ES256,
            Self::RS256 => Algorithm::RS256,
            Self::HS256 => Algorithm::HS256,
        }
    }

    /// Whether the key is a shared secret (and so never published).
    pub fn is_symmetric(&self) -> bool {
        matches!(self, Self::HS256)
    }
}

impl FromStr for SigningAlgorithm {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "EdDSA" => Ok(Self::EdDSA),
            "ES256" => Ok(Self::ES256),
            "RS256" => Ok(Self::RS256),
            "HS256" => Ok(Self::HS256),
            other => Err(KeyError::UnknownAlgorithm(other.to_owned())),
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a key could not be made, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not one of `EdDSA`, `ES256`, `RS256`, `HS256`.
    #[error("unknown signing algorithm {0:?} (expected EdDSA, ES256, RS256 or HS256)")]
    UnknownAlgorithm(String),
    /// Key generation failed in the crypto library.
    #[error("key generation failed")]
    Generation,
    /// A key's material does not fit its algorithm.
    #[error("key {kid:?} is not a valid {alg} key: {reason}")]
    InvalidKey {
        /// The key's id (or the file it came from).
        kid: String,
        /// The algorithm it was loaded for.
        alg: String,
        /// What the crypto library said.
        reason: String,
    },
    /// An HS256 secret shorter than 32 bytes.
    #[error("an HS256 key must have at least 32 bytes")]
    ShortSecret,
    /// No key to sign with.
    #[error("no active signing key for {0}")]
    NoSigningKey(SigningAlgorithm),
    /// Signing failed in the crypto library.
    #[error("signing failed")]
    Signing,
    /// A stored key is encrypted and no master key is configured.
    #[error("key {0:?} is encrypted at rest: set LATCHKEY_MASTER_KEY_FILE to the master key it was sealed with")]
    Sealed(String),
    /// The configured master key does not open a stored key (another master key sealed it,
    /// or the value was altered).
    #[error("the master key does not open key {0:?}: it was sealed with another master key, or altered")]
    WrongMasterKey(String),
    /// Encrypting a key with the master key failed.
    #[error("encrypting key {0:?} with the master key failed")]
    SealFailed(String),
}

/// How long verifiers may cache the JWKS: a quarter of the access-token lifetime, at most five
/// minutes. A scheduled rotation publishes the next key this long before it signs, so a cache
/// filled just before the new key appeared has expired by the time tokens carry its `kid`.
pub fn jwks_max_age(access_ttl: Duration) -> Duration {
    (access_ttl / 4_i32).clamp(Duration::ZERO, Duration::minutes(5))
}
