//! In-process tests of everything that depends on time, through an injected clock: no sleeps,
//! exact boundaries. The router and a real SQLite store, driven without a socket.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use latchkey_core::accounts::{Argon2Settings, PasswordHasher};
use latchkey_core::clock::ManualClock;
use latchkey_core::keys::KeyCustody;
use latchkey_core::{Latchkey, Policy};
use latchkey_http::{AppState, HttpConfig, Origin};
use latchkey_sql::SqlStore;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;

struct App {
    router: latchkey_http::App,
    service: Latchkey,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

const PASSWORD: &str = "correct horse battery";

async fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite_file(&dir.path().join("latchkey.db")).await.unwrap();
    let clock = Arc::new(ManualClock::new(OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap()));
    let hasher = PasswordHasher::new(Argon2Settings { memory_kib: 256, iterations: 1, parallelism: 1 }, 2).unwrap();
    let service =
        Latchkey::start(store.stores(), clock.clone(), hasher, Policy::default(), KeyCustody::default()).await.unwrap();
    let origin = Origin::parse("http://localhost:8080").unwrap();
    let config = HttpConfig::new(origin);
    let app = App { router: latchkey_http::router(AppState::new(service.clone(), config)), service, clock, _dir: dir };
    let created = app.call(post_json("/v1/accounts", json!({ "username": "alice", "password": PASSWORD }))).await;
    assert_eq!(created.0, StatusCode::CREATED);
    app
}

/// The `Host` every HTTP/1.1 request carries (API.md, "HTTP hygiene").
const HOST: &str = "localhost:8080";

fn post_json(path: &str, body: Value) -> Request<Body> {
    Request::post(path)
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn form(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn get(path: &str, credential: &Credential) -> Request<Body> {
    let request = Request::get(path).header(header::HOST, HOST);
    let request = match credential {
        Credential::Cookie(cookie) => request.header(header::COOKIE, cookie),
        Credential::Bearer(token) => request.header(header::AUTHORIZATION, format!("Bearer {token}")),
    };
    request.body(Body::empty()).unwrap()
}

enum Credential {
    Cookie(String),
    Bearer(String),
}

impl App {
    async fn call(&self, request: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), headers)
    }

    async fn cookie_login(&self) -> Credential {
        let (status, _, headers) =
            self.call(post_json("/v1/session", json!({ "username": "alice", "password": PASSWORD }))).await;
        assert_eq!(status, StatusCode::OK);
        let line = headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
        Credential::Cookie(line.split(';').next().unwrap().to_owned())
    }

    async fn token_login(&self) -> (Credential, String) {
        let (status, body, _) =
            self.call(form("/v1/token", &format!("grant_type=password&username=alice&password={PASSWORD}"))).await;
        assert_eq!(status, StatusCode::OK);
        (
            Credential::Bearer(body["access_token"].as_str().unwrap().to_owned()),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    async fn refresh(&self, token: &str) -> (StatusCode, Value) {
        let (status, body, _) =
            self.call(form("/v1/token", &format!("grant_type=refresh_token&refresh_token={token}"))).await;
        (status, body)
    }

    async fn me(&self, credential: &Credential) -> StatusCode {
        self.call(get("/v1/me", credential)).await.0
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
    let (_, before, _) = app.call(get("/v1/sessions", &cookie)).await;
    app.advance(Duration::seconds(59));
    let (_, early, _) = app.call(get("/v1/sessions", &cookie)).await;
    assert_eq!(last_seen(early), last_seen(before.clone()), "no write inside the touch interval");
    app.advance(Duration::seconds(2));
    let _ = app.me(&cookie).await;
    let (_, after, _) = app.call(get("/v1/sessions", &cookie)).await;
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
    let request = Request::get("/.well-known/jwks.json").header(header::HOST, HOST).body(Body::empty()).unwrap();
    let (_, body, _) = app.call(request).await;
    let mut kids: Vec<String> =
        body["keys"].as_array().unwrap().iter().map(|key| key["kid"].as_str().unwrap().to_owned()).collect();
    kids.sort();
    kids
}

fn kid_of(credential: &Credential) -> String {
    use base64::Engine as _;
    let Credential::Bearer(token) = credential else { panic!("a bearer token") };
    let header = token.split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
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
