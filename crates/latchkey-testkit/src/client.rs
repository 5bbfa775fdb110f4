//! One client for the API, the same in every kind of test: the API suite drives the real binary
//! through it, the cluster tests each instance and nginx, the clock tests the router served on
//! a local port. Each call answers what a client would see; the helpers that expect success
//! panic with the operation's name otherwise.

use base64::Engine as _;
use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

use crate::fixtures::PASSWORD;

/// A client of one latchkey origin.
#[derive(Debug, Clone)]
pub struct ApiClient {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Without cookie jar or redirects: tests handle cookies by hand.
    pub client: Client,
}

/// A credential to present.
#[derive(Debug, Clone)]
pub enum Credential {
    /// An access token, as `Authorization: Bearer`.
    Bearer(String),
    /// `name=value`, as a `Cookie` header.
    Cookie(String),
}

/// A cookie login's credentials.
#[derive(Debug, Clone)]
pub struct CookieLogin {
    /// `name=value`, ready for a `Cookie` header.
    pub cookie: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// The session id.
    pub session_id: String,
}

/// A token login's credentials.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The JWT.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
    /// The session id.
    pub session_id: String,
}

impl From<Value> for Tokens {
    fn from(body: Value) -> Self {
        Self {
            access: body["access_token"].as_str().expect("access_token").to_owned(),
            refresh: body["refresh_token"].as_str().expect("refresh_token").to_owned(),
            session_id: body["session_id"].as_str().expect("session_id").to_owned(),
        }
    }
}

impl ApiClient {
    /// A client of `base`, following no redirects.
    pub fn new(base: impl Into<String>) -> Self {
        let client = Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http client");
        Self { base: base.into(), client }
    }

    /// The same client, of another origin (another instance of a cluster, say).
    pub fn at(&self, base: impl Into<String>) -> Self {
        Self { base: base.into(), client: self.client.clone() }
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `POST /v1/accounts` with [`PASSWORD`]; panics unless 201.
    pub async fn sign_up(&self, username: &str) -> Value {
        let response = self.post_json("/v1/accounts", &json!({ "username": username, "password": PASSWORD })).await;
        assert_eq!(response.status(), StatusCode::CREATED, "sign-up of {username}");
        response.json().await.expect("json")
    }

    /// POSTs a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request")
    }

    /// `POST /v1/session` with these credentials and extra request headers, whatever the answer.
    pub async fn login_attempt(&self, username: &str, password: &str, headers: &[(&str, &str)]) -> Response {
        let mut request =
            self.client.post(self.url("/v1/session")).json(&json!({ "username": username, "password": password }));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request")
    }

    /// Logs in with a cookie session; panics unless 200.
    pub async fn cookie_login(&self, username: &str) -> CookieLogin {
        let response = self.post_json("/v1/session", &json!({ "username": username, "password": PASSWORD })).await;
        assert_eq!(response.status(), StatusCode::OK, "cookie login of {username}");
        let cookie = cookie_pair(response.headers(), "latchkey_session").expect("session cookie");
        let body: Value = response.json().await.expect("json");
        CookieLogin {
            cookie,
            csrf: body["csrf_token"].as_str().expect("csrf").to_owned(),
            session_id: body["session"]["id"].as_str().expect("id").to_owned(),
        }
    }

    /// The password grant (form-encoded) at `path` (`/v1/token` or `/v1/token?delivery=cookie`),
    /// with extra request headers.
    pub async fn password_grant(&self, path: &str, username: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = self.client.post(self.url(path)).form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", PASSWORD),
        ]);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request")
    }

    /// Logs in with a token session, sending `headers`; panics unless 200.
    pub async fn token_login_with(&self, username: &str, headers: &[(&str, &str)]) -> Tokens {
        let response = self.password_grant("/v1/token", username, headers).await;
        assert_eq!(response.status(), StatusCode::OK, "token login of {username}");
        Tokens::from(response.json::<Value>().await.expect("json"))
    }

    /// Logs in with a token session; panics unless 200.
    pub async fn token_login(&self, username: &str) -> Tokens {
        self.token_login_with(username, &[]).await
    }

    /// `grant_type=refresh_token`, whatever the answer.
    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.client
            .post(self.url("/v1/token"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)])
            .send()
            .await
            .expect("request")
    }

    /// `GET path` presenting `credential`, whatever the answer.
    pub async fn get_with(&self, path: &str, credential: &Credential) -> Response {
        let request = self.client.get(self.url(path));
        let request = match credential {
            Credential::Bearer(token) => request.bearer_auth(token),
            Credential::Cookie(cookie) => request.header("cookie", cookie),
        };
        request.send().await.expect("request")
    }

    /// The status of `GET path` presenting `credential`.
    pub async fn status_of(&self, path: &str, credential: &Credential) -> StatusCode {
        self.get_with(path, credential).await.status()
    }

    /// `GET /v1/sessions` with a bearer token: the caller's device list.
    pub async fn sessions(&self, access_token: &str) -> Vec<Value> {
        self.device_list(&Credential::Bearer(access_token.to_owned())).await
    }

    /// `GET /v1/sessions` with a cookie header: the caller's device list.
    pub async fn sessions_by_cookie(&self, cookie: &str) -> Vec<Value> {
        self.device_list(&Credential::Cookie(cookie.to_owned())).await
    }

    /// `GET /v1/sessions`; panics unless 200.
    pub async fn device_list(&self, credential: &Credential) -> Vec<Value> {
        let response = self.get_with("/v1/sessions", credential).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    /// `GET /v1/me` with a bearer token.
    pub async fn me_bearer(&self, access_token: &str) -> Response {
        self.get_with("/v1/me", &Credential::Bearer(access_token.to_owned())).await
    }

    /// `GET /v1/me` with a cookie header.
    pub async fn me_cookie(&self, cookie: &str) -> Response {
        self.get_with("/v1/me", &Credential::Cookie(cookie.to_owned())).await
    }
}

/// Every `Set-Cookie` header.
pub fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
}

/// The `Set-Cookie` line for `name`.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers).into_iter().find(|line| line.starts_with(&format!("{name}=")))
}

/// `name=value` of the cookie `name` set by a response.
pub fn cookie_pair(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookie(headers, name).and_then(|line| line.split(';').next().map(str::to_owned))
}

/// The JSON body of a problem response, asserting its status, media type and code.
pub async fn expect_problem(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "status for expected {code}");
    let media = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(media, "application/problem+json", "problem media type for {code}");
    let body: Value = response.json().await.expect("problem json");
    assert_eq!(body["code"], code, "problem body {body}");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
    body
}

/// The JSON body of an RFC 6749 error, asserting status and `error`.
pub async fn expect_oauth_error(response: Response, status: StatusCode, error: &str) -> Value {
    assert_eq!(response.status(), status, "status for expected {error}");
    assert_eq!(response.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    let body: Value = response.json().await.expect("oauth error json");
    assert_eq!(body["error"], error, "oauth body {body}");
    assert!(body["error_description"].is_string());
    body
}

/// Decodes a JWT part (header or claims) without verifying anything.
pub fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("jwt part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("base64url");
    serde_json::from_slice(&bytes).expect("json part")
}
