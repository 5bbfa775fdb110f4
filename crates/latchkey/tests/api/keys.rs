use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

async fn jwks(server: &Server) -> Value {
    let response = server.client.get(server.url("/.well-known/jwks.json")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cache = response.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(cache.contains("max-age="), "{cache}");
    response.json().await.unwrap()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"].as_array().unwrap().iter().map(|key| key["kid"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn the_jwks_publishes_the_signing_key_and_discovery_points_to_it() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let tokens = server.token_login("alice").await;
    let set = jwks(&server).await;
    let key = &set["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"], jwt_part(&tokens.access, 0)["kid"]);
    assert!(key.get("d").is_none(), "never a private part");

    let discovery: Value =
        server.client.get(server.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["issuer"], ORIGIN);
    assert_eq!(discovery["jwks_uri"], format!("{ORIGIN}/.well-known/jwks.json"));
    assert_eq!(discovery["token_endpoint"], format!("{ORIGIN}/v1/token"));
    assert_eq!(discovery["revocation_endpoint"], format!("{ORIGIN}/v1/token/revoke"));
    assert_eq!(
        discovery["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token", "password"])
    );
    assert_eq!(discovery["access_token_signing_alg_values_supported"], serde_json::json!(["EdDSA"]));
    // Apps' ID tokens: RS256 first (OIDC Core §15.1), whatever signs access tokens.
    assert_eq!(discovery["id_token_signing_alg_values_supported"], serde_json::json!(["RS256", "ES256", "EdDSA"]));
    assert!(discovery["token_endpoint_auth_methods_supported"].is_array());
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_kid() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let before = server.token_login("alice").await;
    let old_kid = jwt_part(&before.access, 0)["kid"].as_str().unwrap().to_owned();

    let (ok, out, err) = server.cli(&["keys", "rotate", "--now"], "");
    assert!(ok, "{out}{err}");
    tokio::time::sleep(Duration::from_millis(600)).await;

    let after = server.token_login("alice").await;
    let new_kid = jwt_part(&after.access, 0)["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(server.me_bearer(&before.access).await.status(), StatusCode::OK, "old tokens keep verifying");
    assert_eq!(server.me_bearer(&after.access).await.status(), StatusCode::OK);
    let published = kids(&jwks(&server).await);
    assert!(published.contains(&old_kid) && published.contains(&new_kid), "{published:?}");

    let (ok, listing, _) = server.cli(&["keys", "list"], "");
    assert!(ok);
    assert!(listing.contains(&new_kid) && listing.contains("signing"), "{listing}");
    assert!(listing.contains(&old_kid) && listing.contains("verifying"), "{listing}");
}

/// The status `keys list` gives the key with `kid`.
fn listed_status(server: &Server, kid: &str) -> String {
    let (ok, listing, err) = server.cli(&["keys", "list"], "");
    assert!(ok, "{listing}{err}");
    let line = listing.lines().find(|line| line.starts_with(kid)).unwrap_or_else(|| panic!("{kid} in {listing}"));
    line.split_whitespace().last().unwrap().to_owned()
}

#[tokio::test]
async fn keys_list_calls_a_retired_key_verifying_for_as_long_as_its_tokens_are_accepted_leeway_included() {
    let server = Server::with(&[("LATCHKEY_ACCESS_TOKEN_TTL", "2s")]).await;
    server.sign_up("alice").await;
    let before = server.token_login("alice").await;
    let old_kid = jwt_part(&before.access, 0)["kid"].as_str().unwrap().to_owned();
    let (ok, out, err) = server.cli(&["keys", "rotate", "--now"], "");
    assert!(ok, "{out}{err}");
    let retired = std::time::Instant::now();
    // Past the tokens' lifetime, inside the 2 s leeway: the key's tokens can still be accepted,
    // so the key is still published and still listed as verifying.
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    assert_eq!(listed_status(&server, &old_kid), "verifying");
    assert!(retired.elapsed() < Duration::from_millis(3_800), "the check ran too late to mean anything");
    assert!(kids(&jwks(&server).await).contains(&old_kid), "a key listed as verifying is published");
    tokio::time::sleep(Duration::from_millis(4_000).saturating_sub(retired.elapsed())).await;
    assert_eq!(listed_status(&server, &old_kid), "expired");
}

