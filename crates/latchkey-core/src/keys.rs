//! Signing keys: generation, loading, signing and verification of access tokens, and the JWKS.
//!
//! Verification is pinned per key: a token names its key by `kid`, and only the algorithm that
//! key was made for is accepted. Header-supplied key material is never used.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::secret::{TokenDigest, b64url, b64url_decode, fill_random};

/// The `alg` under which the server secret is stored in the key store.
pub const SERVER_SECRET_ALG: &str = "server-secret";
/// The `typ` header of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: i64 = 2;
/// Longest access token accepted for verification, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

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

    fn jwt(&self) -> Algorithm {
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

/// Makes a new key of `alg`, ready to store.
pub fn generate(alg: SigningAlgorithm, now: OffsetDateTime) -> Result<StoredKey, KeyError> {
    let material = match alg {
        SigningAlgorithm::EdDSA => {
            let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Generation)?;
            pkcs8_pem(pair.to_pkcs8v1().map_err(|_| KeyError::Generation)?.as_ref())
        }
        SigningAlgorithm::ES256 => {
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| KeyError::Generation)?;
            pkcs8_pem(pair.to_pkcs8v1().map_err(|_| KeyError::Generation)?.as_ref())
        }
        SigningAlgorithm::RS256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generation)?;
            let der: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| KeyError::Generation)?;
            pkcs8_pem(der.as_ref())
        }
        SigningAlgorithm::HS256 => {
            let mut secret = Zeroizing::new([0u8; 32]);
            fill_random(secret.as_mut());
            b64url(secret.as_ref())
        }
    };
    let mut kid = [0u8; 12];
    fill_random(&mut kid);
    Ok(StoredKey { kid: b64url(&kid), alg: alg.as_str().to_owned(), material, created_at: now, retired_at: None })
}

/// Turns an operator's key file (PKCS#8 PEM, or the raw bytes of an HS256 secret) into a key
/// whose `kid` is derived from the key itself, so every instance given the same file agrees.
pub fn from_key_file(alg: SigningAlgorithm, contents: &[u8], now: OffsetDateTime) -> Result<StoredKey, KeyError> {
    let material = if alg.is_symmetric() {
        if contents.len() < 32 {
            return Err(KeyError::ShortSecret);
        }
        b64url(contents)
    } else {
        String::from_utf8(contents.to_vec()).map_err(|_| KeyError::InvalidKey {
            kid: "key file".into(),
            alg: alg.as_str().into(),
            reason: "not a PEM text file".into(),
        })?
    };
    let mut key =
        StoredKey { kid: String::new(), alg: alg.as_str().to_owned(), material, created_at: now, retired_at: None };
    let loaded = LoadedKey::load(&key)?;
    key.kid = match &loaded.jwk {
        Some(jwk) => jwk.thumbprint(ThumbprintHash::SHA256).map_err(|err| KeyError::InvalidKey {
            kid: "key file".into(),
            alg: alg.as_str().into(),
            reason: err.to_string(),
        })?,
        None => format!("hs-{}", &b64url(TokenDigest::of(contents).as_bytes())[..16]),
    };
    Ok(key)
}

fn pkcs8_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("PRIVATE KEY", der.to_vec()))
}

/// The claims of a latchkey access token (RFC 9068 profile).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: the public URL.
    pub iss: String,
    /// Subject: the user id.
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before; latchkey does not set it but honours it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Unique token id.
    pub jti: String,
    /// The session the token belongs to.
    pub sid: String,
    /// The user's name (usernames never change, so the claim cannot go stale).
    pub preferred_username: String,
}

impl fmt::Debug for AccessClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessClaims")
            .field("sub", &self.sub)
            .field("sid", &self.sid)
            .field("exp", &self.exp)
            .finish_non_exhaustive()
    }
}

