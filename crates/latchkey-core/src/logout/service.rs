//! The service's operations on apps' logouts: noticing that sign-ins ended (told by revocation,
//! found by the periodic sweep when they expired), ending the app sessions under them, and
//! delivering the logout tokens.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use futures_util::future::join_all;
use time::Duration;
use tokio::sync::Notify;
use tracing::warn;

use super::{BACKCHANNEL_LOGOUT_EVENT, Delivery, LOGOUT_TOKEN_LIFETIME, LOGOUT_TOKEN_TYP, LogoutClaims, Settlement};
use crate::audit::{AuditEvent, AuditKind};
use crate::clients::{Client, ClientId};
use crate::error::AuthError;
use crate::ids::UserId;
use crate::latchkey::Latchkey;
use crate::revocation::{Revocation, RevocationCause, RevokeScope};
use crate::secret::b64url;
use crate::sessions::{SessionId, SessionKind};
use crate::tokens::{ID_TOKEN_TYP, IdTokenClaims};

/// How often an instance looks for sign-ins that expired (their apps' sessions end within
/// this, well inside the contract's 60 s).
pub const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a delivery is retried after its sign-in ended before it is given up.
pub const RETRY_FOR: Duration = Duration::hours(24);
/// How long a claimed delivery is this instance's alone: longer than an attempt can take.
const LEASE: Duration = Duration::seconds(60);
/// Most deliveries claimed at once.
const BATCH: u32 = 32;
/// The MAC purpose of a delivery's `jti`.
const JTI_PURPOSE: &str = "latchkey logout token id";

/// How logout tokens reach apps: a `POST` of `logout_token` as a form to `uri`, accepted when
/// the app answers 2xx (the binary's HTTP client; tests may bring their own).
#[async_trait]
pub trait LogoutTransport: Send + Sync + 'static {
    /// Posts the token; `Err` says why the app did not accept it.
    async fn post(&self, uri: &str, logout_token: &str) -> Result<(), String>;
}

/// This instance's delivery counters (for `/metrics`) and the wake-up of its deliverer.
#[derive(Debug, Default)]
pub struct DeliveryCounts {
    delivered: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    pub(crate) due: Notify,
}

impl DeliveryCounts {
    /// Deliveries accepted, attempts that will be retried, deliveries given up: by this
    /// instance since it started.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.delivered.load(Ordering::Relaxed),
            self.retried.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

impl Latchkey {
    /// Called with every revocation's entries: the cookie sessions among them were sign-ins,
    /// so their apps' deliveries become due (the app sessions under them ended in the same
    /// revocation). A failure is logged; the sweep finds the sign-in ended later.
    pub(crate) async fn sign_ins_ended(&self, revoked: &[Revocation]) {
        let ended: Vec<SessionId> =
            revoked.iter().filter(|entry| entry.kind == SessionKind::Cookie).map(|entry| entry.session_id).collect();
        if ended.is_empty() {
            return;
        }
        match self.inner.stores.sign_ins.end_sign_ins(&ended, self.now()).await {
            Ok(0) => {}
            Ok(_) => self.inner.deliveries.due.notify_one(),
            Err(err) => warn!(error = %err, "recording ended sign-ins failed; the next sweep will"),
        }
    }

    /// Finds sign-ins with apps under them that ended without a revocation (their idle or
    /// absolute expiry, or a session store's own expiry): ends the app sessions under them and
    /// makes their deliveries due. Called every [`SWEEP_INTERVAL`]; how many it found.
    pub async fn sweep_sign_ins(&self) -> Result<u64, AuthError> {
        let now = self.now();
        let mut found = 0;
        for (sso, user) in self.inner.stores.sign_ins.open_sign_ins().await? {
            let live = self.inner.stores.sessions.get(sso).await?.is_some_and(|session| session.is_live(now));
            if live {
                continue;
            }
            self.revoke(RevokeScope::UnderSignIn { user, sign_in: sso }, RevocationCause::SignInExpired).await?;
            if self.inner.stores.sign_ins.end_sign_ins(&[sso], now).await? > 0 {
                self.inner.deliveries.due.notify_one();
            }
            found += 1;
        }
        Ok(found)
    }

    /// Waits until a delivery may have become due on this instance (a sign-in ended here).
    pub async fn deliveries_due(&self) {
        self.inner.deliveries.due.notified().await;
    }

    /// This instance's delivery counters.
    pub fn delivery_counts(&self) -> &DeliveryCounts {
        &self.inner.deliveries
    }

    /// Makes the deliveries due now, claimed for this instance alone, with `transport`; how
    /// many it attempted.
    pub async fn deliver_logouts(&self, transport: &dyn LogoutTransport) -> Result<usize, AuthError> {
        let now = self.now();
        let claimed = self.inner.stores.sign_ins.claim_due(now, now + LEASE, BATCH).await?;
        let attempts = claimed.iter().map(|delivery| self.attempt(transport, delivery));
        let settled = join_all(attempts).await;
        for result in settled {
            result?;
        }
        Ok(claimed.len())
    }

