//! Key material: making a key of an algorithm, reading an operator's key file, and loading a
//! stored key into what signs and verifies.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{DecodingKey, EncodingKey};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::{KeyError, SigningAlgorithm, StoredKey};
use crate::secret::{TokenDigest, b64url, b64url_decode, fill_random};

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

/// A stored key loaded for use: what signs, what verifies, and its public JWK (none for a
/// shared secret).
pub(crate) struct LoadedKey {
    pub(crate) kid: String,
    pub(crate) alg: SigningAlgorithm,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    pub(crate) jwk: Option<Jwk>,
}

impl LoadedKey {
    pub(crate) fn load(stored: &StoredKey) -> Result<Self, KeyError> {
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
}
