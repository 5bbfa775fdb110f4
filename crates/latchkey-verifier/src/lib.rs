//! Verify latchkey access tokens inside your own Rust service, without a call to latchkey per
//! request: signatures are checked against the published JWKS (fetched at start, cached,
//! refetched when a token names an unknown `kid`), and revocations arrive from latchkey's
//! revocation feed (server-sent events, resumed with `Last-Event-ID` after any disconnect), so
//! "log out everywhere" still bites within milliseconds. While latchkey is unreachable, valid
//! unrevoked tokens keep verifying from the local state.
//!
//! A handler that keeps data in the caller's session (a cart, say) takes [`LatchkeySession`]
//! instead of [`LatchkeyUser`]: it reads and writes that session's data in latchkey, with the
//! request's own token (see [`session_data`]).
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use latchkey_verifier::{LatchkeyUser, Verifier, VerifierConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = VerifierConfig::new("https://auth.example.com").with_service_token("...");
//! let verifier = Verifier::connect(config).await?;
//! let app: Router = Router::new()
//!     .route("/hello", get(|LatchkeyUser(user): LatchkeyUser| async move { format!("hello {}", user.username) }))
//!     .with_state(verifier);
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use latchkey_core::keys::KeyError;
use latchkey_core::revocation::Denylist;
use latchkey_core::sessions::SessionId;
use latchkey_core::tokens::{AccessClaims, TokenRejection, VerifyingKeys};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

pub mod session_data;

pub use session_data::{LatchkeySession, SessionData, SessionDataError};

/// Where latchkey is and how to reach its feed.
#[derive(Clone)]
pub struct VerifierConfig {
    issuer: String,
    audience: String,
    endpoint: String,
    service_token: Option<String>,
}

impl fmt::Debug for VerifierConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("endpoint", &self.endpoint)
            .field("service_token", &self.service_token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl VerifierConfig {
    /// latchkey's public URL: the tokens' issuer, and the base of the JWKS and feed URLs. The
    /// expected audience defaults to it too.
    pub fn new(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into().trim_end_matches('/').to_owned();
        Self { audience: issuer.clone(), endpoint: issuer.clone(), issuer, service_token: None }
    }

    /// Where this service reaches latchkey for the JWKS and the feed, when that is not the
    /// issuer URL (an internal address, say). Tokens must still name the issuer.
    pub fn with_endpoint(mut self, base_url: impl Into<String>) -> Self {
        self.endpoint = base_url.into().trim_end_matches('/').to_owned();
        self
    }

    /// The `aud` tokens must carry (latchkey's `LATCHKEY_AUDIENCE`).
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// latchkey's `LATCHKEY_SERVICE_TOKEN`, which opens the revocation feed. Without it,
    /// revoked sessions' access tokens stay valid here until they expire.
    pub fn with_service_token(mut self, token: impl Into<String>) -> Self {
        self.service_token = Some(token.into());
        self
    }
}

/// Why the verifier could not start.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    /// The JWKS could not be fetched.
    #[error("cannot fetch the JWKS from {url}: {source}")]
    Fetch {
        /// The JWKS URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The JWKS is not usable.
    #[error("the JWKS is not usable: {0}")]
    Jwks(#[from] KeyError),
}

/// Who a verified token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedUser {
    /// The user id (`sub`).
    pub user_id: String,
    /// The username.
    pub username: String,
    /// The session the token belongs to (`sid`).
    pub session_id: String,
    /// When the token expires.
    pub expires_at: OffsetDateTime,
    /// For an app that signs its users in through latchkey (single sign-on): the app the token
    /// was issued to (`client_id`).
    pub client_id: Option<String>,
    /// And the scopes it was granted, space-separated.
    pub scope: Option<String>,
}

/// Why a request was refused: RFC 6750's `401` with `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No `Authorization: Bearer` header.
    #[error("a bearer token is required")]
    Missing,
    /// The token does not verify.
    #[error("invalid token: {0}")]
    Invalid(TokenRejection),
    /// The token's session was revoked.
    #[error("the session was revoked")]
    Revoked,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let challenge = match self {
            Rejection::Missing => HeaderValue::from_static("Bearer"),
            _ => HeaderValue::from_static(r#"Bearer error="invalid_token""#),
        };
        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)], self.to_string()).into_response()
    }
}

/// Verifies latchkey access tokens locally. Cheap to clone.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    config: VerifierConfig,
    http: reqwest::Client,
    // Swapped whole on refetch; readers clone the Arc.
    keys: RwLock<Arc<VerifyingKeys>>,
    revoked: Arc<Denylist>,
    // An unknown kid refetches the JWKS at most this often, so garbage tokens cannot make the
    // service hammer latchkey.
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
    feed: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(feed) = &self.feed {
            feed.abort();
        }
    }
}

const REFETCH_EVERY: Duration = Duration::from_secs(5);

