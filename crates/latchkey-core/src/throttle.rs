//! Throttling of password attempts: per account, per client address, and per password (the
//! guard against password spraying, one password tried over many accounts).
//!
//! Each counter allows some failures for free, then demands a growing wait after the latest
//! failure (doubling up to a cap) before the next attempt is even checked. Nothing locks an
//! account for good: once the wait is over, the next attempt is checked like any other, so the
//! real user gets in with the right password. Counters are forgotten a while after their last
//! failure, so attempts on names that are not accounts leave nothing lasting behind.
//!
//! Counters are keyed by a MAC under the server secret ([`ThrottleKey`]): a copy of the counter
//! store reveals neither usernames, nor addresses, nor passwords, and every key has the same
//! small size whatever was typed.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use moka::Expiry;
use moka::sync::Cache;
use time::{Duration, OffsetDateTime};

use crate::secret::{ServerSecret, b64url};
use crate::store::error::StoreError;

/// Counters of failed password attempts (see the module documentation). Each key's counter is
/// forgotten `forget_after` its latest failure.
#[async_trait]
pub trait ThrottleStore: Send + Sync + 'static {
    /// The counter's state, if it has one.
    async fn failures(&self, key: &ThrottleKey) -> Result<Option<Failures>, StoreError>;
    /// Counts one more failure at `at` (atomically: concurrent failures are all counted) and
    /// returns the new state.
    async fn record_failure(
        &self,
        key: &ThrottleKey,
        at: OffsetDateTime,
        forget_after: time::Duration,
    ) -> Result<Failures, StoreError>;
    /// Forgets the counter (after a successful login on the account).
    async fn clear(&self, key: &ThrottleKey) -> Result<(), StoreError>;
    /// Marks one more attempt on `key` as in flight (its password being checked) and returns
    /// how many are in flight now, this one included. Kept apart from the failures: an attempt
    /// is no failure until its password proved wrong. A mark not ended within `lapse` (its
    /// instance died mid-check) is forgotten.
    async fn begin_attempt(&self, key: &ThrottleKey, lapse: time::Duration) -> Result<u32, StoreError>;
    /// Ends an attempt begun with [`Self::begin_attempt`].
    async fn end_attempt(&self, key: &ThrottleKey) -> Result<(), StoreError>;
}

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThrottleScope {
    /// Failed attempts on one (normalised) username, from anywhere.
    Account,
    /// Failed attempts from one client address (IPv6: its /64), on any username.
    Address,
    /// Failed attempts with one password, on any username: password spraying.
    Password,
}

impl ThrottleScope {
    /// The name used in logs, metrics and the audit trail.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Address => "address",
            Self::Password => "password",
        }
    }

    fn tag(&self) -> char {
        match self {
            Self::Account => 'a',
            Self::Address => 'i',
            Self::Password => 'p',
        }
    }
}

/// A counter's key: the scope and a MAC of what it counts. Prints without its MAC, which for
/// the password scope is derived from a password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ThrottleKey {
    scope: ThrottleScope,
    text: String,
}

impl ThrottleKey {
    const PURPOSE: &'static str = "latchkey/throttle/v1";

    fn derive(secret: &ServerSecret, scope: ThrottleScope, subject: &[u8]) -> Self {
        let tag = scope.tag();
        let mac = secret.mac(Self::PURPOSE, &[&[tag as u8], subject]);
        // 128 bits: collisions between counters are out of reach, and keys stay small.
        Self { scope, text: format!("{tag}:{}", b64url(&mac[..16])) }
    }

    /// The counter of a username as typed at login (normalised when it parses).
    pub fn account(secret: &ServerSecret, username: &str) -> Self {
        Self::derive(secret, ThrottleScope::Account, username.as_bytes())
    }

    /// The counter of a client address; an IPv6 client is counted by its /64, which one
    /// subscriber usually holds whole.
    pub fn address(secret: &ServerSecret, ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::derive(secret, ThrottleScope::Address, &v4.octets()),
            IpAddr::V6(v6) => Self::derive(secret, ThrottleScope::Address, &v6.octets()[..8]),
        }
    }

    /// The counter of a password, whoever it is tried on.
    pub fn password(secret: &ServerSecret, password: &[u8]) -> Self {
        Self::derive(secret, ThrottleScope::Password, password)
    }

    /// What the key counts.
    pub fn scope(&self) -> ThrottleScope {
        self.scope
    }

    /// The key's text, for a store to use as (part of) its key.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for ThrottleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ThrottleKey({}, ..)", self.scope.as_str())
    }
}

