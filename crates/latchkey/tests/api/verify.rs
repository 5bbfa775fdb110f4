use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn verify_answers_200_with_identity_headers_for_every_carrier() {
    let server = Server::start().await;
    let user = server.sign_up("alice").await;
    let web = server.cookie_login("alice").await;
    let app = server.token_login("alice").await;
    let by_cookie = server.client.get(server.url("/v1/verify")).header("cookie", &web.cookie).send().await.unwrap();
    let by_bearer = server.client.get(server.url("/v1/verify")).bearer_auth(&app.access).send().await.unwrap();
    for (response, kind, session) in [(by_cookie, "cookie", &web.session_id), (by_bearer, "token", &app.session_id)] {
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers();
        assert_eq!(headers["x-auth-user-id"], user["id"].as_str().unwrap());
        assert_eq!(headers["x-auth-username"], "alice");
        assert_eq!(headers["x-auth-session-id"], session.as_str());
        assert_eq!(headers["x-auth-kind"], kind);
        assert_eq!(headers["cache-control"], "no-store");
        assert!(response.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn verify_without_a_valid_credential_is_401() {
    let server = Server::start().await;
    let none = server.client.get(server.url("/v1/verify")).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert!(none.headers().get("x-auth-user-id").is_none());
    let bad = server.client.get(server.url("/v1/verify")).bearer_auth("not.a.token").send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn verify_applies_the_csrf_rule_to_unsafe_original_methods_carried_by_cookie() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let web = server.cookie_login("alice").await;
    let app = server.token_login("alice").await;
    let check = |method_header: &'static str, method: &'static str| {
        server.client.get(server.url("/v1/verify")).header("cookie", &web.cookie).header(method_header, method)
    };
    for header in ["x-forwarded-method", "x-original-method"] {
        assert_eq!(check(header, "GET").send().await.unwrap().status(), StatusCode::OK);
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            let refused = check(header, method).send().await.unwrap();
            expect_problem(refused, StatusCode::FORBIDDEN, "csrf_rejected").await;
        }
        let foreign = check(header, "POST")
            .header("x-csrf-token", &web.csrf)
            .header("origin", "https://evil.example.test")
            .send()
            .await
            .unwrap();
        assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
        let allowed =
            check(header, "POST").header("x-csrf-token", &web.csrf).header("origin", ORIGIN).send().await.unwrap();
        assert_eq!(allowed.status(), StatusCode::OK);
    }
    let bearer = server
        .client
        .get(server.url("/v1/verify"))
        .bearer_auth(&app.access)
        .header("x-forwarded-method", "DELETE")
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::OK, "bearer requests are never subject to the CSRF rule");
}

#[tokio::test]
async fn identity_headers_are_ascii_with_the_username_percent_encoded() {
    let server = Server::start().await;
    server.sign_up("straße").await;
    let app = server.token_login("straße").await;
    let response = server.client.get(server.url("/v1/verify")).bearer_auth(&app.access).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let username = response.headers()["x-auth-username"].as_bytes();
    assert_eq!(username, b"stra%C3%9Fe", "UTF-8 bytes outside !-~ are percent-encoded in upper-case hex");
    for (_, value) in response.headers() {
        assert!(value.as_bytes().iter().all(|byte| (0x20..0x7f).contains(byte)), "{value:?} is not ASCII");
    }
}

#[tokio::test]
async fn a_client_sent_safe_method_header_cannot_hide_the_proxys_unsafe_one() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let web = server.cookie_login("alice").await;
    for (forwarded, original) in [("GET", "POST"), ("POST", "GET"), ("GET", "DELETE")] {
        let response = server
            .client
            .get(server.url("/v1/verify"))
            .header("cookie", &web.cookie)
            .header("x-forwarded-method", forwarded)
            .header("x-original-method", original)
            .send()
            .await
            .unwrap();
        expect_problem(response, StatusCode::FORBIDDEN, "csrf_rejected").await;
    }
    let safe = server
        .client
        .get(server.url("/v1/verify"))
        .header("cookie", &web.cookie)
        .header("x-forwarded-method", "GET")
        .header("x-original-method", "HEAD")
        .send()
        .await
        .unwrap();
    assert_eq!(safe.status(), StatusCode::OK);
}

#[tokio::test]
async fn another_authorization_scheme_does_not_hide_a_valid_cookie_but_a_bad_bearer_is_refused() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let web = server.cookie_login("alice").await;
    for authorization in ["Basic YWxpY2U6cGFzcw==", "", "Digest username=\"alice\"", "Bearerish abc"] {
        let response = server
            .client
            .get(server.url("/v1/verify"))
            .header("cookie", &web.cookie)
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "Authorization: {authorization:?} hid the cookie");
        assert_eq!(response.headers()["x-auth-kind"], "cookie");
    }
    for authorization in ["Bearer not.a.token", "Bearer ", "bearer"] {
        let response = server
            .client
            .get(server.url("/v1/me"))
            .header("cookie", &web.cookie)
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
        expect_problem(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
}
