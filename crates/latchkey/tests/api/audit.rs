//! The audit trail (OWASP ASVS 5.0 V16: security logging): every security event is recorded,
//! `latchkey audit` lists and filters them, and no record holds a secret.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// `latchkey audit ARGS --json` against the server's store: the events, newest first.
fn audit(server: &Server, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "--json"];
    all.extend_from_slice(args);
    let (ok, stdout, stderr) = server.cli(&all, "");
    assert!(ok, "latchkey audit failed: {stderr}");
    stdout.lines().map(|line| serde_json::from_str(line).expect("one JSON object per line")).collect()
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|event| event["event"] == kind).collect()
}

#[tokio::test]
async fn asvs_16_every_security_event_is_recorded_with_who_and_why_and_never_a_secret() {
    let server = Server::start().await;
    let alice = server.sign_up("alice").await;
    let cookie = server.cookie_login("alice").await;
    let tokens = server.token_login("alice").await;
    let rotated = server.refresh(&tokens.refresh).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated = Tokens::from(rotated.json::<Value>().await.unwrap());
    // Only the token retired by the latest rotation has a grace window: the one before it is
    // reuse at once.
    let again = server.refresh(&rotated.refresh).await;
    assert_eq!(again.status(), StatusCode::OK);
    let reuse = server.refresh(&tokens.refresh).await;
    expect_oauth_error(reuse, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let wrong = server.post_json("/v1/session", &json!({ "username": "alice", "password": "not my password" })).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let unknown_name = "correct-horse-typed-as-name";
    let unknown = server.post_json("/v1/session", &json!({ "username": unknown_name, "password": PASSWORD })).await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let device = server.token_login("alice").await;
    let revoke_one = server
        .client
        .delete(server.url(&format!("/v1/sessions/{}", device.session_id)))
        .header("cookie", &cookie.cookie)
        .header("x-csrf-token", &cookie.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke_one.status(), StatusCode::NO_CONTENT);
    let _other_device = server.token_login("alice").await;
    let change = server
        .client
        .post(server.url("/v1/account/password"))
        .header("cookie", &cookie.cookie)
        .header("x-csrf-token", &cookie.csrf)
        .json(&json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase" }))
        .send()
        .await
        .unwrap();
    assert_eq!(change.status(), StatusCode::NO_CONTENT);
    let logout = server
        .client
        .post(server.url("/v1/logout"))
        .header("cookie", &cookie.cookie)
        .header("x-csrf-token", &cookie.csrf)
        .json(&json!({ "scope": "all" }))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    for _ in 0..5 {
        server.post_json("/v1/session", &json!({ "username": "alice", "password": "still not it" })).await;
    }
    assert!(server.cli(&["keys", "rotate"], "").0);
    assert!(server.cli(&["user", "disable", "alice"], "").0);

    let events = audit(&server, &["--limit", "500"]);
    let id = alice["id"].as_str().unwrap();
    let sign_up = of_kind(&events, "sign_up");
    assert_eq!(sign_up.len(), 1);
    assert_eq!((sign_up[0]["user_id"].as_str(), sign_up[0]["username"].as_str()), (Some(id), Some("alice")));
    let logins = of_kind(&events, "login_succeeded");
    let details: Vec<&str> = logins.iter().filter_map(|event| event["detail"].as_str()).collect();
    assert!(details.contains(&"cookie") && details.contains(&"token"), "{details:?}");
    assert!(logins.iter().all(|event| event["ip"] == "127.0.0.1" && event["session_id"].is_string()));
    let failed = of_kind(&events, "login_failed");
    let wrong_password = failed.iter().find(|event| event["detail"] == "wrong_password").expect("wrong password");
    assert_eq!(wrong_password["username"], "alice");
    let unknown_user = failed.iter().find(|event| event["detail"] == "unknown_user").expect("unknown user");
    assert!(unknown_user["username"].is_null() && unknown_user["user_id"].is_null(), "a typed name is no record");
    assert!(!of_kind(&events, "throttled").is_empty(), "the fifth failure in a row starts the waits");
    assert_eq!(of_kind(&events, "refresh_reuse_detected").len(), 1);
    assert_eq!(of_kind(&events, "password_changed").len(), 1);
    assert_eq!(of_kind(&events, "logout")[0]["detail"], "all");
    assert_eq!(of_kind(&events, "user_disabled")[0]["username"], "alice");
    assert!(of_kind(&events, "key_rotated")[0]["detail"].as_str().is_some_and(|d| d.starts_with("EdDSA ")));
    let causes: Vec<&str> =
        of_kind(&events, "session_revoked").iter().filter_map(|event| event["detail"].as_str()).collect();
    for cause in ["refresh_reuse", "device_revoked", "password_changed", "logout"] {
        assert!(causes.contains(&cause), "no session_revoked for {cause}: {causes:?}");
    }
    let everything = format!("{events:?}\n{}", server.logs());
    for secret in [
        PASSWORD,
        "not my password",
        "a brand new passphrase",
        unknown_name,
        tokens.refresh.as_str(),
        tokens.access.as_str(),
        cookie.cookie.split_once('=').unwrap().1,
        cookie.csrf.as_str(),
    ] {
        assert!(!everything.contains(secret), "a secret reached the audit trail or the log");
    }
    assert!(server.logs().contains("latchkey::audit"), "events go to the log too");
}

#[tokio::test]
async fn latchkey_audit_filters_by_user_kind_and_time_and_refuses_bad_filters() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    server.sign_up("bob").await;
    server.cookie_login("alice").await;
    server.cookie_login("bob").await;
    server.post_json("/v1/session", &json!({ "username": "bob", "password": "wrong wrong wrong" })).await;

    let bobs = audit(&server, &["--user", "bob"]);
    assert_eq!(bobs.len(), 3, "{bobs:?}");
    assert!(bobs.iter().all(|event| event["username"] == "bob"));
    assert_eq!(bobs[0]["event"], "login_failed", "newest first");
    let failures = audit(&server, &["--kind", "login_failed"]);
    assert_eq!(failures.len(), 1);
    assert_eq!(audit(&server, &["--since", "1h"]).len(), 5);
    assert!(audit(&server, &["--until", "1h"]).is_empty());
    assert!(audit(&server, &["--since", "2000-01-01T00:00:00Z", "--until", "2001-01-01T00:00:00Z"]).is_empty());
    assert_eq!(audit(&server, &["--limit", "2"]).len(), 2);

    let (ok, stdout, _) = server.cli(&["audit", "--kind", "login_succeeded"], "");
    assert!(ok);
    assert!(stdout.lines().next().is_some_and(|header| header.starts_with("at")), "a table by default");
    assert_eq!(stdout.lines().count(), 3);
    for (args, complaint) in [
        (vec!["audit", "--kind", "nonsense"], "--kind"),
        (vec!["audit", "--since", "last tuesday"], "--since"),
        (vec!["audit", "--user", "nobody"], "no user"),
    ] {
        let (ok, _, stderr) = server.cli(&args, "");
        assert!(!ok && stderr.contains(complaint), "{args:?}: {stderr}");
    }
}
