//! Session lifetimes as the contract's precise rules settle them: `expires_at` is the absolute
//! end, sliding expiry keeps an active session alive whatever the touch interval, a session
//! refused as expired stays refused, and `expires_in` never promises more than `exp`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn seconds_between(from: &Value, to: &Value) -> i64 {
    let parse = |value: &Value| {
        time::OffsetDateTime::parse(value.as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap()
    };
    (parse(to) - parse(from)).whole_seconds()
}

#[tokio::test]
async fn api_precise_rules_expires_at_is_the_absolute_end_and_idle_expires_at_the_idle_one() {
    let server =
        Server::with(&[("LATCHKEY_SESSION_IDLE_TIMEOUT", "1h"), ("LATCHKEY_SESSION_ABSOLUTE_TIMEOUT", "2d")]).await;
    let user = server.sign_up("alice").await;
    let response = server.post_json("/v1/session", &json!({ "username": "alice", "password": PASSWORD })).await;
    let cookie = cookie_pair(response.headers(), "latchkey_session").unwrap();
    let body: Value = response.json().await.unwrap();
    let lifetime = seconds_between(&user["created_at"], &body["session"]["expires_at"]);
    assert!((2 * 86_400 - 5..=2 * 86_400 + 5).contains(&lifetime), "expires_at is {lifetime} s after login");
    let idle = seconds_between(&user["created_at"], &body["session"]["idle_expires_at"]);
    assert!((3_595..=3_600 + 60).contains(&idle), "idle_expires_at is {idle} s after login");
    let me: Value = server.me_cookie(&cookie).await.json().await.unwrap();
    assert_eq!(me["session"]["expires_at"], body["session"]["expires_at"]);
    let list = server.sessions_by_cookie(&cookie).await;
    assert_eq!(list[0]["expires_at"], body["session"]["expires_at"]);
}

/// Uses a cookie session every `every` for `for_how_long`; every use must succeed.
async fn keep_using(server: &Server, cookie: &str, every: Duration, for_how_long: Duration) {
    let started = Instant::now();
    while started.elapsed() < for_how_long {
        let response = server.client.get(server.url("/v1/verify")).header("cookie", cookie).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "an active session was refused after {:?}", started.elapsed());
        tokio::time::sleep(every).await;
    }
}

#[tokio::test]
async fn api_precise_rules_an_active_session_stays_alive_and_a_refused_one_stays_refused_with_the_cache_on_and_off() {
    for cache in ["30s", "0s"] {
        // A 3 s idle timeout under the default 60 s touch interval.
        let server =
            Server::with(&[("LATCHKEY_SESSION_IDLE_TIMEOUT", "3s"), ("LATCHKEY_SESSION_CACHE_TTL", cache)]).await;
        server.sign_up("alice").await;
        let web = server.cookie_login("alice").await;
        keep_using(&server, &web.cookie, Duration::from_millis(500), Duration::from_secs(8)).await;
        // Uses just under the idle timeout minus one second apart.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(1_900)).await;
            let response = server.client.get(server.url("/v1/verify")).header("cookie", &web.cookie).send().await;
            assert_eq!(response.unwrap().status(), StatusCode::OK, "cache {cache}: a use 1.9 s after the last");
        }
        // Then left alone past its idle timeout: it has ended, and stays ended however it is
        // tried afterwards.
        tokio::time::sleep(Duration::from_millis(3_300)).await;
        for _ in 0..8 {
            let response = server.client.get(server.url("/v1/verify")).header("cookie", &web.cookie).send().await;
            assert_eq!(
                response.unwrap().status(),
                StatusCode::UNAUTHORIZED,
                "cache {cache}: a refused session came back"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[tokio::test]
async fn api_precise_rules_expires_in_never_exceeds_exp_minus_the_moment_of_issue() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    for _ in 0..6 {
        let sent = time::OffsetDateTime::now_utc();
        let response = server.password_grant("/v1/token", "alice", &[]).await;
        let body: Value = response.json().await.unwrap();
        let exp = jwt_part(body["access_token"].as_str().unwrap(), 1)["exp"].as_i64().unwrap();
        let expires_in = body["expires_in"].as_i64().unwrap();
        let left_at_send = (exp as f64) - (sent.unix_timestamp_nanos() as f64 / 1e9);
        assert!(expires_in as f64 <= left_at_send, "expires_in {expires_in} but exp is {left_at_send:.3} s away");
        assert!(expires_in as f64 > left_at_send - 2.0, "expires_in {expires_in} is far below {left_at_send:.3}");
        // Spread the issue times over the second.
        tokio::time::sleep(Duration::from_millis(170)).await;
    }
}
