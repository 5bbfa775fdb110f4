//! In-process tests of everything that depends on time, through an injected clock: no sleeps,
//! exact boundaries. The real router and a real SQLite store in this process, served on a local
//! port and driven by the same client as the API suite.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use latchkey_core::accounts::PasswordHasher;
use latchkey_core::clock::ManualClock;
use latchkey_core::keys::KeyCustody;
use latchkey_core::{Latchkey, Policy};
use latchkey_http::{AppState, ConnectionLimits, HttpConfig, Origin};
use latchkey_sql::SqlStore;
use latchkey_testkit::client::{ApiClient, Credential, jwt_part};
use latchkey_testkit::fixtures::{ORIGIN, cheap_argon2, fixed_instant};
use reqwest::StatusCode;
use serde_json::Value;
use time::Duration;

struct App {
    api: ApiClient,
    service: Latchkey,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

async fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite_file(&dir.path().join("latchkey.db")).await.unwrap();
    let clock = Arc::new(ManualClock::new(fixed_instant()));
    let hasher = PasswordHasher::new(cheap_argon2(), 2).unwrap();
    let service =
        Latchkey::start(store.stores(), clock.clone(), hasher, Policy::default(), KeyCustody::default()).await.unwrap();
    let state = AppState::new(service.clone(), HttpConfig::new(Origin::parse(ORIGIN).unwrap()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let limits = ConnectionLimits { max_connections: 64, client_timeout: std::time::Duration::from_secs(30) };
    tokio::spawn(latchkey_http::serve(listener, state, limits, std::future::pending()));
    let app = App { api: ApiClient::new(format!("http://{address}")), service, clock, _dir: dir };
    app.api.sign_up("alice").await;
    app
}

impl App {
    async fn cookie_login(&self) -> Credential {
        Credential::Cookie(self.api.cookie_login("alice").await.cookie)
    }

    async fn token_login(&self) -> (Credential, String) {
        let tokens = self.api.token_login("alice").await;
        (Credential::Bearer(tokens.access), tokens.refresh)
    }

    async fn refresh(&self, token: &str) -> (StatusCode, Value) {
        let response = self.api.refresh(token).await;
        (response.status(), response.json().await.unwrap_or(Value::Null))
    }

    async fn me(&self, credential: &Credential) -> StatusCode {
        self.api.status_of("/v1/me", credential).await
    }

    async fn device_list(&self, credential: &Credential) -> Value {
        Value::Array(self.api.device_list(credential).await)
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

#[tokio::test]
async fn a_cookie_session_ends_exactly_at_its_idle_limit() {
    let app = app().await;
    let cookie = app.cookie_login().await;
    app.advance(Duration::hours(12) - Duration::seconds(1));
    assert_eq!(app.me(&cookie).await, StatusCode::OK, "activity just inside the limit");
    app.advance(Duration::hours(12) - Duration::seconds(1));
    assert_eq!(app.me(&cookie).await, StatusCode::OK, "the previous request slid the limit");
    // The recorded idle limit is the idle timeout plus the touch interval less 1 s, so uses
    // under 12 h - 1 s apart keep it alive whenever its activity was last written (API.md,
    // "Sliding expiry"): 12 h 59 s after the last written use it has ended.
    app.advance(Duration::hours(12) + Duration::seconds(59));
    assert_eq!(app.me(&cookie).await, StatusCode::UNAUTHORIZED, "12 h 59 s without activity");
    let other = app.cookie_login().await;
    app.advance(Duration::hours(12) + Duration::seconds(58));
    assert_eq!(app.me(&other).await, StatusCode::OK, "one second before the recorded limit");
}

#[tokio::test]
async fn a_cookie_session_ends_at_its_absolute_limit_whatever_the_activity() {
    let app = app().await;
    let cookie = app.cookie_login().await;
    let step = Duration::hours(11) + Duration::minutes(30);
    for _ in 0..14 {
        app.advance(step);
        assert_eq!(app.me(&cookie).await, StatusCode::OK);
    }
    // 14 × 11.5 h = 161 h; one more step (still inside the idle limit) crosses 7 days.
    app.advance(step);
    assert_eq!(app.me(&cookie).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sliding_renewal_writes_last_seen_at_most_once_per_interval() {
    let app = app().await;
    let cookie = app.cookie_login().await;
    let last_seen = |list: Value| list[0]["last_seen_at"].as_str().unwrap().to_owned();
    let before = app.device_list(&cookie).await;
    app.advance(Duration::seconds(59));
    let early = app.device_list(&cookie).await;
    assert_eq!(last_seen(early), last_seen(before.clone()), "no write inside the touch interval");
    app.advance(Duration::seconds(2));
    let _ = app.me(&cookie).await;
    let after = app.device_list(&cookie).await;
    assert_ne!(last_seen(after), last_seen(before), "one write once the interval passed");
}

#[tokio::test]
async fn the_grace_window_ends_exactly_at_its_configured_length() {
    let app = app().await;
    let (_, first) = app.token_login().await;
    let (status, second) = app.refresh(&first).await;
    assert_eq!(status, StatusCode::OK);
    app.advance(Duration::seconds(10));
    let (status, inside) = app.refresh(&first).await;
    assert_eq!(status, StatusCode::OK, "10 s after the rotation is inside the default window");
    assert_eq!(inside["refresh_token"], second["refresh_token"], "the answer is the current pair");
    app.advance(Duration::milliseconds(1));
    let (status, body) = app.refresh(&first).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let (status, _) = app.refresh(second["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the reuse revoked the session");
}

#[tokio::test]
async fn a_token_session_ends_at_its_refresh_idle_and_absolute_limits() {
    let app = app().await;
    let (_, idle) = app.token_login().await;
    let (_, mut active) = app.token_login().await;
    // Refresh every 13 days: the idle limit (14 d) slides, the absolute one (30 d) holds.
    for _ in 0..2 {
        app.advance(Duration::days(13));
        let (status, body) = app.refresh(&active).await;
        assert_eq!(status, StatusCode::OK);
        active = body["refresh_token"].as_str().unwrap().to_owned();
    }
    assert_eq!(app.refresh(&idle).await.0, StatusCode::BAD_REQUEST, "26 days idle");
    app.advance(Duration::days(4) + Duration::seconds(1));
    assert_eq!(app.refresh(&active).await.0, StatusCode::BAD_REQUEST, "past 30 days");
}

#[tokio::test]
async fn access_tokens_expire_by_the_clock_with_two_seconds_of_leeway() {
    let app = app().await;
    let (bearer, _) = app.token_login().await;
    assert_eq!(app.me(&bearer).await, StatusCode::OK);
    app.advance(Duration::minutes(10) + Duration::seconds(2));
    assert_eq!(app.me(&bearer).await, StatusCode::OK, "inside the 2 s leeway");
    app.advance(Duration::seconds(1));
    assert_eq!(app.me(&bearer).await, StatusCode::UNAUTHORIZED);
}

/// The `kid`s the JWKS publishes, sorted.
async fn published_kids(app: &App) -> Vec<String> {
    let response = app.api.client.get(app.api.url("/.well-known/jwks.json")).send().await.unwrap();
    let body: Value = response.json().await.unwrap();
    let mut kids: Vec<String> =
        body["keys"].as_array().unwrap().iter().map(|key| key["kid"].as_str().unwrap().to_owned()).collect();
    kids.sort();
    kids
}

fn kid_of(credential: &Credential) -> String {
    let Credential::Bearer(token) = credential else { panic!("a bearer token") };
    jwt_part(token, 0)["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn signing_keys_rotate_on_schedule_with_the_next_key_published_ahead_and_the_old_one_kept_for_its_tokens() {
    // Default policy: rotation every 30 days; 10-minute tokens, so the JWKS is cached for 150 s.
    let app = app().await;
    let (first, _) = app.token_login().await;
    let old = kid_of(&first);
    assert_eq!(published_kids(&app).await, vec![old.clone()]);

    app.advance(Duration::days(30) - Duration::seconds(1));
    app.service.sync().await.unwrap();
    assert_eq!(published_kids(&app).await.len(), 1, "not due yet");

    app.advance(Duration::seconds(1));
    app.service.sync().await.unwrap();
    let published = published_kids(&app).await;
    assert_eq!(published.len(), 2, "the next key is published ahead");
    let new = published.iter().find(|kid| **kid != old).unwrap().clone();
    app.service.sync().await.unwrap();
    assert_eq!(published_kids(&app).await.len(), 2, "scheduled once");
    app.advance(Duration::seconds(149));
    app.service.sync().await.unwrap();
    let (before_hand_over, _) = app.token_login().await;
    assert_eq!(kid_of(&before_hand_over), old, "the old key signs until every JWKS cache has the new one");

    app.advance(Duration::seconds(1));
    app.service.sync().await.unwrap();
    let (after_hand_over, _) = app.token_login().await;
    assert_eq!(kid_of(&after_hand_over), new, "the new key signs from its start");
    assert_eq!(app.me(&before_hand_over).await, StatusCode::OK, "the old key still verifies its tokens");

    app.advance(Duration::minutes(10) + Duration::seconds(3));
    app.service.sync().await.unwrap();
    assert_eq!(published_kids(&app).await, vec![new], "the old key is gone once its tokens have expired");
    assert_eq!(app.me(&after_hand_over).await, StatusCode::UNAUTHORIZED, "expired by now");
}
