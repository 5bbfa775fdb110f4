//! Logging out of apps (single sign-on; API.md, "Logout"): what latchkey remembers of each app
//! that signed in under a sign-in at latchkey (the SSO session), so that when that sign-in ends
//! — for any reason, its expiry included — the app's sessions end with it and every app with a
//! back-channel logout URI is told, by a logout token (OpenID Connect Back-Channel Logout 1.0)
//! posted once per app and sign-in.
//!
//! Deliveries are durable: kept in the shared store, claimed by one instance at a time under a
//! lease, retried with back-off across restarts for a day, and visible to the operator.
//!
//! Not here: the sessions themselves ([`crate::sessions`]) and their revocation
//! ([`crate::revocation`], which tells this module which sign-ins ended); the HTTP client that
//! posts the tokens (the binary's, behind [`LogoutTransport`]).

mod service;
mod store;

use std::fmt;

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::clients::ClientId;
use crate::ids::{SessionId, UserId};
pub use service::{DeliveryCounts, HintedSignIn, LogoutTransport, RETRY_FOR, SWEEP_INTERVAL};
pub use store::{AppSignInStore, Settlement};

/// The `typ` of a logout token's header.
pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";
/// The event a logout token carries (Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long a logout token may be accepted after it was made.
pub const LOGOUT_TOKEN_LIFETIME: Duration = Duration::minutes(2);

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not accepted yet; attempted again at `next_attempt_at`.
    Pending,
    /// The app answered 2xx.
    Delivered,
    /// Given up after [`RETRY_FOR`].
    Failed,
}

impl DeliveryState {
    /// The contract's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Parses the contract's name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed].into_iter().find(|state| state.as_str() == text)
    }
}

/// One app's logout token for one ended sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The app.
    pub client_id: ClientId,
    /// The sign-in that ended (the token's `sid`).
    pub sso_session: SessionId,
    /// Whose (the token's `sub`).
    pub user_id: UserId,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made (or under way) so far.
    pub attempts: u32,
    /// When it is attempted next (a claimed delivery: when its lease runs out); none once
    /// settled.
    pub next_attempt_at: Option<OffsetDateTime>,
    /// When the sign-in ended.
    pub ended_at: OffsetDateTime,
}

impl Delivery {
    /// When a delivery that has failed `attempts` times is tried again: 5 s, 10 s, 20 s, …
    /// doubling up to an hour (the first retries within a minute).
    pub fn retry_at(now: OffsetDateTime, attempts: u32) -> OffsetDateTime {
        let doublings = attempts.saturating_sub(1).min(10);
        now + (Duration::seconds(5) * 2_i32.pow(doublings)).min(Duration::hours(1))
    }
}

/// The claims of a logout token (Back-Channel Logout 1.0 §2.4): never a `nonce`.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct LogoutClaims {
    /// latchkey's issuer URL.
    pub iss: String,
    /// The app's `client_id`.
    pub aud: String,
    /// Issue time.
    pub iat: i64,
    /// Expiry.
    pub exp: i64,
    /// The token's id: the same for every attempt of one delivery, so an app that got it
    /// twice can tell.
    pub jti: String,
    /// The ended sign-in.
    pub sid: String,
    /// Its user.
    pub sub: String,
    /// `{"http://schemas.openid.net/event/backchannel-logout": {}}`.
    pub events: serde_json::Value,
}

impl fmt::Debug for LogoutClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogoutClaims").field("aud", &self.aud).field("sid", &self.sid).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_start_within_a_minute_and_back_off_to_an_hour() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let delays: Vec<i64> = (1..=12).map(|n| (Delivery::retry_at(now, n) - now).whole_seconds()).collect();
        assert_eq!(&delays[..5], &[5, 10, 20, 40, 80]);
        assert!(delays[..3].iter().sum::<i64>() < 60, "the first three retries within a minute");
        assert_eq!(delays[11], 3600, "capped at an hour");
    }

    #[test]
    fn states_parse_what_they_print() {
        for state in [DeliveryState::Pending, DeliveryState::Delivered, DeliveryState::Failed] {
            assert_eq!(DeliveryState::parse(state.as_str()), Some(state));
        }
    }
}
