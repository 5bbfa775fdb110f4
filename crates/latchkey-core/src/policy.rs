//! The deployment's policy: lifetimes, identity and limits, with the rules derived from them
//! (how long a session may idle as recorded, how often activity is written, how long a
//! revoked session or a retired key must be remembered).

use time::Duration;

use crate::keys::SigningAlgorithm;
use crate::sessions::SessionKind;
use crate::throttle::{ThrottlePolicy, ThrottleSetting};
use crate::tokens::{TokenSettings, acceptance_window};

/// Lifetimes and identity settings of a latchkey deployment.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `iss` of access tokens: the public URL.
    pub issuer: String,
    /// `aud` of access tokens.
    pub audience: String,
    /// Algorithm new keys are made for.
    pub signing_alg: SigningAlgorithm,
    /// Access-token lifetime.
    pub access_token_ttl: Duration,
    /// Cookie sessions end after this much inactivity...
    pub session_idle_timeout: Duration,
    /// ...and this long after login whatever the activity.
    pub session_absolute_timeout: Duration,
    /// Token sessions end after this long without a refresh...
    pub refresh_idle_timeout: Duration,
    /// ...and this long after login whatever the activity.
    pub refresh_absolute_timeout: Duration,
    /// How long after a rotation the token it retired is still answered (two tabs).
    pub refresh_reuse_grace: Duration,
    /// Sliding renewal writes `last_seen_at` at most once per this interval.
    pub touch_interval: Duration,
    /// How long a cookie check may be answered from this instance's cache (zero: never;
    /// every check reads the store). Revocations reach cached entries through the denylist.
    pub cookie_cache_ttl: Duration,
    /// How failed password attempts are throttled.
    pub throttle: ThrottlePolicy,
    /// A signing key older than this is replaced by a new one (`None`: only by hand).
    pub key_rotation_interval: Option<Duration>,
    /// Live sessions one user may hold; a login past it ends the one used longest ago.
    pub max_sessions_per_user: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            issuer: "http://localhost:8080".into(),
            audience: "http://localhost:8080".into(),
            signing_alg: SigningAlgorithm::EdDSA,
            access_token_ttl: Duration::minutes(10),
            session_idle_timeout: Duration::hours(12),
            session_absolute_timeout: Duration::days(7),
            refresh_idle_timeout: Duration::days(14),
            refresh_absolute_timeout: Duration::days(30),
            refresh_reuse_grace: Duration::seconds(10),
            touch_interval: Duration::seconds(60),
            cookie_cache_ttl: Duration::seconds(30),
            throttle: ThrottlePolicy::default(),
            key_rotation_interval: Some(Duration::days(30)),
            max_sessions_per_user: 100,
        }
    }
}

/// A setting of a [`Policy`], as the rules name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicySetting {
    /// [`Policy::access_token_ttl`].
    AccessTokenTtl,
    /// [`Policy::session_idle_timeout`].
    SessionIdleTimeout,
    /// [`Policy::session_absolute_timeout`].
    SessionAbsoluteTimeout,
    /// [`Policy::refresh_idle_timeout`].
    RefreshIdleTimeout,
    /// [`Policy::refresh_absolute_timeout`].
    RefreshAbsoluteTimeout,
    /// [`Policy::refresh_reuse_grace`].
    RefreshReuseGrace,
    /// [`Policy::touch_interval`].
    TouchInterval,
    /// [`Policy::cookie_cache_ttl`].
    CookieCacheTtl,
    /// [`Policy::key_rotation_interval`].
    KeyRotationInterval,
    /// [`Policy::max_sessions_per_user`].
    MaxSessionsPerUser,
    /// A setting of [`Policy::throttle`].
    Throttle(ThrottleSetting),
}

/// A rule a policy breaks, naming the setting at fault (the settings layer names it in its
/// own terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{rule}")]
pub struct PolicyError {
    /// The setting at fault.
    pub setting: PolicySetting,
    /// The rule it breaks.
    pub rule: &'static str,
}

impl PolicyError {
    fn new(setting: PolicySetting, rule: &'static str) -> Self {
        Self { setting, rule }
    }
}

