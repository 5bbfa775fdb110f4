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
//!
//! Not here: checking the password itself and auditing the refusal ([`crate::accounts`]); the
//! throttle only counts and decides when the next attempt may be checked.

mod gate;
mod local;

use std::fmt;
use std::net::IpAddr;

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::secret::{ServerSecret, b64url};
use crate::store::error::StoreError;
pub use gate::{Admission, AttemptKeys, Throttle, Throttled};
pub use local::LocalThrottle;

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

/// A setting of a [`ThrottlePolicy`], as its rules name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleSetting {
    /// [`ThrottlePolicy::account_free`].
    AccountFree,
    /// [`ThrottlePolicy::address_free`].
    AddressFree,
    /// [`ThrottlePolicy::password_free`].
    PasswordFree,
    /// [`ThrottlePolicy::max_delay`] (and the first wait it must not be shorter than).
    MaxDelay,
}

/// A rule a throttle policy breaks, naming the setting at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{rule}")]
pub struct ThrottleRuleBroken {
    /// The setting at fault.
    pub setting: ThrottleSetting,
    /// The rule it breaks.
    pub rule: &'static str,
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
    /// Checks the allowances (each must allow at least one failure, so the real user can
    /// always mistype once) and the waits, and derives how long a counter is remembered: long
    /// enough that the longest wait passes four times before it is forgotten.
    pub fn checked(self) -> Result<Self, ThrottleRuleBroken> {
        let allowances = [
            (ThrottleSetting::AccountFree, self.account_free),
            (ThrottleSetting::AddressFree, self.address_free),
            (ThrottleSetting::PasswordFree, self.password_free),
        ];
        if let Some((setting, _)) = allowances.iter().find(|(_, free)| *free == 0) {
            return Err(ThrottleRuleBroken { setting: *setting, rule: "must allow at least one failed attempt" });
        }
        if self.base_delay <= Duration::ZERO || self.max_delay < self.base_delay {
            let rule = "must be at least the first wait, 1s";
            return Err(ThrottleRuleBroken { setting: ThrottleSetting::MaxDelay, rule });
        }
        Ok(Self { forget_after: self.forget_after.max(self.max_delay * 4_i32), ..self })
    }

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
}
