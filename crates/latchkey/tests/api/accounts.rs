use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn sign_up_returns_the_account_with_its_username_normalised() {
    let server = Server::start().await;
    let response = server.post_json("/v1/accounts", &json!({ "username": "ＡＬＩＣＥ", "password": PASSWORD })).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["username"], "alice");
    assert!(body["id"].as_str().is_some_and(|id| id.len() == 36));
    assert!(body["created_at"].as_str().is_some_and(|at| at.ends_with('Z')));
    assert!(body.get("password").is_none() && body.get("password_hash").is_none());
}

#[tokio::test]
async fn a_taken_username_gets_409_even_in_another_spelling() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    for spelling in ["alice", "ALICE", "Ａlice"] {
        let response = server.post_json("/v1/accounts", &json!({ "username": spelling, "password": PASSWORD })).await;
        expect_problem(response, StatusCode::CONFLICT, "username_taken").await;
    }
}

#[tokio::test]
async fn sign_up_refuses_policy_failures_with_422_naming_the_field() {
    let server = Server::start().await;
    let long = "x".repeat(257);
    let cases = [
        (json!({ "username": "al", "password": PASSWORD }), "username"),
        (json!({ "username": "a".repeat(65), "password": PASSWORD }), "username"),
        (json!({ "username": "al\u{0007}ice", "password": PASSWORD }), "username"),
        (json!({ "username": "alice", "password": "short" }), "password"),
        (json!({ "username": "alice", "password": "password123" }), "password"),
        (json!({ "username": "alice", "password": "Sunshine1" }), "password"),
        (json!({ "username": "alice", "password": "TrustNo1" }), "password"),
        (json!({ "username": "alice-in-chains", "password": "ALICE-IN-CHAINS" }), "password"),
        (json!({ "username": "alice", "password": long }), "password"),
        (json!({ "username": "alice" }), "password"),
        (json!({ "username": 42, "password": PASSWORD }), "username"),
    ];
    for (body, field) in cases {
        let response = server.post_json("/v1/accounts", &body).await;
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
        assert_eq!(problem["field"], field, "{body}");
    }
    // Nothing was created by the refused attempts.
    server.sign_up("alice").await;
}

#[tokio::test]
async fn passwords_of_exactly_256_characters_are_accepted_and_compared_exactly() {
    let server = Server::start().await;
    let password = "é".repeat(256);
    let response = server.post_json("/v1/accounts", &json!({ "username": "alice", "password": password })).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let login = server.post_json("/v1/session", &json!({ "username": "alice", "password": password })).await;
    assert_eq!(login.status(), StatusCode::OK);
    let truncated = server.post_json("/v1/session", &json!({ "username": "alice", "password": "é".repeat(255) })).await;
    expect_problem(truncated, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_revokes_every_other_session() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let web = server.cookie_login("alice").await;
    let phone = server.token_login("alice").await;
    let laptop = server.token_login("alice").await;

    let wrong = server
        .client
        .post(server.url("/v1/account/password"))
        .bearer_auth(&laptop.access)
        .json(&json!({ "current_password": "not the password", "new_password": "a brand new passphrase" }))
        .send()
        .await
        .unwrap();
    expect_problem(wrong, StatusCode::FORBIDDEN, "invalid_credentials").await;

    let weak = server
        .client
        .post(server.url("/v1/account/password"))
        .bearer_auth(&laptop.access)
        .json(&json!({ "current_password": PASSWORD, "new_password": "12345678" }))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(weak, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    assert_eq!(problem["field"], "new_password");

    let changed = server
        .client
        .post(server.url("/v1/account/password"))
        .bearer_auth(&laptop.access)
        .json(&json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase" }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);

    assert_eq!(server.me_bearer(&laptop.access).await.status(), StatusCode::OK, "the calling session survives");
    assert_eq!(server.me_bearer(&phone.access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.me_cookie(&web.cookie).await.status(), StatusCode::UNAUTHORIZED);
    expect_oauth_error(server.refresh(&phone.refresh).await, StatusCode::BAD_REQUEST, "invalid_grant").await;

    let old = server.post_json("/v1/session", &json!({ "username": "alice", "password": PASSWORD })).await;
    expect_problem(old, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let new =
        server.post_json("/v1/session", &json!({ "username": "alice", "password": "a brand new passphrase" })).await;
    assert_eq!(new.status(), StatusCode::OK);
}