impl Policy {
    /// Checks the rules between the settings and derives what follows from them (see
    /// [`ThrottlePolicy::checked`]). [`crate::Latchkey::start`] runs on nothing else, so a
    /// policy that breaks a rule cannot reach a running service, whoever built it.
    pub fn checked(self) -> Result<Self, PolicyError> {
        use PolicySetting as S;
        let positive = [
            (S::AccessTokenTtl, self.access_token_ttl),
            (S::SessionIdleTimeout, self.session_idle_timeout),
            (S::SessionAbsoluteTimeout, self.session_absolute_timeout),
            (S::RefreshIdleTimeout, self.refresh_idle_timeout),
            (S::RefreshAbsoluteTimeout, self.refresh_absolute_timeout),
            (S::RefreshReuseGrace, self.refresh_reuse_grace),
            (S::TouchInterval, self.touch_interval),
        ];
        if let Some((setting, _)) = positive.iter().find(|(_, value)| *value <= Duration::ZERO) {
            return Err(PolicyError::new(*setting, "must be longer than zero"));
        }
        if self.cookie_cache_ttl < Duration::ZERO {
            return Err(PolicyError::new(S::CookieCacheTtl, "must not be negative"));
        }
        if self.key_rotation_interval.is_some_and(|interval| interval <= Duration::ZERO) {
            return Err(PolicyError::new(S::KeyRotationInterval, "must be longer than zero (or none)"));
        }
        if self.session_idle_timeout > self.session_absolute_timeout {
            return Err(PolicyError::new(S::SessionIdleTimeout, "longer than the cookie sessions' absolute timeout"));
        }
        if self.refresh_idle_timeout > self.refresh_absolute_timeout {
            return Err(PolicyError::new(S::RefreshIdleTimeout, "longer than the token sessions' absolute timeout"));
        }
        if self.max_sessions_per_user == 0 {
            return Err(PolicyError::new(S::MaxSessionsPerUser, "must allow at least one session"));
        }
        let throttle =
            self.throttle.checked().map_err(|broken| PolicyError::new(S::Throttle(broken.setting), broken.rule))?;
        Ok(Self { throttle, ..self })
    }

    /// How long an access token of this policy can be accepted after it was issued (see
    /// [`acceptance_window`]): what a retired key and a revoked session are remembered for.
    pub fn access_token_window(&self) -> Duration {
        acceptance_window(self.access_token_ttl)
    }

    /// How long a session of `kind` may go unused, as the session records it: the configured
    /// idle timeout plus the slack of the touch interval. Activity is written at most once per
    /// [`Self::touch_interval_for`], so the recorded last use can lag the real one by up to
    /// that; the slack keeps a session whose uses are less than the configured idle timeout
    /// minus 1 s apart alive (API.md, "Sliding expiry") without a write on every use.
    pub(crate) fn idle_timeout(&self, kind: SessionKind) -> Duration {
        let configured = match kind {
            SessionKind::Cookie => self.session_idle_timeout,
            SessionKind::Token => self.refresh_idle_timeout,
        };
        configured + (self.touch_interval_for(configured) - Duration::SECOND).max(Duration::ZERO)
    }

    /// How often a session with `idle_timeout` records its activity: the configured touch
    /// interval, but never more than a tenth of the idle timeout, so a short idle timeout is
    /// neither outrun by the interval nor stretched by much more than a tenth by the slack.
    pub(crate) fn touch_interval_for(&self, idle_timeout: Duration) -> Duration {
        self.touch_interval.min(idle_timeout / 10_i32)
    }

    pub(crate) fn absolute_timeout(&self, kind: SessionKind) -> Duration {
        match kind {
            SessionKind::Cookie => self.session_absolute_timeout,
            SessionKind::Token => self.refresh_absolute_timeout,
        }
    }

    pub(crate) fn token_settings(&self) -> TokenSettings {
        TokenSettings {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            access_ttl: self.access_token_ttl,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_that_breaks_a_rule_is_refused_naming_the_setting_at_fault() {
        let refused = |policy: Policy| policy.checked().err().map(|err| err.setting);
        let idle_past_absolute = Policy { session_idle_timeout: Duration::days(8), ..Policy::default() };
        assert_eq!(refused(idle_past_absolute), Some(PolicySetting::SessionIdleTimeout));
        let refresh_idle_past_absolute = Policy { refresh_idle_timeout: Duration::days(31), ..Policy::default() };
        assert_eq!(refused(refresh_idle_past_absolute), Some(PolicySetting::RefreshIdleTimeout));
        assert_eq!(
            refused(Policy { access_token_ttl: Duration::ZERO, ..Policy::default() }),
            Some(PolicySetting::AccessTokenTtl)
        );
        assert_eq!(
            refused(Policy { max_sessions_per_user: 0, ..Policy::default() }),
            Some(PolicySetting::MaxSessionsPerUser)
        );
        let no_free_attempts = ThrottlePolicy { password_free: 0, ..ThrottlePolicy::default() };
        assert_eq!(
            refused(Policy { throttle: no_free_attempts, ..Policy::default() }),
            Some(PolicySetting::Throttle(ThrottleSetting::PasswordFree))
        );
        assert_eq!(refused(Policy { cookie_cache_ttl: Duration::ZERO, ..Policy::default() }), None, "0: no cache");
    }

    #[test]
    fn a_checked_policy_remembers_throttle_counters_past_their_longest_wait() -> Result<(), PolicyError> {
        let throttle = ThrottlePolicy { max_delay: Duration::hours(1), ..ThrottlePolicy::default() };
        let policy = Policy { throttle, ..Policy::default() }.checked()?;
        assert_eq!(policy.throttle.forget_after, Duration::hours(4));
        assert_eq!(Policy::default().checked()?.throttle, ThrottlePolicy::default(), "the defaults obey the rules");
        Ok(())
    }
}
