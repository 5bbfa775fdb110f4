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

#[tokio::test]
async fn api_precise_rules_usernames_with_invisible_bidi_filler_tag_or_symbol_characters_are_refused() {
    let server = Server::start().await;
    let tricks = [
        ("alice\u{200B}", "zero-width space"),
        ("\u{FEFF}alice", "byte-order mark"),
        ("al\u{00AD}ice", "soft hyphen"),
        ("\u{202E}ecila", "right-to-left override"),
        ("ali\u{2067}ce", "right-to-left isolate"),
        ("\u{3164}alice", "Hangul filler"),
        ("\u{FFA0}alice", "halfwidth Hangul filler"),
        ("alice\u{E0061}\u{E007F}", "tag characters"),
        ("alice\u{2665}", "a symbol"),
        ("alice\u{1F600}", "an emoji"),
        ("al\u{200D}ice", "zero-width joiner between Latin letters"),
    ];
    for (username, what) in tricks {
        let response = server.post_json("/v1/accounts", &json!({ "username": username, "password": PASSWORD })).await;
        let body = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
        assert_eq!(body["field"], "username", "{what}");
    }
    for fine in ["straße", "日本語", "ελένη", "o'brien.dev"] {
        let response = server.post_json("/v1/accounts", &json!({ "username": fine, "password": PASSWORD })).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{fine}");
    }
}

#[tokio::test]
async fn api_precise_rules_a_name_that_looks_like_an_existing_one_is_taken() {
    let server = Server::start().await;
    server.sign_up("paypal").await;
    server.sign_up("admin1").await;
    // Cyrillic а, the Cyrillic palochka, and the digit/letter pairs UTS #39 calls confusable.
    for look_alike in ["p\u{0430}ypal", "payp\u{0430}l", "adminl", "admin\u{04CF}"] {
        let response = server.post_json("/v1/accounts", &json!({ "username": look_alike, "password": PASSWORD })).await;
        expect_problem(response, StatusCode::CONFLICT, "username_taken").await;
    }
}

#[tokio::test]
async fn existing_accounts_that_now_collide_are_listed_by_a_command_and_never_changed() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![("LATCHKEY_DATA_DIR".to_owned(), dir.path().display().to_string())];
    let run = |args: &[&str], stdin: &str| {
        use std::io::Write as _;
        let mut child = command(args, &env)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    run(&["user", "add", "alice"], PASSWORD);
    assert!(run(&["user", "collisions"], "").contains("no colliding or invalid usernames"));
    // Accounts made before these rules, written as an older latchkey would have.
    let legacy = ["\u{0430}lice", "alice\u{200B}"];
    let insert = r#"
import sqlite3, sys, uuid
db = sqlite3.connect(sys.argv[1])
hash, created = db.execute("SELECT password_hash, created_at FROM accounts WHERE username = 'alice'").fetchone()
for offset, name in enumerate(sys.argv[2:], 1):
    db.execute("INSERT INTO accounts (id, username, password_hash, created_at, disabled) VALUES (?, ?, ?, ?, 0)",
               (str(uuid.uuid4()), name, hash, created + offset))
db.commit()
"#;
    let database = dir.path().join("latchkey.db");
    let status = std::process::Command::new("python3")
        .args(["-c", insert, database.to_str().unwrap(), legacy[0], legacy[1]])
        .status()
        .unwrap();
    assert!(status.success());
    let report = run(&["user", "collisions"], "");
    assert!(
        report.contains("look alike") && report.contains("\"alice\"") && report.contains("\"\u{0430}lice\""),
        "{report}"
    );
    assert!(report.contains("not an identifier") && report.contains("U+200B"), "{report}");
    let list = run(&["user", "list"], "");
    for name in ["alice", legacy[0], legacy[1]] {
        assert!(list.lines().any(|line| line.split_whitespace().nth(1) == Some(name)), "{name:?} changed: {list}");
    }
}