/// Why an access token was refused. Each maps to RFC 6750's `invalid_token`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// Not a compact JWS, not base64url, not JSON, or too long.
    #[error("malformed token")]
    Malformed,
    /// `typ` is not `at+jwt`, or the header carries key material.
    #[error("not an access token")]
    WrongType,
    /// A header parameter that would change how the token is processed (`crit`, `b64`, ...).
    #[error("unsupported header parameter")]
    UnsupportedHeader,
    /// No `kid`, or a `kid` latchkey does not know.
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature, algorithm, issuer, audience or a claim's type is wrong.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// Past `exp`.
    #[error("token expired")]
    Expired,
    /// Before `nbf`.
    #[error("token not yet valid")]
    NotYetValid,
}

/// How long verifiers may cache the JWKS: a quarter of the access-token lifetime, at most five
/// minutes. A scheduled rotation publishes the next key this long before it signs, so a cache
/// filled just before the new key appeared has expired by the time tokens carry its `kid`.
pub fn jwks_max_age(access_ttl: Duration) -> Duration {
    (access_ttl / 4_i32).clamp(Duration::ZERO, Duration::minutes(5))
}

/// How long an access token can still be accepted after it was issued: its lifetime plus the
/// leeway on `exp`. The one rule for how long what stopped issuing tokens must be remembered:
/// a retired key stays published, and a revoked session stays on the denylist, this long.
pub fn acceptance_window(access_ttl: Duration) -> Duration {
    access_ttl + Duration::seconds(LEEWAY_SECONDS)
}

/// Whether a token with this `exp` is expired at `now`, leeway included. Compared to the
/// nanosecond, so the leeway is exactly [`LEEWAY_SECONDS`], never a second more.
pub fn is_expired(exp: i64, now: OffsetDateTime) -> bool {
    now.unix_timestamp_nanos() > i128::from(exp.saturating_add(LEEWAY_SECONDS)) * 1_000_000_000
}

/// Issuer, audience and lifetime shared by signing and verification.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// `iss` of every token.
    pub issuer: String,
    /// `aud` of every token.
    pub audience: String,
    /// Access-token lifetime; retired keys stay published this long (plus leeway).
    pub access_ttl: Duration,
}

struct LoadedKey {
    kid: String,
    alg: SigningAlgorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Option<Jwk>,
}

impl LoadedKey {
    fn load(stored: &StoredKey) -> Result<Self, KeyError> {
        let alg: SigningAlgorithm = stored.alg.parse()?;
        let invalid =
            |reason: String| KeyError::InvalidKey { kid: stored.kid.clone(), alg: stored.alg.clone(), reason };
        let pem = stored.material.as_bytes();
        let encoding = match alg {
            SigningAlgorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            SigningAlgorithm::ES256 => EncodingKey::from_ec_pem(pem),
            SigningAlgorithm::RS256 => EncodingKey::from_rsa_pem(pem),
            SigningAlgorithm::HS256 => {
                let secret =
                    Zeroizing::new(b64url_decode(&stored.material).ok_or_else(|| invalid("not base64url".into()))?);
                Ok(EncodingKey::from_secret(&secret))
            }
        }
        .map_err(|err| invalid(err.to_string()))?;
        let (decoding, jwk) = if alg.is_symmetric() {
            let secret =
                Zeroizing::new(b64url_decode(&stored.material).ok_or_else(|| invalid("not base64url".into()))?);
            (DecodingKey::from_secret(&secret), None)
        } else {
            let mut jwk = Jwk::from_encoding_key(&encoding, alg.jwt()).map_err(|err| invalid(err.to_string()))?;
            jwk.common.key_id = Some(stored.kid.clone());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            let decoding = DecodingKey::from_jwk(&jwk).map_err(|err| invalid(err.to_string()))?;
            (decoding, Some(jwk))
        };
        Ok(Self { kid: stored.kid.clone(), alg, encoding, decoding, jwk })
    }

    fn verifying(&self, issuer: &str, audience: &str) -> VerifyingKey {
        VerifyingKey {
            alg: self.alg,
            decoding: self.decoding.clone(),
            validation: validation(self.alg, issuer, audience),
        }
    }
}

