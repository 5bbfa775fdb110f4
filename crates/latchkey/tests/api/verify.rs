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