/// A counter's state: failures since it was last cleared or forgotten, and the latest one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    /// How many.
    pub count: u32,
    /// When the latest happened.
    pub last_at: OffsetDateTime,
}

/// How many failures each scope allows before waits begin, and how the waits grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures per account before the first wait.
    pub account_free: u32,
    /// Failures per client address before the first wait.
    pub address_free: u32,
    /// Failures with one password (over any accounts) before the first wait.
    pub password_free: u32,
    /// The first wait; each further failure doubles it.
    pub base_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
    /// A counter is forgotten this long after its latest failure.
    pub forget_after: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            account_free: 5,
            address_free: 20,
            password_free: 20,
            base_delay: Duration::seconds(1),
            max_delay: Duration::minutes(15),
            forget_after: Duration::hours(1),
        }
    }
}

impl ThrottlePolicy {
    fn free(&self, scope: ThrottleScope) -> u32 {
        match scope {
            ThrottleScope::Account => self.account_free,
            ThrottleScope::Address => self.address_free,
            ThrottleScope::Password => self.password_free,
        }
    }

    /// The wait `failures` of `scope` demand after the latest of them.
    pub fn delay(&self, scope: ThrottleScope, failures: u32) -> Duration {
        let free = self.free(scope);
        if failures < free {
            return Duration::ZERO;
        }
        // 2^20 times the base is past any sensible cap; stop doubling there.
        let doublings = (failures - free).min(20);
        (self.base_delay * 2_i32.pow(doublings)).min(self.max_delay)
    }

    /// How long an attempt must still wait at `now` given a counter's state; zero when it may
    /// go ahead.
    pub fn wait(&self, scope: ThrottleScope, failures: Option<Failures>, now: OffsetDateTime) -> Duration {
        let Some(failures) = failures else { return Duration::ZERO };
        let until = failures.last_at + self.delay(scope, failures.count);
        (until - now).max(Duration::ZERO)
    }
}

/// An attempt refused before its password was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// The counter that refused it (the one demanding the longest wait).
    pub scope: ThrottleScope,
    /// How long until an attempt will be checked again.
    pub retry_after: Duration,
}

/// An admitted attempt, in flight until [`Throttle::failed`] or [`Throttle::succeeded`] ends
/// it. Dropped unended (the check failed on the way, or its request went away), it ends
/// without counting as a failure: only a wrong password is one.
#[derive(Debug)]
pub struct Admission {
    in_flight: InFlight,
}

/// One attempt's mark among the account's attempts in flight; taken off when dropped.
struct InFlight {
    store: Arc<dyn ThrottleStore>,
    key: ThrottleKey,
    ended: bool,
}

impl fmt::Debug for InFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InFlight").field("key", &self.key).field("ended", &self.ended).finish()
    }
}

impl InFlight {
    async fn end(mut self) -> Result<(), StoreError> {
        self.ended = true;
        self.store.end_attempt(&self.key).await
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let (store, key) = (Arc::clone(&self.store), self.key.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                // A mark that cannot be taken off lapses in the store by itself.
                let _ = store.end_attempt(&key).await;
            });
        }
    }
}

/// The counters of one password attempt: its account, its client address when known, and its
/// password when it could be one (an over-long password is refused without being checked).
#[derive(Debug, Clone)]
pub struct AttemptKeys {
    account: ThrottleKey,
    others: Vec<ThrottleKey>,
}

impl AttemptKeys {
    /// The keys of an attempt on `username` (as it will be looked up) from `address` with
    /// `password`.
    pub fn new(secret: &ServerSecret, username: &str, address: Option<IpAddr>, password: Option<&[u8]>) -> Self {
        let mut others = Vec::with_capacity(2);
        others.extend(address.map(|ip| ThrottleKey::address(secret, ip)));
        others.extend(password.map(|password| ThrottleKey::password(secret, password)));
        Self { account: ThrottleKey::account(secret, username), others }
    }

    fn all(&self) -> impl Iterator<Item = &ThrottleKey> + '_ {
        std::iter::once(&self.account).chain(&self.others)
    }
}