/// The rules every access token is held to, for a key of `alg`.
fn validation(alg: SigningAlgorithm, issuer: &str, audience: &str) -> Validation {
    let mut validation = Validation::new(alg.jwt());
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    // Time is checked against the caller's clock in `verify`, so tests can move it.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = 0;
    validation
}

/// A key that verifies: its algorithm (pinned), the public key and the validation rules.
struct VerifyingKey {
    alg: SigningAlgorithm,
    decoding: DecodingKey,
    validation: Validation,
}

/// Whether a JWS header asks for processing latchkey does not do (RFC 7515 §4.1.11): a `crit`
/// list, whatever it names (latchkey understands no extension, so honouring none is the only
/// safe reading); `b64` (RFC 7797), which changes what the signature covers; and the JWE
/// parameters `enc` and `zip`, which have no place in a signed token.
fn changes_processing(header: &Header) -> bool {
    header.crit.is_some() || header.enc.is_some() || header.zip.is_some() || header.extras.inner().contains_key("b64")
}

/// The keys that verify access tokens, by `kid`: a server's own (from its store) or, in a
/// service that verifies latchkey tokens itself, those of the published JWKS. One verification
/// path for both.
#[derive(Default)]
pub struct VerifyingKeys {
    by_kid: HashMap<String, VerifyingKey>,
}

impl fmt::Debug for VerifyingKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKeys").field("kids", &self.by_kid.keys()).finish()
    }
}

impl VerifyingKeys {
    /// The keys of a JWKS document (RFC 7517) that latchkey could have signed with (EdDSA,
    /// ES256, RS256, each with a `kid`), for tokens of `issuer` and `audience`. Other keys are
    /// skipped.
    pub fn from_jwks(jwks: &str, issuer: &str, audience: &str) -> Result<Self, KeyError> {
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(jwks).map_err(|err| KeyError::InvalidKey {
            kid: "jwks".into(),
            alg: "-".into(),
            reason: err.to_string(),
        })?;
        let mut by_kid = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(alg)) = (jwk.common.key_id.as_ref(), jwk.common.key_algorithm) else { continue };
            let alg = match alg {
                KeyAlgorithm::EdDSA => SigningAlgorithm::EdDSA,
                KeyAlgorithm::ES256 => SigningAlgorithm::ES256,
                KeyAlgorithm::RS256 => SigningAlgorithm::RS256,
                _ => continue,
            };
            let decoding = DecodingKey::from_jwk(jwk).map_err(|err| KeyError::InvalidKey {
                kid: kid.clone(),
                alg: alg.as_str().into(),
                reason: err.to_string(),
            })?;
            by_kid.insert(kid.clone(), VerifyingKey { alg, decoding, validation: validation(alg, issuer, audience) });
        }
        Ok(Self { by_kid })
    }

    /// Whether a key with this `kid` is known.
    pub fn contains(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    /// Verifies an access token: shape, `typ`, `kid`, the algorithm pinned to that key, the
    /// signature, `iss`, `aud`, claim types, and `exp`/`nbf` against `now` with the leeway.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<AccessClaims, TokenRejection> {
        if token.len() > MAX_TOKEN_BYTES || token.bytes().filter(|b| *b == b'.').count() != 2 {
            return Err(TokenRejection::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Malformed)?;
        let typ_ok = header.typ.as_deref().is_some_and(|typ| {
            typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || typ.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok || header.jwk.is_some() || header.jku.is_some() || header.x5u.is_some() || header.x5c.is_some() {
            return Err(TokenRejection::WrongType);
        }
        if changes_processing(&header) {
            return Err(TokenRejection::UnsupportedHeader);
        }
        let kid = header.kid.as_deref().ok_or(TokenRejection::UnknownKey)?;
        let key = self.by_kid.get(kid).ok_or(TokenRejection::UnknownKey)?;
        if header.alg != key.alg.jwt() {
            return Err(TokenRejection::Invalid("algorithm does not match the key".into()));
        }
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &key.validation)
            .map_err(|err| TokenRejection::Invalid(err.to_string()))?;
        let claims = data.claims;
        if is_expired(claims.exp, now) {
            return Err(TokenRejection::Expired);
        }
        let in_the_future =
            |at: i64| i128::from(at.saturating_sub(LEEWAY_SECONDS)) * 1_000_000_000 > now.unix_timestamp_nanos();
        // A token issued "later" than now was not issued by a clock latchkey trusts.
        if claims.nbf.is_some_and(in_the_future) || in_the_future(claims.iat) {
            return Err(TokenRejection::NotYetValid);
        }
        Ok(claims)
    }
}

/// The keys one instance signs and verifies with at a moment; rebuilt when the store's keys
/// change and swapped in whole.
pub struct KeySet {
    signer: Arc<LoadedKey>,
    signer_created_at: OffsetDateTime,
    next_change: Option<OffsetDateTime>,
    verifying: VerifyingKeys,
    jwks: Arc<str>,
    fingerprint: Vec<(String, Option<OffsetDateTime>)>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet").field("signer", &self.signer.kid).field("verifying", &self.verifying).finish()
    }
}

