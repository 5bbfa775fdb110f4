//! API.md, "Single sign-on for other apps": the authorization code flow over real HTTP with
//! raw requests, as an app and a browser would send them and as an attacker would bend them
//! (PKCE downgrade, code replay and concurrent redemption, redirect look-alikes, `prompt=none`,
//! foreign tokens at introspection and userinfo, forged sign-in marks).

use reqwest::header::LOCATION;
use reqwest::{Response, StatusCode, Url};
use serde_json::Value;

use crate::helpers::*;

/// RFC 7636 Appendix B's pair.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const CALLBACK: &str = "https://notes.example/callback";

/// A registered app.
struct App {
    id: String,
    secret: Option<String>,
}

async fn register(server: &Server, extra: &[&str]) -> App {
    let mut args = vec!["client", "add", "Notes", "--redirect-uri", CALLBACK, "--json"];
    args.extend_from_slice(extra);
    let (ok, out, why) = server.cli(&args, "");
    assert!(ok, "{why}");
    let added: Value = serde_json::from_str(out.trim()).expect("json");
    App {
        id: added["client_id"].as_str().expect("id").to_owned(),
        secret: added["client_secret"].as_str().map(str::to_owned),
    }
}

/// The authorization request's query for `app`, with `changes` replacing or adding parameters
/// (an empty value removes one).
fn authorize_path(app: &App, changes: &[(&str, &str)]) -> String {
    let mut params: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", app.id.as_str()),
        ("redirect_uri", CALLBACK),
        ("scope", "openid profile"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
    .collect();
    for (name, value) in changes {
        params.retain(|(existing, _)| existing != name);
        if !value.is_empty() {
            params.push(((*name).to_owned(), (*value).to_owned()));
        }
    }
    format!("/oauth2/authorize?{}", serde_urlencoded_pairs(&params))
}

fn serde_urlencoded_pairs(params: &[(String, String)]) -> String {
    let mut url = Url::parse("http://x/").expect("url");
    url.query_pairs_mut().extend_pairs(params);
    url.query().unwrap_or_default().to_owned()
}

async fn get(server: &Server, path: &str, cookie: Option<&str>) -> Response {
    let mut request = server.client.get(server.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.expect("request")
}

async fn post_form(server: &Server, path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Response {
    let mut request = server.client.post(server.url(path)).header("origin", ORIGIN).form(fields);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.expect("request")
}

fn location(response: &Response) -> String {
    response.headers().get(LOCATION).and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned()
}

/// The query parameters of a redirect to the app.
fn answer(location: &str) -> Vec<(String, String)> {
    assert!(location.starts_with(CALLBACK), "not a redirect to the app: {location}");
    Url::parse(location).expect("url").query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

/// Signs in through the sign-in page; the session cookie.
async fn browser_sign_in(server: &Server, username: &str) -> String {
    let response = post_form(server, "/login", None, &[("username", username), ("password", PASSWORD)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    cookie_pair(response.headers(), "latchkey_session").expect("session cookie")
}

/// The hidden fields of the consent page's form.
fn consent_fields(html: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    for input in html.split("<input type=\"hidden\" ").skip(1) {
        let attribute = |name: &str| {
            let marker = format!("{name}=\"");
            input.split(&marker).nth(1).and_then(|rest| rest.split('"').next()).map(|v| v.replace("&#x20;", " "))
        };
        if let (Some(name), Some(value)) = (attribute("name"), attribute("value")) {
            fields.push((name, html_unescape(&value)));
        }
    }
    fields
}

fn html_unescape(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&#x3d;", "=")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The CSRF token a page put in its forms for the browser with `cookie`.
async fn page_csrf(server: &Server, path: &str, cookie: &str) -> String {
    let page = get(server, path, Some(cookie)).await.text().await.expect("html");
    consent_fields(&page).into_iter().find(|(name, _)| name == "csrf_token").expect("csrf").1
}

/// A refresh by `app`, authenticated with Basic.
async fn refresh_as(server: &Server, app: &App, refresh_token: &str) -> Response {
    server
        .client
        .post(server.url("/v1/token"))
        .basic_auth(&app.id, app.secret.as_deref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)])
        .send()
        .await
        .expect("request")
}

/// Answers the consent page for `path` with `decision`; the response.
async fn consent(server: &Server, path: &str, cookie: &str, decision: &str) -> Response {
    let page = get(server, path, Some(cookie)).await;
    assert_eq!(page.status(), StatusCode::OK, "the consent page");
    let html = page.text().await.expect("html");
    assert!(html.contains("Notes") && html.contains("Allow") && html.contains("Deny"), "{html}");
    let mut fields = consent_fields(&html);
    fields.push(("decision".into(), decision.into()));
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    post_form(server, "/oauth2/consent", Some(cookie), &fields).await
}

/// Runs the flow for a signed-in browser that has allowed the app; the code.
async fn code_for(server: &Server, app: &App, cookie: &str, changes: &[(&str, &str)]) -> String {
    let response = get(server, &authorize_path(app, changes), Some(cookie)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", location(&response));
    let pairs = answer(&location(&response));
    param(&pairs, "code").unwrap_or_else(|| panic!("no code: {pairs:?}")).to_owned()
}

/// The token request for `code`, authenticated with Basic.
async fn redeem(server: &Server, app: &App, code: &str, verifier: &str) -> Response {
    let mut fields = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", verifier),
    ];
    if app.secret.is_none() {
        fields.push(("client_id", app.id.as_str()));
    }
    let mut request = server.client.post(server.url("/v1/token")).form(&fields);
    if let Some(secret) = &app.secret {
        request = request.basic_auth(&app.id, Some(secret));
    }
    request.send().await.expect("request")
}

/// A signed-in user who has allowed a confidential app; (app, session cookie).
async fn allowed(server: &Server, username: &str) -> (App, String) {
    let app = register(server, &[]).await;
    server.sign_up(username).await;
    let cookie = browser_sign_in(server, username).await;
    let response = consent(server, &authorize_path(&app, &[]), &cookie, "allow").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(param(&answer(&location(&response)), "code").is_some());
    (app, cookie)
}

#[tokio::test]
async fn a_browser_signs_in_allows_the_app_and_the_app_gets_tokens_and_an_id_token() {
    let server = Server::start().await;
    let app = register(&server, &[]).await;
    let user = server.sign_up("ssoalice").await;

    // Not signed in: to the sign-in page, which brings the browser back to the request.
    let start = authorize_path(&app, &[]);
    let response = get(&server, &start, None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let to_login = location(&response);
    assert!(to_login.starts_with("/login?return_to=%2Foauth2%2Fauthorize"), "{to_login}");
    let login_page = get(&server, &to_login, None).await;
    let csp = login_page.headers()["content-security-policy"].to_str().expect("csp").to_owned();
    assert!(csp.contains("form-action 'self' https://notes.example;"), "the sign-in form may end at the app: {csp}");
    let return_to = Url::parse(&format!("http://x{to_login}"))
        .expect("url")
        .query_pairs()
        .find(|(name, _)| name == "return_to")
        .map(|(_, value)| value.into_owned())
        .expect("return_to");
    let response = post_form(
        &server,
        "/login",
        None,
        &[("username", "ssoalice"), ("password", PASSWORD), ("return_to", &return_to)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), return_to);
    let cookie = cookie_pair(response.headers(), "latchkey_session").expect("cookie");

    // The first time: the consent page names the app and what it will see.
    let response = consent(&server, &return_to, &cookie, "allow").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let pairs = answer(&location(&response));
    assert_eq!(param(&pairs, "state"), Some("st-123"));
    assert_eq!(param(&pairs, "iss"), Some(ORIGIN), "RFC 9207");
    let code = param(&pairs, "code").expect("code").to_owned();

    let response = redeem(&server, &app, &code, VERIFIER).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let tokens: Value = response.json().await.expect("json");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid profile");
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let id_token = tokens["id_token"].as_str().expect("id_token").to_owned();

    let header = jwt_part(&id_token, 0);
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["alg"], "RS256", "RS256 unless the app registered another");
    let claims = jwt_part(&id_token, 1);
    let sso_session = server.sessions_by_cookie(&cookie).await;
    let sso_id = sso_session.iter().find(|s| s["current"] == true).expect("current")["id"].clone();
    assert_eq!(claims["iss"], ORIGIN);
    assert_eq!(claims["sub"], user["id"]);
    assert_eq!(claims["aud"], app.id.as_str());
    assert_eq!(claims["azp"], app.id.as_str());
    assert_eq!(claims["nonce"], "n-456");
    assert_eq!(claims["sid"], sso_id, "the ID token's sid is the SSO session");
    assert_eq!(claims["preferred_username"], "ssoalice");
    assert!(claims["auth_time"].as_i64().expect("auth_time") <= claims["iat"].as_i64().expect("iat"));
    assert!(claims["at_hash"].as_str().is_some_and(|hash| hash.len() == 22));
    let access_claims = jwt_part(&access, 1);
    assert_eq!(access_claims["client_id"], app.id.as_str());
    assert_eq!(access_claims["scope"], "openid profile");
    assert_ne!(access_claims["sid"], sso_id, "the access token names the app's own session");

    // The app's access token works like any other, and at userinfo.
    assert_eq!(server.me_bearer(&access).await.status(), StatusCode::OK);
    let info = server.client.get(server.url("/oauth2/userinfo")).bearer_auth(&access).send().await.expect("request");
    assert_eq!(info.status(), StatusCode::OK);
    let info: Value = info.json().await.expect("json");
    assert_eq!(info["sub"], user["id"]);
    assert_eq!(info["preferred_username"], "ssoalice");

    // The device list shows the app's session under its name.
    let devices = server.sessions_by_cookie(&cookie).await;
    let app_session = devices.iter().find(|d| d["client_id"] == app.id.as_str()).expect("the app's session");
    assert_eq!(app_session["client_name"], "Notes");
    assert_eq!(app_session["kind"], "token");

    // The consent is remembered: straight back to the app next time.
    let second = code_for(&server, &app, &cookie, &[]).await;
    assert_ne!(second, code);
}

#[tokio::test]
async fn an_app_refreshes_only_with_its_own_authentication_and_ends_with_the_sign_in() {
    let server = Server::start().await;
    let (app, cookie) = allowed(&server, "ssobob").await;
    let other = register(&server, &[]).await;
    let code = code_for(&server, &app, &cookie, &[]).await;
    let tokens: Value = redeem(&server, &app, &code, VERIFIER).await.json().await.expect("json");
    let refresh = tokens["refresh_token"].as_str().expect("refresh").to_owned();
    let access = tokens["access_token"].as_str().expect("access").to_owned();

    // Without the app's authentication, or as another app: refused, and nothing rotates.
    let first_party = server.refresh(&refresh).await;
    expect_oauth_error(first_party, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let as_other = refresh_as(&server, &other, &refresh).await;
    expect_oauth_error(as_other, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let own = server
        .client
        .post(server.url("/v1/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", app.id.as_str()),
            ("client_secret", app.secret.as_deref().unwrap_or_default()),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(own.status(), StatusCode::OK, "client_secret_post");
    let rotated: Value = own.json().await.expect("json");
    assert_eq!(rotated["scope"], "openid profile");
    let refresh = rotated["refresh_token"].as_str().expect("refresh").to_owned();

    // Introspection by the app: active; by another app: not; without authentication: 401.
    let introspect = |who: &App, token: &str| {
        server
            .client
            .post(server.url("/oauth2/introspect"))
            .basic_auth(&who.id, who.secret.as_deref())
            .form(&[("token", token)])
            .send()
    };
    let active: Value = introspect(&app, &access).await.expect("request").json().await.expect("json");
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["client_id"], app.id.as_str());
    assert_eq!(active["username"], "ssobob");
    assert_eq!(active["token_type"], "Bearer");
    let foreign: Value = introspect(&other, &access).await.expect("request").json().await.expect("json");
    assert_eq!(foreign, serde_json::json!({ "active": false }), "another app's token");
    // A first-party token is no app's: refused at userinfo, inactive to an app's introspection.
    let own_tokens = server.token_login("ssobob").await;
    let info = server.client.get(server.url("/oauth2/userinfo")).bearer_auth(&own_tokens.access).send().await;
    let info = info.expect("request");
    assert_eq!(info.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(info.headers()["www-authenticate"], r#"Bearer error="invalid_token""#);
    let first_party: Value = introspect(&app, &own_tokens.access).await.expect("request").json().await.expect("json");
    assert_eq!(first_party, serde_json::json!({ "active": false }));
    let garbage: Value = introspect(&app, "not-a-token").await.expect("request").json().await.expect("json");
    assert_eq!(garbage, serde_json::json!({ "active": false }));
    let unauthenticated =
        server.client.post(server.url("/oauth2/introspect")).form(&[("token", access.as_str())]).send().await;
    expect_oauth_error(unauthenticated.expect("request"), StatusCode::UNAUTHORIZED, "invalid_client").await;

    // Signing out at latchkey ends the app's session: its tokens are refused everywhere.
    let csrf = page_csrf(&server, "/logout", &cookie).await;
    let out = post_form(&server, "/logout", Some(&cookie), &[("csrf_token", &csrf)]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let inactive: Value = introspect(&app, &access).await.expect("request").json().await.expect("json");
    assert_eq!(inactive, serde_json::json!({ "active": false }));
    assert_eq!(server.me_bearer(&access).await.status(), StatusCode::UNAUTHORIZED);
    let info = server.client.get(server.url("/oauth2/userinfo")).bearer_auth(&access).send().await.expect("request");
    assert_eq!(info.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(info.headers()["www-authenticate"], r#"Bearer error="invalid_token""#);
    let after = refresh_as(&server, &app, &refresh).await;
    expect_oauth_error(after, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn an_unknown_client_or_a_look_alike_redirect_gets_an_error_page_and_no_redirect() {
    let server = Server::start().await;
    let app = register(&server, &[]).await;
    let unknown = App { id: "no-such-app".into(), secret: None };
    for (path, why) in [
        (authorize_path(&unknown, &[]), "unknown client"),
        (authorize_path(&app, &[("client_id", "")]), "no client"),
        (authorize_path(&app, &[("redirect_uri", "")]), "no redirect"),
        (authorize_path(&app, &[("redirect_uri", "https://notes.example/callback/")]), "trailing slash"),
        (authorize_path(&app, &[("redirect_uri", "https://NOTES.example/callback")]), "case"),
        (authorize_path(&app, &[("redirect_uri", "https://notes.example/callback?x=1")]), "extra query"),
        (authorize_path(&app, &[("redirect_uri", "https://notes.example.evil/callback")]), "another host"),
        (authorize_path(&app, &[("redirect_uri", "https://notes.example/callback#frag")]), "fragment"),
    ] {
        let response = get(&server, &path, None).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{why}");
        assert!(response.headers().get(LOCATION).is_none(), "{why}: never redirected");
        assert!(response.text().await.expect("html").contains("<h1"), "{why}: an error page");
    }
}

#[tokio::test]
async fn other_errors_go_back_to_the_app_with_state_and_iss() {
    let server = Server::start().await;
    let (app, cookie) = allowed(&server, "ssocarol").await;
    for (changes, error) in [
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge", ""), ("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge", "too-short")], "invalid_request"),
        (vec![("scope", "profile")], "invalid_scope"),
        (vec![("response_type", "token")], "unsupported_response_type"),
        (vec![("response_type", "")], "invalid_request"),
        (vec![("prompt", "sometimes")], "invalid_request"),
        (vec![("max_age", "-1")], "invalid_request"),
        (vec![("signed_in_after", "1700000000.AAAA")], "invalid_request"),
    ] {
        let response = get(&server, &authorize_path(&app, &changes), Some(&cookie)).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{changes:?}");
        let pairs = answer(&location(&response));
        assert_eq!(param(&pairs, "error"), Some(error), "{changes:?}: {pairs:?}");
        assert_eq!(param(&pairs, "state"), Some("st-123"));
        assert_eq!(param(&pairs, "iss"), Some(ORIGIN));
        assert!(param(&pairs, "code").is_none());
    }
    // Unknown scopes are dropped from the grant.
    let code = code_for(&server, &app, &cookie, &[("scope", "openid email admin")]).await;
    let tokens: Value = redeem(&server, &app, &code, VERIFIER).await.json().await.expect("json");
    assert_eq!(tokens["scope"], "openid");
    assert!(jwt_part(tokens["id_token"].as_str().expect("id"), 1).get("preferred_username").is_none());
}

#[tokio::test]
async fn a_code_is_redeemed_once_by_its_app_with_its_verifier_and_a_replay_revokes_what_it_issued() {
    let server = Server::start().await;
    let (app, cookie) = allowed(&server, "ssodave").await;
    let other = register(&server, &[]).await;

    // Wrong verifier, another app, another redirect: refused, and the code is used up.
    for attempt in 0..3 {
        let code = code_for(&server, &app, &cookie, &[]).await;
        let response = match attempt {
            0 => redeem(&server, &app, &code, &VERIFIER.replace('d', "e")).await,
            1 => redeem(&server, &other, &code, VERIFIER).await,
            _ => server
                .client
                .post(server.url("/v1/token"))
                .basic_auth(&app.id, app.secret.as_deref())
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", "https://notes.example/callback/"),
                    ("code_verifier", VERIFIER),
                ])
                .send()
                .await
                .expect("request"),
        };
        expect_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
        let again = redeem(&server, &app, &code, VERIFIER).await;
        expect_oauth_error(again, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }

    // A replay after a success revokes what the first use issued.
    let code = code_for(&server, &app, &cookie, &[]).await;
    let tokens: Value = redeem(&server, &app, &code, VERIFIER).await.json().await.expect("json");
    let access = tokens["access_token"].as_str().expect("access");
    assert_eq!(server.me_bearer(access).await.status(), StatusCode::OK);
    expect_oauth_error(redeem(&server, &app, &code, VERIFIER).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(server.me_bearer(access).await.status(), StatusCode::UNAUTHORIZED, "revoked by the replay");

    // Eight concurrent redemptions of one code: exactly one wins.
    let code = code_for(&server, &app, &cookie, &[]).await;
    let attempts = (0..8).map(|_| redeem(&server, &app, &code, VERIFIER));
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts).await.iter().map(Response::status).collect();
    assert_eq!(statuses.iter().filter(|status| **status == StatusCode::OK).count(), 1, "{statuses:?}");

    // Wrong or missing client authentication: 401 invalid_client with a challenge.
    let code = code_for(&server, &app, &cookie, &[]).await;
    let wrong = App { id: app.id.clone(), secret: Some("x".repeat(43)) };
    let response = redeem(&server, &wrong, &code, VERIFIER).await;
    assert!(response.headers().contains_key("www-authenticate"));
    expect_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let anonymous = server
        .client
        .post(server.url("/v1/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .expect("request");
    expect_oauth_error(anonymous, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let both = server
        .client
        .post(server.url("/v1/token"))
        .basic_auth(&app.id, app.secret.as_deref())
        .form(&[("grant_type", "authorization_code"), ("code", code.as_str()), ("client_secret", "x")])
        .send()
        .await
        .expect("request");
    expect_oauth_error(both, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn a_public_client_redeems_with_pkce_alone_and_may_not_present_a_secret() {
    let server = Server::start().await;
    let app = register(&server, &["--public", "--skip-consent"]).await;
    server.sign_up("ssoerin").await;
    let cookie = browser_sign_in(&server, "ssoerin").await;
    let code = code_for(&server, &app, &cookie, &[]).await;
    let with_secret = App { id: app.id.clone(), secret: Some("y".repeat(43)) };
    expect_oauth_error(
        redeem(&server, &with_secret, &code, VERIFIER).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    let code = code_for(&server, &app, &cookie, &[]).await;
    let response = redeem(&server, &app, &code, VERIFIER).await;
    assert_eq!(response.status(), StatusCode::OK, "--skip-consent needs no consent page; client_id alone");
    let tokens: Value = response.json().await.expect("json");
    // A public client cannot introspect.
    let response = server
        .client
        .post(server.url("/oauth2/introspect"))
        .form(&[("token", tokens["access_token"].as_str().expect("access")), ("client_id", app.id.as_str())])
        .send()
        .await
        .expect("request");
    expect_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

#[tokio::test]
async fn prompt_none_never_shows_a_page_and_prompt_login_asks_for_the_password_again() {
    let server = Server::start().await;
    let app = register(&server, &[]).await;
    server.sign_up("ssofrank").await;

    let response = get(&server, &authorize_path(&app, &[("prompt", "none")]), None).await;
    assert_eq!(param(&answer(&location(&response)), "error"), Some("login_required"));
    let cookie = browser_sign_in(&server, "ssofrank").await;
    let response = get(&server, &authorize_path(&app, &[("prompt", "none")]), Some(&cookie)).await;
    assert_eq!(param(&answer(&location(&response)), "error"), Some("consent_required"));

    // "Deny" on the consent page: access_denied, and nothing remembered.
    let response = consent(&server, &authorize_path(&app, &[]), &cookie, "deny").await;
    assert_eq!(param(&answer(&location(&response)), "error"), Some("access_denied"));
    let response = get(&server, &authorize_path(&app, &[("prompt", "none")]), Some(&cookie)).await;
    assert_eq!(param(&answer(&location(&response)), "error"), Some("consent_required"));

    // The consent form needs the session's CSRF token.
    let mut fields = vec![("decision", "allow")];
    let path = authorize_path(&app, &[]);
    let query = path.split_once('?').expect("query").1.to_owned();
    let pairs: Vec<(String, String)> = Url::parse(&format!("http://x/?{query}"))
        .expect("url")
        .query_pairs()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    fields.extend(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let forged = post_form(&server, "/oauth2/consent", Some(&cookie), &fields).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let response = consent(&server, &authorize_path(&app, &[]), &cookie, "allow").await;
    assert!(param(&answer(&location(&response)), "code").is_some());

    // prompt=login and an old sign-in under max_age=0: back to the sign-in page, with a mark;
    // the password typed again satisfies it.
    for changes in [vec![("prompt", "login")], vec![("max_age", "0")]] {
        let response = get(&server, &authorize_path(&app, &changes), Some(&cookie)).await;
        let to_login = location(&response);
        assert!(to_login.starts_with("/login?return_to=") && to_login.contains("notice=reauthenticate"), "{to_login}");
        let page = get(&server, &to_login, Some(&cookie)).await;
        assert_eq!(page.status(), StatusCode::OK, "the form, though signed in");
        let return_to = Url::parse(&format!("http://x{to_login}"))
            .expect("url")
            .query_pairs()
            .find(|(name, _)| name == "return_to")
            .map(|(_, value)| value.into_owned())
            .expect("return_to");
        assert!(return_to.contains("signed_in_after="), "{return_to}");
        // The old sign-in does not satisfy the mark.
        let stale = get(&server, &return_to, Some(&cookie)).await;
        assert!(location(&stale).starts_with("/login?"), "{}", location(&stale));
        let fresh = post_form(
            &server,
            "/login",
            Some(&cookie),
            &[("username", "ssofrank"), ("password", PASSWORD), ("return_to", &return_to)],
        )
        .await;
        let fresh_cookie = cookie_pair(fresh.headers(), "latchkey_session").expect("cookie");
        let response = get(&server, &return_to, Some(&fresh_cookie)).await;
        let pairs = answer(&location(&response));
        assert!(param(&pairs, "code").is_some(), "{changes:?}: {pairs:?}");
    }
}

#[tokio::test]
async fn withdrawing_consent_ends_the_apps_sessions_and_asks_again() {
    let server = Server::start().await;
    let (app, cookie) = allowed(&server, "ssogina").await;
    let code = code_for(&server, &app, &cookie, &[]).await;
    let tokens: Value = redeem(&server, &app, &code, VERIFIER).await.json().await.expect("json");
    let access = tokens["access_token"].as_str().expect("access");
    let page = get(&server, "/account", Some(&cookie)).await.text().await.expect("html");
    assert!(page.contains("Apps you have allowed") && page.contains("Withdraw"), "{page}");
    let csrf = page_csrf(&server, "/account", &cookie).await;
    let path = format!("/account/apps/{}/withdraw", app.id);
    let forged = post_form(&server, &path, Some(&cookie), &[]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let response = post_form(&server, &path, Some(&cookie), &[("csrf_token", &csrf)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(server.me_bearer(access).await.status(), StatusCode::UNAUTHORIZED);
    let response = get(&server, &authorize_path(&app, &[("prompt", "none")]), Some(&cookie)).await;
    assert_eq!(param(&answer(&location(&response)), "error"), Some("consent_required"));
    let again = post_form(&server, &path, Some(&cookie), &[("csrf_token", &csrf)]).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let (ok, audit, _) = server.cli(&["audit", "--kind", "consent_withdrawn", "--json"], "");
    assert!(ok && audit.contains(&app.id), "{audit}");
}

#[tokio::test]
async fn revoking_an_apps_token_needs_the_apps_authentication_and_ends_that_app_only() {
    let server = Server::start().await;
    let (app, cookie) = allowed(&server, "ssohank").await;
    let code = code_for(&server, &app, &cookie, &[]).await;
    let tokens: Value = redeem(&server, &app, &code, VERIFIER).await.json().await.expect("json");
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let revoke = |token: String, with_app: bool| {
        let mut request = server.client.post(server.url("/v1/token/revoke")).form(&[("token", token)]);
        if with_app {
            request = request.basic_auth(&app.id, app.secret.as_deref());
        }
        request.send()
    };
    let response = revoke(access.clone(), false).await.expect("request");
    expect_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert_eq!(server.me_bearer(&access).await.status(), StatusCode::OK, "not revoked");
    assert_eq!(revoke(access.clone(), true).await.expect("request").status(), StatusCode::OK);
    assert_eq!(server.me_bearer(&access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.me_cookie(&cookie).await.status(), StatusCode::OK, "the sign-in at latchkey stays");
}

#[tokio::test]
async fn discovery_lists_the_provider() {
    let server = Server::start().await;
    let body: Value = server
        .client
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(body["authorization_endpoint"], format!("{ORIGIN}/oauth2/authorize"));
    assert_eq!(body["token_endpoint"], format!("{ORIGIN}/v1/token"));
    assert_eq!(body["userinfo_endpoint"], format!("{ORIGIN}/oauth2/userinfo"));
    assert_eq!(body["introspection_endpoint"], format!("{ORIGIN}/oauth2/introspect"));
    assert_eq!(body["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(body["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(body["id_token_signing_alg_values_supported"], serde_json::json!(["RS256", "ES256", "EdDSA"]));
    assert_eq!(body["subject_types_supported"], serde_json::json!(["public"]));
    assert_eq!(body["authorization_response_iss_parameter_supported"], true);
    assert_eq!(body["end_session_endpoint"], format!("{ORIGIN}/oauth2/logout"));
    assert_eq!(body["backchannel_logout_supported"], true);
    assert_eq!(body["backchannel_logout_session_supported"], true);
    assert!(body["grant_types_supported"].as_array().expect("grants").contains(&"authorization_code".into()));
    assert!(body["scopes_supported"].as_array().expect("scopes").contains(&"openid".into()));
}

/// An app's back-channel logout endpoint on a random loopback port: records every logout token
/// posted, and answers 503 while told to be down.
struct BackChannel {
    uri: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl BackChannel {
    async fn start() -> Self {
        use axum::extract::{Form, State as Shared};
        use std::collections::HashMap;
        type Shared2 = (std::sync::Arc<std::sync::Mutex<Vec<String>>>, std::sync::Arc<std::sync::atomic::AtomicBool>);
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let app = axum::Router::new()
            .route(
                "/backchannel",
                axum::routing::post(
                    |Shared((received, down)): Shared<Shared2>, Form(form): Form<HashMap<String, String>>| async move {
                        let token = form.get("logout_token").cloned().unwrap_or_default();
                        received.lock().expect("lock").push(token);
                        if down.load(std::sync::atomic::Ordering::SeqCst) {
                            axum::http::StatusCode::SERVICE_UNAVAILABLE
                        } else {
                            axum::http::StatusCode::OK
                        }
                    },
                ),
            )
            .with_state((received.clone(), down.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let uri = format!("http://{}/backchannel", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { uri, received, down }
    }

    fn tokens(&self) -> Vec<String> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits up to `limit` for `count` tokens.
    async fn wait_for(&self, count: usize, limit: std::time::Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + limit;
        while self.tokens().len() < count && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.tokens()
    }
}

/// A confidential app with a back-channel endpoint, allowed by a signed-in user; (app, its
/// tokens' body) after one code flow.
async fn app_with_back_channel(server: &Server, name: &str, channel: &BackChannel, cookie: &str) -> (App, Value) {
    let (ok, out, why) = server.cli(
        &[
            "client",
            "add",
            name,
            "--redirect-uri",
            CALLBACK,
            "--post-logout-redirect-uri",
            "https://notes.example/bye",
            "--backchannel-logout-uri",
            &channel.uri,
            "--skip-consent",
            "--json",
        ],
        "",
    );
    assert!(ok, "{why}");
    let added: Value = serde_json::from_str(out.trim()).expect("json");
    let app = App {
        id: added["client_id"].as_str().expect("id").to_owned(),
        secret: added["client_secret"].as_str().map(str::to_owned),
    };
    let code = code_for(server, &app, cookie, &[]).await;
    let tokens: Value = redeem(server, &app, &code, VERIFIER).await.json().await.expect("json");
    (app, tokens)
}

/// Checks a logout token against the JWKS with an independent JOSE library: its type, its
/// signature, and the claims Back-Channel Logout 1.0 §2.4 requires (and no nonce).
async fn check_logout_token(server: &Server, token: &str, app: &App, sso: &str, user: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let jwks: jsonwebtoken::jwk::JwkSet =
        server.client.get(server.url("/.well-known/jwks.json")).send().await.expect("jwks").json().await.expect("json");
    let jwk = jwks.find(header.kid.as_deref().expect("kid")).expect("the key is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[app.id.as_str()]);
    validation.set_issuer(&[ORIGIN]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation).expect("a valid logout token").claims;
    assert_eq!(claims["sid"], sso);
    assert_eq!(claims["sub"], user);
    assert!(claims["jti"].as_str().is_some_and(|jti| !jti.is_empty()));
    assert!(claims["iat"].is_i64());
    assert_eq!(claims["events"], serde_json::json!({ "http://schemas.openid.net/event/backchannel-logout": {} }));
    assert!(claims.get("nonce").is_none(), "a logout token never carries a nonce");
    claims
}

#[tokio::test]
async fn a_sign_out_at_latchkey_reaches_every_apps_back_channel_once() {
    let server = Server::start().await;
    let user = server.sign_up("ssoivy").await;
    let cookie = browser_sign_in(&server, "ssoivy").await;
    let sso = server.sessions_by_cookie(&cookie).await[0]["id"].as_str().expect("id").to_owned();
    let (notes_channel, board_channel) = (BackChannel::start().await, BackChannel::start().await);
    let (notes, notes_tokens) = app_with_back_channel(&server, "Notes", &notes_channel, &cookie).await;
    let (board, _) = app_with_back_channel(&server, "Board", &board_channel, &cookie).await;
    // A second code for the same app under the same sign-in: still one delivery.
    let code = code_for(&server, &notes, &cookie, &[]).await;
    assert_eq!(redeem(&server, &notes, &code, VERIFIER).await.status(), StatusCode::OK);

    let csrf = page_csrf(&server, "/logout", &cookie).await;
    let out = post_form(&server, "/logout", Some(&cookie), &[("csrf_token", &csrf)]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);

    let limit = std::time::Duration::from_secs(15);
    let (to_notes, to_board) = (notes_channel.wait_for(1, limit).await, board_channel.wait_for(1, limit).await);
    assert_eq!((to_notes.len(), to_board.len()), (1, 1), "one token each within 15 s");
    let user_id = user["id"].as_str().expect("id");
    check_logout_token(&server, &to_notes[0], &notes, &sso, user_id).await;
    check_logout_token(&server, &to_board[0], &board, &sso, user_id).await;
    // The app's tokens ended with the sign-in.
    let access = notes_tokens["access_token"].as_str().expect("access");
    assert_eq!(server.me_bearer(access).await.status(), StatusCode::UNAUTHORIZED);

    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(notes_channel.tokens().len(), 1, "exactly one token per app and sign-in");
    let (ok, listed, why) = server.cli(&["client", "deliveries", &notes.id, "--json"], "");
    assert!(ok, "{why}");
    let listed: Value = serde_json::from_str(listed.trim()).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["sid"], sso.as_str());
    assert_eq!(listed[0]["state"], "delivered");
    assert_eq!(listed[0]["attempts"], 1);
    assert!(listed[0]["next_attempt_at"].is_null());
    let metrics = server.client.get(server.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("latchkey_backchannel_logout_deliveries_total{outcome=\"delivered\"} 2"), "{metrics}");
}

#[tokio::test]
async fn an_app_that_is_down_is_retried_with_the_same_token_id_until_it_accepts() {
    let server = Server::start().await;
    let user = server.sign_up("ssojack").await;
    let cookie = browser_sign_in(&server, "ssojack").await;
    let sso = server.sessions_by_cookie(&cookie).await[0]["id"].as_str().expect("id").to_owned();
    let channel = BackChannel::start().await;
    let (app, _) = app_with_back_channel(&server, "Notes", &channel, &cookie).await;
    channel.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let response = server.client.post(server.url("/v1/logout")).header("cookie", &cookie).header("origin", ORIGIN);
    let csrf = page_csrf(&server, "/logout", &cookie).await;
    assert_eq!(response.header("x-csrf-token", csrf).send().await.expect("logout").status(), StatusCode::NO_CONTENT);
    let first = channel.wait_for(1, std::time::Duration::from_secs(15)).await;
    assert_eq!(first.len(), 1);
    let (ok, listed, err) = server.cli(&["client", "deliveries", &app.id, "--json"], "");
    assert!(ok, "{err}");
    let listed: Value = serde_json::from_str(listed.trim()).expect("json");
    assert_eq!(listed[0]["state"], "pending", "{listed}");
    assert!(listed[0]["next_attempt_at"].is_string(), "{listed}");
    channel.down.store(false, std::sync::atomic::Ordering::SeqCst);
    // The first retry comes within a minute (5 s after the first failure).
    let both = channel.wait_for(2, std::time::Duration::from_secs(20)).await;
    assert_eq!(both.len(), 2, "retried");
    let user_id = user["id"].as_str().expect("id");
    let (a, b) = (
        check_logout_token(&server, &both[0], &app, &sso, user_id).await,
        check_logout_token(&server, &both[1], &app, &sso, user_id).await,
    );
    assert_eq!(a["jti"], b["jti"], "a repeat carries the same jti");
    let mut delivered = false;
    for _ in 0..40 {
        let (_, listed, _) = server.cli(&["client", "deliveries", &app.id, "--json"], "");
        let listed: Value = serde_json::from_str(listed.trim()).expect("json");
        if listed[0]["state"] == "delivered" {
            assert_eq!(listed[0]["attempts"], 2);
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(delivered, "the delivery is recorded as delivered");
    let (ok, audit, _) = server.cli(&["audit", "--kind", "logout_delivery_failed", "--json"], "");
    assert!(ok && audit.contains(&app.id) && audit.contains("503"), "{audit}");
}

#[tokio::test]
async fn a_sign_in_that_expires_ends_its_apps_sessions_and_logs_them_out() {
    let server = Server::with(&[("LATCHKEY_SESSION_IDLE_TIMEOUT", "3s"), ("LATCHKEY_SESSION_CACHE_TTL", "1s")]).await;
    server.sign_up("ssokate").await;
    let cookie = browser_sign_in(&server, "ssokate").await;
    let channel = BackChannel::start().await;
    let (_, tokens) = app_with_back_channel(&server, "Notes", &channel, &cookie).await;
    let access = tokens["access_token"].as_str().expect("access");
    assert_eq!(server.me_bearer(access).await.status(), StatusCode::OK);
    // Nothing uses the sign-in: it expires after 3 s, and the sweep (every 2 s with this
    // sync interval) ends the app's session and makes its delivery due.
    let received = channel.wait_for(1, std::time::Duration::from_secs(20)).await;
    assert_eq!(received.len(), 1, "the app was told");
    assert_eq!(server.me_bearer(access).await.status(), StatusCode::UNAUTHORIZED, "the app's token is refused");
}

#[tokio::test]
async fn rp_initiated_logout_with_a_hint_ends_the_sign_in_at_once_and_without_one_asks() {
    let server = Server::start().await;
    server.sign_up("ssoleo").await;
    let channel = BackChannel::start().await;
    let cookie = browser_sign_in(&server, "ssoleo").await;
    let (app, tokens) = app_with_back_channel(&server, "Notes", &channel, &cookie).await;
    let id_token = tokens["id_token"].as_str().expect("id_token").to_owned();
    let logout = |params: Vec<(&str, String)>| {
        let mut url = Url::parse(&server.url("/oauth2/logout")).expect("url");
        url.query_pairs_mut().extend_pairs(params);
        url.to_string()
    };

    // A post-logout URI the app did not register: an error page, nothing ended.
    for bad in ["https://evil.example/bye", "https://notes.example/bye/"] {
        let url = logout(vec![("id_token_hint", id_token.clone()), ("post_logout_redirect_uri", bad.into())]);
        let response = server.client.get(url).header("cookie", &cookie).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(response.headers().get(LOCATION).is_none());
    }
    assert_eq!(server.me_cookie(&cookie).await.status(), StatusCode::OK, "still signed in");

    // No hint (a link on any page): a confirmation page; its form needs the CSRF token.
    let url = logout(vec![
        ("client_id", app.id.clone()),
        ("post_logout_redirect_uri", "https://notes.example/bye".into()),
        ("state", "s-1".into()),
    ]);
    let page = server.client.get(&url).header("cookie", &cookie).send().await.expect("request");
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"].to_str().expect("csp").to_owned();
    assert!(csp.contains("https://notes.example"), "{csp}");
    let html = page.text().await.expect("html");
    assert!(html.contains("Sign out") && html.contains("Notes"), "{html}");
    assert_eq!(server.me_cookie(&cookie).await.status(), StatusCode::OK, "a GET ends nothing");
    let fields = consent_fields(&html);
    let without_csrf: Vec<(&str, &str)> =
        fields.iter().filter(|(name, _)| name != "csrf_token").map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let forged = post_form(&server, "/oauth2/logout/confirm", Some(&cookie), &without_csrf).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // A forged hint is no hint: the page again.
    let forged_hint = format!("{}x", &id_token[..id_token.len() - 1]);
    let page = server.client.get(logout(vec![("id_token_hint", forged_hint)])).header("cookie", &cookie).send().await;
    assert_eq!(page.expect("request").status(), StatusCode::OK);
    assert_eq!(server.me_cookie(&cookie).await.status(), StatusCode::OK);

    // With the app's ID token as the hint: the sign-in ends at once, back to the app with state.
    let url = logout(vec![
        ("id_token_hint", id_token.clone()),
        ("post_logout_redirect_uri", "https://notes.example/bye".into()),
        ("state", "s-2".into()),
    ]);
    let response = server.client.get(url).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "https://notes.example/bye?state=s-2");
    assert_eq!(server.me_cookie(&cookie).await.status(), StatusCode::UNAUTHORIZED, "the sign-in ended");
    assert_eq!(channel.wait_for(1, std::time::Duration::from_secs(15)).await.len(), 1, "the app was told");

    // Confirmed by the user: a new sign-in ends, back to the app.
    let cookie = browser_sign_in(&server, "ssoleo").await;
    let page = server.client.get(logout(vec![
        ("client_id", app.id.clone()),
        ("post_logout_redirect_uri", "https://notes.example/bye".into()),
    ]));
    let html = page.header("cookie", &cookie).send().await.expect("request").text().await.expect("html");
    let fields = consent_fields(&html);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let confirmed = post_form(&server, "/oauth2/logout/confirm", Some(&cookie), &fields).await;
    assert_eq!(confirmed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&confirmed), "https://notes.example/bye");
    assert_eq!(server.me_cookie(&cookie).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn removing_an_app_ends_its_sessions_and_its_credentials() {
    let server = Server::start().await;
    let (app, cookie) = allowed(&server, "ssomia").await;
    let code = code_for(&server, &app, &cookie, &[]).await;
    let tokens: Value = redeem(&server, &app, &code, VERIFIER).await.json().await.expect("json");
    let access = tokens["access_token"].as_str().expect("access");
    let (ok, _, why) = server.cli(&["client", "remove", &app.id], "");
    assert!(ok, "{why}");
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(server.me_bearer(access).await.status(), StatusCode::UNAUTHORIZED, "its access token is refused");
    assert_eq!(server.me_cookie(&cookie).await.status(), StatusCode::OK, "the sign-in at latchkey stays");
    let refresh = refresh_as(&server, &app, tokens["refresh_token"].as_str().expect("rt")).await;
    expect_oauth_error(refresh, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let response = get(&server, &authorize_path(&app, &[]), Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "an unknown app now: an error page");
}

#[tokio::test]
async fn the_session_cap_never_ends_the_sign_in_a_new_apps_session_belongs_to() {
    let server = Server::with(&[("LATCHKEY_MAX_SESSIONS_PER_USER", "2")]).await;
    let app = register(&server, &["--skip-consent"]).await;
    server.sign_up("ssonoa").await;
    let cookie = browser_sign_in(&server, "ssonoa").await;
    let older = server.token_login("ssonoa").await;
    // The sign-in was used longest ago, yet the cap ends the token session instead.
    let code = code_for(&server, &app, &cookie, &[]).await;
    let tokens: Value = redeem(&server, &app, &code, VERIFIER).await.json().await.expect("json");
    assert_eq!(server.me_cookie(&cookie).await.status(), StatusCode::OK, "the sign-in stays");
    assert_eq!(server.me_bearer(tokens["access_token"].as_str().expect("access")).await.status(), StatusCode::OK);
    assert_eq!(server.me_bearer(&older.access).await.status(), StatusCode::UNAUTHORIZED, "the cap ended this one");
}

#[tokio::test]
async fn a_password_change_elsewhere_and_disabling_the_user_end_the_apps_sessions_and_tell_the_apps() {
    let server = Server::start().await;
    server.sign_up("ssoomar").await;
    let channel = BackChannel::start().await;
    let first = browser_sign_in(&server, "ssoomar").await;
    let (app, tokens) = app_with_back_channel(&server, "Notes", &channel, &first).await;
    let access = tokens["access_token"].as_str().expect("access").to_owned();

    // The password changed from another device: the first sign-in ends, and its app with it.
    let other = server.cookie_login("ssoomar").await;
    let changed = server
        .client
        .post(server.url("/v1/account/password"))
        .header("cookie", &other.cookie)
        .header("x-csrf-token", &other.csrf)
        .header("origin", ORIGIN)
        .json(&serde_json::json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase" }))
        .send()
        .await
        .expect("request");
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    assert_eq!(server.me_bearer(&access).await.status(), StatusCode::UNAUTHORIZED, "the app's token is refused");
    assert_eq!(channel.wait_for(1, std::time::Duration::from_secs(15)).await.len(), 1, "the app was told");

    // The app signed in again under the sign-in that stayed: disabling the user ends it too.
    let code = code_for(&server, &app, &other.cookie, &[]).await;
    let tokens: Value = redeem(&server, &app, &code, VERIFIER).await.json().await.expect("json");
    let access = tokens["access_token"].as_str().expect("access");
    assert_eq!(server.me_bearer(access).await.status(), StatusCode::OK);
    let (ok, _, why) = server.cli(&["user", "disable", "ssoomar"], "");
    assert!(ok, "{why}");
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(server.me_bearer(access).await.status(), StatusCode::UNAUTHORIZED, "refused after disabling");
    assert_eq!(channel.wait_for(2, std::time::Duration::from_secs(15)).await.len(), 2, "the app was told again");
}

#[tokio::test]
async fn a_browser_with_only_a_first_party_apps_hybrid_cookies_is_asked_to_sign_in_and_keeps_them() {
    let server = Server::start().await;
    let app = register(&server, &["--skip-consent"]).await;
    server.sign_up("ssopia").await;
    let hybrid = server.password_grant("/v1/token?delivery=cookie", "ssopia", &[("origin", ORIGIN)]).await;
    assert_eq!(hybrid.status(), StatusCode::OK);
    let access_cookie = cookie_pair(hybrid.headers(), "latchkey_at").expect("access cookie");
    // A hybrid token is a first-party app's session, not a sign-in other apps rely on.
    let response = get(&server, &authorize_path(&app, &[]), Some(&access_cookie)).await;
    let to_login = location(&response);
    assert!(to_login.starts_with("/login?") && to_login.contains("notice=reauthenticate"), "{to_login}");
    assert!(response.headers().get("set-cookie").is_none(), "the first-party app's cookies are kept");
    let page = get(&server, &to_login, Some(&access_cookie)).await;
    assert_eq!(page.status(), StatusCode::OK, "the form, not a redirect back (no loop)");
    let response = get(&server, &authorize_path(&app, &[("prompt", "none")]), Some(&access_cookie)).await;
    assert_eq!(param(&answer(&location(&response)), "error"), Some("login_required"));
}

#[tokio::test]
async fn the_authorization_userinfo_and_logout_endpoints_also_take_their_requests_as_posted_forms() {
    let server = Server::start().await;
    let (app, cookie) = allowed(&server, "ssoquinn").await;
    let path = authorize_path(&app, &[]);
    let query = path.split_once('?').expect("query").1;
    let fields: Vec<(String, String)> = Url::parse(&format!("http://x/?{query}"))
        .expect("url")
        .query_pairs()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let response = post_form(&server, "/oauth2/authorize", Some(&cookie), &fields).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let code = param(&answer(&location(&response)), "code").expect("a code").to_owned();
    let tokens: Value = redeem(&server, &app, &code, VERIFIER).await.json().await.expect("json");

    let info =
        server.client.post(server.url("/oauth2/userinfo")).bearer_auth(tokens["access_token"].as_str().expect("at"));
    let info: Value = info.send().await.expect("request").json().await.expect("json");
    assert_eq!(info["preferred_username"], "ssoquinn");

    let hint = tokens["id_token"].as_str().expect("id_token");
    let response = post_form(&server, "/oauth2/logout", None, &[("id_token_hint", hint)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(server.me_cookie(&cookie).await.status(), StatusCode::UNAUTHORIZED, "the sign-in ended");
}