/// Applies a [`ThrottlePolicy`] to password attempts, on the counters of a [`ThrottleStore`].
#[derive(Clone)]
pub struct Throttle {
    store: Arc<dyn ThrottleStore>,
    policy: ThrottlePolicy,
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl Throttle {
    /// A throttle on `store`'s counters.
    pub fn new(store: Arc<dyn ThrottleStore>, policy: ThrottlePolicy) -> Self {
        Self { store, policy }
    }

    /// Admits an attempt, or refuses it with the wait its counters demand.
    ///
    /// Failures are counted only once a password proved wrong, so attempts racing in at the
    /// same moment must not each take a guess past the allowance: an attempt goes ahead when,
    /// should every attempt in flight on the account fail, its failures would stay within the
    /// free ones — or when it is the only one in flight. Others wait their turn (as correct
    /// logins of one account may: they are never refused for being concurrent) and are then
    /// judged by what the attempts before them left: cleared by a success, or a wait.
    pub async fn admit(
        &self,
        keys: &AttemptKeys,
        now: OffsetDateTime,
    ) -> Result<Result<Admission, Throttled>, StoreError> {
        let started = std::time::Instant::now();
        loop {
            // An attempt that waited its turn is judged at the moment its turn came.
            let now = now + started.elapsed();
            let mut longest: Option<Throttled> = None;
            let mut account_failures = 0;
            for key in keys.all() {
                let failures = self.store.failures(key).await?;
                if key == &keys.account {
                    account_failures = failures.map_or(0, |failures| failures.count);
                }
                let wait = self.policy.wait(key.scope(), failures, now);
                if wait > Duration::ZERO && longest.is_none_or(|longest| wait > longest.retry_after) {
                    longest = Some(Throttled { scope: key.scope(), retry_after: wait });
                }
            }
            if let Some(throttled) = longest {
                return Ok(Err(throttled));
            }
            let in_flight_now = self.store.begin_attempt(&keys.account, IN_FLIGHT_LAPSE).await?;
            let in_flight = InFlight { store: Arc::clone(&self.store), key: keys.account.clone(), ended: false };
            if in_flight_now == 1 || account_failures.saturating_add(in_flight_now) <= self.policy.account_free {
                return Ok(Ok(Admission { in_flight }));
            }
            in_flight.end().await?;
            if started.elapsed() >= ADMISSION_WAIT {
                return Ok(Err(Throttled { scope: ThrottleScope::Account, retry_after: self.policy.base_delay }));
            }
            tokio::time::sleep(ADMISSION_POLL).await;
        }
    }

    /// Counts a failed attempt on every counter of the attempt and ends it. Returns the scopes
    /// whose counters this failure brought to their allowance, so that waits begin now: what
    /// the audit trail records as throttling.
    pub async fn failed(
        &self,
        keys: &AttemptKeys,
        admission: Admission,
        now: OffsetDateTime,
    ) -> Result<Vec<ThrottleScope>, StoreError> {
        let mut reached = Vec::new();
        for key in keys.all() {
            let failures = self.store.record_failure(key, now, self.policy.forget_after).await?;
            if failures.count == self.policy.free(key.scope()) {
                reached.push(key.scope());
            }
        }
        admission.in_flight.end().await?;
        Ok(reached)
    }

    /// A successful attempt clears its account's counter and ends.
    pub async fn succeeded(&self, keys: &AttemptKeys, admission: Admission) -> Result<(), StoreError> {
        self.store.clear(&keys.account).await?;
        admission.in_flight.end().await
    }
}

/// How long an attempt waits for its turn behind attempts in flight on the same account
/// before it is answered like a throttled one. Far longer than a password check takes.
const ADMISSION_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// How often a waiting attempt looks again.
const ADMISSION_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// When an in-flight mark whose instance died is forgotten.
const IN_FLIGHT_LAPSE: Duration = Duration::minutes(1);

/// Counters in this process's memory: the throttle of a single instance, or of instances that
/// share no Redis (each then counts on its own). Bounded: a flood of made-up names evicts the
/// least-used counters rather than growing without limit.
pub struct LocalThrottle {
    counters: Cache<ThrottleKey, Counter>,
    // Attempts in flight per key and when the latest began; an entry exists only while one is.
    in_flight: std::sync::Mutex<std::collections::HashMap<ThrottleKey, (u32, std::time::Instant)>>,
}

#[derive(Clone, Copy)]
struct Counter {
    failures: Failures,
    forget_after: StdDuration,
}

struct ForgetAfterLatest;

impl Expiry<ThrottleKey, Counter> for ForgetAfterLatest {
    fn expire_after_create(&self, _: &ThrottleKey, counter: &Counter, _: std::time::Instant) -> Option<StdDuration> {
        Some(counter.forget_after)
    }

