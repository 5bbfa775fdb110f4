use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_password_grant_returns_a_bearer_pair_from_a_form_or_json_body() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let form = server.password_grant("/v1/token", "alice", &[]).await;
    let json_body = server
        .post_json("/v1/token", &json!({ "grant_type": "password", "username": "alice", "password": PASSWORD }))
        .await;
    for response in [form, json_body] {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["pragma"], "no-cache");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert!((599..=600).contains(&body["expires_in"].as_i64().unwrap()), "{body}");
        assert!(body["refresh_token"].as_str().is_some_and(|t| t.len() > 40));
        assert!(body["session_id"].is_string());
    }
}

#[tokio::test]
async fn the_access_token_carries_the_contract_header_and_claims() {
    let server = Server::start().await;
    let user = server.sign_up("alice").await;
    let tokens = server.token_login("alice").await;
    let header = jwt_part(&tokens.access, 0);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");
    assert!(header["kid"].is_string());
    let claims = jwt_part(&tokens.access, 1);
    assert_eq!(claims["iss"], ORIGIN);
    assert_eq!(claims["aud"], ORIGIN);
    assert_eq!(claims["sub"], user["id"]);
    assert_eq!(claims["sid"], tokens.session_id.as_str());
    assert!(claims["jti"].is_string());
    let (iat, exp) = (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
    assert_eq!(exp - iat, 600);
}

#[tokio::test]
async fn a_refresh_rotates_the_refresh_token_and_keeps_the_session() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let first = server.token_login("alice").await;
    let response = server.refresh(&first.refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let second = Tokens::from(response.json::<Value>().await.unwrap());
    assert_ne!(second.refresh, first.refresh);
    assert_ne!(second.access, first.access);
    assert_eq!(second.session_id, first.session_id);
    let third = Tokens::from(server.refresh(&second.refresh).await.json::<Value>().await.unwrap());
    assert_eq!(third.session_id, first.session_id);
    assert_eq!(server.me_bearer(&third.access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_reused_refresh_token_outside_the_grace_window_revokes_the_session_and_its_access_tokens() {
    let server = Server::with(&[("LATCHKEY_REFRESH_REUSE_GRACE", "1s")]).await;
    server.sign_up("alice").await;
    let first = server.token_login("alice").await;
    let second = Tokens::from(server.refresh(&first.refresh).await.json::<Value>().await.unwrap());
    assert_eq!(server.me_bearer(&second.access).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1300)).await;

    expect_oauth_error(server.refresh(&first.refresh).await, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // The whole session is dead: its current refresh token and every access token.
    expect_oauth_error(server.refresh(&second.refresh).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let me = server.me_bearer(&second.access).await;
    assert_eq!(me.headers()["www-authenticate"], r#"Bearer error="invalid_token""#);
    expect_problem(me, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(server.me_bearer(&first.access).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn two_concurrent_refreshes_inside_the_grace_window_both_succeed_with_the_session_alive() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let first = server.token_login("alice").await;
    let (a, b) = tokio::join!(server.refresh(&first.refresh), server.refresh(&first.refresh));
    assert_eq!(a.status(), StatusCode::OK);
    assert_eq!(b.status(), StatusCode::OK);
    let a = Tokens::from(a.json::<Value>().await.unwrap());
    let b = Tokens::from(b.json::<Value>().await.unwrap());
    assert_eq!(a.session_id, b.session_id);
    assert_eq!(a.refresh, b.refresh, "both tabs hold the one current refresh token");
    for tokens in [&a, &b] {
        assert_eq!(server.me_bearer(&tokens.access).await.status(), StatusCode::OK);
    }
    // A third presentation of the same retired token inside the window still answers.
    assert_eq!(server.refresh(&first.refresh).await.status(), StatusCode::OK);
    let next = server.refresh(&a.refresh).await;
    assert_eq!(next.status(), StatusCode::OK, "the session goes on");
}

#[tokio::test]
async fn only_the_token_retired_by_the_latest_rotation_gets_the_grace_window() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let first = server.token_login("alice").await;
    let second = Tokens::from(server.refresh(&first.refresh).await.json::<Value>().await.unwrap());
    let third = Tokens::from(server.refresh(&second.refresh).await.json::<Value>().await.unwrap());
    // `first` was retired two rotations ago: reuse, even inside the window.
    expect_oauth_error(server.refresh(&first.refresh).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    expect_oauth_error(server.refresh(&third.refresh).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(server.me_bearer(&third.access).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_credentials_and_bad_refresh_tokens_get_invalid_grant() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let wrong = server
        .client
        .post(server.url("/v1/token"))
        .form(&[("grant_type", "password"), ("username", "alice"), ("password", "not the password")])
        .send()
        .await
        .unwrap();
    expect_oauth_error(wrong, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let unknown = server
        .client
        .post(server.url("/v1/token"))
        .form(&[("grant_type", "password"), ("username", "nobody"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    expect_oauth_error(unknown, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let access = server.token_login("alice").await.access;
    for bogus in ["nope", "", &access, &"A".repeat(75)] {
        let response = server.refresh(bogus).await;
        let expected = if bogus.is_empty() { "invalid_request" } else { "invalid_grant" };
        expect_oauth_error(response, StatusCode::BAD_REQUEST, expected).await;
    }
}

#[tokio::test]
async fn the_token_endpoint_answers_every_error_in_the_oauth_shape() {
    let server = Server::start().await;
    let post = |content_type: &'static str, body: Vec<u8>| {
        server.client.post(server.url("/v1/token")).header("content-type", content_type).body(body).send()
    };
    let unsupported =
        post("application/x-www-form-urlencoded", b"grant_type=client_credentials".to_vec()).await.unwrap();
    expect_oauth_error(unsupported, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;
    let missing = post("application/x-www-form-urlencoded", b"username=alice".to_vec()).await.unwrap();
    expect_oauth_error(missing, StatusCode::BAD_REQUEST, "invalid_request").await;
    let no_password =
        post("application/x-www-form-urlencoded", b"grant_type=password&username=alice".to_vec()).await.unwrap();
    expect_oauth_error(no_password, StatusCode::BAD_REQUEST, "invalid_request").await;
    let repeated = post("application/x-www-form-urlencoded", b"grant_type=password&grant_type=refresh_token".to_vec())
        .await
        .unwrap();
    expect_oauth_error(repeated, StatusCode::BAD_REQUEST, "invalid_request").await;
    let broken_json = post("application/json", b"{\"grant_type\": ".to_vec()).await.unwrap();
    expect_oauth_error(broken_json, StatusCode::BAD_REQUEST, "invalid_request").await;
    let non_string = post("application/json", br#"{"grant_type": 5}"#.to_vec()).await.unwrap();
    expect_oauth_error(non_string, StatusCode::BAD_REQUEST, "invalid_request").await;
    let wrong_type = post("text/plain", b"grant_type=password".to_vec()).await.unwrap();
    expect_oauth_error(wrong_type, StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request").await;
    let huge = post("application/x-www-form-urlencoded", vec![b'a'; 70 * 1024]).await.unwrap();
    expect_oauth_error(huge, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request").await;
    let bad_delivery = server
        .client
        .post(server.url("/v1/token?delivery=carrier-pigeon"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    expect_oauth_error(bad_delivery, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn revoking_either_token_ends_the_whole_session() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    for which in ["refresh", "access"] {
        let tokens = server.token_login("alice").await;
        let token = if which == "refresh" { &tokens.refresh } else { &tokens.access };
        let response =
            server.client.post(server.url("/v1/token/revoke")).form(&[("token", token.as_str())]).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{which}");
        assert_eq!(server.me_bearer(&tokens.access).await.status(), StatusCode::UNAUTHORIZED, "{which}");
        expect_oauth_error(server.refresh(&tokens.refresh).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
}

#[tokio::test]
async fn revocation_answers_200_for_unknown_tokens_and_400_without_one() {
    let server = Server::start().await;
    let unknown =
        server.client.post(server.url("/v1/token/revoke")).form(&[("token", "whatever")]).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::OK);
    let missing = server
        .client
        .post(server.url("/v1/token/revoke"))
        .form(&[("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    expect_oauth_error(missing, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn token_sessions_end_after_the_refresh_idle_and_absolute_timeouts() {
    let server =
        Server::with(&[("LATCHKEY_REFRESH_IDLE_TIMEOUT", "1500ms"), ("LATCHKEY_REFRESH_ABSOLUTE_TIMEOUT", "4s")]).await;
    server.sign_up("alice").await;
    let idle = server.token_login("alice").await;
    let mut active = server.token_login("alice").await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let response = server.refresh(&active.refresh).await;
        assert_eq!(response.status(), StatusCode::OK, "refreshing keeps the session alive");
        active = Tokens::from(response.json::<Value>().await.unwrap());
    }
    expect_oauth_error(server.refresh(&idle.refresh).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    tokio::time::sleep(Duration::from_millis(1400)).await;
    expect_oauth_error(server.refresh(&active.refresh).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn access_tokens_never_outlive_their_session_and_expire_on_time() {
    let server =
        Server::with(&[("LATCHKEY_ACCESS_TOKEN_TTL", "1s"), ("LATCHKEY_REFRESH_ABSOLUTE_TIMEOUT", "30d")]).await;
    server.sign_up("alice").await;
    let tokens = server.token_login("alice").await;
    assert_eq!(server.me_bearer(&tokens.access).await.status(), StatusCode::OK);
    // exp is 1 s away; the leeway is 2 s.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let expired = server.me_bearer(&tokens.access).await;
    expect_problem(expired, StatusCode::UNAUTHORIZED, "invalid_token").await;
}
