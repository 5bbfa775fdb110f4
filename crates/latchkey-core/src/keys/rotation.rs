//! Keys over time: bootstrap on first start, reloading when the store's keys change, scheduled
//! and manual rotation, and the bounded reload for tokens naming an unknown `kid`.

use std::sync::{Arc, RwLock};

use serde::Serialize;
use time::OffsetDateTime;
use tracing::info;
use zeroize::Zeroizing;

use super::custody::{opened, sealed};
use super::{
    KeyCustody, KeyError, KeySet, KeyStore, MasterKey, SERVER_SECRET_ALG, SigningAlgorithm, StoredKey, generate,
    jwks_max_age,
};
use crate::audit::{AuditEvent, AuditKind};
use crate::clients::IdTokenAlg;
use crate::error::AuthError;
use crate::latchkey::Latchkey;
use crate::policy::Policy;
use crate::secret::{ServerSecret, b64url, b64url_decode};
use crate::store::error::StoreError;

impl KeyCustody {
    /// Makes the server secret and a signing key on first start (one instance wins when several
    /// start at once), seals keys stored before a master key was configured, and loads them:
    /// the server secret and the key set to start with.
    pub(crate) async fn bootstrap(
        &self,
        store: &dyn KeyStore,
        policy: &Policy,
        now: OffsetDateTime,
    ) -> Result<(ServerSecret, KeySet), AuthError> {
        let mut stored = store.list().await?;
        if !stored.iter().any(|key| key.alg == SERVER_SECRET_ALG) {
            let (_, bytes) = ServerSecret::generate();
            let key = StoredKey {
                kid: "server-secret".into(),
                alg: SERVER_SECRET_ALG.into(),
                material: b64url(&bytes),
                created_at: now,
                retired_at: None,
            };
            store.insert_if_absent(&sealed(self.master_key.as_ref(), key)?).await?;
            stored = store.list().await?;
        }
        let has_signer = stored.iter().any(|key| key.alg == policy.signing_alg.as_str() && key.retired_at.is_none());
        if self.file_key.is_none() && !has_signer {
            let key = sealed(self.master_key.as_ref(), generate(policy.signing_alg, now)?)?;
            if store.insert_if_absent(&key).await? {
                info!(kid = %key.kid, alg = %key.alg, "generated a signing key");
            }
            stored = store.list().await?;
        }
        if let Some(master) = &self.master_key {
            // Keys stored before a master key was configured are sealed now.
            for key in stored.iter().filter(|key| !MasterKey::is_sealed(&key.material)) {
                let sealed = sealed(Some(master), key.clone())?;
                if store.replace_material(&key.kid, &sealed.material).await? {
                    info!(kid = %key.kid, "sealed a stored key with the master key");
                }
            }
            stored = store.list().await?;
        }
        let stored = opened(self.master_key.as_ref(), stored)?;
        let server_secret = stored
            .iter()
            .find(|key| key.alg == SERVER_SECRET_ALG)
            .and_then(|key| b64url_decode(&key.material))
            .map(|bytes| ServerSecret::from_bytes(&Zeroizing::new(bytes)))
            .ok_or_else(|| StoreError::Corrupt("the server secret is missing or unreadable".into()))?;
        let key_set = KeySet::build(&stored, self.file_key.as_ref(), policy.signing_alg, policy.token_settings(), now)?;
        Ok((server_secret, key_set))
    }
}

/// The keys this instance signs and verifies with, and what the operator brought to them.
pub(crate) struct Keyring {
    // Swapped whole when the store's keys change; readers clone the Arc and drop the lock.
    current: RwLock<Arc<KeySet>>,
    file_key: Option<StoredKey>,
    master_key: Option<MasterKey>,
}

impl Keyring {
    /// The keyring of `custody`, starting with `current`.
    pub(crate) fn new(custody: KeyCustody, current: KeySet) -> Self {
        let KeyCustody { file_key, master_key } = custody;
        Self { current: RwLock::new(Arc::new(current)), file_key, master_key }
    }
}