    fn expire_after_update(
        &self,
        _: &ThrottleKey,
        counter: &Counter,
        _: std::time::Instant,
        _: Option<StdDuration>,
    ) -> Option<StdDuration> {
        Some(counter.forget_after)
    }
}

impl LocalThrottle {
    /// Most counters held at once.
    pub const CAPACITY: u64 = 200_000;

    /// An empty set of counters.
    pub fn new() -> Self {
        Self {
            counters: Cache::builder().max_capacity(Self::CAPACITY).expire_after(ForgetAfterLatest).build(),
            in_flight: std::sync::Mutex::default(),
        }
    }
}

impl Default for LocalThrottle {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl ThrottleStore for LocalThrottle {
    async fn failures(&self, key: &ThrottleKey) -> Result<Option<Failures>, StoreError> {
        Ok(self.counters.get(key).map(|counter| counter.failures))
    }

    async fn record_failure(
        &self,
        key: &ThrottleKey,
        at: OffsetDateTime,
        forget_after: Duration,
    ) -> Result<Failures, StoreError> {
        let forget_after = forget_after.unsigned_abs();
        // One atomic read-modify-write per key, so concurrent failures are all counted.
        let entry = self.counters.entry(key.clone()).and_upsert_with(|current| {
            let count = current.map_or(0, |entry| entry.into_value().failures.count);
            Counter { failures: Failures { count: count.saturating_add(1), last_at: at }, forget_after }
        });
        Ok(entry.into_value().failures)
    }

    async fn clear(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        self.counters.invalidate(key);
        Ok(())
    }

    async fn begin_attempt(&self, key: &ThrottleKey, lapse: Duration) -> Result<u32, StoreError> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = std::time::Instant::now();
        let entry = in_flight.entry(key.clone()).or_insert((0, now));
        if now.duration_since(entry.1) > lapse.unsigned_abs() {
            entry.0 = 0;
        }
        *entry = (entry.0.saturating_add(1), now);
        Ok(entry.0)
    }

