//! Whole HTTP requests against the real router (the API and the web pages) on a real SQLite
//! store: arbitrary method, path and query, headers (the cookies, bearer tokens, forwarded
//! headers of `/v1/verify`, origins, CSRF tokens, request ids) and bodies (JSON and form, of
//! any content type). The server must answer every one without a panic and without a 5xx.

#![no_main]

use std::sync::LazyLock;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use latchkey_core::accounts::{Argon2Settings, PasswordHasher};
use latchkey_core::keys::KeyCustody;
use latchkey_core::{Latchkey, Policy};
use latchkey_http::{AppState, HttpConfig, Origin};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const PATHS: &[&str] = &[
    "/v1/accounts",
    "/v1/account/password",
    "/v1/session",
    "/v1/token",
    "/v1/token?delivery=cookie",
    "/v1/token/revoke",
    "/v1/me",
    "/v1/sessions",
    "/v1/sessions/00000000-0000-4000-8000-000000000000",
    "/v1/logout",
    "/v1/verify",
    "/v1/revocations",
    "/.well-known/jwks.json",
    "/.well-known/openid-configuration",
    "/healthz",
    "/signup",
    "/login",
    "/logout",
    "/account",
    "/account/sessions/00000000-0000-4000-8000-000000000000/revoke",
    "/account/logout",
    "/account/password",
    "/playground",
    "/assets/latchkey.css",
];

const HEADERS: &[&str] = &[
    "cookie",
    "authorization",
    "content-type",
    "content-length",
    "origin",
    "sec-fetch-site",
    "x-csrf-token",
    "x-forwarded-for",
    "x-forwarded-method",
    "x-original-method",
    "x-request-id",
    "accept",
    "last-event-id",
    "user-agent",
];

#[derive(Debug, Arbitrary)]
struct Input {
    method: u8,
    path: u8,
    query: Option<String>,
    headers: Vec<(u8, Vec<u8>)>,
    body: Vec<u8>,
}

struct App {
    runtime: tokio::runtime::Runtime,
    router: latchkey_http::App,
    _dir: tempfile::TempDir,
}

static APP: LazyLock<App> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let router = runtime.block_on(async {
        let store = latchkey_sql::SqlStore::open_sqlite_file(&dir.path().join("fuzz.db"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let cheap = Argon2Settings { memory_kib: 8, iterations: 1, parallelism: 1 };
        let hasher = PasswordHasher::new(cheap, 1).unwrap_or_else(|e| panic!("{e}"));
        let service = Latchkey::start(
            store.stores(),
            std::sync::Arc::new(latchkey_core::SystemClock),
            hasher,
            Policy::default(),
            KeyCustody::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let origin = Origin::parse("http://localhost:8080").unwrap_or_else(|e| panic!("{e}"));
        let trusted_proxies = vec!["127.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}"))];
        let config = HttpConfig { trusted_proxies, ..HttpConfig::new(origin) };
        latchkey_http::router(AppState::new(service, config))
    });
    App { runtime, router, _dir: dir }
});

fuzz_target!(|input: Input| {
    let app = &*APP;
    let methods =
        [Method::GET, Method::POST, Method::DELETE, Method::PUT, Method::OPTIONS, Method::HEAD, Method::PATCH];
    let method = methods[usize::from(input.method) % methods.len()].clone();
    let mut uri = PATHS[usize::from(input.path) % PATHS.len()].to_owned();
    if let Some(query) = &input.query {
        uri.push(if uri.contains('?') { '&' } else { '?' });
        uri.push_str(query);
    }
    let Ok(mut request) = Request::builder().method(method).uri(uri).body(Body::from(input.body)) else { return };
    // Every HTTP/1.1 request carries one Host; without it each would stop at the 400 of that rule.
    request.headers_mut().insert(axum::http::header::HOST, HeaderValue::from_static("localhost:8080"));
    for (name, value) in input.headers.into_iter().take(16) {
        let name = HeaderName::from_static(HEADERS[usize::from(name) % HEADERS.len()]);
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            request.headers_mut().append(name, value);
        }
    }
    let response = app.runtime.block_on(app.router.clone().oneshot(request));
    let Ok(response) = response;
    assert!(!response.status().is_server_error(), "a {} answer", response.status());
});
