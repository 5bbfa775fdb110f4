//! Hostile tests of cookie sessions (OWASP ASVS 5.0 V7: session management) and of the CSRF
//! rule (ASVS V3.5: browser origin separation). One test per attack.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// `POST /v1/logout {"scope":"others"}` by cookie with the given extra headers.
async fn cookie_logout(server: &Server, login: &CookieLogin, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = server
        .client
        .post(server.url("/v1/logout"))
        .header("cookie", &login.cookie)
        .json(&json!({ "scope": "others" }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn asvs_3_5_origins_that_only_look_like_the_public_one_are_refused() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let login = server.cookie_login("alice").await;
    for origin in [
        "http://localhost:8080.evil.test",
        "http://evil.test",
        "http://localhost",
        "http://localhost:8081",
        "https://localhost:8080",
        "http://sub.localhost:8080",
        "null",
        "http://localhost:8080/",
    ] {
        let response = cookie_logout(&server, &login, &[("x-csrf-token", &login.csrf), ("origin", origin)]).await;
        expect_problem(response, StatusCode::FORBIDDEN, "csrf_rejected").await;
        let login_attempt = server.login_attempt("alice", PASSWORD, &[("origin", origin)]).await;
        expect_problem(login_attempt, StatusCode::FORBIDDEN, "csrf_rejected").await;
    }
    assert_eq!(server.me_cookie(&login.cookie).await.status(), StatusCode::OK, "nothing was changed");
}

#[tokio::test]
async fn asvs_3_5_fetch_metadata_marking_a_request_cross_site_is_refused_without_an_origin() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let login = server.cookie_login("alice").await;
    let cross = [("x-csrf-token", login.csrf.as_str()), ("sec-fetch-site", "cross-site")];
    expect_problem(cookie_logout(&server, &login, &cross).await, StatusCode::FORBIDDEN, "csrf_rejected").await;
    let login_attempt = server.login_attempt("alice", PASSWORD, &[("sec-fetch-site", "cross-site")]).await;
    expect_problem(login_attempt, StatusCode::FORBIDDEN, "csrf_rejected").await;
    let same = [("x-csrf-token", login.csrf.as_str()), ("sec-fetch-site", "same-origin")];
    assert_eq!(cookie_logout(&server, &login, &same).await.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn asvs_3_5_an_allowed_origin_on_another_site_is_still_accepted() {
    let server = Server::with(&[("LATCHKEY_ALLOWED_ORIGINS", "https://app.example.test")]).await;
    server.sign_up("alice").await;
    let login = server.cookie_login("alice").await;
    let headers = [
        ("x-csrf-token", login.csrf.as_str()),
        ("origin", "https://app.example.test"),
        ("sec-fetch-site", "cross-site"),
    ];
    assert_eq!(cookie_logout(&server, &login, &headers).await.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn asvs_3_5_simple_content_types_a_cross_site_form_can_send_are_refused_by_the_json_endpoints() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let body = json!({ "username": "alice", "password": PASSWORD }).to_string();
    for media in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
        let response = server
            .client
            .post(server.url("/v1/session"))
            .header("content-type", media)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        expect_problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    }
}

#[tokio::test]
async fn asvs_3_5_the_csrf_token_of_another_session_or_user_does_not_pass() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    server.sign_up("mallory").await;
    let alice = server.cookie_login("alice").await;
    let mallory = server.cookie_login("mallory").await;
    let response = cookie_logout(&server, &alice, &[("x-csrf-token", &mallory.csrf)]).await;
    expect_problem(response, StatusCode::FORBIDDEN, "csrf_rejected").await;
    let truncated = &alice.csrf[..alice.csrf.len() - 1];
    let response = cookie_logout(&server, &alice, &[("x-csrf-token", truncated)]).await;
    expect_problem(response, StatusCode::FORBIDDEN, "csrf_rejected").await;
}

#[tokio::test]
async fn asvs_7_2_a_tampered_or_guessed_session_cookie_is_unauthenticated() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let login = server.cookie_login("alice").await;
    let (name, secret) = login.cookie.split_once('=').unwrap();
    let mut flipped = secret.to_owned().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let forged = [
        String::from_utf8(flipped).unwrap(),
        format!("{secret}A"),
        secret[..42].to_owned(),
        login.session_id.clone(),
        "A".repeat(43),
        format!("{}=", &secret[..42]),
    ];
    for value in forged {
        let response = server.me_cookie(&format!("{name}={value}")).await;
        expect_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    assert_eq!(server.me_cookie(&login.cookie).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn asvs_7_2_session_secrets_are_unpredictable_256_bit_values() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let mut secrets = HashSet::new();
    let mut prefixes = HashSet::new();
    for _ in 0..40 {
        let login = server.cookie_login("alice").await;
        let secret = login.cookie.split_once('=').unwrap().1.to_owned();
        assert_eq!(secret.len(), 43, "256 bits in unpadded base64url");
        assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        prefixes.insert(secret[..4].to_owned());
        assert!(!secret.contains(&login.session_id), "the public id is not part of the secret");
        secrets.insert(secret);
    }
    assert_eq!(secrets.len(), 40, "no secret repeats");
    assert!(prefixes.len() >= 38, "24-bit prefixes barely collide among 40 random secrets: {}", prefixes.len());
}

#[tokio::test]
async fn asvs_7_4_a_logged_out_cookie_replayed_later_is_dead_on_the_server() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let login = server.cookie_login("alice").await;
    let logout = server
        .client
        .post(server.url("/v1/logout"))
        .header("cookie", &login.cookie)
        .header("x-csrf-token", &login.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    // The browser was told to drop it; an attacker who kept a copy replays it.
    for _ in 0..2 {
        assert_eq!(server.me_cookie(&login.cookie).await.status(), StatusCode::UNAUTHORIZED);
        let verify = server.client.get(server.url("/v1/verify")).header("cookie", &login.cookie).send().await.unwrap();
        assert_eq!(verify.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn asvs_7_4_a_password_change_ends_a_stolen_cookie_and_stolen_tokens() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let stolen_cookie = server.cookie_login("alice").await;
    let stolen_tokens = server.token_login("alice").await;
    let mine = server.token_login("alice").await;
    let change = server
        .client
        .post(server.url("/v1/account/password"))
        .bearer_auth(&mine.access)
        .json(&json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase" }))
        .send()
        .await
        .unwrap();
    assert_eq!(change.status(), StatusCode::NO_CONTENT);
    assert_eq!(server.me_cookie(&stolen_cookie.cookie).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.me_bearer(&stolen_tokens.access).await.status(), StatusCode::UNAUTHORIZED);
    expect_oauth_error(server.refresh(&stolen_tokens.refresh).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(server.me_bearer(&mine.access).await.status(), StatusCode::OK, "the caller's session survives");
    let old = server.post_json("/v1/session", &json!({ "username": "alice", "password": PASSWORD })).await;
    expect_problem(old, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}
