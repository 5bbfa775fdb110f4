//! Access tokens (RFC 9068 profile): the claims, why a token is refused, and verification by
//! `kid` with the algorithm pinned per key; one path for a server's own keys and for a JWKS.

use std::collections::HashMap;
use std::fmt;

use jsonwebtoken::jwk::KeyAlgorithm;
use jsonwebtoken::{DecodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::keys::{KeyError, SigningAlgorithm};

/// The `typ` header of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: i64 = 2;
/// Longest access token accepted for verification, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

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
    /// The app the token was issued to, for an app's session (single sign-on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The scopes granted to that app, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
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
        let mut keys = Self::default();
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
            keys.insert(kid, alg, decoding, issuer, audience);
        }
        Ok(keys)
    }

    /// Adds the key `kid` of `alg` for tokens of `issuer` and `audience`.
    pub(crate) fn insert(
        &mut self,
        kid: &str,
        alg: SigningAlgorithm,
        decoding: DecodingKey,
        issuer: &str,
        audience: &str,
    ) {
        let key = VerifyingKey { alg, decoding, validation: validation(alg, issuer, audience) };
        self.by_kid.insert(kid.to_owned(), key);
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

    /// Checks a token of another kind that latchkey signed (`typ`: an ID token presented back
    /// as a logout hint, say): the header rules, the `kid` with its pinned algorithm, the
    /// signature and the issuer. Its audience, expiry and other claims are the caller's to
    /// judge (an expired ID token is still a good logout hint).
    pub fn verify_signed<T: DeserializeOwned>(&self, token: &str, typ: &str) -> Option<T> {
        if token.len() > MAX_TOKEN_BYTES || token.bytes().filter(|b| *b == b'.').count() != 2 {
            return None;
        }
        let header = jsonwebtoken::decode_header(token).ok()?;
        let typ_ok = header.typ.as_deref().is_some_and(|found| found.eq_ignore_ascii_case(typ));
        if !typ_ok || header.jwk.is_some() || header.jku.is_some() || header.x5u.is_some() || header.x5c.is_some() {
            return None;
        }
        if changes_processing(&header) {
            return None;
        }
        let key = self.by_kid.get(header.kid.as_deref()?)?;
        if header.alg != key.alg.jwt() {
            return None;
        }
        let mut validation = key.validation.clone();
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["iss", "sub"]);
        jsonwebtoken::decode::<T>(token, &key.decoding, &validation).ok().map(|data| data.claims)
    }
}