/// Where a stored signing key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// New tokens are signed with it.
    Signing,
    /// Not retired and not signing: published ahead of a scheduled hand-over, or of another
    /// algorithm than the configured one.
    Idle,
    /// Retired; it verifies until the tokens it signed have expired.
    Verifying,
    /// Retired long enough that no token it signed is still accepted; purged next.
    Expired,
}

impl KeyStatus {
    /// The name `latchkey keys list` shows.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Signing => "signing",
            Self::Idle => "idle",
            Self::Verifying => "verifying",
            Self::Expired => "expired",
        }
    }
}

impl Latchkey {
    /// Every stored signing key (never the server secret), oldest first, with where it is in
    /// its life.
    pub async fn key_statuses(&self) -> Result<Vec<(StoredKey, KeyStatus)>, AuthError> {
        let stored = self.inner.stores.keys.list().await?;
        let current = self.keys();
        let window = self.inner.policy.access_token_window();
        let now = self.now();
        let status = |key: &StoredKey| match key.retired_at {
            _ if current.signs_with(&key.kid) => KeyStatus::Signing,
            None => KeyStatus::Idle,
            Some(at) if at + window > now => KeyStatus::Verifying,
            Some(_) => KeyStatus::Expired,
        };
        Ok(stored
            .into_iter()
            .filter(|key| key.alg != SERVER_SECRET_ALG)
            .map(|key| {
                let status = status(&key);
                (key, status)
            })
            .collect())
    }