impl KeySet {
    /// Builds the set from the stored keys: the newest unretired key of `alg` signs (or
    /// `file_key` when the operator brought one); every key still inside its overlap window
    /// verifies.
    pub fn build(
        stored: &[StoredKey],
        file_key: Option<&StoredKey>,
        alg: SigningAlgorithm,
        settings: TokenSettings,
        now: OffsetDateTime,
    ) -> Result<Self, KeyError> {
        let overlap = acceptance_window(settings.access_ttl);
        let mut loaded_keys: Vec<Arc<LoadedKey>> = Vec::new();
        let mut verifying = VerifyingKeys::default();
        let mut signer = None;
        let mut fingerprint = Vec::new();
        let mut next_change = None;
        let signing_keys = stored.iter().filter(|key| key.alg != SERVER_SECRET_ALG);
        for key in signing_keys.chain(file_key) {
            fingerprint.push((key.kid.clone(), key.retired_at));
            if key.retired_at.is_some_and(|retired| retired + overlap <= now) {
                continue;
            }
            let loaded = Arc::new(LoadedKey::load(key)?);
            let is_file_key = file_key.is_some_and(|file| file.kid == key.kid);
            // A key signs from its creation until its retirement: a scheduled rotation stores the
            // next key ahead of time (published, not yet signing) and the current key's
            // retirement at the same instant, so the hand-over needs no second write.
            let signs_now = key.created_at <= now && key.retired_at.is_none_or(|retired| retired > now);
            if key.created_at > now || key.retired_at.is_some_and(|retired| retired > now) {
                let at = if key.created_at > now { key.created_at } else { key.retired_at.unwrap_or(now) };
                next_change = Some(next_change.map_or(at, |earliest: OffsetDateTime| earliest.min(at)));
            }
            let may_sign = loaded.alg == alg && (signs_now || is_file_key) && (file_key.is_none() || is_file_key);
            if may_sign
                && signer
                    .as_ref()
                    .is_none_or(|current: &(OffsetDateTime, Arc<LoadedKey>)| current.0 <= key.created_at || is_file_key)
            {
                signer = Some((key.created_at, Arc::clone(&loaded)));
            }
            verifying.by_kid.insert(key.kid.clone(), loaded.verifying(&settings.issuer, &settings.audience));
            loaded_keys.push(loaded);
        }
        let (signer_created_at, signer) = signer.ok_or(KeyError::NoSigningKey(alg))?;
        let mut published: Vec<&LoadedKey> = loaded_keys.iter().map(AsRef::as_ref).collect();
        published.sort_by(|a, b| a.kid.cmp(&b.kid));
        let keys: Vec<&Jwk> = published.iter().filter_map(|key| key.jwk.as_ref()).collect();
        let jwks = serde_json::to_string(&serde_json::json!({ "keys": keys })).map_err(|_| KeyError::Signing)?;
        Ok(Self { signer, signer_created_at, verifying, jwks: jwks.into(), fingerprint, next_change })
    }