impl Verifier {
    /// Fetches the JWKS (latchkey must answer now) and, with a service token, starts following
    /// the revocation feed in the background.
    pub async fn connect(config: VerifierConfig) -> Result<Self, VerifierError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|source| VerifierError::Fetch { url: config.endpoint.clone(), source })?;
        let keys = fetch_keys(&http, &config).await?;
        let revoked = Arc::new(Denylist::new());
        let feed = config.service_token.clone().map(|token| {
            let url = format!("{}/v1/revocations", config.endpoint);
            tokio::spawn(follow_feed(http.clone(), url, token, Arc::clone(&revoked)))
        });
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http,
                keys: RwLock::new(Arc::new(keys)),
                revoked,
                last_refetch: tokio::sync::Mutex::new(None),
                feed,
            }),
        })
    }

    fn keys(&self) -> Arc<VerifyingKeys> {
        Arc::clone(&self.inner.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Verifies a token: signature and claims against the JWKS, then the revocations heard
    /// from the feed.
    pub async fn verify(&self, token: &str) -> Result<VerifiedUser, Rejection> {
        let now = OffsetDateTime::now_utc();
        let claims = match self.keys().verify(token, now) {
            Err(TokenRejection::UnknownKey) => {
                self.refetch_keys().await;
                self.keys().verify(token, now)
            }
            other => other,
        }
        .map_err(Rejection::Invalid)?;
        let revoked = SessionId::parse(&claims.sid).is_none_or(|sid| self.inner.revoked.denies(sid, now));
        if revoked {
            return Err(Rejection::Revoked);
        }
        Ok(user_of(claims))
    }

    async fn refetch_keys(&self) {
        let mut last = self.inner.last_refetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < REFETCH_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        match fetch_keys(&self.inner.http, &self.inner.config).await {
            Ok(keys) => *self.inner.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(keys),
            Err(err) => warn!(error = %err, "refetching the JWKS failed; keeping the keys we have"),
        }
    }
}

fn user_of(claims: AccessClaims) -> VerifiedUser {
    VerifiedUser {
        user_id: claims.sub,
        username: claims.preferred_username,
        session_id: claims.sid,
        expires_at: OffsetDateTime::from_unix_timestamp(claims.exp).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        client_id: claims.client_id,
        scope: claims.scope,
    }
}

async fn fetch_keys(http: &reqwest::Client, config: &VerifierConfig) -> Result<VerifyingKeys, VerifierError> {
    let url = format!("{}/.well-known/jwks.json", config.endpoint);
    let fetch = |source| VerifierError::Fetch { url: url.clone(), source };
    let body = http
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(fetch)?
        .text()
        .await
        .map_err(fetch)?;
    Ok(VerifyingKeys::from_jwks(&body, &config.issuer, &config.audience)?)
}

/// Follows the revocation feed for as long as the verifier lives, reconnecting with
/// `Last-Event-ID` so no revocation is lost across disconnects.
async fn follow_feed(http: reqwest::Client, url: String, token: String, revoked: Arc<Denylist>) {
    let mut last_event_id: Option<String> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut request = http.get(&url).bearer_auth(&token).header(header::ACCEPT, "text/event-stream");
        if let Some(id) = &last_event_id {
            request = request.header("last-event-id", id);
        }
        match request.send().await.and_then(reqwest::Response::error_for_status) {
            Ok(response) => {
                backoff = Duration::from_millis(100);
                let mut body = response.bytes_stream();
                let mut buffer = String::new();
                while let Some(Ok(chunk)) = body.next().await {
                    buffer.push_str(&String::from_utf8_lossy(&chunk));
                    while let Some(end) = buffer.find("\n\n") {
                        let event: String = buffer.drain(..end + 2).collect();
                        if let Some(id) = apply_event(&event, &revoked) {
                            last_event_id = Some(id);
                        }
                    }
                }
                debug!("revocation feed closed; reconnecting");
            }
            Err(err) => debug!(error = %err, "revocation feed unreachable; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Applies one server-sent event (`id:` and `data: {"sid", "until"}`); returns its id.
fn apply_event(event: &str, revoked: &Denylist) -> Option<String> {
    let field = |name: &str| event.lines().find_map(|line| line.strip_prefix(name)).map(str::trim);
    let id = field("id:")?;
    let data: serde_json::Value = serde_json::from_str(field("data:")?).ok()?;
    let sid = SessionId::parse(data["sid"].as_str()?)?;
    let until = OffsetDateTime::parse(data["until"].as_str()?, &Rfc3339).ok()?;
    revoked.insert(sid, until);
    Some(id.to_owned())
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The extractor: a handler that takes `LatchkeyUser` runs only for a verified, unrevoked
/// token. The application state must give a [`Verifier`] (`FromRef`).
pub struct LatchkeyUser(pub VerifiedUser);

impl<S> FromRequestParts<S> for LatchkeyUser
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(user) = parts.extensions.get::<VerifiedUser>() {
            return Ok(Self(user.clone()));
        }
        let token = bearer(parts).ok_or(Rejection::Missing)?;
        Verifier::from_ref(state).verify(token).await.map(Self)
    }
}

/// Middleware that refuses every request without a verified, unrevoked token, and hands the
/// user to handlers as a request extension (`Extension<VerifiedUser>` or [`LatchkeyUser`]).
/// Use with `axum::middleware::from_fn_with_state(verifier, latchkey_verifier::require_token)`.
pub async fn require_token(State(verifier): State<Verifier>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let user = match bearer(&parts) {
        Some(token) => verifier.verify(token).await,
        None => Err(Rejection::Missing),
    };
    match user {
        Ok(user) => {
            parts.extensions.insert(user);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(rejection) => rejection.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_events_go_into_the_denylist_and_malformed_ones_are_ignored() {
        let revoked = Denylist::new();
        let sid = SessionId::generate();
        let until = (OffsetDateTime::now_utc() + time::Duration::minutes(5)).format(&Rfc3339).unwrap_or_default();
        let event = format!("id: 42\ndata: {{\"sid\":\"{sid}\",\"until\":\"{until}\"}}\n\n");
        assert_eq!(apply_event(&event, &revoked).as_deref(), Some("42"));
        assert!(revoked.denies(sid, OffsetDateTime::now_utc()));
        assert_eq!(apply_event(": keep-alive\n\n", &revoked), None);
        assert_eq!(apply_event("id: 43\ndata: {\"sid\": 5}\n\n", &revoked), None);
    }
}
