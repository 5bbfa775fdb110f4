//! API.md, "Single sign-on for other apps", clients: `latchkey client add|list|remove|rotate-secret`
//! against the server's own store, with the secret shown once and kept only as a hash.

use serde_json::Value;

use crate::helpers::*;

fn json_of(stdout: &str) -> Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|err| panic!("not JSON ({err}): {stdout}"))
}

#[tokio::test]
async fn clients_are_registered_listed_rotated_and_removed_and_secrets_are_shown_once() {
    let server = Server::start().await;
    let (ok, added, why) = server.cli(
        &[
            "client",
            "add",
            "Notes",
            "--redirect-uri",
            "https://notes.example/callback",
            "--redirect-uri",
            "http://127.0.0.1:3000/callback",
            "--post-logout-redirect-uri",
            "https://notes.example/bye",
            "--backchannel-logout-uri",
            "https://notes.example/backchannel",
            "--id-token-alg",
            "ES256",
            "--json",
        ],
        "",
    );
    assert!(ok, "{why}");
    let added = json_of(&added);
    let id = added["client_id"].as_str().unwrap().to_owned();
    let secret = added["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43, "a 256-bit secret, base64url");
    let (ok, public, why) = server.cli(
        &[
            "client",
            "add",
            "Board",
            "--public",
            "--skip-consent",
            "--redirect-uri",
            "https://board.example/cb",
            "--json",
        ],
        "",
    );
    assert!(ok, "{why}");
    let public = json_of(&public);
    assert!(public.get("client_secret").is_none(), "a public client has no secret: {public}");
    let public_id = public["client_id"].as_str().unwrap().to_owned();

    let (ok, listed, why) = server.cli(&["client", "list", "--json"], "");
    assert!(ok, "{why}");
    assert!(!listed.contains(&secret), "the list shows a secret");
    let listed = json_of(&listed);
    let clients = listed.as_array().unwrap();
    assert_eq!(clients.len(), 2);
    let notes = &clients[0];
    assert_eq!(notes["client_id"], id.as_str());
    assert_eq!(notes["name"], "Notes");
    assert_eq!(notes["public"], false);
    assert_eq!(
        notes["redirect_uris"],
        serde_json::json!(["https://notes.example/callback", "http://127.0.0.1:3000/callback"])
    );
    assert_eq!(notes["post_logout_redirect_uris"], serde_json::json!(["https://notes.example/bye"]));
    assert_eq!(notes["backchannel_logout_uri"], "https://notes.example/backchannel");
    assert_eq!(notes["id_token_alg"], "ES256");
    assert_eq!(notes["skip_consent"], false);
    assert_eq!(clients[1]["public"], true);
    assert_eq!(clients[1]["skip_consent"], true);
    assert_eq!(clients[1]["id_token_alg"], "RS256", "RS256 unless another is registered");

    // The secret is kept only as its hash: it is nowhere in the database file.
    let store = std::fs::read(server._data_dir.path().join("latchkey.db")).unwrap_or_default();
    let wal = std::fs::read(server._data_dir.path().join("latchkey.db-wal")).unwrap_or_default();
    let needle = secret.as_bytes();
    for bytes in [&store, &wal] {
        assert!(!bytes.windows(needle.len()).any(|window| window == needle), "the secret is stored in plain form");
    }

    let (ok, rotated, why) = server.cli(&["client", "rotate-secret", &id, "--json"], "");
    assert!(ok, "{why}");
    let rotated = json_of(&rotated);
    assert_eq!(rotated["client_id"], id.as_str());
    assert_ne!(rotated["client_secret"], secret.as_str());
    let (ok, _, why) = server.cli(&["client", "rotate-secret", &public_id], "");
    assert!(!ok && why.contains("public"), "a public client has no secret to rotate: {why}");

    let (ok, _, why) = server.cli(&["client", "remove", &public_id], "");
    assert!(ok, "{why}");
    let (ok, _, why) = server.cli(&["client", "remove", &public_id], "");
    assert!(!ok && why.contains("no client"), "{why}");
    let (_, text, _) = server.cli(&["client", "list"], "");
    assert!(text.contains("Notes") && text.contains("confidential") && !text.contains("Board"), "{text}");
}

#[tokio::test]
async fn unsafe_redirect_uris_and_bad_arguments_are_refused_with_a_reason_and_register_nothing() {
    let server = Server::start().await;
    for (args, reason) in [
        (vec!["--redirect-uri", "http://notes.example/cb"], "must be https"),
        (vec!["--redirect-uri", "http://localhost:3000/cb"], "must be https"),
        (vec!["--redirect-uri", "https://notes.example/cb#frag"], "fragment"),
        (vec!["--redirect-uri", "/callback"], "not an absolute URI"),
        (vec!["--redirect-uri", "https://user@notes.example/cb"], "user info"),
        (
            vec!["--redirect-uri", "https://notes.example/cb", "--post-logout-redirect-uri", "javascript:alert(1)"],
            "not an absolute URI",
        ),
        (
            vec!["--redirect-uri", "https://notes.example/cb", "--backchannel-logout-uri", "http://10.0.0.5/bc"],
            "must be https",
        ),
        (vec!["--redirect-uri", "https://notes.example/cb", "--id-token-alg", "HS256"], "invalid value"),
        (vec![], "--redirect-uri"),
    ] {
        let mut command = vec!["client", "add", "Notes"];
        command.extend(args.iter().copied());
        let (ok, _, why) = server.cli(&command, "");
        assert!(!ok && why.contains(reason), "{args:?}: expected {reason:?} in {why}");
    }
    let (ok, _, why) = server.cli(&["client", "add", "  ", "--redirect-uri", "https://notes.example/cb"], "");
    assert!(!ok && why.contains("name"), "{why}");
    let (_, listed, _) = server.cli(&["client", "list", "--json"], "");
    assert_eq!(json_of(&listed), serde_json::json!([]), "a refused client was registered");
}

/// The JWKS's keys as (alg, kid), sorted.
async fn published(server: &Server) -> Vec<(String, String)> {
    let jwks: Value =
        server.client.get(server.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let mut keys: Vec<(String, String)> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| (key["alg"].as_str().unwrap().to_owned(), key["kid"].as_str().unwrap().to_owned()))
        .collect();
    keys.sort();
    keys
}

/// The keys `latchkey keys list` shows signing, as (alg, kid), sorted.
fn signing(server: &Server) -> Vec<(String, String)> {
    let (ok, listed, why) = server.cli(&["keys", "list"], "");
    assert!(ok, "{why}");
    let mut keys: Vec<(String, String)> = listed
        .lines()
        .filter(|line| line.trim_end().ends_with("signing"))
        .map(|line| {
            let mut columns = line.split_whitespace();
            let kid = columns.next().unwrap().to_owned();
            (columns.next().unwrap().to_owned(), kid)
        })
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn an_apps_id_token_algorithm_gets_a_published_signing_key_that_rotates_like_the_others() {
    // 8 s tokens and a 2 s interval: keys are rotated every few seconds, published 2 s ahead.
    let server = Server::with(&[("LATCHKEY_KEY_ROTATION_INTERVAL", "2s"), ("LATCHKEY_ACCESS_TOKEN_TTL", "8s")]).await;
    let algs =
        |keys: &[(String, String)]| keys.iter().map(|(alg, _)| alg.clone()).collect::<std::collections::BTreeSet<_>>();
    assert_eq!(algs(&signing(&server)), ["EdDSA".to_owned()].into(), "only the access tokens' key before any app");
    for (name, alg) in [("Notes", None), ("Board", Some("ES256"))] {
        let mut command = vec!["client", "add", name, "--redirect-uri", "https://app.example/cb"];
        command.extend(alg.iter().flat_map(|alg| ["--id-token-alg", alg]));
        let (ok, _, why) = server.cli(&command, "");
        assert!(ok, "{why}");
    }
    let wanted: std::collections::BTreeSet<String> = ["ES256", "EdDSA", "RS256"].map(str::to_owned).into();
    assert_eq!(algs(&signing(&server)), wanted, "RS256 by default, and the app's ES256");
    // The running server publishes them within its sync interval.
    let started = std::time::Instant::now();
    while algs(&published(&server).await) != wanted {
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "not published: {:?}", published(&server).await);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Scheduled rotation replaces every algorithm's key, the apps' ones included.
    let first_rsa = signing(&server).into_iter().find(|(alg, _)| alg == "RS256").unwrap().1;
    let started = std::time::Instant::now();
    loop {
        let now_signing = signing(&server);
        let rsa = now_signing.iter().find(|(alg, _)| alg == "RS256").map(|(_, kid)| kid.clone());
        if rsa.as_ref().is_some_and(|kid| *kid != first_rsa) {
            assert!(published(&server).await.iter().any(|(_, kid)| *kid == first_rsa), "the old key verifies on");
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "the RS256 key was never rotated");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
