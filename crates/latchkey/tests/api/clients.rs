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
