//! Hostile tests of password-attempt throttling (OWASP ASVS 5.0 V6.3: brute force and
//! credential stuffing; no permanent lockout) and of user enumeration at login (ASVS V6.3,
//! "the same answer for every reason").

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const WRONG: &str = "not the password at all";

/// A cookie login attempt with `password`, sending `headers`.
async fn attempt(server: &Server, username: &str, password: &str, headers: &[(&str, &str)]) -> Response {
    server.login_attempt(username, password, headers).await
}

/// A password-grant attempt with `password`.
async fn token_attempt(server: &Server, username: &str, password: &str) -> Response {
    server
        .client
        .post(server.url("/v1/token"))
        .form(&[("grant_type", "password"), ("username", username), ("password", password)])
        .send()
        .await
        .expect("request")
}

/// The `Retry-After` seconds of a 429.
fn retry_after(headers: &HeaderMap) -> u64 {
    headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).expect("Retry-After")
}

/// Sends `count` failed attempts on `username`, each answered 401.
async fn fail_times(server: &Server, username: &str, count: usize) {
    for n in 1..=count {
        let response = attempt(server, username, WRONG, &[]).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "free failure {n} on {username}");
    }
}

#[tokio::test]
async fn asvs_6_3_after_the_free_failures_both_login_endpoints_answer_429_with_retry_after() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    fail_times(&server, "alice", 5).await;
    let refused = attempt(&server, "alice", PASSWORD, &[]).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
    assert!((1..=2).contains(&retry_after(refused.headers())), "the first wait is about a second");
    assert_eq!(refused.headers()["cache-control"], "no-store");
    expect_problem(refused, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    let refused = token_attempt(&server, "alice", PASSWORD).await;
    assert!(retry_after(refused.headers()) >= 1);
    expect_oauth_error(refused, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

#[tokio::test]
async fn asvs_6_3_the_real_user_gets_in_after_the_wait_and_a_success_clears_the_count() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    fail_times(&server, "alice", 5).await;
    // One more failure after the first wait doubles it: waits grow.
    let first = attempt(&server, "alice", WRONG, &[]).await;
    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);
    tokio::time::sleep(Duration::from_secs(retry_after(first.headers()))).await;
    assert_eq!(attempt(&server, "alice", WRONG, &[]).await.status(), StatusCode::UNAUTHORIZED, "checked again");
    let second = attempt(&server, "alice", PASSWORD, &[]).await;
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(second.headers());
    assert!(wait >= 2, "the wait doubled: {wait}");
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(attempt(&server, "alice", PASSWORD, &[]).await.status(), StatusCode::OK, "no permanent lockout");
    fail_times(&server, "alice", 5).await;
}

