//! Response headers and request limits (OWASP ASVS 5.0 V3.4 browser security headers, V4.1
//! generic web service security): HSTS over https, `nosniff` and `no-store` where they belong,
//! and a cap on request headers.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn asvs_3_4_an_https_public_url_sends_hsts_on_every_response_and_plain_http_none() {
    let secure = Server::with(&[("LATCHKEY_PUBLIC_URL", "https://auth.example.test")]).await;
    for path in ["/healthz", "/v1/me", "/no/such/route"] {
        let response = secure.client.get(secure.url(path)).send().await.unwrap();
        let hsts = response.headers().get("strict-transport-security").and_then(|v| v.to_str().ok());
        assert_eq!(hsts, Some("max-age=63072000; includeSubDomains"), "{path}");
    }
    let plain = Server::start().await;
    let response = plain.client.get(plain.url("/healthz")).send().await.unwrap();
    assert!(response.headers().get("strict-transport-security").is_none());
}

#[tokio::test]
async fn asvs_3_4_every_response_says_nosniff_and_every_one_with_a_secret_or_identity_says_no_store() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let cookie = server.cookie_login("alice").await;
    let tokens = server.token_login("alice").await;
    let responses = vec![
        ("cookie login", server.post_json("/v1/session", &json!({ "username": "alice", "password": PASSWORD })).await),
        ("token login", server.password_grant("/v1/token", "alice", &[]).await),
        ("refresh", server.refresh(&tokens.refresh).await),
        ("me by cookie", server.me_cookie(&cookie.cookie).await),
        ("me by bearer", server.me_bearer(&tokens.access).await),
        ("verify", server.client.get(server.url("/v1/verify")).bearer_auth(&tokens.access).send().await.unwrap()),
        ("sessions", server.client.get(server.url("/v1/sessions")).bearer_auth(&tokens.access).send().await.unwrap()),
        ("a 401", server.me_bearer("nope").await),
    ];
    for (what, response) in responses {
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(header("cache-control").as_deref(), Some("no-store"), "{what}");
        assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"), "{what}");
    }
}

#[tokio::test]
async fn asvs_4_1_request_headers_over_32_kib_in_all_get_431_and_the_server_carries_on() {
    let server = Server::start().await;
    let mut request = server.client.get(server.url("/v1/me"));
    for n in 0..5 {
        request = request.header(format!("x-filler-{n}"), "a".repeat(7_000));
    }
    let response = request.send().await.unwrap();
    expect_problem(response, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large").await;
    let fine = server.client.get(server.url("/v1/me")).header("x-filler", "a".repeat(7_000)).send().await.unwrap();
    assert_eq!(fine.status(), StatusCode::UNAUTHORIZED, "a large but allowed request is handled");
    assert_eq!(server.client.get(server.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
}