#[tokio::test]
async fn every_configured_algorithm_issues_tokens_it_verifies_and_hs256_is_never_published() {
    for (alg, kty) in [("ES256", Some("EC")), ("RS256", Some("RSA")), ("HS256", None)] {
        let server = Server::with(&[("LATCHKEY_SIGNING_ALG", alg)]).await;
        server.sign_up("alice").await;
        let tokens = server.token_login("alice").await;
        assert_eq!(jwt_part(&tokens.access, 0)["alg"], alg);
        assert_eq!(server.me_bearer(&tokens.access).await.status(), StatusCode::OK, "{alg}");
        let set = jwks(&server).await;
        match kty {
            Some(kty) => {
                assert_eq!(set["keys"][0]["kty"], kty, "{alg}");
                assert_eq!(set["keys"][0]["alg"], alg);
            }
            None => assert_eq!(set["keys"], serde_json::json!([]), "HS256 secrets are never published"),
        }
    }
}

#[tokio::test]
async fn a_token_verifies_with_pyjwt_using_only_the_published_jwks() {
    for alg in ["EdDSA", "ES256", "RS256"] {
        let server = Server::with(&[("LATCHKEY_SIGNING_ALG", alg)]).await;
        server.sign_up("alice").await;
        let tokens = server.token_login("alice").await;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/verify_with_pyjwt.py");
        let jwks_url = server.url("/.well-known/jwks.json");
        let run = |token: &str| {
            Command::new("python3")
                .args([script, &jwks_url, token, ORIGIN, ORIGIN])
                .output()
                .expect("python3 (PyJWT is installed by scripts/test)")
        };
        let output = run(&tokens.access);
        assert!(output.status.success(), "{alg}: {}", String::from_utf8_lossy(&output.stderr));
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), tokens.session_id);
        // Tampering with the claims must make the independent verifier refuse.
        let mut parts: Vec<String> = tokens.access.split('.').map(str::to_owned).collect();
        let claims = jwt_part(&tokens.access, 1).to_string().replace("alice", "mallory");
        use base64::Engine as _;
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims);
        let tampered = run(&parts.join("."));
        assert!(!tampered.status.success(), "{alg}: a tampered token verified");
    }
}

#[tokio::test]
async fn an_operator_key_file_signs_and_is_published_under_its_thumbprint() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("signing.pem");
    let status =
        Command::new("openssl").args(["genpkey", "-algorithm", "ed25519", "-out"]).arg(&pem).status().expect("openssl");
    assert!(status.success());
    let server = Server::with(&[("LATCHKEY_SIGNING_KEY_FILE", pem.to_str().unwrap())]).await;
    server.sign_up("alice").await;
    let tokens = server.token_login("alice").await;
    let kid = jwt_part(&tokens.access, 0)["kid"].as_str().unwrap().to_owned();
    assert_eq!(kid.len(), 43, "an RFC 7638 SHA-256 thumbprint");
    assert!(kids(&jwks(&server).await).contains(&kid));
    assert_eq!(server.me_bearer(&tokens.access).await.status(), StatusCode::OK);

    // A second instance given the same file agrees on the kid.
    let twin = Server::with(&[("LATCHKEY_SIGNING_KEY_FILE", pem.to_str().unwrap())]).await;
    assert!(kids(&jwks(&twin).await).contains(&kid));
}

