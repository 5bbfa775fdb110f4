//! API.md, "Session data": `GET`/`PUT`/`PATCH /v1/session/data` for both kinds and the hybrid,
//! with entity tags, the size limit, the CSRF rule, and the data's life with its session.

use reqwest::header::{CONTENT_TYPE, ETAG};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const PATH: &str = "/v1/session/data";
const MERGE_PATCH: &str = "application/merge-patch+json";

/// A session's credentials as a client presents them for its data: what it sends on every
/// request, and on writes.
#[derive(Clone)]
struct Holder {
    /// `Bearer` token, or `Cookie` header.
    credential: Credential,
    /// The CSRF token a cookie-carried write sends.
    csrf: Option<String>,
}

impl Holder {
    fn bearer(tokens: &Tokens) -> Self {
        Self { credential: Credential::Bearer(tokens.access.clone()), csrf: None }
    }

    fn cookie(login: &CookieLogin) -> Self {
        Self { credential: Credential::Cookie(login.cookie.clone()), csrf: Some(login.csrf.clone()) }
    }

    /// A request to the data with the credential (and on writes the CSRF token).
    fn request(&self, server: &ApiClient, method: reqwest::Method) -> RequestBuilder {
        let write = method != reqwest::Method::GET;
        let request = server.client.request(method, server.url(PATH));
        let request = match &self.credential {
            Credential::Bearer(token) => request.bearer_auth(token),
            Credential::Cookie(cookie) => request.header("cookie", cookie),
        };
        match (&self.csrf, write) {
            (Some(csrf), true) => request.header("x-csrf-token", csrf).header("origin", ORIGIN),
            _ => request,
        }
    }

    async fn get(&self, server: &ApiClient) -> Response {
        self.request(server, reqwest::Method::GET).send().await.unwrap()
    }

    async fn put(&self, server: &ApiClient, body: &Value) -> Response {
        self.request(server, reqwest::Method::PUT).json(body).send().await.unwrap()
    }

    async fn patch(&self, server: &ApiClient, body: &Value) -> Response {
        self.request(server, reqwest::Method::PATCH)
            .header(CONTENT_TYPE, MERGE_PATCH)
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// The data and its tag; panics unless `200`.
    async fn read(&self, server: &ApiClient) -> (Value, String) {
        ok(self.get(server).await).await
    }
}

/// A `200` with the data and a strong `ETag`, as every success answers.
async fn ok(response: Response) -> (Value, String) {
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers[CONTENT_TYPE], "application/json");
    assert_eq!(headers["cache-control"], "no-store");
    let tag = headers[ETAG].to_str().unwrap().to_owned();
    assert!(tag.starts_with('"') && tag.ends_with('"') && tag.len() > 2, "a strong entity tag: {tag}");
    let data: Value = response.json().await.unwrap();
    assert!(data.is_object(), "{data}");
    (data, tag)
}

/// A hybrid login: the access token in its cookie, with the session's CSRF token.
async fn hybrid_login(server: &Server, username: &str) -> Holder {
    let response = server.password_grant("/v1/token?delivery=cookie", username, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let access = cookie_pair(response.headers(), "latchkey_at").expect("the access-token cookie");
    let body: Value = response.json().await.unwrap();
    Holder { credential: Credential::Cookie(access), csrf: body["csrf_token"].as_str().map(str::to_owned) }
}

/// One holder of each kind for `username`: cookie, token (bearer) and the hybrid.
async fn every_kind(server: &Server, username: &str) -> Vec<(&'static str, Holder)> {
    vec![
        ("cookie", Holder::cookie(&server.cookie_login(username).await)),
        ("token", Holder::bearer(&server.token_login(username).await)),
        ("hybrid", hybrid_login(server, username).await),
    ]
}

#[tokio::test]
async fn data_starts_empty_and_each_put_and_merge_patch_answers_the_new_data_under_a_new_etag() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    for (kind, holder) in every_kind(&server, "alice").await {
        let (empty, first) = holder.read(&server).await;
        assert_eq!(empty, json!({}), "{kind}");
        let cart = json!({"cart": {"apple": 1, "pear": 4}, "theme": "dark", "name": "straße ☃"});
        let (put, second) = ok(holder.put(&server, &cart).await).await;
        assert_eq!(put, cart, "{kind}");
        assert_ne!(second, first, "{kind}");
        assert_eq!(holder.read(&server).await, (cart.clone(), second.clone()), "{kind}: a read after the write");
        // RFC 7396: members set, replaced and (null) removed, recursively; the rest kept.
        let patch = json!({"cart": {"apple": null, "fig": 2}, "step": {"at": 2}});
        let (patched, third) = ok(holder.patch(&server, &patch).await).await;
        let expected = json!({"cart": {"pear": 4, "fig": 2}, "theme": "dark", "name": "straße ☃", "step": {"at": 2}});
        assert_eq!(patched, expected, "{kind}");
        assert!(third != second && third != first, "{kind}");
        // A write of the same data is still a new version.
        let (_, fourth) = ok(holder.put(&server, &expected).await).await;
        assert!(![&first, &second, &third].contains(&&fourth), "{kind}");
        let (cleared, _) = ok(holder.put(&server, &json!({})).await).await;
        assert_eq!(cleared, json!({}), "{kind}");
    }
}

