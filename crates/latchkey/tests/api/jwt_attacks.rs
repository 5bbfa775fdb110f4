//! Hostile tests of access-token verification: the attacks of RFC 8725 (JWT best current
//! practices) and the well-known advisories, and the RFC 9068 profile. One test per attack.
//!
//! The server signs with an operator key file the test made, so the test can also forge tokens
//! with the *real* key: claim-level checks (types, duplicates, times, `typ`, header key
//! material) are then shown to hold even behind a valid signature. A forged token with every
//! claim right is accepted (the positive control), so each refusal here is the check at work,
//! not a broken forgery.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use latchkey_core::keys::{self, SigningAlgorithm};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// A server signing with a key the test holds, a user with a live token session, and the
/// parts needed to forge.
struct Forge {
    server: Server,
    real_key: EncodingKey,
    kid: String,
    issued: Tokens,
    claims: Value,
    _key_dir: tempfile::TempDir,
}

fn ed25519_key() -> (EncodingKey, String) {
    let stored = keys::generate(SigningAlgorithm::EdDSA, time::OffsetDateTime::now_utc()).unwrap();
    (EncodingKey::from_ed_pem(stored.material.as_bytes()).unwrap(), stored.material)
}

impl Forge {
    async fn start() -> Self {
        let key_dir = tempfile::tempdir().unwrap();
        let (real_key, pem) = ed25519_key();
        let path = key_dir.path().join("signing.pem");
        std::fs::write(&path, pem).unwrap();
        let server = Server::with(&[("LATCHKEY_SIGNING_KEY_FILE", path.to_str().unwrap())]).await;
        server.sign_up("alice").await;
        let issued = server.token_login("alice").await;
        let kid = jwt_part(&issued.access, 0)["kid"].as_str().unwrap().to_owned();
        let claims = jwt_part(&issued.access, 1);
        Self { server, real_key, kid, issued, claims, _key_dir: key_dir }
    }

    /// The header latchkey itself would write.
    fn header(&self) -> Value {
        json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": self.kid })
    }

    /// The claims of the issued token with `changes` applied (`null` removes a claim).
    fn claims_with(&self, changes: Value) -> Value {
        let mut claims = self.claims.clone();
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    }

    /// A token of raw JSON texts, signed with the real key.
    fn signed(&self, header: &str, claims: &str) -> String {
        compact(header, claims, Some((&self.real_key, Algorithm::EdDSA)))
    }

    /// A token of JSON values, signed with the real key.
    fn signed_values(&self, header: &Value, claims: &Value) -> String {
        self.signed(&header.to_string(), &claims.to_string())
    }

