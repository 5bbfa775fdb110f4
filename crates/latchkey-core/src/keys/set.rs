//! The key set one instance signs and verifies with at a moment, and its JWKS.

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::Header;
use jsonwebtoken::jwk::Jwk;
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use super::material::LoadedKey;
use super::{KeyError, SERVER_SECRET_ALG, SigningAlgorithm, StoredKey};
use crate::tokens::{ACCESS_TOKEN_TYP, AccessClaims, TokenRejection, TokenSettings, VerifyingKeys, acceptance_window};

/// The keys one instance signs and verifies with at a moment; rebuilt when the store's keys
/// change and swapped in whole.
pub struct KeySet {
    // The access tokens' signer: the one of `signers` with the configured algorithm.
    signer: Arc<LoadedKey>,
    // The key of each algorithm that signs now, and when it was made: the access-token signer
    // is one of them; ID tokens of an app pick the one of the app's algorithm.
    signers: Vec<(OffsetDateTime, Arc<LoadedKey>)>,
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
    /// Builds the set from the stored keys: the newest unretired key of `alg` signs access
    /// tokens (or `file_key` when the operator brought one), the newest of every other
    /// algorithm signs what asks for that algorithm (apps' ID tokens), and every key still
    /// inside its overlap window verifies.
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
        let mut signers: Vec<(OffsetDateTime, Arc<LoadedKey>)> = Vec::new();
        let mut fingerprint = Vec::new();
        let mut next_change = None;
        // Keys made after `now` that no retirement hands over to: the first key of an algorithm
        // that another instance made a moment ago (its clock a little ahead, or its key made
        // after this one read the time). With nothing else to sign their algorithm, they do.
        let mut ahead: Vec<(OffsetDateTime, Arc<LoadedKey>)> = Vec::new();
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
            // The operator's file key is the only signer of its algorithm.
            let rivals_file_key = file_key.is_some_and(|file| !is_file_key && file.alg == key.alg);
            if (signs_now || is_file_key) && !rivals_file_key {
                match signers.iter_mut().find(|(_, current)| current.alg == loaded.alg) {
                    Some(current) if current.0 <= key.created_at || is_file_key => {
                        *current = (key.created_at, Arc::clone(&loaded));
                    }
                    Some(_) => {}
                    None => signers.push((key.created_at, Arc::clone(&loaded))),
                }
            } else if key.created_at > now && key.retired_at.is_none() && !rivals_file_key {
                ahead.push((key.created_at, Arc::clone(&loaded)));
            }
            verifying.insert(&key.kid, loaded.alg, loaded.decoding.clone(), &settings.issuer, &settings.audience);
            loaded_keys.push(loaded);
        }
        ahead.sort_by_key(|(created_at, _)| *created_at);
        for (created_at, key) in ahead {
            if !signers.iter().any(|(_, signer)| signer.alg == key.alg) {
                signers.push((created_at, key));
            }
        }
        // The file key has the configured algorithm, so it is that algorithm's signer when present.
        let signer = signers
            .iter()
            .find(|(_, key)| key.alg == alg)
            .map(|(_, key)| Arc::clone(key))
            .ok_or(KeyError::NoSigningKey(alg))?;
        let mut published: Vec<&LoadedKey> = loaded_keys.iter().map(AsRef::as_ref).collect();
        published.sort_by(|a, b| a.kid.cmp(&b.kid));
        let keys: Vec<&Jwk> = published.iter().filter_map(|key| key.jwk.as_ref()).collect();
        let jwks = serde_json::to_string(&serde_json::json!({ "keys": keys })).map_err(|_| KeyError::Signing)?;
        Ok(Self { signer, signers, verifying, jwks: jwks.into(), fingerprint, next_change })
    }

    /// When a scheduled hand-over between keys happens, if one is pending: the set must be
    /// rebuilt then.
    pub fn next_change(&self) -> Option<OffsetDateTime> {
        self.next_change
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
        sign_with(&self.signer, ACCESS_TOKEN_TYP, claims)
    }

    /// Signs `claims` with the key that signs `alg` now, under `typ` and the key's `kid` (an
    /// app's ID token, say); `NoSigningKey` when this set has none of that algorithm.
    pub fn sign_as(&self, alg: SigningAlgorithm, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
        let (_, key) = self.signers.iter().find(|(_, key)| key.alg == alg).ok_or(KeyError::NoSigningKey(alg))?;
        sign_with(key, typ, claims)
    }

    /// The algorithms this set signs with now, and when each one's key was made (a file key:
    /// when it was loaded): what scheduled rotation looks at.
    pub fn signing_algorithms(&self) -> impl Iterator<Item = (SigningAlgorithm, OffsetDateTime)> + '_ {
        self.signers.iter().map(|(created, key)| (key.alg, *created))
    }

    /// Whether `kid` signs something now.
    pub fn signs_with(&self, kid: &str) -> bool {
        self.signers.iter().any(|(_, key)| key.kid == kid)
    }

    /// Verifies an access token against every key still inside its overlap window.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<AccessClaims, TokenRejection> {
        self.verifying.verify(token, now)
    }

    /// A token of another kind (`typ`) that one of these keys signed for this issuer, with its
    /// claims unjudged (see [`VerifyingKeys::verify_signed`]).
    pub fn verify_signed<T: DeserializeOwned>(&self, token: &str, typ: &str) -> Option<T> {
        self.verifying.verify_signed(token, typ)
    }
}