#[tokio::test]
async fn if_match_naming_any_earlier_version_is_412_and_changes_nothing() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let tokens = server.token_login("alice").await;
    let holder = Holder::bearer(&tokens);
    let (_, empty_tag) = holder.read(&server).await;
    let put_if = |tag: &str, body: Value| {
        holder.request(&server, reqwest::Method::PUT).header("if-match", tag.to_owned()).json(&body).send()
    };
    let (_, one) = ok(put_if(&empty_tag, json!({"v": 1})).await.unwrap()).await;
    let (_, two) = ok(put_if(&one, json!({"v": 2})).await.unwrap()).await;
    let weak = format!("W/{two}");
    let other_session = Holder::bearer(&server.token_login("alice").await).read(&server).await.1;
    for stale in [empty_tag.as_str(), one.as_str(), weak.as_str(), other_session.as_str(), "\"nope\"", "garbage", ""] {
        expect_problem(
            put_if(stale, json!({"lost": true})).await.unwrap(),
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
        )
        .await;
        let patch = holder
            .request(&server, reqwest::Method::PATCH)
            .header("if-match", stale)
            .header(CONTENT_TYPE, MERGE_PATCH)
            .body(r#"{"lost": true}"#)
            .send()
            .await
            .unwrap();
        expect_problem(patch, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
        assert_eq!(holder.read(&server).await, (json!({"v": 2}), two.clone()), "If-Match {stale:?} changed the data");
    }
    // A list naming the current version, and `*`, let the write through.
    let (_, three) = ok(put_if(&format!("\"x\", {two}"), json!({"v": 3})).await.unwrap()).await;
    let (_, four) = ok(put_if("*", json!({"v": 4})).await.unwrap()).await;
    assert_ne!(three, four);
    // Reads: If-Match as for writes; If-None-Match naming the current version is 304.
    let get =
        |name: &'static str, value: String| holder.request(&server, reqwest::Method::GET).header(name, value).send();
    assert_eq!(get("if-match", four.clone()).await.unwrap().status(), StatusCode::OK);
    expect_problem(
        get("if-match", three.clone()).await.unwrap(),
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
    )
    .await;
    let not_modified = get("if-none-match", format!("W/{four}")).await.unwrap();
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(not_modified.headers()[ETAG], four.as_str());
    assert_eq!(get("if-none-match", three).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_bodies_get_the_contracts_errors_and_lose_nothing() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let holder = Holder::bearer(&server.token_login("alice").await);
    let (_, kept_tag) = ok(holder.put(&server, &json!({"kept": [1, 2, 3]})).await).await;
    let send = |method: reqwest::Method, media: Option<&'static str>, body: String| {
        let request = holder.request(&server, method);
        let request = match media {
            Some(media) => request.header(CONTENT_TYPE, media),
            None => request,
        };
        request.body(body).send()
    };
    use reqwest::Method as M;
    // Body types: PUT takes application/json only; PATCH application/merge-patch+json only.
    for (method, media) in [
        (M::PUT, Some(MERGE_PATCH)),
        (M::PUT, Some("text/plain")),
        (M::PUT, Some("application/x-www-form-urlencoded")),
        (M::PUT, None),
        (M::PATCH, Some("application/json")),
        (M::PATCH, Some("application/json-patch+json")),
        (M::PATCH, None),
    ] {
        let response = send(method.clone(), media, r#"{"lost": true}"#.into()).await.unwrap();
        expect_problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    }
    assert_eq!(
        holder.read(&server).await,
        (json!({"kept": [1, 2, 3]}), kept_tag),
        "a refused body type changed the data"
    );
    let with_charset = send(M::PUT, Some("application/json; charset=utf-8"), r#"{"kept": [1, 2, 3]}"#.into());
    let (_, kept_tag) = {
        let (data, _) = ok(with_charset.await.unwrap()).await;
        assert_eq!(data, json!({"kept": [1, 2, 3]}));
        ok(holder.put(&server, &data).await).await
    };
    // Broken JSON is 400; well-formed JSON that is (or patches into) no object is 422.
    for (method, media) in [(M::PUT, "application/json"), (M::PATCH, MERGE_PATCH)] {
        for broken in ["", "{", r#"{"a": }"#, "{} x", "\u{feff}{}"] {
            let response = send(method.clone(), Some(media), broken.into()).await.unwrap();
            expect_problem(response, StatusCode::BAD_REQUEST, "malformed_request").await;
        }
        for not_an_object in ["[1]", r#""cart""#, "3", "null", "true"] {
            let response = send(method.clone(), Some(media), not_an_object.into()).await.unwrap();
            let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
            assert_eq!(problem["field"], "body");
        }
    }
    // The limit counts the compact UTF-8 text: 16,384 bytes fit however they were spaced;
    // one more does not, whether put whole or reached by a patch.
    let fitting = json!({ "k": "é".repeat((16_384 - 8) / 2) });
    assert_eq!(fitting.to_string().len(), 16_384);
    let spaced = serde_json::to_string_pretty(&json!({ "kept": null, "k": fitting["k"], "_": null })).unwrap();
    let (_, _) = ok(send(M::PATCH, Some(MERGE_PATCH), spaced).await.unwrap()).await;
    let (_, full_tag) = ok(holder.put(&server, &fitting).await).await;
    let over = json!({ "k": format!("{}x", fitting["k"].as_str().unwrap()) });
    expect_problem(holder.put(&server, &over).await, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    expect_problem(holder.patch(&server, &json!({"x": 1})).await, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
        .await;
    assert_eq!(holder.read(&server).await, (fitting.clone(), full_tag.clone()), "a refused write changed the data");
    // The request body itself is bounded at 64 KiB, whatever it would patch into.
    let huge = json!({ "k": null, "pad": null, "x": "y".repeat(70 * 1024) });
    expect_problem(holder.patch(&server, &huge).await, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(holder.read(&server).await.1, full_tag);
    assert_ne!(full_tag, kept_tag);
    // Other methods are 405.
    let delete = holder.request(&server, M::DELETE).send().await.unwrap();
    assert_eq!(delete.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn cookie_carried_writes_follow_the_csrf_rule_and_bearer_ones_do_not() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let body = r#"{"cart": ["fig"]}"#;
    for (kind, holder) in every_kind(&server, "alice").await {
        let bare = Holder { csrf: None, ..holder.clone() };
        let wrong = Holder { csrf: Some("not-the-token".into()), ..holder.clone() };
        if holder.csrf.is_some() {
            for refused in [&bare, &wrong] {
                let put = refused.put(&server, &json!({"lost": true})).await;
                expect_problem(put, StatusCode::FORBIDDEN, "csrf_rejected").await;
                let patch = refused.patch(&server, &json!({"lost": true})).await;
                expect_problem(patch, StatusCode::FORBIDDEN, "csrf_rejected").await;
            }
            let cross_site = bare
                .request(&server, reqwest::Method::PATCH)
                .header("x-csrf-token", holder.csrf.clone().unwrap_or_default())
                .header("origin", "https://evil.example")
                .header(CONTENT_TYPE, MERGE_PATCH)
                .body(body)
                .send()
                .await
                .unwrap();
            expect_problem(cross_site, StatusCode::FORBIDDEN, "csrf_rejected").await;
            assert_eq!(holder.read(&server).await.0, json!({}), "{kind}: a refused write landed");
            // Reads need no CSRF token.
            assert_eq!(bare.get(&server).await.status(), StatusCode::OK, "{kind}");
        } else {
            // Bearer-carried requests are never subject to the CSRF rule, whatever their Origin.
            let foreign = bare
                .request(&server, reqwest::Method::PATCH)
                .header("origin", "https://evil.example")
                .header(CONTENT_TYPE, MERGE_PATCH)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(ok(foreign).await.0, json!({"cart": ["fig"]}), "{kind}");
        }
        let (written, _) = ok(holder.put(&server, &json!({"kind": kind})).await).await;
        assert_eq!(written, json!({"kind": kind}));
    }
    // No credential, or a bad one, is 401 for every method.
    let anonymous = server.client.get(server.url(PATH)).send().await.unwrap();
    expect_problem(anonymous, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let forged = Holder { credential: Credential::Bearer("not.a.token".into()), csrf: None };
    expect_problem(forged.put(&server, &json!({})).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn the_data_belongs_to_one_session_survives_refresh_and_ends_with_it() {
    let server = Server::with(&[("LATCHKEY_REFRESH_IDLE_TIMEOUT", "3s")]).await;
    server.sign_up("alice").await;
    server.sign_up("bob").await;
    let tokens = server.token_login("alice").await;
    let holder = Holder::bearer(&tokens);
    let (_, tag) = ok(holder.put(&server, &json!({"cart": ["fig"]})).await).await;
    // A refresh keeps the session, so the new access token sees the same data and version.
    let refreshed = Tokens::from(server.refresh(&tokens.refresh).await.json::<Value>().await.unwrap());
    assert_eq!(Holder::bearer(&refreshed).read(&server).await, (json!({"cart": ["fig"]}), tag.clone()));
    // Other sessions, the user's own and others', have their own.
    let cookie = server.cookie_login("alice").await;
    assert_eq!(Holder::cookie(&cookie).read(&server).await.0, json!({}));
    assert_eq!(Holder::bearer(&server.token_login("bob").await).read(&server).await.0, json!({}));
    // Logging out ends the data: the session's credentials get 401, a new login starts at {}.
    let logout = server.client.post(server.url("/v1/logout")).bearer_auth(&refreshed.access).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    for access in [&tokens.access, &refreshed.access] {
        let holder = Holder { credential: Credential::Bearer(access.clone()), csrf: None };
        expect_problem(holder.get(&server).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
        expect_problem(holder.patch(&server, &json!({"x": 1})).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    assert_eq!(Holder::bearer(&server.token_login("alice").await).read(&server).await.0, json!({}));
    // A cookie session revoked from another device: its cookie gets 401.
    let cookie_holder = Holder::cookie(&cookie);
    ok(cookie_holder.put(&server, &json!({"step": 2})).await).await;
    let other = server.token_login("alice").await;
    let revoke = server
        .client
        .delete(server.url(&format!("/v1/sessions/{}", cookie.session_id)))
        .bearer_auth(&other.access)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    expect_problem(cookie_holder.get(&server).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // A token session that expired idle: its access token still verifies until `exp`, but its
    // session (and the data) is over.
    let idle = Holder::bearer(&other);
    ok(idle.put(&server, &json!({"soon": "gone"})).await).await;
    tokio::time::sleep(std::time::Duration::from_millis(3_500)).await;
    expect_problem(idle.get(&server).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
    expect_problem(idle.put(&server, &json!({})).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn twenty_concurrent_patches_of_different_keys_all_land() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    for holder in
        [Holder::bearer(&server.token_login("alice").await), Holder::cookie(&server.cookie_login("alice").await)]
    {
        let patches = (0..20).map(|i| {
            let (holder, api) = (holder.clone(), (*server).clone());
            tokio::spawn(async move { ok(holder.patch(&api, &json!({ format!("key{i}"): i })).await).await })
        });
        let mut tags = Vec::new();
        for patch in patches.collect::<Vec<_>>() {
            tags.push(patch.await.unwrap().1);
        }
        let (data, last) = holder.read(&server).await;
        let expected: serde_json::Map<String, Value> = (0..20).map(|i| (format!("key{i}"), json!(i))).collect();
        assert_eq!(data, Value::Object(expected), "a concurrent patch was lost");
        tags.sort();
        tags.dedup();
        assert_eq!(tags.len(), 20, "every write answered its own version");
        assert!(tags.contains(&last), "the last write's tag is the current one");
    }
}

#[tokio::test]
async fn the_data_is_in_no_token_profile_device_list_check_audit_or_log_line() {
    let server = Server::with(&[("LATCHKEY_LOG", "trace")]).await;
    server.sign_up("alice").await;
    let marker = "cart-marker-7f3a9c";
    let tokens = server.token_login("alice").await;
    let cookie = server.cookie_login("alice").await;
    for holder in [Holder::bearer(&tokens), Holder::cookie(&cookie)] {
        ok(holder.put(&server, &json!({ "item": marker })).await).await;
        ok(holder.patch(&server, &json!({ "other": marker })).await).await;
        let refused = holder.put(&server, &json!({ "k": format!("{marker}{}", "x".repeat(17_000)) })).await;
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let unreadable = holder.patch(&server, &json!(marker)).await;
        assert_eq!(unreadable.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let problem = unreadable.text().await.unwrap();
        assert!(!problem.contains(marker), "a refusal echoed the data: {problem}");
    }
    let refreshed: Value = server.refresh(&tokens.refresh).await.json().await.unwrap();
    let bearer = Credential::Bearer(refreshed["access_token"].as_str().unwrap().to_owned());
    let mut seen = vec![refreshed.to_string(), jwt_part(refreshed["access_token"].as_str().unwrap(), 1).to_string()];
    for credential in [&bearer, &Credential::Cookie(cookie.cookie.clone())] {
        for path in ["/v1/me", "/v1/sessions", "/v1/verify"] {
            let response = server.get_with(path, credential).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            seen.push(format!("{:?}", response.headers()));
            seen.push(response.text().await.unwrap());
        }
    }
    let (listed, audit, why) = server.cli(&["audit", "--limit", "500"], "");
    assert!(listed && audit.contains("login_succeeded"), "{why}");
    seen.push(audit);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    seen.push(server.logs());
    assert!(server.logs().contains("DEBUG"), "the log is at its most detailed level");
    for text in seen {
        assert!(!text.contains(marker), "the session's data leaked:\n{text}");
    }
}

#[tokio::test]
async fn browsers_on_allowed_origins_may_send_if_match_and_read_the_etag() {
    let server = Server::start().await;
    let preflight = server
        .client
        .request(reqwest::Method::OPTIONS, server.url(PATH))
        .header("origin", ORIGIN)
        .header("access-control-request-method", "PATCH")
        .header("access-control-request-headers", "content-type, if-match, x-csrf-token")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    let methods = headers["access-control-allow-methods"].to_str().unwrap().to_ascii_uppercase();
    assert!(["GET", "PUT", "PATCH"].iter().all(|method| methods.contains(method)), "{methods}");
    let allowed = headers["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(allowed.contains("if-match") && allowed.contains("x-csrf-token"), "{allowed}");
    server.sign_up("alice").await;
    let tokens = server.token_login("alice").await;
    let read = server.client.get(server.url(PATH)).bearer_auth(&tokens.access).header("origin", ORIGIN).send().await;
    let read = read.unwrap();
    let exposed = read.headers()["access-control-expose-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(exposed.contains("etag"), "{exposed}");
    let foreign =
        server.client.get(server.url(PATH)).bearer_auth(&tokens.access).header("origin", "https://evil.example");
    assert!(foreign.send().await.unwrap().headers().get("access-control-allow-origin").is_none());
}
