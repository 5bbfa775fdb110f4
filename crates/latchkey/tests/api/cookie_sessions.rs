use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_cookie_login_sets_an_httponly_lax_cookie_and_describes_the_session() {
    let server = Server::start().await;
    let user = server.sign_up("alice").await;
    let response = server.post_json("/v1/session", &json!({ "username": "alice", "password": PASSWORD })).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let line = set_cookie(response.headers(), "latchkey_session").expect("cookie");
    let attributes: Vec<&str> = line.split(';').map(str::trim).collect();
    assert!(attributes.contains(&"HttpOnly"), "{line}");
    assert!(attributes.contains(&"SameSite=Lax"), "{line}");
    assert!(attributes.contains(&"Path=/"), "{line}");
    assert!(!attributes.contains(&"Secure"), "plain http: no Secure: {line}");
    let secret = attributes[0].trim_start_matches("latchkey_session=");
    assert_eq!(secret.len(), 43, "256 bits, base64url");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["id"], user["id"]);
    assert_eq!(body["user"]["username"], "alice");
    assert_eq!(body["session"]["kind"], "cookie");
    assert!(body["session"]["id"].is_string() && body["session"]["expires_at"].is_string());
    assert!(body["session"]["idle_expires_at"].is_string());
    assert!(body["csrf_token"].as_str().is_some_and(|t| t.len() >= 32));
    assert!(!body.to_string().contains(secret), "the secret is only in the cookie");
}

#[tokio::test]
async fn an_https_public_url_gives_secure_host_prefixed_cookies() {
    let server = Server::with(&[("LATCHKEY_PUBLIC_URL", "https://auth.example.test")]).await;
    server.sign_up("alice").await;
    let response = server.post_json("/v1/session", &json!({ "username": "alice", "password": PASSWORD })).await;
    let line = set_cookie(response.headers(), "__Host-latchkey_session").expect("__Host- cookie");
    let attributes: Vec<&str> = line.split(';').map(str::trim).collect();
    assert!(
        attributes.contains(&"Secure") && attributes.contains(&"Path=/") && attributes.contains(&"HttpOnly"),
        "{line}"
    );
    assert!(!line.contains("Domain"), "__Host- cookies have no Domain: {line}");
}