    /// When a scheduled hand-over between keys happens, if one is pending: the set must be
    /// rebuilt then.
    pub fn next_change(&self) -> Option<OffsetDateTime> {
        self.next_change
    }

    /// When the signing key was made (a file key: when it was loaded).
    pub fn signer_created_at(&self) -> OffsetDateTime {
        self.signer_created_at
    }

    /// The JWKS document (RFC 7517): public keys only, never an HS256 secret.
    pub fn jwks(&self) -> Arc<str> {
        Arc::clone(&self.jwks)
    }

    /// The `kid` new tokens are signed with.
    pub fn signer_kid(&self) -> &str {
        &self.signer.kid
    }

    /// The algorithm new tokens are signed with.
    pub fn signer_alg(&self) -> SigningAlgorithm {
        self.signer.alg
    }

    /// Whether the stored keys differ from those this set was built from.
    pub fn is_stale(&self, stored: &[StoredKey], file_key: Option<&StoredKey>) -> bool {
        let current: Vec<(String, Option<OffsetDateTime>)> = stored
            .iter()
            .filter(|key| key.alg != SERVER_SECRET_ALG)
            .chain(file_key)
            .map(|key| (key.kid.clone(), key.retired_at))
            .collect();
        current != self.fingerprint
    }

    /// Signs access-token claims with the active key, `typ: at+jwt` and its `kid`.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, KeyError> {
        let mut header = Header::new(self.signer.alg.jwt());
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some(self.signer.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signer.encoding).map_err(|_| KeyError::Signing)
    }

    /// Verifies an access token against every key still inside its overlap window.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<AccessClaims, TokenRejection> {
        self.verifying.verify(token, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TokenSettings {
        TokenSettings {
            issuer: "http://localhost:8080".into(),
            audience: "http://localhost:8080".into(),
            access_ttl: Duration::minutes(10),
        }
    }

    fn claims(now: OffsetDateTime) -> AccessClaims {
        AccessClaims {
            iss: "http://localhost:8080".into(),
            sub: "user".into(),
            aud: "http://localhost:8080".into(),
            exp: now.unix_timestamp() + 600,
            iat: now.unix_timestamp(),
            nbf: None,
            jti: "j".into(),
            sid: "s".into(),
            preferred_username: "alice".into(),
        }
    }

    #[test]
    fn every_algorithm_signs_and_verifies_its_own_tokens() -> Result<(), KeyError> {
        let now = OffsetDateTime::now_utc();
        for alg in [SigningAlgorithm::EdDSA, SigningAlgorithm::ES256, SigningAlgorithm::RS256, SigningAlgorithm::HS256]
        {
            let key = generate(alg, now)?;
            let set = KeySet::build(std::slice::from_ref(&key), None, alg, settings(), now)?;
            let token = set.sign(&claims(now))?;
            assert_eq!(set.verify(&token, now).map(|c| c.sub), Ok("user".to_owned()), "{alg}");
            let jwks: serde_json::Value = serde_json::from_str(&set.jwks()).map_err(|_| KeyError::Signing)?;
            let published = jwks["keys"].as_array().map(Vec::len).unwrap_or_default();
            assert_eq!(published, usize::from(!alg.is_symmetric()), "{alg}: HS256 is never published");
        }
        Ok(())
    }

    #[test]
    fn a_token_of_another_issuer_audience_or_time_is_refused() -> Result<(), KeyError> {
        let now = OffsetDateTime::now_utc();
        let key = generate(SigningAlgorithm::EdDSA, now)?;
        let set = KeySet::build(std::slice::from_ref(&key), None, SigningAlgorithm::EdDSA, settings(), now)?;
        let mut wrong_aud = claims(now);
        wrong_aud.aud = "other".into();
        assert!(matches!(set.verify(&set.sign(&wrong_aud)?, now), Err(TokenRejection::Invalid(_))));
        let mut wrong_iss = claims(now);
        wrong_iss.iss = "other".into();
        assert!(matches!(set.verify(&set.sign(&wrong_iss)?, now), Err(TokenRejection::Invalid(_))));
        let token = set.sign(&claims(now))?;
        assert!(set.verify(&token, now + Duration::seconds(601)).is_ok(), "inside the leeway");
        assert_eq!(set.verify(&token, now + Duration::seconds(603)).err(), Some(TokenRejection::Expired));
        let mut future = claims(now);
        future.nbf = Some(now.unix_timestamp() + 60);
        assert_eq!(set.verify(&set.sign(&future)?, now).err(), Some(TokenRejection::NotYetValid));
        Ok(())
    }

    #[test]
    fn the_published_jwks_alone_verifies_tokens_for_every_public_algorithm() -> Result<(), KeyError> {
        let now = OffsetDateTime::now_utc();
        for alg in [SigningAlgorithm::EdDSA, SigningAlgorithm::ES256, SigningAlgorithm::RS256] {
            let key = generate(alg, now)?;
            let set = KeySet::build(std::slice::from_ref(&key), None, alg, settings(), now)?;
            let token = set.sign(&claims(now))?;
            let public = VerifyingKeys::from_jwks(&set.jwks(), "http://localhost:8080", "http://localhost:8080")?;
            assert!(public.contains(&key.kid));
            assert_eq!(public.verify(&token, now).map(|c| c.sid), Ok("s".to_owned()), "{alg}");
            let other_audience = VerifyingKeys::from_jwks(&set.jwks(), "http://localhost:8080", "https://elsewhere")?;
            assert!(matches!(other_audience.verify(&token, now), Err(TokenRejection::Invalid(_))));
        }
        Ok(())
    }

    #[test]
    fn a_rotated_key_keeps_verifying_until_its_tokens_expire() -> Result<(), KeyError> {
        let now = OffsetDateTime::now_utc();
        let mut old = generate(SigningAlgorithm::EdDSA, now)?;
        let old_set = KeySet::build(std::slice::from_ref(&old), None, SigningAlgorithm::EdDSA, settings(), now)?;
        let old_token = old_set.sign(&claims(now))?;
        old.retired_at = Some(now);
        let new = generate(SigningAlgorithm::EdDSA, now + Duration::seconds(1))?;
        let keys = [old.clone(), new.clone()];
        let set = KeySet::build(&keys, None, SigningAlgorithm::EdDSA, settings(), now + Duration::seconds(1))?;
        assert_eq!(set.signer_kid(), new.kid);
        assert!(set.verify(&old_token, now).is_ok());
        assert!(set.jwks().contains(&old.kid));
        let later = now + Duration::minutes(11);
        let pruned = KeySet::build(&keys, None, SigningAlgorithm::EdDSA, settings(), later)?;
        assert!(!pruned.jwks().contains(&old.kid));
        Ok(())
    }

    #[test]
    fn a_scheduled_key_is_published_at_once_and_signs_only_from_its_start() -> Result<(), KeyError> {
        let now = OffsetDateTime::now_utc();
        let starts = now + Duration::minutes(2);
        let mut old = generate(SigningAlgorithm::EdDSA, now - Duration::days(30))?;
        old.retired_at = Some(starts);
        let next = generate(SigningAlgorithm::EdDSA, starts)?;
        let keys = [old.clone(), next.clone()];
        let before = KeySet::build(&keys, None, SigningAlgorithm::EdDSA, settings(), now)?;
        assert_eq!(before.signer_kid(), old.kid, "the current key signs until the hand-over");
        assert!(before.jwks().contains(&next.kid), "the next key is published ahead");
        assert_eq!(before.next_change(), Some(starts));
        let after = KeySet::build(&keys, None, SigningAlgorithm::EdDSA, settings(), starts)?;
        assert_eq!(after.signer_kid(), next.kid);
        assert_eq!(after.next_change(), None);
        assert!(after.jwks().contains(&old.kid), "the old key stays for its tokens");
        Ok(())
    }
}