    /// `/v1/verify` and `/v1/me` both refuse `token` as a bearer credential.
    async fn assert_refused(&self, token: &str, attack: &str) {
        let server = &self.server;
        let verify = server.client.get(server.url("/v1/verify")).bearer_auth(token).send().await.unwrap();
        assert_eq!(verify.status(), StatusCode::UNAUTHORIZED, "verify accepted {attack}");
        let me = server.me_bearer(token).await;
        let challenge = me.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(challenge.contains("invalid_token"), "{attack}: {challenge}");
        expect_problem(me, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }

    async fn assert_accepted(&self, token: &str, what: &str) {
        let server = &self.server;
        let verify = server.client.get(server.url("/v1/verify")).bearer_auth(token).send().await.unwrap();
        assert_eq!(verify.status(), StatusCode::OK, "verify refused {what}");
    }
}

/// `base64url(header).base64url(claims).signature` from raw JSON texts; unsigned (empty
/// signature) without a key.
fn compact(header: &str, claims: &str, key: Option<(&EncodingKey, Algorithm)>) -> String {
    let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let signature = match key {
        Some((key, alg)) => jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap(),
        None => String::new(),
    };
    format!("{message}.{signature}")
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn control_a_token_forged_with_the_real_key_and_every_claim_right_is_accepted() {
    let forge = Forge::start().await;
    forge.assert_accepted(&forge.issued.access, "the issued token").await;
    let token = forge.signed_values(&forge.header(), &forge.claims_with(json!({ "jti": "another-id" })));
    forge.assert_accepted(&token, "a forged token with every claim right").await;
    let typ =
        forge.signed_values(&json!({ "alg": "EdDSA", "typ": "application/at+jwt", "kid": forge.kid }), &forge.claims);
    forge.assert_accepted(&typ, "typ application/at+jwt (RFC 9068 §2.1)").await;
}

#[tokio::test]
async fn rfc8725_2_1_alg_none_is_refused_in_every_spelling() {
    let forge = Forge::start().await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({ "alg": alg, "typ": "at+jwt", "kid": forge.kid }).to_string();
        let unsigned = compact(&header, &forge.claims.to_string(), None);
        forge.assert_refused(&unsigned, &format!("alg {alg}, no signature")).await;
        let with_signature = format!("{unsigned}{}", forge.issued.access.rsplit('.').next().unwrap());
        forge.assert_refused(&with_signature, &format!("alg {alg} with a stolen signature")).await;
    }
}

#[tokio::test]
async fn rfc8725_2_1_hs256_keyed_with_the_public_key_is_refused() {
    let forge = Forge::start().await;
    let jwks: Value =
        forge.server.client.get(forge.server.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let jwk = &jwks["keys"][0];
    let raw_public = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let header = json!({ "alg": "HS256", "typ": "at+jwt", "kid": forge.kid }).to_string();
    for secret in [raw_public, jwk.to_string().into_bytes(), jwk["x"].as_str().unwrap().as_bytes().to_vec()] {
        let token =
            compact(&header, &forge.claims.to_string(), Some((&EncodingKey::from_secret(&secret), Algorithm::HS256)));
        forge.assert_refused(&token, "HS256 keyed with the published public key").await;
    }
}

#[tokio::test]
async fn rfc8725_3_1_an_algorithm_other_than_the_one_pinned_to_the_kid_is_refused() {
    let forge = Forge::start().await;
    let stored = keys::generate(SigningAlgorithm::ES256, time::OffsetDateTime::now_utc()).unwrap();
    let es256 = EncodingKey::from_ec_pem(stored.material.as_bytes()).unwrap();
    let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": forge.kid }).to_string();
    let token = compact(&header, &forge.claims.to_string(), Some((&es256, Algorithm::ES256)));
    forge.assert_refused(&token, "ES256 under the EdDSA key's kid").await;
}

#[tokio::test]
async fn rfc8725_3_2_a_valid_token_with_one_bit_of_its_signature_flipped_is_refused() {
    let forge = Forge::start().await;
    let (message, signature) = forge.issued.access.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[0] ^= 1;
    forge.assert_refused(&format!("{message}.{}", URL_SAFE_NO_PAD.encode(bytes)), "a flipped signature bit").await;
    let (_, claims_and_signature) = forge.issued.access.split_once('.').unwrap();
    let other_header =
        URL_SAFE_NO_PAD.encode(json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": forge.kid, "x": 1 }).to_string());
    forge
        .assert_refused(&format!("{other_header}.{claims_and_signature}"), "a header swapped under the signature")
        .await;
}

#[tokio::test]
async fn rfc8725_3_10_an_embedded_jwk_is_never_trusted() {
    let forge = Forge::start().await;
    let (attacker, _) = ed25519_key();
    let attacker_jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&attacker, Algorithm::EdDSA).unwrap();
    for kid in [forge.kid.as_str(), "attacker"] {
        let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": kid, "jwk": attacker_jwk });
        let token = compact(&header.to_string(), &forge.claims.to_string(), Some((&attacker, Algorithm::EdDSA)));
        forge.assert_refused(&token, &format!("an attacker's jwk in the header, kid {kid}")).await;
    }
    // Not even behind the real signature: key material in a header is refused outright.
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": forge.kid, "jwk": attacker_jwk });
    forge.assert_refused(&forge.signed_values(&header, &forge.claims), "a jwk header behind the real signature").await;
}

#[tokio::test]
async fn rfc8725_3_10_jku_x5u_and_x5c_headers_are_never_followed() {
    let forge = Forge::start().await;
    for (name, value) in [
        ("jku", json!("http://127.0.0.1:9/jwks.json")),
        ("x5u", json!("http://127.0.0.1:9/cert.pem")),
        ("x5c", json!(["MIIBszCCAVmgAwIBAgIUQ"])),
    ] {
        let mut header = forge.header();
        header[name] = value;
        forge.assert_refused(&forge.signed_values(&header, &forge.claims), &format!("a {name} header")).await;
    }
}

#[tokio::test]
async fn rfc8725_3_10_kid_is_only_looked_up_never_interpreted() {
    let forge = Forge::start().await;
    let kids = [
        json!("../../../../dev/null"),
        json!("/etc/passwd"),
        json!("' OR '1'='1"),
        json!("http://127.0.0.1:9/key"),
        json!(""),
        json!(format!("{}\u{0000}", forge.kid)),
        json!(1),
        json!([forge.kid]),
    ];
    for kid in kids {
        let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": kid });
        forge.assert_refused(&forge.signed_values(&header, &forge.claims), &format!("kid {kid}")).await;
    }
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt" });
    forge.assert_refused(&forge.signed_values(&header, &forge.claims), "no kid").await;
}

#[tokio::test]
async fn rfc9068_2_1_typ_must_be_at_jwt() {
    let forge = Forge::start().await;
    for typ in [json!("JWT"), json!("jwt"), json!("refresh+jwt"), json!(""), json!(null), json!(7)] {
        let mut header = forge.header();
        if typ.is_null() {
            header.as_object_mut().unwrap().remove("typ");
        } else {
            header["typ"] = typ.clone();
        }
        forge.assert_refused(&forge.signed_values(&header, &forge.claims), &format!("typ {typ}")).await;
    }
}

#[tokio::test]
async fn rfc8725_3_8_and_3_9_issuer_and_audience_must_match_exactly() {
    let forge = Forge::start().await;
    let iss = forge.claims["iss"].as_str().unwrap().to_owned();
    let aud = forge.claims["aud"].as_str().unwrap().to_owned();
    for changes in [
        json!({ "iss": "http://evil.example" }),
        json!({ "iss": format!("{iss}/") }),
        json!({ "iss": iss.to_uppercase() }),
        json!({ "aud": "http://another-service.example" }),
        json!({ "aud": format!("{aud} ") }),
        json!({ "aud": [aud.clone(), "http://another-service.example"] }),
    ] {
        forge
            .assert_refused(
                &forge.signed_values(&forge.header(), &forge.claims_with(changes.clone())),
                &changes.to_string(),
            )
            .await;
    }
}

#[tokio::test]
async fn api_precise_rules_exp_nbf_and_iat_are_checked_with_at_most_two_seconds_of_leeway() {
    let forge = Forge::start().await;
    let sign = |changes: Value| forge.signed_values(&forge.header(), &forge.claims_with(changes));
    forge.assert_refused(&sign(json!({ "exp": now() - 10 })), "exp 10 s ago").await;
    forge.assert_refused(&sign(json!({ "exp": now() - 4 })), "exp 4 s ago").await;
    forge.assert_accepted(&sign(json!({ "exp": now() })), "exp now (inside the leeway)").await;
    forge.assert_refused(&sign(json!({ "nbf": now() + 30 })), "nbf 30 s ahead").await;
    forge.assert_accepted(&sign(json!({ "nbf": now() })), "nbf now").await;
    forge.assert_refused(&sign(json!({ "iat": now() + 30 })), "iat 30 s ahead").await;
    forge.assert_accepted(&sign(json!({ "iat": now() + 1 })), "iat 1 s ahead (inside the leeway)").await;
}

#[tokio::test]
async fn api_precise_rules_every_required_claim_must_be_present() {
    let forge = Forge::start().await;
    for claim in ["iss", "sub", "aud", "exp", "iat", "jti", "sid"] {
        let token = forge.signed_values(&forge.header(), &forge.claims_with(json!({ claim: null })));
        forge.assert_refused(&token, &format!("no {claim}")).await;
    }
}

#[tokio::test]
async fn rfc8725_2_8_claims_of_the_wrong_json_type_are_refused() {
    let forge = Forge::start().await;
    let exp = forge.claims["exp"].as_i64().unwrap();
    for changes in [
        json!({ "exp": exp.to_string() }),
        json!({ "exp": exp as f64 + 0.5 }),
        json!({ "iat": "yesterday" }),
        json!({ "nbf": "now" }),
        json!({ "sub": 42 }),
        json!({ "sid": [forge.claims["sid"].clone()] }),
        json!({ "sid": { "id": forge.claims["sid"].clone() } }),
        json!({ "jti": true }),
        json!({ "iss": null, "iss_": forge.claims["iss"].clone() }),
        json!({ "sub": "not-a-uuid" }),
        json!({ "sid": "not-a-uuid" }),
    ] {
        let token = forge.signed_values(&forge.header(), &forge.claims_with(changes.clone()));
        forge.assert_refused(&token, &format!("claims changed by {changes}")).await;
    }
}

#[tokio::test]
async fn rfc8725_3_duplicate_claims_and_header_parameters_are_refused() {
    let forge = Forge::start().await;
    let claims = forge.claims.to_string();
    let body = claims.trim_start_matches('{');
    let other_sub = "00000000-0000-4000-8000-000000000000";
    let header = forge.header().to_string();
    for (what, header, claims) in [
        ("a duplicate sub", header.clone(), format!(r#"{{"sub":"{other_sub}",{body}"#)),
        ("a duplicate exp", header.clone(), format!(r#"{{"exp":1,{body}"#)),
        ("a duplicate sid", header.clone(), format!(r#"{{"sid":"{other_sub}",{body}"#)),
        ("a duplicate alg", format!(r#"{{"alg":"none",{}"#, header.trim_start_matches('{')), claims.clone()),
        ("a duplicate kid", format!(r#"{{"kid":"other",{}"#, header.trim_start_matches('{')), claims.clone()),
    ] {
        forge.assert_refused(&forge.signed(&header, &claims), what).await;
    }
}

#[tokio::test]
async fn rfc7515_7_2_json_serialised_jws_is_refused() {
    let forge = Forge::start().await;
    let mut parts = forge.issued.access.split('.');
    let (protected, payload, signature) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let flattened = json!({ "protected": protected, "payload": payload, "signature": signature }).to_string();
    let general =
        json!({ "payload": payload, "signatures": [{ "protected": protected, "signature": signature }] }).to_string();
    forge.assert_refused(&flattened, "flattened JSON serialisation").await;
    forge.assert_refused(&general, "general JSON serialisation").await;
}

#[tokio::test]
async fn rfc8725_oversized_and_malformed_tokens_are_refused_without_a_server_error() {
    let forge = Forge::start().await;
    let access = &forge.issued.access;
    let (header, rest) = access.split_once('.').unwrap();
    let (claims, signature) = rest.split_once('.').unwrap();
    let padded_claims = forge.signed_values(&forge.header(), &forge.claims_with(json!({ "pad": "x".repeat(9_000) })));
    let malformed = [
        padded_claims,
        format!("{header}=.{claims}.{signature}"),
        format!("{header}.+/{}.{signature}", &claims[2..]),
        format!("{header}.{claims}"),
        format!("{header}.{claims}.{signature}.{signature}"),
        format!("{header}..{signature}"),
        format!("{header}.{claims}.{signature}!"),
        format!("{}.{claims}.{signature}", URL_SAFE_NO_PAD.encode("not json")),
        format!("{}.{claims}.{signature}", URL_SAFE_NO_PAD.encode("[]")),
        format!("{header}.{}.{signature}", URL_SAFE_NO_PAD.encode([0xff, 0xfe, 0x00])),
        "..".to_owned(),
        ".".repeat(5_000),
        "ä.ö.ü".to_owned(),
    ];
    for token in &malformed {
        forge.assert_refused(token, &format!("malformed token {token}")).await;
    }
    // Far past any token: the server answers, without a 5xx.
    let huge = format!("{header}.{}.{signature}", "A".repeat(60_000));
    let response = forge.server.client.get(forge.server.url("/v1/verify")).bearer_auth(&huge).send().await.unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
}

#[tokio::test]
async fn rfc8725_2_8_a_refresh_token_is_never_an_access_token_and_an_access_token_never_refreshes() {
    let forge = Forge::start().await;
    forge.assert_refused(&forge.issued.refresh, "a refresh token as bearer").await;
    let refreshed = forge.server.refresh(&forge.issued.access).await;
    expect_oauth_error(refreshed, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // A forged JWT that names the session with the refresh token's typ is no access token either.
    let mut header = forge.header();
    header["typ"] = json!("rt+jwt");
    forge.assert_refused(&forge.signed_values(&header, &forge.claims), "typ rt+jwt").await;
}

#[tokio::test]
async fn a_revoked_session_outweighs_a_valid_signature() {
    let forge = Forge::start().await;
    let token = forge.signed_values(&forge.header(), &forge.claims_with(json!({ "jti": "forged-later" })));
    forge.assert_accepted(&token, "before the revocation").await;
    let server = &forge.server;
    let logout = server.client.post(server.url("/v1/logout")).bearer_auth(&forge.issued.access).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    forge.assert_refused(&token, "a token of a revoked session").await;
}

#[tokio::test]
async fn rfc6750_3_another_scheme_gets_the_plain_challenge_and_a_bearer_that_is_not_text_an_invalid_token() {
    let server = Server::start().await;
    let basic = server.client.get(server.url("/v1/me")).header("authorization", "Basic YWxpY2U6cGFzcw==").send();
    let basic = basic.await.unwrap();
    assert_eq!(basic.headers()["www-authenticate"], "Bearer");
    expect_problem(basic, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let binary = reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap();
    let binary = server.client.get(server.url("/v1/me")).header("authorization", binary).send().await.unwrap();
    assert_eq!(binary.headers()["www-authenticate"], r#"Bearer error="invalid_token""#);
    expect_problem(binary, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn rfc7515_4_1_11_crit_and_every_header_that_changes_processing_is_refused_behind_a_valid_signature() {
    let forge = Forge::start().await;
    let with = |extra: Value| {
        let mut header = forge.header();
        for (name, value) in extra.as_object().unwrap() {
            header[name] = value.clone();
        }
        forge.signed_values(&header, &forge.claims)
    };
    let attacks = [
        (json!({ "crit": ["exp"] }), "crit naming a registered claim"),
        (json!({ "crit": ["urn:example:unknown"], "urn:example:unknown": 1 }), "crit naming an unknown parameter"),
        (json!({ "crit": [] }), "an empty crit"),
        (json!({ "crit": "b64" }), "crit of the wrong type"),
        (json!({ "b64": false, "crit": ["b64"] }), "b64 false with crit (RFC 7797)"),
        (json!({ "b64": false }), "b64 false without crit"),
        (json!({ "b64": true }), "b64 true"),
        (json!({ "zip": "DEF" }), "compression (a JWE parameter)"),
        (json!({ "enc": "A256GCM" }), "enc (a JWE parameter)"),
    ];
    for (extra, attack) in attacks {
        forge.assert_refused(&with(extra), attack).await;
    }
    // An unencoded payload signed as RFC 7797 says: the signature covers the raw claims.
    let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": forge.kid, "b64": false, "crit": ["b64"] });
    let encoded_header = URL_SAFE_NO_PAD.encode(header.to_string());
    let payload = forge.claims.to_string();
    let signature =
        jsonwebtoken::crypto::sign(format!("{encoded_header}.{payload}").as_bytes(), &forge.real_key, Algorithm::EdDSA)
            .unwrap();
    let detached = format!("{encoded_header}..{signature}");
    forge.assert_refused(&detached, "an RFC 7797 detached, unencoded payload").await;
    // The embeddable verifier runs the same check (latchkey_core::tokens::VerifyingKeys).
    let jwks: String =
        forge.server.client.get(forge.server.url("/.well-known/jwks.json")).send().await.unwrap().text().await.unwrap();
    let keys = latchkey_core::tokens::VerifyingKeys::from_jwks(&jwks, ORIGIN, ORIGIN).unwrap();
    let now = time::OffsetDateTime::now_utc();
    assert!(keys.verify(&forge.issued.access, now).is_ok(), "control");
    assert!(keys.verify(&with(json!({ "crit": ["exp"] })), now).is_err());
    assert!(keys.verify(&with(json!({ "b64": false })), now).is_err());
}

#[tokio::test]
async fn a_flood_of_tokens_naming_unknown_kids_reloads_the_keys_at_most_once_a_second() {
    let forge = Forge::start().await;
    let server = &forge.server;
    let reloads = || async {
        let text = server.client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix("latchkey_unknown_kid_key_reloads_total "))
            .map_or(0, |value| value.trim().parse::<u64>().unwrap())
    };
    let before = reloads().await;
    let started = std::time::Instant::now();
    let requests = 400;
    let mut flood = Vec::new();
    for n in 0..requests {
        let header = json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": format!("made-up-{n}") });
        let token = forge.signed_values(&header, &forge.claims);
        let client = server.client.clone();
        let url = server.url("/v1/verify");
        flood.push(tokio::spawn(async move { client.get(url).bearer_auth(token).send().await.unwrap().status() }));
    }
    for request in flood {
        assert_eq!(request.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    let seconds = started.elapsed().as_secs() + 1;
    let caused = reloads().await - before;
    println!("{requests} unknown-kid requests in {:?} caused {caused} key reloads", started.elapsed());
    assert!(caused >= 1, "an unknown kid still triggers a reload");
    assert!(caused <= seconds, "{caused} reloads in about {seconds} s");
    // A token of a real key the instance has not loaded yet is still accepted after a reload.
    forge.assert_accepted(&forge.issued.access, "the issued token after the flood").await;
}
