//! The web pages over real HTTP: their security headers, the CSRF rule on every form (token in
//! a hidden field), `return_to` without open redirects, the API's messages and throttling, and
//! escaping of what users typed. The browser-side behaviour is in `browser/tests/`.

use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{Response, StatusCode};

use crate::helpers::{ORIGIN, PASSWORD, Server, cookie_pair, set_cookie};

/// POSTs a form as a browser would: `fields` url-encoded, with the given cookie and `Origin`.
async fn post_form(
    server: &Server,
    path: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
    fields: &[(&str, &str)],
) -> Response {
    let mut request = server.client.post(server.url(path)).form(fields);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.expect("request")
}

async fn get_page(server: &Server, path: &str, cookie: Option<&str>) -> Response {
    let mut request = server.client.get(server.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.expect("request")
}

fn location(response: &Response) -> &str {
    response.headers().get(LOCATION).and_then(|value| value.to_str().ok()).unwrap_or_default()
}

/// Signs in through `POST /login`; returns the session cookie pair.
async fn page_login(server: &Server, username: &str) -> String {
    let response =
        post_form(server, "/login", None, Some(ORIGIN), &[("username", username), ("password", PASSWORD)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    cookie_pair(response.headers(), "latchkey_session").expect("session cookie")
}

/// The CSRF token the account page put in its forms.
async fn csrf_of_page(server: &Server, cookie: &str) -> String {
    let html = get_page(server, "/account", Some(cookie)).await.text().await.expect("body");
    let marker = r#"name="csrf_token" value=""#;
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    html[start..].split('"').next().expect("value").to_owned()
}

#[tokio::test]
async fn every_page_forbids_framing_inline_script_and_caching() {
    let server = Server::start().await;
    server.sign_up("pagealice").await;
    let cookie = page_login(&server, "pagealice").await;
    for path in ["/signup", "/login?return_to=%2Fplayground", "/playground", "/account", "/logout"] {
        let signed_in = if path.starts_with("/login") { None } else { Some(cookie.as_str()) };
        let response = get_page(&server, path, signed_in).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert!(header("content-type").starts_with("text/html"), "{path}");
        let csp = header("content-security-policy");
        for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{path}: {csp}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("referrer-policy"), "same-origin", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("cache-control"), "no-store", "{path}");
        let html = response.text().await.expect("body");
        assert!(!html.contains("<script>") && !html.contains(" style="), "{path}: no inline script or style");
        assert!(!html.contains("<style"), "{path}");
    }
    for (asset, media) in
        [("latchkey.css", "text/css"), ("playground.js", "text/javascript"), ("icon.svg", "image/svg+xml")]
    {
        let response = get_page(&server, &format!("/assets/{asset}"), None).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        let content_type = response.headers()[CONTENT_TYPE].to_str().expect("ascii");
        assert!(content_type.starts_with(media), "{asset}: {content_type}");
    }
    assert_eq!(get_page(&server, "/assets/../Cargo.toml", None).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(get_page(&server, "/assets/secret.txt", None).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn signing_up_through_the_page_creates_the_account_and_sends_the_browser_to_sign_in() {
    let server = Server::start().await;
    let fields = [("username", "formuser"), ("password", PASSWORD), ("password_confirm", PASSWORD)];
    let response = post_form(&server, "/signup", None, Some(ORIGIN), &fields).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?notice=created");
    assert_eq!(server.login_attempt("formuser", PASSWORD, &[]).await.status(), StatusCode::OK);

    let again = post_form(&server, "/signup", None, Some(ORIGIN), &fields).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(again.text().await.expect("body").contains("This username is taken."));

    let weak = [("username", "weakling"), ("password", "password"), ("password_confirm", "password")];
    let weak = post_form(&server, "/signup", None, Some(ORIGIN), &weak).await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.text().await.expect("body").contains(r#"id="password-error""#));

    let mismatch = [("username", "typo"), ("password", PASSWORD), ("password_confirm", "correct horse batery")];
    let mismatch = post_form(&server, "/signup", None, Some(ORIGIN), &mismatch).await;
    assert_eq!(mismatch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(mismatch.text().await.expect("body").contains(r#"id="password_confirm-error""#));
    assert_eq!(server.login_attempt("typo", PASSWORD, &[]).await.status(), StatusCode::UNAUTHORIZED, "nothing created");

    let fields = [("username", "elsewhere"), ("password", PASSWORD), ("password_confirm", PASSWORD)];
    let cross_site = post_form(&server, "/signup", None, Some("https://evil.example"), &fields).await;
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let json = server.client.post(server.url("/signup")).json(&serde_json::json!({})).send().await.expect("request");
    assert_eq!(json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(server.login_attempt("elsewhere", PASSWORD, &[]).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_sign_in_page_sets_the_contracts_cookie_and_answers_failures_like_the_api() {
    let server = Server::start().await;
    server.sign_up("pagebob").await;
    let response =
        post_form(&server, "/login", None, Some(ORIGIN), &[("username", "PageBob"), ("password", PASSWORD)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account");
    let cookie = set_cookie(response.headers(), "latchkey_session").expect("Set-Cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let pair = cookie_pair(response.headers(), "latchkey_session").expect("pair");
    assert_eq!(server.me_cookie(&pair).await.status(), StatusCode::OK);

    // Wrong password and unknown user: one status, one page (but for the name typed back).
    let wrong =
        post_form(&server, "/login", None, Some(ORIGIN), &[("username", "pagebob"), ("password", "nope nope nope")])
            .await;
    let unknown =
        post_form(&server, "/login", None, Some(ORIGIN), &[("username", "pagecarl"), ("password", "nope nope nope")])
            .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(wrong.headers(), "latchkey_session").is_none());
    let wrong = wrong.text().await.expect("body").replace("pagebob", "NAME");
    let unknown = unknown.text().await.expect("body").replace("pagecarl", "NAME");
    assert_eq!(wrong, unknown);
    assert!(wrong.contains("The username or password is wrong."));

    // A browser that is signed in already goes straight on.
    let signed_in = get_page(&server, "/login?return_to=%2Fplayground", Some(&pair)).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&signed_in), "/playground");
}

#[tokio::test]
async fn login_csrf_from_another_site_is_refused_before_the_password_is_checked() {
    let server = Server::start().await;
    server.sign_up("attacker").await;
    let fields = [("username", "attacker"), ("password", PASSWORD)];
    for (origin, fetch_site) in [(Some("https://evil.example"), None), (Some("null"), None), (None, Some("cross-site"))]
    {
        let mut request = server.client.post(server.url("/login")).form(&fields);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(site) = fetch_site {
            request = request.header("sec-fetch-site", site);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin:?} {fetch_site:?}");
        assert!(set_cookie(response.headers(), "latchkey_session").is_none());
        assert!(response.text().await.expect("body").contains("CSRF check failed"));
    }
}

#[tokio::test]
async fn return_to_leads_only_here_or_to_allowed_origins() {
    let server = Server::with(&[("LATCHKEY_ALLOWED_ORIGINS", "https://app.example")]).await;
    server.sign_up("traveller").await;
    let login = |return_to: &'static str| {
        let server = &server;
        async move {
            let fields = [("username", "traveller"), ("password", PASSWORD), ("return_to", return_to)];
            post_form(server, "/login", None, Some(ORIGIN), &fields).await
        }
    };
    for (return_to, expected) in [
        ("/playground?tab=tokens", "/playground?tab=tokens"),
        ("https://app.example/after-login", "https://app.example/after-login"),
    ] {
        let response = login(return_to).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{return_to}");
        assert_eq!(location(&response), expected);
    }
    for foreign in [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "https://app.example@evil.example/",
        "javascript:alert(1)",
    ] {
        let response = login(foreign).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{foreign}");
        assert!(set_cookie(response.headers(), "latchkey_session").is_none(), "{foreign}: no session made");
        let page = get_page(&server, &format!("/login?return_to={}", urlencode(foreign)), None).await;
        assert_eq!(page.status(), StatusCode::BAD_REQUEST, "{foreign}");
        let html = page.text().await.expect("body");
        assert!(!html.contains(r#"name="return_to""#), "{foreign}: not carried into the form");
    }
    let signup = get_page(&server, "/signup?return_to=https%3A%2F%2Fevil.example%2F", None).await;
    assert_eq!(signup.status(), StatusCode::BAD_REQUEST);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[tokio::test]
async fn a_wrong_current_password_on_the_account_page_is_the_apis_403_and_changes_nothing() {
    let server = Server::start().await;
    server.sign_up("pagepat").await;
    let cookie = page_login(&server, "pagepat").await;
    let csrf = csrf_of_page(&server, &cookie).await;
    let fields = [
        ("current_password", "not the password at all"),
        ("new_password", "a brand new passphrase"),
        ("new_password_confirm", "a brand new passphrase"),
        ("csrf_token", csrf.as_str()),
    ];
    let response = post_form(&server, "/account/password", Some(&cookie), Some(ORIGIN), &fields).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let html = response.text().await.expect("body");
    assert!(html.contains(r#"id="current_password-error""#) && html.contains("The current password is wrong."));
    assert_eq!(server.me_cookie(&cookie).await.status(), StatusCode::OK, "still signed in");
    assert_eq!(server.login_attempt("pagepat", PASSWORD, &[]).await.status(), StatusCode::OK, "password unchanged");
}

#[tokio::test]
async fn every_account_form_needs_the_sessions_csrf_token_and_an_allowed_origin() {
    let server = Server::start().await;
    server.sign_up("formcsrf").await;
    let cookie = page_login(&server, "formcsrf").await;
    let other = server.cookie_login("formcsrf").await;
    let csrf = csrf_of_page(&server, &cookie).await;
    let other_session = other.session_id.clone();
    let revoke_path = format!("/account/sessions/{other_session}/revoke");
    let forms: [(&str, Vec<(&str, &str)>); 4] = [
        (revoke_path.as_str(), vec![]),
        ("/account/logout", vec![("scope", "all")]),
        (
            "/account/password",
            vec![
                ("current_password", PASSWORD),
                ("new_password", "x y z w v u"),
                ("new_password_confirm", "x y z w v u"),
            ],
        ),
        ("/logout", vec![]),
    ];
    for (path, fields) in &forms {
        let with = |token: &'static str| {
            let mut all = fields.clone();
            if !token.is_empty() {
                all.push(("csrf_token", token));
            }
            all
        };
        for (token, origin) in [("", Some(ORIGIN)), ("not-the-token", Some(ORIGIN)), ("", None)] {
            let response = post_form(&server, path, Some(&cookie), origin, &with(token)).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} token {token:?} origin {origin:?}");
            let why = if token.is_empty() { "CSRF token is missing" } else { "CSRF token does not match the session" };
            assert!(response.text().await.expect("body").contains(why), "{path}: {why}");
        }
        let mut with_token = fields.clone();
        with_token.push(("csrf_token", &csrf));
        let foreign = post_form(&server, path, Some(&cookie), Some("https://evil.example"), &with_token).await;
        assert_eq!(foreign.status(), StatusCode::FORBIDDEN, "{path} from a foreign origin");
        // Another session's token is not this session's.
        let mut with_other = fields.clone();
        with_other.push(("csrf_token", &other.csrf));
        let crossed = post_form(&server, path, Some(&cookie), Some(ORIGIN), &with_other).await;
        assert_eq!(crossed.status(), StatusCode::FORBIDDEN, "{path} with another session's token");
    }
    // Nothing happened: both sessions live, the password unchanged.
    assert_eq!(server.me_cookie(&cookie).await.status(), StatusCode::OK);
    assert_eq!(server.me_cookie(&other.cookie).await.status(), StatusCode::OK);
    assert_eq!(server.login_attempt("formcsrf", PASSWORD, &[]).await.status(), StatusCode::OK);

    // With the token, the revoke form works, and the revoked cookie is dead at once.
    let response = post_form(&server, &revoke_path, Some(&cookie), Some(ORIGIN), &[("csrf_token", &csrf)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account?done=revoked");
    assert_eq!(server.me_cookie(&other.cookie).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.me_cookie(&cookie).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn account_forms_refuse_what_is_not_the_callers_and_bad_values() {
    let server = Server::start().await;
    server.sign_up("owner").await;
    server.sign_up("stranger").await;
    let cookie = page_login(&server, "owner").await;
    let csrf = csrf_of_page(&server, &cookie).await;
    let strangers = server.cookie_login("stranger").await;

    for id in [strangers.session_id.as_str(), "not-a-session-id", "00000000-0000-4000-8000-000000000000"] {
        let path = format!("/account/sessions/{id}/revoke");
        let response = post_form(&server, &path, Some(&cookie), Some(ORIGIN), &[("csrf_token", &csrf)]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{id}");
    }
    assert_eq!(server.me_cookie(&strangers.cookie).await.status(), StatusCode::OK);

    let scope = post_form(
        &server,
        "/account/logout",
        Some(&cookie),
        Some(ORIGIN),
        &[("csrf_token", &csrf), ("scope", "everyone")],
    )
    .await;
    assert_eq!(scope.status(), StatusCode::BAD_REQUEST);

    let wrong = [
        ("csrf_token", csrf.as_str()),
        ("current_password", "not it at all"),
        ("new_password", "fresh new words"),
        ("new_password_confirm", "fresh new words"),
    ];
    let wrong = post_form(&server, "/account/password", Some(&cookie), Some(ORIGIN), &wrong).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert!(wrong.text().await.expect("body").contains(r#"id="current_password-error""#));
    let weak = [
        ("csrf_token", csrf.as_str()),
        ("current_password", PASSWORD),
        ("new_password", "password"),
        ("new_password_confirm", "password"),
    ];
    let weak = post_form(&server, "/account/password", Some(&cookie), Some(ORIGIN), &weak).await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.text().await.expect("body").contains(r#"id="new_password-error""#));
    assert_eq!(server.login_attempt("owner", PASSWORD, &[]).await.status(), StatusCode::OK, "unchanged");

    let text = server
        .client
        .post(server.url("/account/logout"))
        .header("cookie", &cookie)
        .header("origin", ORIGIN)
        .body("scope=all")
        .send()
        .await
        .expect("request");
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "a body that is not a form");
    assert_eq!(server.me_cookie(&cookie).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_password_change_through_the_page_is_throttled_like_the_apis() {
    let server = Server::with(&[("LATCHKEY_THROTTLE_ACCOUNT_ATTEMPTS", "2")]).await;
    server.sign_up("guessed").await;
    let cookie = page_login(&server, "guessed").await;
    let csrf = csrf_of_page(&server, &cookie).await;
    let guess = [
        ("csrf_token", csrf.as_str()),
        ("current_password", "a wrong guess"),
        ("new_password", "fresh new words"),
        ("new_password_confirm", "fresh new words"),
    ];
    // Guess until the wait is long enough (4 s) that the sign-in below surely falls inside it,
    // waiting out the shorter ones so that each next guess counts again.
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let response = post_form(&server, "/account/password", Some(&cookie), Some(ORIGIN), &guess).await;
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = response.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
            assert!(response.text().await.expect("body").contains("Too many failed attempts"));
            if wait >= 4 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
        }
    }
    assert_eq!(&statuses[..2], [StatusCode::FORBIDDEN; 2], "the free failures");
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");

    // The sign-in page shares the account's counter with the API.
    let login =
        post_form(&server, "/login", None, Some(ORIGIN), &[("username", "guessed"), ("password", PASSWORD)]).await;
    assert_eq!(login.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(login.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn pages_send_anonymous_and_revoked_browsers_to_sign_in_and_a_get_changes_nothing() {
    let server = Server::start().await;
    server.sign_up("wanderer").await;
    let anonymous = get_page(&server, "/account", None).await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&anonymous), "/login?return_to=%2Faccount");
    assert_eq!(location(&get_page(&server, "/logout", None).await), "/login");

    let cookie = page_login(&server, "wanderer").await;
    let confirm = get_page(&server, "/logout", Some(&cookie)).await;
    assert_eq!(confirm.status(), StatusCode::OK);
    assert_eq!(server.me_cookie(&cookie).await.status(), StatusCode::OK, "GET /logout only asks");

    let csrf = csrf_of_page(&server, &cookie).await;
    let out = post_form(&server, "/logout", Some(&cookie), Some(ORIGIN), &[("csrf_token", &csrf)]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&out), "/login?notice=signed_out");
    assert!(set_cookie(out.headers(), "latchkey_session").expect("cleared").contains("Max-Age=0"));
    assert_eq!(server.me_cookie(&cookie).await.status(), StatusCode::UNAUTHORIZED);

    let stale = get_page(&server, "/account", Some(&cookie)).await;
    assert_eq!(location(&stale), "/login?return_to=%2Faccount&notice=session_ended");
    assert!(set_cookie(stale.headers(), "latchkey_session").expect("cleared").contains("Max-Age=0"));
}

#[tokio::test]
async fn what_users_typed_is_escaped_on_every_page() {
    let server = Server::start().await;
    let name = "<img/src=x/onerror=alert(1)>";
    server.sign_up(name).await;
    let cookie = page_login(&server, name).await;
    let html = get_page(&server, "/account", Some(&cookie)).await.text().await.expect("body");
    assert!(!html.contains("<img/src"), "the name is escaped");
    assert!(html.contains("onerror=alert(1)"), "the name is shown");

    let typed = post_form(
        &server,
        "/login",
        None,
        Some(ORIGIN),
        &[("username", "\"><script>x()</script>"), ("password", "wrong wrong")],
    )
    .await;
    assert_eq!(typed.status(), StatusCode::UNAUTHORIZED);
    assert!(!typed.text().await.expect("body").contains("<script>x()"));

    let agent = server
        .client
        .post(server.url("/v1/session"))
        .header("user-agent", "<b>bold</b>")
        .json(&serde_json::json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(agent.status(), StatusCode::OK);
    let html = get_page(&server, "/account", Some(&cookie)).await.text().await.expect("body");
    assert!(!html.contains("<b>bold</b>"), "user agents are escaped");
}

#[tokio::test]
async fn a_form_of_a_page_opened_at_another_address_than_the_public_url_is_refused_with_directions() {
    let server = Server::start().await;
    server.sign_up("lost").await;
    // The page was opened at http://127.0.0.1:PORT, the public URL is http://localhost:8080.
    let fields = [("username", "lost"), ("password", PASSWORD)];
    let response = post_form(&server, "/login", None, Some(&server.base), &fields).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let html = response.text().await.expect("body");
    assert!(html.contains(&format!("This page was opened at {}", server.base)), "{html}");
    assert!(
        html.contains("latchkey&#39;s public URL is http://localhost:8080")
            || html.contains("public URL is http://localhost:8080"),
        "{html}"
    );
    // A real cross-site page gets no directions.
    let foreign = post_form(&server, "/login", None, Some("https://evil.example"), &fields).await;
    assert!(!foreign.text().await.expect("body").contains("This page was opened at"));
}