    /// The current key set.
    pub fn keys(&self) -> Arc<KeySet> {
        Arc::clone(&self.inner.keyring.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Rotates the signing key by hand. The new key is published at once and signs from one
    /// JWKS `max-age` later ([`jwks_max_age`]), when every verifier's cached JWKS has it,
    /// as a scheduled rotation does; with `at_once` (an emergency: the current key is thought
    /// compromised) it signs now, and verifiers that cached the JWKS refetch it on the unknown
    /// `kid`. Either way older keys keep verifying until their tokens expire. Returns the new
    /// key and when it starts signing.
    pub async fn rotate_keys(&self, at_once: bool) -> Result<(StoredKey, OffsetDateTime), AuthError> {
        let now = self.now();
        let policy = &self.inner.policy;
        let starts_at = if at_once { now } else { now + jwks_max_age(policy.access_token_ttl) };
        let key = sealed(self.inner.keyring.master_key.as_ref(), generate(policy.signing_alg, starts_at)?)?;
        if at_once {
            self.inner.stores.keys.insert_active(&key, now).await?;
        } else if !self.inner.stores.keys.schedule_rotation(&key, now).await? {
            return Err(AuthError::RotationPending);
        }
        let detail = format!("{} {}{}", key.alg, key.kid, if at_once { " at once" } else { " scheduled" });
        self.audit(AuditEvent::new(AuditKind::KeyRotated, now).detail(detail)).await;
        self.reload_keys().await?;
        Ok((key, starts_at))
    }

    /// Schedules the next signing key of each algorithm whose current key has served its
    /// interval (the access tokens' and those apps' ID tokens use): the new key is published
    /// at once and signs from [`jwks_max_age`] later, when every JWKS cache has seen it; the
    /// old one keeps verifying until its tokens have expired. Of several instances that find a
    /// rotation due at once, one schedules it (the store decides). The operator's file key is
    /// never rotated.
    pub(crate) async fn rotate_keys_when_due(&self) -> Result<(), AuthError> {
        let policy = &self.inner.policy;
        let Some(interval) = policy.key_rotation_interval else { return Ok(()) };
        let now = self.now();
        let current = self.keys();
        if current.next_change().is_some() {
            return Ok(());
        }
        let file_alg = self.inner.keyring.file_key.as_ref().map(|key| key.alg.clone());
        let due: Vec<SigningAlgorithm> = current
            .signing_algorithms()
            .filter(|(alg, created)| *created + interval <= now && file_alg.as_deref() != Some(alg.as_str()))
            .map(|(alg, _)| alg)
            .collect();
        let mut scheduled = false;
        for alg in due {
            let starts_at = now + jwks_max_age(policy.access_token_ttl);
            let key = sealed(self.inner.keyring.master_key.as_ref(), generate(alg, starts_at)?)?;
            if self.inner.stores.keys.schedule_rotation(&key, now - interval).await? {
                info!(kid = %key.kid, alg = %key.alg, "scheduled the next signing key");
                let detail = format!("{} {} scheduled", key.alg, key.kid);
                self.audit(AuditEvent::new(AuditKind::KeyRotated, now).detail(detail)).await;
                scheduled = true;
            }
        }
        if scheduled {
            self.reload_keys().await?;
        }
        Ok(())
    }

    /// Makes sure a key of `alg` signs (an app registered for ID tokens of that algorithm):
    /// generates one when the store has none unretired, publishing it at once. Of several
    /// instances that ask at once, one adds it (the store decides).
    pub(crate) async fn ensure_signing_key(&self, alg: SigningAlgorithm) -> Result<(), AuthError> {
        let stored = self.inner.stores.keys.list().await?;
        let has_key = stored.iter().any(|key| key.alg == alg.as_str() && key.retired_at.is_none())
            || self.inner.keyring.file_key.as_ref().is_some_and(|key| key.alg == alg.as_str());
        if !has_key {
            let now = self.now();
            let key = sealed(self.inner.keyring.master_key.as_ref(), generate(alg, now)?)?;
            if self.inner.stores.keys.insert_if_absent(&key).await? {
                info!(kid = %key.kid, alg = %key.alg, "generated a signing key for apps' ID tokens");
                let detail = format!("{} {} for ID tokens", key.alg, key.kid);
                self.audit(AuditEvent::new(AuditKind::KeyRotated, now).detail(detail)).await;
            }
        }
        self.reload_keys().await
    }

    /// Signs what an app is given (an ID token, a logout token) with the key of the app's
    /// algorithm. A client registered a moment ago by the CLI may use an algorithm whose key
    /// this instance has not loaded yet (it would at the next sync): the keys are reloaded
    /// once rather than the request failing.
    pub(crate) async fn sign_for_app(
        &self,
        alg: IdTokenAlg,
        typ: &str,
        claims: &(impl Serialize + Sync),
    ) -> Result<String, AuthError> {
        match self.keys().sign_as(alg.signing(), typ, claims) {
            Err(KeyError::NoSigningKey(_)) => {
                self.reload_keys().await?;
                Ok(self.keys().sign_as(alg.signing(), typ, claims)?)
            }
            signed => Ok(signed?),
        }
    }

    pub(crate) async fn reload_keys(&self) -> Result<(), AuthError> {
        let stored = self.inner.stores.keys.list().await?;
        let file_key = self.inner.keyring.file_key.as_ref();
        let now = self.now();
        let current = self.keys();
        // Rebuild when the keys changed, and when a retired key's overlap ran out.
        let overlap_ended = stored.iter().any(|key| {
            key.retired_at.is_some_and(|at| {
                let ends = at + self.inner.policy.access_token_window();
                ends <= now && current.jwks().contains(&key.kid)
            })
        });
        let hand_over_due = current.next_change().is_some_and(|at| at <= now);
        if current.is_stale(&stored, file_key) || overlap_ended || hand_over_due {
            let policy = &self.inner.policy;
            let stored = opened(self.inner.keyring.master_key.as_ref(), stored)?;
            let rebuilt = KeySet::build(&stored, file_key, policy.signing_alg, policy.token_settings(), now)?;
            *self.inner.keyring.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(rebuilt);
        }
        Ok(())
    }
}
