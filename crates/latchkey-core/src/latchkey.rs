//! The service facade: [`Latchkey`] holds the stores, the clock, the policy, the server secret
//! and each concept's state on this instance, defined by its concept (the keyring in `keys`,
//! the session caches in `sessions`, the bearer checks in `tokens`, the denylist and feed in
//! `revocation`). Its operations live with their concepts, as `impl Latchkey` blocks; here are
//! only starting, syncing and housekeeping.

use std::fmt;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use crate::accounts::PasswordHasher;
use crate::clock::Clock;
use crate::error::AuthError;
use crate::keys::{KeyCustody, Keyring};
use crate::logout::DeliveryCounts;
use crate::policy::Policy;
use crate::revocation::LocalRevocations;
use crate::secret::ServerSecret;
use crate::sessions::SessionCaches;
use crate::store::Stores;
use crate::throttle::Throttle;
use crate::tokens::BearerChecks;

/// The latchkey service. Cheap to clone; every clone shares state.
#[derive(Clone)]
pub struct Latchkey {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) stores: Stores,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) hasher: PasswordHasher,
    pub(crate) policy: Policy,
    pub(crate) server_secret: ServerSecret,
    pub(crate) throttle: Throttle,
    pub(crate) keyring: Keyring,
    pub(crate) sessions: SessionCaches,
    pub(crate) bearer: BearerChecks,
    pub(crate) revocations: LocalRevocations,
    pub(crate) deliveries: DeliveryCounts,
}

impl fmt::Debug for Latchkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Latchkey").field("policy", &self.inner.policy).finish_non_exhaustive()
    }
}

impl Latchkey {
    /// Starts the service on `stores`: makes the server secret and a signing key on first
    /// start, loads the keys and the revocations that still matter.
    pub async fn start(
        stores: Stores,
        clock: Arc<dyn Clock>,
        hasher: PasswordHasher,
        policy: Policy,
        custody: KeyCustody,
    ) -> Result<Self, AuthError> {
        let policy = policy.checked()?;
        let (server_secret, key_set) = custody.bootstrap(stores.keys.as_ref(), &policy, clock.now()).await?;
        let throttle = Throttle::new(Arc::clone(&stores.throttle), policy.throttle.clone());
        let service = Self {
            inner: Arc::new(Inner {
                sessions: SessionCaches::new(&policy),
                bearer: BearerChecks::new(&policy),
                keyring: Keyring::new(custody, key_set),
                revocations: LocalRevocations::new(),
                deliveries: DeliveryCounts::default(),
                stores,
                clock,
                hasher,
                policy,
                server_secret,
                throttle,
            }),
        };
        service.sync().await?;
        Ok(service)
    }

    /// The deployment's policy.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The current time by the service's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    /// The stores, for readiness checks and metrics.
    pub fn stores(&self) -> &Stores {
        &self.inner.stores
    }

    /// Brings this instance up to date with the store: revocations made elsewhere go into the
    /// denylist, new or retired keys into the key set. Called periodically.
    pub async fn sync(&self) -> Result<(), AuthError> {
        self.sync_revocations().await?;
        self.inner.revocations.denylist.prune(self.now());
        self.reload_keys().await?;
        self.rotate_keys_when_due().await
    }

    /// Deletes sessions that ended more than a day ago, keys whose tokens have all expired,
    /// authorization codes issued more than a day ago (a replay of one is then just unknown),
    /// and apps' sign-ins that ended more than a week ago with their deliveries settled.
    pub async fn purge(&self) -> Result<u64, AuthError> {
        let now = self.now();
        let sessions = self.inner.stores.sessions.purge(now - Duration::days(1)).await?;
        let keys = self.inner.stores.keys.delete_retired_before(now - self.inner.policy.access_token_window()).await?;
        let codes = self.inner.stores.codes.purge_codes(now - Duration::days(1)).await?;
        // Settled deliveries stay a week for the operator to see.
        let sign_ins = self.inner.stores.sign_ins.purge_sign_ins(now - Duration::days(7)).await?;
        Ok(sessions + keys + codes + sign_ins)
    }
}
