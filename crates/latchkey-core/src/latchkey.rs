//! The service facade: [`Latchkey`] holds the stores, the clock, the policy and this
//! instance's local state (key set, denylist, caches). Its operations live with their
//! concepts, as `impl Latchkey` blocks in `accounts`, `sessions`, `tokens`, `keys`,
//! `revocation` and `audit`; here are only starting, syncing and housekeeping.

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, RwLock};

use moka::sync::Cache;
use time::{Duration, OffsetDateTime};
use tokio::sync::{Mutex as AsyncMutex, broadcast};

use crate::accounts::PasswordHasher;
use crate::clock::Clock;
use crate::error::AuthError;
use crate::ids::SessionId;
use crate::keys::{KeyCustody, KeySet, MasterKey, StoredKey};
use crate::policy::Policy;
use crate::revocation::{Denylist, Revocation};
use crate::secret::{ServerSecret, TokenDigest};
use crate::sessions::{CookieEntry, Profile};
use crate::store::Stores;
use crate::throttle::Throttle;
use crate::tokens::BearerEntry;

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
    pub(crate) file_key: Option<StoredKey>,
    pub(crate) master_key: Option<MasterKey>,
    // Swapped whole when the store's keys change; readers clone the Arc and drop the lock.
    pub(crate) keys: RwLock<Arc<KeySet>>,
    pub(crate) denylist: Denylist,
    pub(crate) throttle: Throttle,
    // Why caches: a cookie check would otherwise be a store read and a bearer check a signature
    // verification on every request. Both are safe to cache because every hit is checked
    // against the denylist and the expiry at `now`.
    pub(crate) cookie_cache: Cache<TokenDigest, Arc<CookieEntry>>,
    pub(crate) bearer_cache: Cache<TokenDigest, Arc<BearerEntry>>,
    pub(crate) profile_cache: Cache<SessionId, Arc<Profile>>,
    pub(crate) revocation_cursor: AtomicI64,
    // Why a lock: sync is the one publisher of the revocation broadcast, and two syncs at once
    // could publish out of log order; subscribers resume by position and must never skip one.
    pub(crate) sync_lock: AsyncMutex<()>,
    pub(crate) revocations: broadcast::Sender<Revocation>,
    // When a token with an unknown `kid` last reloaded the keys.
    pub(crate) unknown_kid_reload: AsyncMutex<Option<std::time::Instant>>,
    pub(crate) unknown_kid_reloads: AtomicU64,
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
        let KeyCustody { file_key, master_key } = custody;
        let cookie_cache =
            Cache::builder().max_capacity(100_000).time_to_live(policy.cookie_cache_ttl.unsigned_abs()).build();
        let bearer_cache = Cache::builder()
            .max_capacity(100_000)
            .time_to_live(policy.access_token_ttl.unsigned_abs() + std::time::Duration::from_secs(5))
            .build();
        let profile_cache =
            Cache::builder().max_capacity(100_000).time_to_live(policy.cookie_cache_ttl.unsigned_abs()).build();
        let throttle = Throttle::new(Arc::clone(&stores.throttle), policy.throttle.clone());
        let service = Self {
            inner: Arc::new(Inner {
                stores,
                clock,
                hasher,
                policy,
                server_secret,
                file_key,
                master_key,
                keys: RwLock::new(Arc::new(key_set)),
                denylist: Denylist::new(),
                throttle,
                cookie_cache,
                bearer_cache,
                profile_cache,
                revocation_cursor: AtomicI64::new(0),
                sync_lock: AsyncMutex::new(()),
                revocations: broadcast::channel(1024).0,
                unknown_kid_reload: AsyncMutex::new(None),
                unknown_kid_reloads: AtomicU64::new(0),
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
        self.inner.denylist.prune(self.now());
        self.reload_keys().await?;
        self.rotate_keys_when_due().await
    }

    /// Deletes sessions that ended more than a day ago and keys whose tokens have all expired.
    pub async fn purge(&self) -> Result<u64, AuthError> {
        let now = self.now();
        let sessions = self.inner.stores.sessions.purge(now - Duration::days(1)).await?;
        let keys = self.inner.stores.keys.delete_retired_before(now - self.inner.policy.access_token_window()).await?;
        Ok(sessions + keys)
    }
}