#[tokio::test]
async fn a_login_never_reuses_a_cookie_sent_in() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let planted = "latchkey_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let earlier = server.cookie_login("alice").await;
    for sent in [planted.to_owned(), earlier.cookie.clone()] {
        let response = server
            .client
            .post(server.url("/v1/session"))
            .header("cookie", &sent)
            .json(&json!({ "username": "alice", "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        let minted = cookie_pair(response.headers(), "latchkey_session").unwrap();
        assert_ne!(minted, sent, "a login mints a new secret");
        let body: Value = response.json().await.unwrap();
        assert_ne!(body["session"]["id"], earlier.session_id);
    }
    assert_eq!(
        server.me_cookie(planted).await.status(),
        StatusCode::UNAUTHORIZED,
        "a planted cookie never becomes a session"
    );
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_get_the_same_401() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let mut answers = Vec::new();
    for (username, password) in [("alice", "wrong password!"), ("nobody", PASSWORD), ("x", PASSWORD)] {
        let response = server.post_json("/v1/session", &json!({ "username": username, "password": password })).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(set_cookies(response.headers()).is_empty());
        let mut body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "invalid_credentials");
        body.as_object_mut().unwrap().remove("instance");
        answers.push(body);
    }
    assert!(answers.windows(2).all(|pair| pair[0] == pair[1]), "{answers:?}");
}

#[tokio::test]
async fn a_login_from_a_foreign_origin_is_refused() {
    let server = Server::with(&[("LATCHKEY_ALLOWED_ORIGINS", "https://app.example.test")]).await;
    server.sign_up("alice").await;
    for origin in ["https://evil.example.test", "null", "http://localhost:8081"] {
        let response = server.login_attempt("alice", PASSWORD, &[("origin", origin)]).await;
        assert!(set_cookies(response.headers()).is_empty());
        expect_problem(response, StatusCode::FORBIDDEN, "csrf_rejected").await;
    }
    for origin in [ORIGIN, "https://app.example.test"] {
        let response = server
            .client
            .post(server.url("/v1/session"))
            .header("origin", origin)
            .json(&json!({ "username": "alice", "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{origin}");
    }
}

#[tokio::test]
async fn an_unsafe_cookie_request_needs_the_csrf_token_and_an_allowed_origin() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let login = server.cookie_login("alice").await;
    let logout = |csrf: Option<&str>, origin: Option<&str>| {
        let mut request = server.client.post(server.url("/v1/logout")).header("cookie", &login.cookie);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    expect_problem(logout(None, None).await.unwrap(), StatusCode::FORBIDDEN, "csrf_rejected").await;
    expect_problem(logout(Some("not-the-token"), None).await.unwrap(), StatusCode::FORBIDDEN, "csrf_rejected").await;
    let other = server.cookie_login("alice").await;
    expect_problem(logout(Some(&other.csrf), None).await.unwrap(), StatusCode::FORBIDDEN, "csrf_rejected").await;
    expect_problem(
        logout(Some(&login.csrf), Some("https://evil.example.test")).await.unwrap(),
        StatusCode::FORBIDDEN,
        "csrf_rejected",
    )
    .await;
    expect_problem(logout(Some(&login.csrf), Some("null")).await.unwrap(), StatusCode::FORBIDDEN, "csrf_rejected")
        .await;
    assert_eq!(server.me_cookie(&login.cookie).await.status(), StatusCode::OK, "refused requests changed nothing");
    assert_eq!(logout(Some(&login.csrf), Some(ORIGIN)).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(server.me_cookie(&login.cookie).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bearer_requests_need_no_csrf_token_whatever_their_origin() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let tokens = server.token_login("alice").await;
    let response = server
        .client
        .post(server.url("/v1/logout"))
        .bearer_auth(&tokens.access)
        .header("origin", "https://evil.example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn garbage_and_unknown_cookies_are_simply_unauthenticated() {
    let server = Server::start().await;
    for cookie in [
        "latchkey_session=",
        "latchkey_session=%%%",
        "latchkey_session=aGVsbG8",
        "latchkey_session=BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
    ] {
        let response = server.me_cookie(cookie).await;
        expect_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
}

#[tokio::test]
async fn cookie_sessions_end_after_the_idle_timeout() {
    let server =
        Server::with(&[("LATCHKEY_SESSION_IDLE_TIMEOUT", "1500ms"), ("LATCHKEY_SESSION_TOUCH_INTERVAL", "100ms")])
            .await;
    server.sign_up("alice").await;
    let login = server.cookie_login("alice").await;
    assert_eq!(server.me_cookie(&login.cookie).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(server.me_cookie(&login.cookie).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn activity_slides_the_idle_timeout_but_never_past_the_absolute_one() {
    let server = Server::with(&[
        ("LATCHKEY_SESSION_IDLE_TIMEOUT", "1500ms"),
        ("LATCHKEY_SESSION_ABSOLUTE_TIMEOUT", "4s"),
        ("LATCHKEY_SESSION_TOUCH_INTERVAL", "100ms"),
    ])
    .await;
    server.sign_up("alice").await;
    let login = server.cookie_login("alice").await;
    // Active every 700 ms: the idle limit keeps sliding...
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(server.me_cookie(&login.cookie).await.status(), StatusCode::OK);
    }
    // ...until the absolute limit (4 s after login) ends the session regardless.
    tokio::time::sleep(Duration::from_millis(1400)).await;
    assert_eq!(server.me_cookie(&login.cookie).await.status(), StatusCode::UNAUTHORIZED);
}
