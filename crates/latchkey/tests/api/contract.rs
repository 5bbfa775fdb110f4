//! The conventions every route shares: error shapes, limits, request ids, CORS, operations,
//! and what must never be logged.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn broken_json_is_400_and_well_formed_bad_values_are_422_naming_the_field() {
    let server = Server::start().await;
    let raw = |body: &'static str| {
        server.client.post(server.url("/v1/accounts")).header("content-type", "application/json").body(body).send()
    };
    expect_problem(raw("{\"username\": ").await.unwrap(), StatusCode::BAD_REQUEST, "malformed_request").await;
    expect_problem(raw("").await.unwrap(), StatusCode::BAD_REQUEST, "malformed_request").await;
    expect_problem(raw("{} trailing").await.unwrap(), StatusCode::BAD_REQUEST, "malformed_request").await;
    let missing = expect_problem(
        raw("{\"username\": \"alice\"}").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    )
    .await;
    assert_eq!(missing["field"], "password");
    let wrong_type = expect_problem(
        raw("{\"username\": [], \"password\": \"x\"}").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    )
    .await;
    assert_eq!(wrong_type["field"], "username");
}

#[tokio::test]
async fn a_body_of_the_wrong_type_is_415() {
    let server = Server::start().await;
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let mut request = server.client.post(server.url("/v1/session")).body(r#"{"username":"alice","password":"x"}"#);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        expect_problem(request.send().await.unwrap(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            .await;
    }
    let charset = server
        .client
        .post(server.url("/v1/accounts"))
        .header("content-type", "application/json; charset=utf-8")
        .body(json!({ "username": "alice", "password": PASSWORD }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(charset.status(), StatusCode::CREATED, "parameters on the media type are fine");
}

#[tokio::test]
async fn bodies_over_64_kib_are_413() {
    let server = Server::start().await;
    let huge = json!({ "username": "alice", "password": "x".repeat(70 * 1024) }).to_string();
    let response = server
        .client
        .post(server.url("/v1/accounts"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_as_problems() {
    let server = Server::start().await;
    expect_problem(
        server.client.get(server.url("/v1/nothing")).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    for (method, path) in [
        (Method::GET, "/v1/session"),
        (Method::PUT, "/v1/me"),
        (Method::DELETE, "/v1/token"),
        (Method::POST, "/v1/verify"),
    ] {
        let response = server.client.request(method.clone(), server.url(path)).send().await.unwrap();
        assert!(response.headers().contains_key("allow"), "{method} {path}");
        expect_problem(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    }
}

#[tokio::test]
async fn request_ids_are_echoed_when_sane_and_made_otherwise() {
    let server = Server::start().await;
    let echoed = server.client.get(server.url("/healthz")).header("x-request-id", "trace-42.a_b").send().await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-42.a_b");
    for insane in ["has space", "<script>", &"a".repeat(129)] {
        let response = server.client.get(server.url("/healthz")).header("x-request-id", insane).send().await.unwrap();
        let id = response.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(id, insane);
        assert!(!id.is_empty());
    }
    let a = server.client.get(server.url("/v1/me")).send().await.unwrap();
    let b = server.client.get(server.url("/v1/me")).send().await.unwrap();
    assert_ne!(a.headers()["x-request-id"], b.headers()["x-request-id"], "errors carry ids too, each its own");
}

#[tokio::test]
async fn cors_is_granted_to_allowed_origins_only_and_never_reflected() {
    let server = Server::with(&[("LATCHKEY_ALLOWED_ORIGINS", "https://app.example.test")]).await;
    let preflight = |origin: &'static str, path: &'static str, method: &'static str| {
        server
            .client
            .request(Method::OPTIONS, server.url(path))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "content-type, x-csrf-token")
            .send()
    };
    for origin in ["https://app.example.test", ORIGIN] {
        let response = preflight(origin, "/v1/token", "POST").await.unwrap();
        assert!(response.status().is_success(), "{origin}");
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], origin);
        assert_eq!(headers["access-control-allow-credentials"], "true");
        assert!(headers["access-control-allow-methods"].to_str().unwrap().contains("POST"));
        let allowed = headers["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
        for header in ["content-type", "authorization", "x-csrf-token"] {
            assert!(allowed.contains(header), "{allowed}");
        }
    }
    let sessions = preflight("https://app.example.test", "/v1/sessions/abc", "DELETE").await.unwrap();
    let methods = sessions.headers()["access-control-allow-methods"].to_str().unwrap().to_owned();
    assert!(methods.contains("DELETE") && !methods.contains("POST"), "the route's methods: {methods}");

    let foreign = preflight("https://evil.example.test", "/v1/token", "POST").await.unwrap();
    assert!(
        foreign.headers().keys().all(|name| !name.as_str().starts_with("access-control-")),
        "{:?}",
        foreign.headers()
    );

    let simple =
        server.client.get(server.url("/v1/me")).header("origin", "https://app.example.test").send().await.unwrap();
    assert_eq!(simple.headers()["access-control-allow-origin"], "https://app.example.test");
    assert!(
        simple.headers().get_all("vary").iter().any(|v| v.to_str().unwrap().to_ascii_lowercase().contains("origin"))
    );
    for origin in [Some("https://evil.example.test"), Some("null"), None] {
        let mut request = server.client.get(server.url("/v1/me"));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.headers().keys().all(|name| !name.as_str().starts_with("access-control-")),
            "{origin:?}: {:?}",
            response.headers()
        );
    }
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let server = Server::start().await;
    for _ in 0..3 {
        assert_eq!(server.client.get(server.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
    }
    let ready: Value = server.client.get(server.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    server.sign_up("alice").await;
    server.cookie_login("alice").await;
    server.token_login("alice").await;
    let _ = server.post_json("/v1/session", &json!({ "username": "alice", "password": "wrong password" })).await;
    server.client.get(server.url("/v1/sessions/00000000-0000-4000-8000-000000000000")).send().await.unwrap();
    let metrics = server.client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"latchkey_logins_total{kind="cookie",outcome="success"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"latchkey_logins_total{kind="token",outcome="success"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"latchkey_logins_total{kind="cookie",outcome="invalid_credentials"} 1"#), "{metrics}");
    if std::env::var("LATCHKEY_TEST_BACKEND").as_deref() == Ok("redis") {
        // Redis cannot count its sessions without a per-session index (README, "Sessions in Redis").
        assert!(!metrics.contains("latchkey_active_sessions{"), "{metrics}");
    } else {
        assert!(metrics.contains("latchkey_active_sessions{} 2"), "{metrics}");
    }
    assert!(metrics.contains(r#"route="/v1/session""#), "{metrics}");
    assert!(metrics.contains(r#"route="/v1/sessions/{id}""#), "route templates, never raw paths: {metrics}");
    assert!(!metrics.contains("00000000-0000-4000"), "{metrics}");
    assert!(metrics.contains("latchkey_http_request_duration_seconds_bucket"), "{metrics}");
    // Every request is counted once, under its route, method and status.
    for series in [
        r#"latchkey_http_requests_total{route="/healthz",method="GET",status="200"} 3"#,
        r#"latchkey_http_request_duration_seconds_count{route="/healthz"} 3"#,
        r#"latchkey_http_requests_total{route="/readyz",method="GET",status="200"} 1"#,
        r#"latchkey_http_requests_total{route="/v1/sessions/{id}",method="GET",status="405"} 1"#,
    ] {
        assert!(metrics.lines().any(|line| line == series), "{series} in {metrics}");
    }
}

/// The value of `latchkey_store_operations_total` for `store` in a metrics text.
fn store_operations(metrics: &str, store: &str) -> Option<u64> {
    let series = format!("latchkey_store_operations_total{{store=\"{store}\"}} ");
    metrics.lines().find_map(|line| line.strip_prefix(series.as_str())).and_then(|count| count.trim().parse().ok())
}

#[tokio::test]
async fn the_metrics_count_the_operations_sent_to_each_store_and_a_cached_check_sends_none() {
    let backend = std::env::var("LATCHKEY_TEST_BACKEND").unwrap_or_else(|_| "sqlite".into());
    let (sql, sessions) = match backend.as_str() {
        "postgres" => ("postgres", "postgres"),
        "redis" => ("postgres", "redis"),
        _ => ("sqlite", "sqlite"),
    };
    // The same 20 checks of one cookie session, answered from the instance's cache and from
    // the store: the first ask the session store (almost) nothing, the second once each. (The
    // background tasks may ask a little meanwhile.)
    let mut added = Vec::new();
    for cache in ["5s", "0s"] {
        let server = Server::with(&[("LATCHKEY_SESSION_CACHE_TTL", cache)]).await;
        let metrics =
            || async { server.client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap() };
        let before = metrics().await;
        server.sign_up("alice").await;
        let web = server.cookie_login("alice").await;
        let after_login = metrics().await;
        for store in [sql, sessions] {
            let (was, is) = (store_operations(&before, store), store_operations(&after_login, store));
            assert!(was.is_some() && is > was, "a login asks {store}: {was:?} then {is:?}:\n{after_login}");
        }
        assert_eq!(server.status_of("/v1/verify", &Credential::Cookie(web.cookie.clone())).await, StatusCode::OK);
        let warm = store_operations(&metrics().await, sessions).unwrap();
        for _ in 0..20 {
            assert_eq!(server.status_of("/v1/verify", &Credential::Cookie(web.cookie.clone())).await, StatusCode::OK);
        }
        added.push(store_operations(&metrics().await, sessions).unwrap() - warm);
    }
    assert!(added[0] < 5, "cached checks asked {sessions} {} times", added[0]);
    assert!(added[1] >= 20, "uncached checks asked {sessions} only {} times", added[1]);
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let web = server.cookie_login("alice").await;
    let tokens = server.token_login("alice").await;
    let refreshed = Tokens::from(server.refresh(&tokens.refresh).await.json::<Value>().await.unwrap());
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    // Reuse outside the (default 10 s) window is not needed here: a wrong password and a bad
    // token exercise the failure logs.
    let _ = server.post_json("/v1/session", &json!({ "username": "alice", "password": "hunter2 wrong" })).await;
    let _ = server.me_bearer("not.a.valid-token").await;
    let logs = server.logs();
    let cookie_secret = web.cookie.split('=').nth(1).unwrap();
    for secret in [
        PASSWORD,
        "hunter2 wrong",
        cookie_secret,
        &web.csrf,
        &tokens.access,
        &tokens.refresh,
        &refreshed.refresh,
        &refreshed.access,
    ] {
        assert!(!logs.contains(secret), "a secret reached the log:\n{logs}");
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_operation_of_the_contract() {
    let server = Server::start().await;
    let response = server.client.get(server.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let document: serde_json::Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().is_some_and(|version| version.starts_with("3.")));
    let operations = [
        ("/v1/accounts", "post"),
        ("/v1/account/password", "post"),
        ("/v1/session", "post"),
        ("/v1/token", "post"),
        ("/v1/token/revoke", "post"),
        ("/v1/me", "get"),
        ("/v1/sessions", "get"),
        ("/v1/sessions/{id}", "delete"),
        ("/v1/logout", "post"),
        ("/v1/session/data", "get"),
        ("/v1/session/data", "put"),
        ("/v1/session/data", "patch"),
        ("/oauth2/userinfo", "get"),
        ("/oauth2/userinfo", "post"),
        ("/oauth2/introspect", "post"),
        ("/v1/verify", "get"),
        ("/v1/revocations", "get"),
        ("/.well-known/jwks.json", "get"),
        ("/.well-known/openid-configuration", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
    ];
    let paths = document["paths"].as_object().unwrap();
    let distinct: std::collections::BTreeSet<&str> = operations.iter().map(|(path, _)| *path).collect();
    assert_eq!(paths.len(), distinct.len(), "documented paths: {:?}", paths.keys().collect::<Vec<_>>());
    for (path, method) in operations {
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not described");
        assert!(operation["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path}");
    }
    let problem = &document["components"]["schemas"]["Problem"]["required"];
    assert!(problem.as_array().unwrap().iter().any(|field| field == "code"));
}
