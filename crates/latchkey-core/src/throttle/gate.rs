//! Admitting password attempts: the wait a counter demands, attempts in flight on one account
//! taking turns, and counting the outcome.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use super::{ThrottleKey, ThrottlePolicy, ThrottleScope, ThrottleStore};
use crate::secret::ServerSecret;
use crate::store::error::StoreError;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throttle::LocalThrottle;

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