    async fn end_attempt(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(entry) = in_flight.get_mut(key) {
            entry.0 = entry.0.saturating_sub(1);
            if entry.0 == 0 {
                in_flight.remove(key);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_start_after_the_free_failures_double_and_stop_at_the_cap() {
        let policy = ThrottlePolicy::default();
        assert_eq!(policy.delay(ThrottleScope::Account, 4), Duration::ZERO);
        assert_eq!(policy.delay(ThrottleScope::Account, 5), Duration::seconds(1));
        assert_eq!(policy.delay(ThrottleScope::Account, 6), Duration::seconds(2));
        assert_eq!(policy.delay(ThrottleScope::Account, 9), Duration::seconds(16));
        assert_eq!(policy.delay(ThrottleScope::Account, 40), Duration::minutes(15));
        assert_eq!(policy.delay(ThrottleScope::Account, u32::MAX), Duration::minutes(15));
        assert_eq!(policy.delay(ThrottleScope::Address, 19), Duration::ZERO);
        assert_eq!(policy.delay(ThrottleScope::Address, 20), Duration::seconds(1));
    }

    #[test]
    fn the_wait_runs_from_the_latest_failure_and_then_lets_the_next_attempt_through() {
        let policy = ThrottlePolicy::default();
        let last_at = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let failures = Some(Failures { count: 6, last_at });
        assert_eq!(policy.wait(ThrottleScope::Account, failures, last_at), Duration::seconds(2));
        assert_eq!(policy.wait(ThrottleScope::Account, failures, last_at + Duration::seconds(1)), Duration::seconds(1));
        assert_eq!(policy.wait(ThrottleScope::Account, failures, last_at + Duration::seconds(2)), Duration::ZERO);
        assert_eq!(policy.wait(ThrottleScope::Account, None, last_at), Duration::ZERO);
    }

    #[test]
    fn keys_are_macs_that_differ_by_scope_and_secret_and_never_print() {
        let (secret, _) = ServerSecret::generate();
        let (other, _) = ServerSecret::generate();
        let account = ThrottleKey::account(&secret, "alice");
        assert_eq!(account, ThrottleKey::account(&secret, "alice"));
        assert_ne!(account, ThrottleKey::account(&other, "alice"));
        assert_ne!(account.as_str(), ThrottleKey::password(&secret, b"alice").as_str().replace("p:", "a:"));
        assert!(!account.as_str().contains("alice"));
        let printed = format!("{:?}", ThrottleKey::password(&secret, b"hunter22"));
        assert_eq!(printed, "ThrottleKey(password, ..)");
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_slash_64_and_a_mapped_ipv4_as_itself() {
        let (secret, _) = ServerSecret::generate();
        let key = |ip: &str| ThrottleKey::address(&secret, ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])));
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
    }

    fn throttle(account_free: u32) -> Throttle {
        let policy = ThrottlePolicy { account_free, ..ThrottlePolicy::default() };
        Throttle::new(Arc::new(LocalThrottle::new()), policy)
    }

    #[tokio::test]
    async fn past_the_free_failures_an_attempt_still_being_checked_makes_the_next_one_wait_for_its_outcome()
    -> Result<(), StoreError> {
        let (secret, _) = ServerSecret::generate();
        let throttle = throttle(2);
        let keys = AttemptKeys::new(&secret, "alice", None, None);
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let refused = || StoreError::Corrupt("refused".into());
        let admission = throttle.admit(&keys, t0).await?.map_err(|_| refused())?;
        throttle.failed(&keys, admission, t0).await?;
        let later = t0 + Duration::seconds(10);
        for succeeds in [true, false] {
            // One guess goes ahead; while its password is checked, the next one waits.
            let first = throttle.admit(&keys, later).await?.map_err(|_| refused())?;
            let waiting = {
                let (throttle, keys) = (throttle.clone(), keys.clone());
                tokio::spawn(async move { throttle.admit(&keys, later).await })
            };
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            assert!(!waiting.is_finished(), "the second attempt went ahead while the first was checked");
            if succeeds {
                throttle.succeeded(&keys, first).await?;
                let second = waiting.await.map_err(|_| refused())??;
                let second = second.map_err(|_| refused())?;
                throttle.failed(&keys, second, later).await?;
            } else {
                throttle.failed(&keys, first, later).await?;
                let second = waiting.await.map_err(|_| refused())??;
                assert!(matches!(second, Err(Throttled { scope: ThrottleScope::Account, .. })), "{second:?}");
            }
        }
        Ok(())
    }

    #[tokio::test]
    async fn concurrent_correct_attempts_are_all_admitted_and_a_dropped_one_is_no_failure() -> Result<(), StoreError> {
        let (secret, _) = ServerSecret::generate();
        let throttle = throttle(5);
        let keys = AttemptKeys::new(&secret, "alice", None, None);
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let attempts: Vec<_> = (0..16)
            .map(|_| {
                let (throttle, keys) = (throttle.clone(), keys.clone());
                tokio::spawn(async move {
                    let admission =
                        throttle.admit(&keys, t0).await?.map_err(|_| StoreError::Corrupt("refused".into()))?;
                    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                    throttle.succeeded(&keys, admission).await
                })
            })
            .collect();
        for attempt in attempts {
            attempt.await.map_err(|_| StoreError::Corrupt("panicked".into()))??;
        }
        for _ in 0..10 {
            drop(throttle.admit(&keys, t0).await?.map_err(|_| StoreError::Corrupt("refused".into()))?);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(throttle.store.failures(&keys.account).await?.is_none(), "an attempt that ended unchecked counted");
        Ok(())
    }

    #[tokio::test]
    async fn a_success_clears_the_account_and_failures_report_the_allowance_they_reach() -> Result<(), StoreError> {
        let (secret, _) = ServerSecret::generate();
        let throttle = throttle(2);
        let address = IpAddr::from([192, 0, 2, 1]);
        let keys = AttemptKeys::new(&secret, "alice", Some(address), Some(b"guess"));
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let refused = || StoreError::Corrupt("refused".into());
        let first = throttle.admit(&keys, t0).await?.map_err(|_| refused())?;
        assert!(throttle.failed(&keys, first, t0).await?.is_empty());
        let second = throttle.admit(&keys, t0).await?.map_err(|_| refused())?;
        assert_eq!(throttle.failed(&keys, second, t0).await?, vec![ThrottleScope::Account], "the second of two");
        let later = t0 + Duration::seconds(5);
        // The right password, once the wait is over.
        let right = throttle.admit(&keys, later).await?.map_err(|_| refused())?;
        throttle.succeeded(&keys, right).await?;
        for _ in 0..2 {
            let admission = throttle.admit(&keys, later).await?.map_err(|_| refused())?;
            throttle.failed(&keys, admission, later).await?;
        }
        assert!(throttle.admit(&keys, later).await?.is_err(), "counting started again from zero after the success");
        Ok(())
    }
}
