//! The embeddable verifier (`latchkey-verifier`) inside the example service
//! (`examples/protected-service`), against the real server.

use std::time::{Duration, Instant};

use latchkey_verifier::{Verifier, VerifierConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const SERVICE_TOKEN: &str = "feed-secret-0123456789-abcdefghijklmnop";

/// The example service on a random port, verifying tokens of `server`.
async fn example_service(server: &Server) -> String {
    let config = VerifierConfig::new(ORIGIN).with_endpoint(&server.base).with_service_token(SERVICE_TOKEN);
    let verifier = Verifier::connect(config).await.expect("the verifier connects");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, protected_service::app(verifier)).await });
    format!("http://{address}")
}

async fn hello(server: &Server, service: &str, access: &str) -> StatusCode {
    server.client.get(format!("{service}/hello")).bearer_auth(access).send().await.unwrap().status()
}

#[tokio::test]
async fn the_example_service_verifies_tokens_and_learns_revocations_from_the_feed() {
    let server = Server::with(&[("LATCHKEY_SERVICE_TOKEN", SERVICE_TOKEN)]).await;
    server.sign_up("alice").await;
    // Revoked before the service started: the feed's initial list carries it.
    let early = server.token_login("alice").await;
    server.client.post(server.url("/v1/logout")).bearer_auth(&early.access).send().await.unwrap();
    let service = example_service(&server).await;

    let tokens = server.token_login("alice").await;
    let response = server.client.get(format!("{service}/hello")).bearer_auth(&tokens.access).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["hello"], "alice");
    assert_eq!(body["session_id"], tokens.session_id.as_str());
    let none = server.client.get(format!("{service}/hello")).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    assert_eq!(hello(&server, &service, "garbage.token.here").await, StatusCode::UNAUTHORIZED);

    let deadline = Instant::now() + Duration::from_secs(3);
    while hello(&server, &service, &early.access).await != StatusCode::UNAUTHORIZED {
        assert!(Instant::now() < deadline, "a session revoked before the service started is still accepted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Revocations after start: measured from the revoking response to the service's refusal.
    let mut delays = Vec::new();
    for _ in 0..50 {
        let session = server.token_login("alice").await;
        assert_eq!(hello(&server, &service, &session.access).await, StatusCode::OK);
        let logout = server.client.post(server.url("/v1/logout")).bearer_auth(&session.access).send().await.unwrap();
        assert_eq!(logout.status(), StatusCode::NO_CONTENT);
        let revoked_at = Instant::now();
        while hello(&server, &service, &session.access).await != StatusCode::UNAUTHORIZED {
            assert!(
                revoked_at.elapsed() < Duration::from_secs(3),
                "the service still accepts a revoked token after 3 s"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        delays.push(revoked_at.elapsed());
    }
    delays.sort();
    eprintln!(
        "embedded verifier: revocation reached the service in p50 {:.1} ms, p99 {:.1} ms over {} revocations",
        delays[delays.len() / 2].as_secs_f64() * 1000.0,
        delays[(delays.len() * 99) / 100].as_secs_f64() * 1000.0,
        delays.len()
    );
}

#[tokio::test]
async fn the_example_service_follows_a_key_rotation_and_keeps_verifying_while_latchkey_is_down() {
    let server = Server::with(&[("LATCHKEY_SERVICE_TOKEN", SERVICE_TOKEN)]).await;
    server.sign_up("alice").await;
    let service = example_service(&server).await;
    let before = server.token_login("alice").await;
    assert_eq!(hello(&server, &service, &before.access).await, StatusCode::OK);

    let (ok, out, err) = server.cli(&["keys", "rotate", "--now"], "");
    assert!(ok, "{out}{err}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = server.token_login("alice").await;
    assert_ne!(jwt_part(&after.access, 0)["kid"], jwt_part(&before.access, 0)["kid"]);
    assert_eq!(hello(&server, &service, &after.access).await, StatusCode::OK, "an unknown kid refetches the JWKS");
    assert_eq!(hello(&server, &service, &before.access).await, StatusCode::OK);

    drop(server);
    let client = reqwest::Client::new();
    let status = client.get(format!("{service}/hello")).bearer_auth(&after.access).send().await.unwrap().status();
    assert_eq!(status, StatusCode::OK, "valid tokens keep verifying while latchkey is down");
}

#[tokio::test]
async fn the_example_service_keeps_its_cart_in_the_callers_latchkey_session() {
    let server = Server::with(&[("LATCHKEY_SERVICE_TOKEN", SERVICE_TOKEN)]).await;
    server.sign_up("alice").await;
    let service = example_service(&server).await;
    let tokens = server.token_login("alice").await;
    let client = &server.client;
    let set = |item: &str, quantity: u32, token: &str| {
        client
            .put(format!("{service}/cart/items/{item}"))
            .bearer_auth(token)
            .json(&json!({ "quantity": quantity }))
            .send()
    };
    // Two items set at once (two tabs, say) both land.
    let (apple, pear) = tokio::join!(set("apple", 2, &tokens.access), set("pear", 1, &tokens.access));
    assert_eq!(apple.unwrap().status(), StatusCode::OK);
    assert_eq!(pear.unwrap().status(), StatusCode::OK);
    let removed: Value = client
        .delete(format!("{service}/cart/items/pear"))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(removed["items"], json!({ "apple": 2 }));
    // The service's cart is the session's data in latchkey, under the same version.
    let cart: Value =
        client.get(format!("{service}/cart")).bearer_auth(&tokens.access).send().await.unwrap().json().await.unwrap();
    let data = server.get_with("/v1/session/data", &Credential::Bearer(tokens.access.clone())).await;
    assert_eq!(data.headers()["etag"].to_str().unwrap(), cart["version"]);
    assert_eq!(data.json::<Value>().await.unwrap(), json!({ "cart": { "apple": 2 } }));
    // Another session of the same user has its own cart; a forged token none at all.
    let other = server.token_login("alice").await;
    let empty: Value =
        client.get(format!("{service}/cart")).bearer_auth(&other.access).send().await.unwrap().json().await.unwrap();
    assert_eq!(empty["items"], json!({}));
    let forged = client.get(format!("{service}/cart")).bearer_auth("not.a.token").send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    // After logout the cart ends with the session: the service answers 401 with a challenge.
    let logout = client.post(server.url("/v1/logout")).bearer_auth(&tokens.access).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let after = client.get(format!("{service}/cart")).bearer_auth(&tokens.access).send().await.unwrap();
        if after.status() == StatusCode::UNAUTHORIZED {
            assert!(after.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
            break;
        }
        assert!(Instant::now() < deadline, "the cart outlived its session: {}", after.status());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let write = set("fig", 1, &tokens.access).await.unwrap();
    assert_eq!(write.status(), StatusCode::UNAUTHORIZED);
}