#[tokio::test]
async fn asvs_6_3_rotating_client_addresses_do_not_escape_the_account_limit() {
    // The proxy is trusted, so every attempt really comes from another client address.
    let server = Server::with(&[("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    server.sign_up("alice").await;
    for n in 1..=5 {
        let address = format!("198.51.100.{n}");
        let response = attempt(&server, "alice", WRONG, &[("x-forwarded-for", &address)]).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let refused = attempt(&server, "alice", WRONG, &[("x-forwarded-for", "203.0.113.77")]).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn asvs_6_3_one_address_is_throttled_over_many_accounts_and_a_spoofed_forwarded_for_does_not_escape() {
    let server = Server::with(&[("LATCHKEY_THROTTLE_ADDRESS_ATTEMPTS", "3")]).await;
    for name in ["u1", "u2", "u3"] {
        assert_eq!(attempt(&server, name, WRONG, &[]).await.status(), StatusCode::UNAUTHORIZED);
    }
    let refused = attempt(&server, "u4", WRONG, &[]).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "the address's allowance is spent");
    // The peer is not a trusted proxy, so its X-Forwarded-For is not believed.
    let spoofed = attempt(&server, "u5", WRONG, &[("x-forwarded-for", "192.0.2.200")]).await;
    assert_eq!(spoofed.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn asvs_6_3_behind_a_trusted_proxy_each_client_address_has_its_own_allowance() {
    let server =
        Server::with(&[("LATCHKEY_THROTTLE_ADDRESS_ATTEMPTS", "3"), ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1/32")])
            .await;
    let attacker = [("x-forwarded-for", "203.0.113.5")];
    for name in ["u1", "u2", "u3"] {
        assert_eq!(attempt(&server, name, WRONG, &attacker).await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(attempt(&server, "u4", WRONG, &attacker).await.status(), StatusCode::TOO_MANY_REQUESTS);
    let neighbour = [("x-forwarded-for", "203.0.113.6")];
    assert_eq!(attempt(&server, "u4", WRONG, &neighbour).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn asvs_6_3_one_password_sprayed_over_many_accounts_is_throttled() {
    let server =
        Server::with(&[("LATCHKEY_THROTTLE_PASSWORD_ATTEMPTS", "3"), ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1/32")])
            .await;
    server.sign_up("victim").await;
    // Every attempt from another address and on another account: only the password repeats.
    for n in 1..=3 {
        let address = format!("198.51.100.{n}");
        let response = attempt(&server, &format!("user{n}"), "Spring2026!", &[("x-forwarded-for", &address)]).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let sprayed = attempt(&server, "victim", "Spring2026!", &[("x-forwarded-for", "198.51.100.9")]).await;
    assert_eq!(sprayed.status(), StatusCode::TOO_MANY_REQUESTS);
    let other_password = attempt(&server, "victim", PASSWORD, &[("x-forwarded-for", "198.51.100.10")]).await;
    assert_eq!(other_password.status(), StatusCode::OK, "other passwords are unaffected");
}

#[tokio::test]
async fn asvs_6_3_a_login_flood_with_many_names_from_one_address_stops_at_its_allowance() {
    let server = Server::start().await;
    let mut throttled = 0;
    for n in 0..40 {
        let response = attempt(&server, &format!("made-up-{n}"), WRONG, &[]).await;
        match response.status() {
            StatusCode::UNAUTHORIZED => assert_eq!(throttled, 0, "once throttled, attempt {n} stays throttled"),
            StatusCode::TOO_MANY_REQUESTS => throttled += 1,
            other => panic!("attempt {n}: {other}"),
        }
    }
    assert_eq!(throttled, 20, "the default address allowance is 20 failures");
}

#[tokio::test]
async fn asvs_6_3_a_wrong_current_password_on_password_change_is_throttled_too() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let tokens = server.token_login("alice").await;
    let change = |current: &'static str| {
        server
            .client
            .post(server.url("/v1/account/password"))
            .bearer_auth(&tokens.access)
            .json(&json!({ "current_password": current, "new_password": "a brand new passphrase" }))
            .send()
    };
    for _ in 0..5 {
        expect_problem(change(WRONG).await.unwrap(), StatusCode::FORBIDDEN, "invalid_credentials").await;
    }
    let refused = change(PASSWORD).await.unwrap();
    assert!(retry_after(refused.headers()) >= 1);
    expect_problem(refused, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

/// Status, body and headers of a response, less the headers that differ per request.
async fn comparable(response: Response) -> (StatusCode, Vec<(String, String)>, Value) {
    let status = response.status();
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "x-request-id" | "date"))
        .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap_or_default().to_owned()))
        .collect();
    headers.sort();
    (status, headers, response.json().await.expect("json"))
}

#[tokio::test]
async fn asvs_6_3_unknown_user_wrong_password_and_disabled_user_get_identical_answers() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    server.sign_up("carol").await;
    let (ok, _, stderr) = server.cli(&["user", "disable", "carol"], "");
    assert!(ok, "{stderr}");
    let session = [
        comparable(attempt(&server, "nobody", PASSWORD, &[]).await).await,
        comparable(attempt(&server, "alice", WRONG, &[]).await).await,
        comparable(attempt(&server, "carol", PASSWORD, &[]).await).await,
    ];
    assert_eq!(session[0].0, StatusCode::UNAUTHORIZED);
    assert_eq!(session[0], session[1], "unknown user vs wrong password");
    assert_eq!(session[0], session[2], "unknown user vs disabled user");
    let token = [
        comparable(token_attempt(&server, "nobody", PASSWORD).await).await,
        comparable(token_attempt(&server, "alice", WRONG).await).await,
        comparable(token_attempt(&server, "carol", PASSWORD).await).await,
    ];
    assert_eq!(token[0].0, StatusCode::BAD_REQUEST);
    assert_eq!(token[0], token[1]);
    assert_eq!(token[0], token[2]);
}

#[tokio::test]
async fn asvs_6_3_throttling_answers_alike_for_real_and_made_up_accounts() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    fail_times(&server, "alice", 5).await;
    fail_times(&server, "nobody", 5).await;
    let real = comparable(attempt(&server, "alice", WRONG, &[]).await).await;
    let made_up = comparable(attempt(&server, "nobody", WRONG, &[]).await).await;
    assert_eq!(real.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(real.0, made_up.0);
    assert_eq!(real.2["code"], made_up.2["code"]);
}

#[tokio::test]
async fn asvs_6_2_an_over_long_password_is_a_wrong_password() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let huge = "x".repeat(60_000);
    expect_problem(attempt(&server, "alice", &huge, &[]).await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    expect_oauth_error(token_attempt(&server, "alice", &huge).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn throttled_logins_are_counted_in_the_metrics() {
    let server = Server::start().await;
    fail_times(&server, "alice", 5).await;
    assert_eq!(attempt(&server, "alice", WRONG, &[]).await.status(), StatusCode::TOO_MANY_REQUESTS);
    let metrics = server.client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"latchkey_logins_total{kind="cookie",outcome="throttled"} 1"#), "{metrics}");
}

#[test]
fn a_zero_allowance_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("LATCHKEY_DATA_DIR".to_owned(), dir.path().display().to_string()),
        ("LATCHKEY_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("LATCHKEY_THROTTLE_ACCOUNT_ATTEMPTS".to_owned(), "0".to_owned()),
    ];
    let output = output_within(command(&["serve"], &env), Duration::from_secs(20));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("LATCHKEY_THROTTLE_ACCOUNT_ATTEMPTS"));
}

#[tokio::test]
async fn api_precise_rules_concurrent_correct_logins_of_one_account_are_never_refused() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    for round in 0..2 {
        let logins = (0..16).map(|n| {
            let client = server.client.clone();
            let url = server.url(if n % 2 == 0 { "/v1/session" } else { "/v1/token" });
            tokio::spawn(async move {
                let request = if url.ends_with("/v1/token") {
                    client.post(url).form(&[("grant_type", "password"), ("username", "alice"), ("password", PASSWORD)])
                } else {
                    client.post(url).json(&json!({ "username": "alice", "password": PASSWORD }))
                };
                request.send().await.unwrap().status()
            })
        });
        let statuses: Vec<StatusCode> =
            futures::future::join_all(logins).await.into_iter().map(Result::unwrap).collect();
        assert!(statuses.iter().all(|status| *status == StatusCode::OK), "round {round}: {statuses:?}");
    }
}

#[tokio::test]
async fn asvs_6_3_concurrent_guesses_past_the_allowance_are_judged_one_at_a_time() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    fail_times(&server, "alice", 5).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    // Twenty guesses at once once the first wait is over: one is checked, the rest wait for it
    // and then meet the (2 s) wait its failure started.
    let guesses = (0..20).map(|_| {
        let client = server.client.clone();
        let url = server.url("/v1/session");
        tokio::spawn(async move {
            client.post(url).json(&json!({ "username": "alice", "password": WRONG })).send().await.unwrap().status()
        })
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(guesses).await.into_iter().map(Result::unwrap).collect();
    let checked = statuses.iter().filter(|status| **status == StatusCode::UNAUTHORIZED).count();
    let throttled = statuses.iter().filter(|status| **status == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((checked, throttled), (1, 19), "{statuses:?}");
}
