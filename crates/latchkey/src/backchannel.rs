//! The instance's part in apps' logouts (single sign-on): the periodic sweep for sign-ins that
//! expired, and the deliverer that posts back-channel logout tokens with an HTTP client made
//! for it — https to the operator's trust store, a bounded wait, and no redirect followed (an
//! app's back-channel endpoint answers itself; following a redirect would post the token
//! somewhere nobody registered).

use std::time::Duration as StdDuration;

use async_trait::async_trait;
use latchkey_core::Latchkey;
use latchkey_core::logout::{LogoutTransport, SWEEP_INTERVAL};
use tracing::warn;

/// Longest an app's back-channel endpoint is given to answer.
const DELIVERY_TIMEOUT: StdDuration = StdDuration::from_secs(10);
/// How often pending deliveries are looked for when nothing woke the deliverer (deliveries
/// made due by another instance, retries that came due).
const DELIVERY_POLL: StdDuration = StdDuration::from_secs(1);

/// Posts logout tokens over HTTP(S).
pub struct HttpLogoutTransport {
    client: reqwest::Client,
}

impl HttpLogoutTransport {
    /// A transport with latchkey's user agent, the timeout, and no redirects.
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION"), " (back-channel logout)"))
            .timeout(DELIVERY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { client })
    }
}

#[async_trait]
impl LogoutTransport for HttpLogoutTransport {
    async fn post(&self, uri: &str, logout_token: &str) -> Result<(), String> {
        let response = self
            .client
            .post(uri)
            .form(&[("logout_token", logout_token)])
            .send()
            .await
            .map_err(|err| format!("no answer: {}", without_url(&err)))?;
        let status = response.status();
        if status.is_success() { Ok(()) } else { Err(format!("answered {status}")) }
    }
}

/// A client error without the URL reqwest puts in its text (the URL is in the delivery's
/// record already, and may carry what the operator registered as a secret path).
fn without_url(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_request() {
        "the request failed"
    } else {
        "failed"
    };
    kind.to_owned()
}

/// Looks for expired sign-ins every `every` (at most [`SWEEP_INTERVAL`]).
pub async fn sweep_sign_ins(service: Latchkey, every: StdDuration) {
    let mut ticker = tokio::time::interval(every.min(SWEEP_INTERVAL));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(err) = service.sweep_sign_ins().await {
            warn!(error = %err, "looking for ended sign-ins failed; will retry");
        }
    }
}

/// Delivers logout tokens as they become due: at once when a sign-in ends on this instance,
/// else within [`DELIVERY_POLL`].
pub async fn deliver_logouts(service: Latchkey, transport: HttpLogoutTransport) {
    loop {
        // Keep going while batches come back full.
        loop {
            match service.deliver_logouts(&transport).await {
                Ok(0) => break,
                Ok(_) => continue,
                Err(err) => {
                    warn!(error = %err, "delivering logout tokens failed; will retry");
                    break;
                }
            }
        }
        tokio::select! {
            () = service.deliveries_due() => {}
            () = tokio::time::sleep(DELIVERY_POLL) => {}
        }
    }
}