/// Signs `claims` with `key`, under `typ` and the key's `kid`.
fn sign_with(key: &LoadedKey, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
    let mut header = Header::new(key.alg.jwt());
    header.typ = Some(typ.to_owned());
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|_| KeyError::Signing)
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;
    use crate::keys::generate;

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
            client_id: None,
            scope: None,
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
    fn each_algorithm_signs_with_its_own_newest_key_and_every_key_is_published() -> Result<(), KeyError> {
        let now = OffsetDateTime::now_utc();
        let access = generate(SigningAlgorithm::EdDSA, now)?;
        let rsa = generate(SigningAlgorithm::RS256, now)?;
        let mut old_ec = generate(SigningAlgorithm::ES256, now - Duration::days(1))?;
        old_ec.retired_at = Some(now);
        let ec = generate(SigningAlgorithm::ES256, now)?;
        let keys = [access.clone(), rsa.clone(), old_ec.clone(), ec.clone()];
        let set = KeySet::build(&keys, None, SigningAlgorithm::EdDSA, settings(), now)?;
        assert_eq!(set.signer_kid(), access.kid, "access tokens keep the configured algorithm");
        let mut algs: Vec<&str> = set.signing_algorithms().map(|(alg, _)| alg.as_str()).collect();
        algs.sort_unstable();
        assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
        assert!(set.signs_with(&ec.kid) && !set.signs_with(&old_ec.kid));
        let public = VerifyingKeys::from_jwks(&set.jwks(), "http://localhost:8080", "http://localhost:8080")?;
        for (alg, kid) in [(SigningAlgorithm::RS256, &rsa.kid), (SigningAlgorithm::ES256, &ec.kid)] {
            let token = set.sign_as(alg, "JWT", &claims(now))?;
            let header = jsonwebtoken::decode_header(&token).map_err(|_| KeyError::Signing)?;
            assert_eq!(
                (header.alg, header.kid.as_deref(), header.typ.as_deref()),
                (alg.jwt(), Some(kid.as_str()), Some("JWT"))
            );
            assert!(public.contains(kid), "{alg} is published");
        }
        let without_rsa = KeySet::build(std::slice::from_ref(&access), None, SigningAlgorithm::EdDSA, settings(), now)?;
        assert!(matches!(
            without_rsa.sign_as(SigningAlgorithm::RS256, "JWT", &claims(now)),
            Err(KeyError::NoSigningKey(_))
        ));
        Ok(())
    }

    #[test]
    fn an_operators_file_key_is_the_only_signer_of_its_algorithm() -> Result<(), KeyError> {
        let now = OffsetDateTime::now_utc();
        let stored_rsa = generate(SigningAlgorithm::RS256, now)?;
        let mut file = generate(SigningAlgorithm::RS256, now - Duration::days(3))?;
        file.kid = "file-key".into();
        let ec = generate(SigningAlgorithm::ES256, now)?;
        let set =
            KeySet::build(&[stored_rsa.clone(), ec.clone()], Some(&file), SigningAlgorithm::RS256, settings(), now)?;
        assert_eq!(set.signer_kid(), "file-key");
        assert!(set.signs_with("file-key") && set.signs_with(&ec.kid) && !set.signs_with(&stored_rsa.kid));
        Ok(())
    }

    #[test]
    fn the_first_key_of_an_algorithm_made_after_now_signs_when_nothing_else_does() -> Result<(), KeyError> {
        // Two instances starting at once: one read the time, the other then made the first key.
        let now = OffsetDateTime::now_utc();
        let made_later = generate(SigningAlgorithm::EdDSA, now + Duration::milliseconds(300))?;
        let set = KeySet::build(std::slice::from_ref(&made_later), None, SigningAlgorithm::EdDSA, settings(), now)?;
        assert_eq!(set.signer_kid(), made_later.kid);
        // A successor published ahead of a hand-over still waits for its start.
        let current = generate(SigningAlgorithm::EdDSA, now - Duration::days(1))?;
        let keys = [current.clone(), made_later.clone()];
        let set = KeySet::build(&keys, None, SigningAlgorithm::EdDSA, settings(), now)?;
        assert_eq!(set.signer_kid(), current.kid);
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
