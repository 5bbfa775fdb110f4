use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn me_says_who_and_how_for_each_carrier() {
    let server = Server::start().await;
    let user = server.sign_up("alice").await;
    let web = server.cookie_login("alice").await;
    let app = server.token_login("alice").await;

    let by_cookie = server.me_cookie(&web.cookie).await;
    assert_eq!(by_cookie.headers()["cache-control"], "no-store");
    let by_cookie: Value = by_cookie.json().await.unwrap();
    assert_eq!(by_cookie["user"], user);
    assert_eq!(by_cookie["auth"], "cookie");
    assert_eq!(by_cookie["session"]["kind"], "cookie");
    assert_eq!(by_cookie["session"]["id"], web.session_id.as_str());
    assert_eq!(by_cookie["csrf_token"], web.csrf.as_str());

    let by_bearer: Value = server.me_bearer(&app.access).await.json().await.unwrap();
    assert_eq!(by_bearer["auth"], "bearer");
    assert_eq!(by_bearer["session"]["kind"], "token");
    assert_eq!(by_bearer["session"]["id"], app.session_id.as_str());
    assert!(by_bearer["session"]["expires_at"].is_string());
    assert!(by_bearer.get("csrf_token").is_none());
}

#[tokio::test]
async fn me_without_a_valid_credential_is_401_with_a_bearer_challenge() {
    let server = Server::start().await;
    let none = server.client.get(server.url("/v1/me")).send().await.unwrap();
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    expect_problem(none, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    for token in ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."] {
        let bad = server.me_bearer(token).await;
        assert_eq!(bad.headers()["www-authenticate"], r#"Bearer error="invalid_token""#);
        expect_problem(bad, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    let basic =
        server.client.get(server.url("/v1/me")).header("authorization", "Basic YWxpY2U6eA==").send().await.unwrap();
    expect_problem(basic, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn the_device_list_shows_both_kinds_newest_first_with_the_current_one_marked() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let web = {
        let response = server
            .client
            .post(server.url("/v1/session"))
            .header("user-agent", "Mozilla/5.0 (Macintosh) Safari/605.1.15")
            .json(&json!({ "username": "alice", "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        cookie_pair(response.headers(), "latchkey_session").unwrap()
    };
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let phone = server.token_login_with("alice", &[("user-agent", "latchkey-ios/1.0")]).await;
    let response = server.client.get(server.url("/v1/sessions")).bearer_auth(&phone.access).send().await.unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let list: Vec<Value> = response.json().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["kind"], "token");
    assert_eq!(list[0]["user_agent"], "latchkey-ios/1.0");
    assert_eq!(list[0]["current"], true);
    assert_eq!(list[0]["id"], phone.session_id.as_str());
    assert_eq!(list[1]["kind"], "cookie");
    assert_eq!(list[1]["user_agent"], "Mozilla/5.0 (Macintosh) Safari/605.1.15");
    assert_eq!(list[1]["current"], false);
    for entry in &list {
        assert_eq!(entry["ip"], "127.0.0.1");
        for field in ["created_at", "last_seen_at", "expires_at"] {
            assert!(entry[field].is_string(), "{field}");
        }
    }
    let from_cookie = server.sessions_by_cookie(&web).await;
    assert_eq!(from_cookie[1]["current"], true);
}

#[tokio::test]
async fn revoking_one_of_my_sessions_works_and_any_other_id_is_404() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    server.sign_up("bob").await;
    let mine = server.token_login("alice").await;
    let my_other = server.cookie_login("alice").await;
    let bobs = server.token_login("bob").await;
    let delete =
        |id: &str| server.client.delete(server.url(&format!("/v1/sessions/{id}"))).bearer_auth(&mine.access).send();
    for id in [bobs.session_id.as_str(), "00000000-0000-4000-8000-000000000000", "not-a-session"] {
        expect_problem(delete(id).await.unwrap(), StatusCode::NOT_FOUND, "session_not_found").await;
    }
    assert_eq!(server.me_bearer(&bobs.access).await.status(), StatusCode::OK, "bob's session untouched");
    assert_eq!(delete(&my_other.session_id).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(server.me_cookie(&my_other.cookie).await.status(), StatusCode::UNAUTHORIZED);
    expect_problem(delete(&my_other.session_id).await.unwrap(), StatusCode::NOT_FOUND, "session_not_found").await;
    let list = server.sessions(&mine.access).await;
    assert_eq!(list.len(), 1, "revoked sessions are not listed");
}

#[tokio::test]
async fn logout_scopes_end_the_current_the_other_or_all_sessions() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let logout = |tokens: &Tokens, body: Option<Value>| {
        let request = server.client.post(server.url("/v1/logout")).bearer_auth(&tokens.access);
        match body {
            Some(body) => request.json(&body).send(),
            None => request.send(),
        }
    };
    // No body means the current session.
    let a = server.token_login("alice").await;
    let b = server.token_login("alice").await;
    assert_eq!(logout(&a, None).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(server.me_bearer(&a.access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.me_bearer(&b.access).await.status(), StatusCode::OK);

    let c = server.token_login("alice").await;
    assert_eq!(logout(&b, Some(json!({ "scope": "others" }))).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(server.me_bearer(&b.access).await.status(), StatusCode::OK);
    assert_eq!(server.me_bearer(&c.access).await.status(), StatusCode::UNAUTHORIZED);

    let d = server.token_login("alice").await;
    let web = server.cookie_login("alice").await;
    assert_eq!(logout(&d, Some(json!({ "scope": "all" }))).await.unwrap().status(), StatusCode::NO_CONTENT);
    for tokens in [&b, &d] {
        assert_eq!(server.me_bearer(&tokens.access).await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(server.me_cookie(&web.cookie).await.status(), StatusCode::UNAUTHORIZED);

    let e = server.token_login("alice").await;
    let bad = logout(&e, Some(json!({ "scope": "everything" }))).await.unwrap();
    let problem = expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    assert_eq!(problem["field"], "scope");
    assert_eq!(server.me_bearer(&e.access).await.status(), StatusCode::OK, "a refused logout changes nothing");
}

#[tokio::test]
async fn a_cookie_logout_clears_the_cookie() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let web = server.cookie_login("alice").await;
    let response = server
        .client
        .post(server.url("/v1/logout"))
        .header("cookie", &web.cookie)
        .header("x-csrf-token", &web.csrf)
        .json(&json!({ "scope": "current" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let line = set_cookie(response.headers(), "latchkey_session").expect("cleared cookie");
    assert!(line.contains("Max-Age=0"), "{line}");
}

#[tokio::test]
async fn a_disabled_user_is_refused_everywhere() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let web = server.cookie_login("alice").await;
    let app = server.token_login("alice").await;
    assert_eq!(server.me_cookie(&web.cookie).await.status(), StatusCode::OK, "warms the cookie cache");
    assert_eq!(server.me_bearer(&app.access).await.status(), StatusCode::OK, "warms the bearer cache");
    let (ok, out, err) = server.cli(&["user", "disable", "alice"], "");
    assert!(ok, "{out}{err}");
    // The running server learns of the CLI's revocations within its sync interval (200 ms here).
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(server.me_cookie(&web.cookie).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.me_bearer(&app.access).await.status(), StatusCode::UNAUTHORIZED);
    expect_oauth_error(server.refresh(&app.refresh).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let login = server.post_json("/v1/session", &json!({ "username": "alice", "password": PASSWORD })).await;
    expect_problem(login, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

#[tokio::test]
async fn the_client_ip_comes_from_x_forwarded_for_only_behind_a_trusted_proxy() {
    for (trusted, expected) in [(None, "127.0.0.1"), (Some("127.0.0.1/32"), "203.0.113.7")] {
        let env: Vec<(&str, &str)> = trusted.map(|cidr| ("LATCHKEY_TRUSTED_PROXIES", cidr)).into_iter().collect();
        let server = Server::with(&env).await;
        server.sign_up("alice").await;
        let tokens = server.token_login_with("alice", &[("x-forwarded-for", "198.51.100.1, 203.0.113.7")]).await;
        let list = server.sessions(&tokens.access).await;
        assert_eq!(list[0]["ip"], expected, "trusted proxies: {trusted:?}");
    }
}

#[tokio::test]
async fn with_the_session_cache_off_a_revocation_by_another_process_bites_at_once() {
    // The periodic sync is an hour away, so only a store read can see the CLI's revocation.
    let server = Server::with(&[("LATCHKEY_SESSION_CACHE_TTL", "0s"), ("LATCHKEY_SYNC_INTERVAL", "1h")]).await;
    server.sign_up("alice").await;
    let web = server.cookie_login("alice").await;
    assert_eq!(server.me_cookie(&web.cookie).await.status(), StatusCode::OK);
    let (ok, out, err) = server.cli(&["sessions", "revoke", &web.session_id], "");
    assert!(ok, "{out}{err}");
    assert_eq!(server.me_cookie(&web.cookie).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_logout_with_an_unknown_scope_is_422_and_ends_nothing() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let tokens = server.token_login("alice").await;
    let response = server
        .client
        .post(server.url("/v1/logout"))
        .bearer_auth(&tokens.access)
        .json(&json!({ "scope": "everywhere" }))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    assert_eq!(problem["field"], "scope");
    assert_eq!(server.me_bearer(&tokens.access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn api_precise_rules_a_login_past_the_session_cap_ends_the_session_used_longest_ago_and_audits_it() {
    let server =
        Server::with(&[("LATCHKEY_MAX_SESSIONS_PER_USER", "3"), ("LATCHKEY_SESSION_TOUCH_INTERVAL", "1s")]).await;
    server.sign_up("alice").await;
    let oldest = server.cookie_login("alice").await;
    let middle = server.token_login("alice").await;
    let recent = server.cookie_login("alice").await;
    // The oldest login is used now, so the middle one becomes the one used longest ago.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    assert_eq!(server.me_cookie(&oldest.cookie).await.status(), StatusCode::OK);
    let newest = server.token_login("alice").await;
    assert_eq!(server.me_cookie(&oldest.cookie).await.status(), StatusCode::OK, "used recently: kept");
    assert_eq!(server.me_cookie(&recent.cookie).await.status(), StatusCode::OK);
    assert_eq!(server.me_bearer(&newest.access).await.status(), StatusCode::OK, "the new login is never the one ended");
    assert_eq!(server.me_bearer(&middle.access).await.status(), StatusCode::UNAUTHORIZED, "used longest ago: ended");
    assert_eq!(server.refresh(&middle.refresh).await.status(), StatusCode::BAD_REQUEST);
    let devices = server.sessions(&newest.access).await;
    assert_eq!(devices.len(), 3, "{devices:?}");
    assert!(devices.iter().all(|device| device["id"] != middle.session_id.as_str()));
    let (ok, audit, _) = server.cli(&["audit", "--kind", "session_revoked", "--json"], "");
    assert!(ok && audit.contains("session_limit") && audit.contains(&middle.session_id), "{audit}");
}
