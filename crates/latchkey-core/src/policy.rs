//! The deployment's policy: lifetimes, identity and limits, with the rules derived from them
//! (how long a session may idle as recorded, how often activity is written, how long a
//! revoked session or a retired key must be remembered).

use time::Duration;

use crate::keys::SigningAlgorithm;
use crate::sessions::SessionKind;
use crate::throttle::ThrottlePolicy;
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

impl Policy {
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
