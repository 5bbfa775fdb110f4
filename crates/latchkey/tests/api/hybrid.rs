use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

async fn hybrid_login(server: &Server) -> (String, String, String, Value) {
    let response = server.password_grant("/v1/token?delivery=cookie", "alice", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let at = cookie_pair(response.headers(), "latchkey_at").expect("access cookie");
    let rt = cookie_pair(response.headers(), "latchkey_rt").expect("refresh cookie");
    let at_line = set_cookie(response.headers(), "latchkey_at").unwrap();
    let rt_line = set_cookie(response.headers(), "latchkey_rt").unwrap();
    let at_attributes: Vec<&str> = at_line.split(';').map(str::trim).collect();
    assert!(at_attributes.contains(&"HttpOnly") && at_attributes.contains(&"Path=/"), "{at_line}");
    assert!(rt_line.contains("HttpOnly") && rt_line.contains("Path=/v1/token"), "{rt_line}");
    let body: Value = response.json().await.unwrap();
    (at, rt, body["csrf_token"].as_str().unwrap().to_owned(), body)
}

#[tokio::test]
async fn cookie_delivery_sets_httponly_token_cookies_and_returns_only_a_csrf_token() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let (at, _, _, body) = hybrid_login(&server).await;
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none(), "{body}");
    assert!((599..=600).contains(&body["expires_in"].as_i64().unwrap()), "{body}");
    let me: Value = server.me_cookie(&at).await.json().await.unwrap();
    assert_eq!(me["auth"], "cookie");
    assert_eq!(me["session"]["kind"], "token");
    assert_eq!(me["csrf_token"], body["csrf_token"]);
}

#[tokio::test]
async fn an_https_public_url_gives_the_hybrid_cookies_their_prefixes() {
    let server = Server::with(&[("LATCHKEY_PUBLIC_URL", "https://auth.example.test")]).await;
    server.sign_up("alice").await;
    let response = server.password_grant("/v1/token?delivery=cookie", "alice", &[]).await;
    assert!(set_cookie(response.headers(), "__Host-latchkey_at").is_some_and(|l| l.contains("Secure")));
    assert!(
        set_cookie(response.headers(), "__Secure-latchkey_rt")
            .is_some_and(|l| l.contains("Secure") && l.contains("Path=/v1/token"))
    );
}

#[tokio::test]
async fn a_hybrid_refresh_takes_the_cookie_and_needs_the_csrf_token() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let (at, rt, csrf, _) = hybrid_login(&server).await;
    let refresh = |csrf: Option<&str>, origin: Option<&str>| {
        let mut request = server
            .client
            .post(server.url("/v1/token?delivery=cookie"))
            .header("cookie", &rt)
            .form(&[("grant_type", "refresh_token")]);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    expect_oauth_error(refresh(None, None).await.unwrap(), StatusCode::FORBIDDEN, "invalid_request").await;
    expect_oauth_error(refresh(Some("wrong"), None).await.unwrap(), StatusCode::FORBIDDEN, "invalid_request").await;
    expect_oauth_error(
        refresh(Some(&csrf), Some("https://evil.example.test")).await.unwrap(),
        StatusCode::FORBIDDEN,
        "invalid_request",
    )
    .await;
    let response = refresh(Some(&csrf), Some(ORIGIN)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let new_at = cookie_pair(response.headers(), "latchkey_at").unwrap();
    let new_rt = cookie_pair(response.headers(), "latchkey_rt").unwrap();
    assert_ne!(new_at, at);
    assert_ne!(new_rt, rt);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["csrf_token"], csrf.as_str(), "the CSRF token belongs to the session");
    assert_eq!(server.me_cookie(&new_at).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn unsafe_requests_carried_by_the_access_cookie_follow_the_csrf_rule() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let (at, rt, csrf, _) = hybrid_login(&server).await;
    let without = server.client.post(server.url("/v1/logout")).header("cookie", &at).send().await.unwrap();
    expect_problem(without, StatusCode::FORBIDDEN, "csrf_rejected").await;
    let with = server
        .client
        .post(server.url("/v1/logout"))
        .header("cookie", format!("{at}; {rt}"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(with.status(), StatusCode::NO_CONTENT);
    let cleared = set_cookies(with.headers());
    for name in ["latchkey_session=", "latchkey_at=", "latchkey_rt="] {
        assert!(
            cleared.iter().any(|line| line.starts_with(name) && line.contains("Max-Age=0")),
            "{name} cleared: {cleared:?}"
        );
    }
    assert_eq!(server.me_cookie(&at).await.status(), StatusCode::UNAUTHORIZED);
}