    /// One attempt of one claimed delivery, settled in the store.
    async fn attempt(&self, transport: &dyn LogoutTransport, delivery: &Delivery) -> Result<(), AuthError> {
        let client = self.inner.stores.clients.get(&delivery.client_id).await?;
        let outcome = match &client {
            Some(client) => match &client.backchannel_logout_uri {
                Some(uri) => match self.logout_token(client, delivery).await {
                    Ok(token) => transport.post(uri.as_str(), &token).await,
                    Err(err) => Err(format!("signing the logout token failed: {err}")),
                },
                None => Err("the app no longer has a back-channel logout URI".into()),
            },
            None => Err("the app was removed".into()),
        };
        let now = self.now();
        let counts = &self.inner.deliveries;
        let settlement = match outcome {
            Ok(()) => {
                counts.delivered.fetch_add(1, Ordering::Relaxed);
                Settlement::Delivered
            }
            Err(why) => {
                let give_up = client.is_none() || now >= delivery.ended_at + RETRY_FOR;
                let detail = format!("{} attempt {}: {why}", delivery.client_id, delivery.attempts);
                let event = AuditEvent::new(AuditKind::LogoutDeliveryFailed, now)
                    .user_id(delivery.user_id)
                    .session(delivery.sso_session)
                    .detail(detail);
                self.audit(event).await;
                if give_up {
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                    Settlement::Failed
                } else {
                    counts.retried.fetch_add(1, Ordering::Relaxed);
                    Settlement::RetryAt(Delivery::retry_at(now, delivery.attempts))
                }
            }
        };
        self.inner.stores.sign_ins.settle(&delivery.client_id, delivery.sso_session, settlement).await?;
        Ok(())
    }

    /// The logout token of `delivery` for `client`, signed as its ID tokens are. Its `jti` is
    /// derived from the app and the sign-in, so a repeat carries the same one.
    async fn logout_token(&self, client: &Client, delivery: &Delivery) -> Result<String, AuthError> {
        let now = self.now();
        let jti = self
            .inner
            .server_secret
            .mac(JTI_PURPOSE, &[client.id.as_str().as_bytes(), delivery.sso_session.as_uuid().as_bytes()]);
        let claims = LogoutClaims {
            iss: self.inner.policy.issuer.clone(),
            aud: client.id.to_string(),
            iat: now.unix_timestamp(),
            exp: (now + LOGOUT_TOKEN_LIFETIME).unix_timestamp(),
            jti: b64url(&jti[..16]),
            sid: delivery.sso_session.to_string(),
            sub: delivery.user_id.to_string(),
            events: serde_json::json!({ BACKCHANNEL_LOGOUT_EVENT: {} }),
        };
        self.sign_for_app(client.id_token_alg, LOGOUT_TOKEN_TYP, &claims).await
    }

    /// Every delivery to the app `client`, newest first (`latchkey client deliveries`).
    pub async fn deliveries(&self, client: &ClientId) -> Result<Vec<Delivery>, AuthError> {
        Ok(self.inner.stores.sign_ins.deliveries_of(client).await?)
    }
}

/// A sign-in an app asked to end (RP-initiated logout) with an ID token it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintedSignIn {
    /// The app the ID token was issued to.
    pub client_id: ClientId,
    /// The sign-in it names (its `sid`).
    pub sso_session: SessionId,
    /// Its user.
    pub user_id: UserId,
}

impl Latchkey {
    /// What an `id_token_hint` names, if latchkey signed it as an ID token (expired or not):
    /// its app, sign-in and user.
    pub fn id_token_hint(&self, hint: &str) -> Option<HintedSignIn> {
        let claims: IdTokenClaims = self.keys().verify_signed(hint, ID_TOKEN_TYP)?;
        Some(HintedSignIn {
            client_id: ClientId::parse(&claims.aud)?,
            sso_session: SessionId::parse(&claims.sid)?,
            user_id: UserId::parse(&claims.sub)?,
        })
    }

    /// Ends the sign-in an app's `id_token_hint` names, with every app session under it (and
    /// so their back-channel logouts): RP-initiated logout. Whether it was still live.
    pub async fn end_hinted_sign_in(&self, hinted: &HintedSignIn) -> Result<bool, AuthError> {
        let scope = RevokeScope::OneOf { user: hinted.user_id, session: hinted.sso_session };
        let ended = self.revoke(scope, RevocationCause::Logout).await?;
        if !ended.is_empty() {
            let event = AuditEvent::new(AuditKind::Logout, self.now())
                .user_id(hinted.user_id)
                .session(hinted.sso_session)
                .detail(format!("rp_initiated {}", hinted.client_id));
            self.audit(event).await;
        }
        Ok(!ended.is_empty())
    }
}