#[tokio::test]
async fn an_hs256_key_file_shorter_than_32_bytes_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("hs256.key");
    std::fs::write(&secret, b"too short").unwrap();
    let env = vec![
        ("LATCHKEY_DATA_DIR".to_owned(), dir.path().display().to_string()),
        ("LATCHKEY_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("LATCHKEY_SIGNING_ALG".to_owned(), "HS256".to_owned()),
        ("LATCHKEY_SIGNING_KEY_FILE".to_owned(), secret.display().to_string()),
    ];
    let output = output_within(command(&["serve"], &env), Duration::from_secs(20));
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("at least 32 bytes"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_generated_key_is_replaced_on_schedule_and_its_successor_is_published_before_it_signs() {
    // 8 s tokens: the JWKS may be cached for 2 s, so the next key is published 2 s ahead.
    let server = Server::with(&[("LATCHKEY_KEY_ROTATION_INTERVAL", "2s"), ("LATCHKEY_ACCESS_TOKEN_TTL", "8s")]).await;
    server.sign_up("alice").await;
    let first = jwt_part(&server.token_login("alice").await.access, 0)["kid"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    let (mut published_at, mut signing_at) = (None, None);
    while signing_at.is_none() && started.elapsed() < Duration::from_secs(15) {
        let kids: Vec<String> = jwks(&server).await["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["kid"].as_str().unwrap().to_owned())
            .collect();
        if published_at.is_none() && kids.iter().any(|kid| *kid != first) {
            published_at = Some(started.elapsed());
        }
        let kid = jwt_part(&server.token_login("alice").await.access, 0)["kid"].as_str().unwrap().to_owned();
        if kid != first {
            assert!(published_at.is_some(), "a key signed before the JWKS published it");
            signing_at = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (published_at, signing_at) = (published_at.expect("a next key was published"), signing_at.expect("it signs"));
    assert!(
        signing_at >= published_at + Duration::from_millis(1_500),
        "published {published_at:?}, signing {signing_at:?}"
    );
    let (ok, audit, _) = server.cli(&["audit", "--kind", "key_rotated", "--json"], "");
    assert!(ok && audit.contains("scheduled"), "{audit}");
}

#[tokio::test]
async fn a_rotation_by_hand_is_published_one_jwks_max_age_before_it_signs_unless_it_is_an_emergency() {
    // 12 s tokens: the JWKS may be cached for 3 s, so the new key must not sign for 3 s.
    let server = Server::with(&[("LATCHKEY_ACCESS_TOKEN_TTL", "12s")]).await;
    server.sign_up("alice").await;
    let first = jwt_part(&server.token_login("alice").await.access, 0)["kid"].as_str().unwrap().to_owned();
    let (ok, out, err) = server.cli(&["keys", "rotate"], "");
    assert!(ok && out.contains("published"), "{out}{err}");
    let rotated = std::time::Instant::now();
    let (again, _, refusal) = server.cli(&["keys", "rotate"], "");
    assert!(!again && refusal.contains("already published"), "a second rotation waits for the first: {refusal}");
    let mut published = false;
    let signing_after = loop {
        published |= kids(&jwks(&server).await).iter().any(|kid| *kid != first);
        let kid = jwt_part(&server.token_login("alice").await.access, 0)["kid"].as_str().unwrap().to_owned();
        if kid != first {
            break rotated.elapsed();
        }
        assert!(rotated.elapsed() < Duration::from_secs(10), "the new key never signed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(published, "the JWKS showed the new key before it signed");
    assert!(signing_after >= Duration::from_millis(2_500), "signed {signing_after:?} after publication");

    let second = jwt_part(&server.token_login("alice").await.access, 0)["kid"].as_str().unwrap().to_owned();
    let (ok, out, err) = server.cli(&["keys", "rotate", "--now"], "");
    assert!(ok && out.contains("signs now"), "{out}{err}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let third = jwt_part(&server.token_login("alice").await.access, 0)["kid"].as_str().unwrap().to_owned();
    assert_ne!(third, second, "an emergency rotation signs at once (after the server's next sync)");
    let (ok, audit, _) = server.cli(&["audit", "--kind", "key_rotated", "--json"], "");
    assert!(ok && audit.contains("at once") && audit.contains("scheduled"), "{audit}");
}

/// Every stored key (signing keys and the server secret), as the store holds them.
async fn stored_keys(server: &Server) -> Vec<latchkey_core::store::StoredKey> {
    server.sql_store().await.stores().keys.list().await.unwrap()
}

#[tokio::test]
async fn with_a_master_key_no_private_key_or_server_secret_is_stored_in_the_clear() {
    let dir = tempfile::tempdir().unwrap();
    let master = dir.path().join("master.key");
    std::fs::write(&master, [42u8; 48]).unwrap();
    let server = Server::with(&[("LATCHKEY_MASTER_KEY_FILE", master.to_str().unwrap())]).await;
    server.sign_up("alice").await;
    let tokens = server.token_login("alice").await;
    assert!(server.cli(&["keys", "rotate", "--now"], "").0, "the CLI seals with the same master key");
    let stored = stored_keys(&server).await;
    assert!(stored.len() >= 3, "server secret and two signing keys");
    for key in &stored {
        assert!(key.material.starts_with("enc:v1:"), "{} stored in the clear", key.kid);
        assert!(!key.material.contains("PRIVATE KEY"));
    }
    // The server picks the CLI's rotation up at its next sync, opening the sealed new key.
    let old_kid = jwt_part(&tokens.access, 0)["kid"].clone();
    let started = std::time::Instant::now();
    while jwt_part(&server.token_login("alice").await.access, 0)["kid"] == old_kid {
        assert!(started.elapsed() < Duration::from_secs(5), "the sealed new key never signed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.me_bearer(&tokens.access).await.status(), StatusCode::OK, "old tokens verify");
    assert_eq!(server.refresh(&tokens.refresh).await.status(), StatusCode::OK, "the server secret opens");
}

#[tokio::test]
async fn a_master_key_added_later_seals_the_keys_already_stored_and_a_missing_or_wrong_one_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let master = dir.path().join("master.key");
    std::fs::write(&master, [7u8; 32]).unwrap();
    let server = Server::start().await;
    server.sign_up("alice").await;
    let tokens = server.token_login("alice").await;
    assert!(stored_keys(&server).await.iter().all(|key| !key.material.starts_with("enc:")));
    // The same store, now with a master key: what was in the clear is sealed at start.
    let (ok, _, stderr) = server.cli_with(&["keys", "list"], &[("LATCHKEY_MASTER_KEY_FILE", master.to_str().unwrap())]);
    assert!(ok, "{stderr}");
    assert!(stored_keys(&server).await.iter().all(|key| key.material.starts_with("enc:v1:")));
    assert_eq!(server.me_bearer(&tokens.access).await.status(), StatusCode::OK);
    // A server without the master key (or with another one) cannot use the sealed keys.
    let (ok, _, stderr) = server.cli_with(&["keys", "list"], &[]);
    assert!(!ok && stderr.contains("LATCHKEY_MASTER_KEY_FILE"), "{stderr}");
    let other = dir.path().join("other.key");
    std::fs::write(&other, [8u8; 32]).unwrap();
    let (ok, _, stderr) = server.cli_with(&["keys", "list"], &[("LATCHKEY_MASTER_KEY_FILE", other.to_str().unwrap())]);
    assert!(!ok && stderr.contains("master key does not open"), "{stderr}");
    let short = dir.path().join("short.key");
    std::fs::write(&short, [1u8; 16]).unwrap();
    let (ok, _, stderr) = server.cli_with(&["keys", "list"], &[("LATCHKEY_MASTER_KEY_FILE", short.to_str().unwrap())]);
    assert!(!ok && stderr.contains("at least 32 bytes"), "{stderr}");
}
