//! Response headers and request limits (OWASP ASVS 5.0 V3.4 browser security headers, V4.1
//! generic web service security): HSTS over https, `nosniff` and `no-store` where they belong,
//! and a cap on request headers.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn asvs_3_4_an_https_public_url_sends_hsts_on_every_response_and_plain_http_none() {
    let secure = Server::with(&[("LATCHKEY_PUBLIC_URL", "https://auth.example.test")]).await;
    for path in ["/healthz", "/v1/me", "/no/such/route"] {
        let response = secure.client.get(secure.url(path)).send().await.unwrap();
        let hsts = response.headers().get("strict-transport-security").and_then(|v| v.to_str().ok());
        assert_eq!(hsts, Some("max-age=63072000; includeSubDomains"), "{path}");
    }
    let plain = Server::start().await;
    let response = plain.client.get(plain.url("/healthz")).send().await.unwrap();
    assert!(response.headers().get("strict-transport-security").is_none());
}

#[tokio::test]
async fn asvs_3_4_every_response_says_nosniff_and_every_one_with_a_secret_or_identity_says_no_store() {
    let server = Server::start().await;
    server.sign_up("alice").await;
    let cookie = server.cookie_login("alice").await;
    let tokens = server.token_login("alice").await;
    let responses = vec![
        ("cookie login", server.post_json("/v1/session", &json!({ "username": "alice", "password": PASSWORD })).await),
        ("token login", server.password_grant("/v1/token", "alice", &[]).await),
        ("refresh", server.refresh(&tokens.refresh).await),
        ("me by cookie", server.me_cookie(&cookie.cookie).await),
        ("me by bearer", server.me_bearer(&tokens.access).await),
        ("verify", server.client.get(server.url("/v1/verify")).bearer_auth(&tokens.access).send().await.unwrap()),
        ("sessions", server.client.get(server.url("/v1/sessions")).bearer_auth(&tokens.access).send().await.unwrap()),
        ("a 401", server.me_bearer("nope").await),
    ];
    for (what, response) in responses {
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(header("cache-control").as_deref(), Some("no-store"), "{what}");
        assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"), "{what}");
    }
}

#[tokio::test]
async fn asvs_4_1_request_headers_over_32_kib_in_all_get_431_and_the_server_carries_on() {
    let server = Server::start().await;
    let mut request = server.client.get(server.url("/v1/me"));
    for n in 0..5 {
        request = request.header(format!("x-filler-{n}"), "a".repeat(7_000));
    }
    let response = request.send().await.unwrap();
    expect_problem(response, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large").await;
    let fine = server.client.get(server.url("/v1/me")).header("x-filler", "a".repeat(7_000)).send().await.unwrap();
    assert_eq!(fine.status(), StatusCode::UNAUTHORIZED, "a large but allowed request is handled");
    assert_eq!(server.client.get(server.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
}

/// Opens a raw connection to the server.
async fn connect(server: &Server) -> tokio::net::TcpStream {
    let address = server.base.trim_start_matches("http://");
    tokio::net::TcpStream::connect(address).await.expect("connect")
}

/// Sends `request` on a fresh connection and reads until the server closes it or `limit`
/// passes; returns what was read.
async fn exchange(server: &Server, request: &[u8], limit: std::time::Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = connect(server).await;
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// Waits until the server closes `stream` (a read returns end of file or a reset); returns how
/// long that took, or `None` if it stayed open for `limit`.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: std::time::Duration) -> Option<std::time::Duration> {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

/// This test process's open-files limit, raised so it can hold many connections.
fn allow_many_connections() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}

#[tokio::test]
async fn api_precise_rules_made_up_methods_get_405_and_never_reach_the_metrics_or_the_log() {
    let server = Server::start().await;
    for n in 0..100 {
        let method = format!("FLOOD{n}{}", "M".repeat(20_000));
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = server.client.request(method, server.url("/v1/me")).send().await.unwrap();
        expect_problem(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    }
    // A method past the request-head limit is refused by the HTTP layer without being kept.
    let huge = format!("{} /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "H".repeat(70_000));
    let answer = exchange(&server, huge.as_bytes(), std::time::Duration::from_secs(5)).await;
    assert!(
        ["400", "414", "431", "501"].iter().any(|status| answer.starts_with(&format!("HTTP/1.1 {status}"))),
        "{answer}"
    );
    let metrics = server.client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!metrics.contains("FLOOD"), "a made-up method became a label");
    assert!(metrics.contains("method=\"other\""), "{metrics}");
    assert!(metrics.len() < 64 * 1024, "the metrics grew to {} bytes", metrics.len());
    assert!(!server.logs().contains("FLOOD"), "a made-up method reached the log");
    assert_eq!(server.client.get(server.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn api_precise_rules_an_http_1_1_request_needs_exactly_one_host() {
    let server = Server::start().await;
    let limit = std::time::Duration::from_secs(5);
    let without = exchange(&server, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", limit).await;
    assert!(without.starts_with("HTTP/1.1 400"), "{without}");
    assert!(without.contains("malformed_request"), "{without}");
    let twice = b"GET /healthz HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n";
    let twice = exchange(&server, twice, limit).await;
    assert!(twice.starts_with("HTTP/1.1 400"), "{twice}");
    let once = exchange(&server, b"GET /healthz HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n", limit).await;
    assert!(once.starts_with("HTTP/1.1 200"), "{once}");
    let old = exchange(&server, b"GET /healthz HTTP/1.0\r\n\r\n", limit).await;
    assert!(old.starts_with("HTTP/1.0 200"), "HTTP/1.0 has no Host requirement: {old}");
}

#[tokio::test]
async fn api_precise_rules_slow_heads_idle_keep_alives_and_stalled_bodies_are_closed_after_the_client_timeout() {
    use tokio::io::AsyncWriteExt;
    let server = Server::with(&[("LATCHKEY_CLIENT_TIMEOUT", "2s")]).await;
    let limit = std::time::Duration::from_secs(6);

    // A head sent a byte at a time never completes: the timeout counts from its first byte.
    let mut slow = connect(&server).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let trickle = async {
        for _ in 0..20 {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_millis(2_600), trickle).await;
    let closed = closed_within(&mut slow, limit).await;
    assert!(closed.is_some(), "a trickled head kept its connection");

    // An idle keep-alive connection, after a whole exchange.
    let mut idle = connect(&server).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let idle_for = closed_within(&mut idle, limit).await.expect("an idle keep-alive connection stayed open");
    assert!(idle_for >= std::time::Duration::from_millis(1_500), "closed too early: {idle_for:?}");

    // A body that stalls: the request ends with 408 and the connection closes.
    let mut stalled = connect(&server).await;
    let head =
        "POST /v1/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user";
    stalled.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(limit, tokio::io::AsyncReadExt::read_to_end(&mut stalled, &mut answer)).await;
    assert!(read.is_ok(), "a stalled body kept its connection");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
}

#[tokio::test]
async fn api_precise_rules_past_the_connection_cap_new_connections_get_503_at_once_and_those_in_progress_are_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    allow_many_connections();
    let server = Server::with(&[("LATCHKEY_MAX_CONNECTIONS", "40"), ("LATCHKEY_CLIENT_TIMEOUT", "3s")]).await;
    let mut held = Vec::new();
    for _ in 0..40 {
        let mut stream = connect(&server).await;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        held.push(stream);
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let over = exchange(&server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", std::time::Duration::from_secs(2)).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "the refused connection hung");
    assert!(over.is_empty() || over.starts_with("HTTP/1.1 503"), "{over}");
    // A connection in progress finishes its request.
    let mut first = held.remove(0);
    first.write_all(b"\r\n").await.unwrap();
    let mut buffer = [0u8; 512];
    let read = tokio::time::timeout(std::time::Duration::from_secs(2), first.read(&mut buffer)).await;
    let answer = String::from_utf8_lossy(&buffer[..read.expect("answered").expect("read")]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(first);
    // Once the held connections time out, new clients are served again.
    drop(held);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(6);
    loop {
        if let Ok(response) = server.client.get(server.url("/healthz")).send().await
            && response.status() == StatusCode::OK
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the server never recovered from the cap");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let metrics = server.client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let refused: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("latchkey_http_connections_refused_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    assert!(refused >= 1, "the refusal is counted: {metrics}");
}

#[tokio::test]
async fn a_bounded_slowloris_of_1200_connections_does_not_stop_other_clients() {
    use tokio::io::AsyncWriteExt;
    allow_many_connections();
    let server = Server::start().await;
    server.sign_up("alice").await;
    let tokens = server.token_login("alice").await;
    let mut slow = Vec::new();
    for _ in 0..1_200 {
        let mut stream = connect(&server).await;
        stream.write_all(b"GET /v1/me HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        slow.push(stream);
    }
    // While they trickle, other clients are served.
    let mut latencies = Vec::new();
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(3) {
        for stream in slow.iter_mut().step_by(10) {
            let _ = stream.write_all(b"X-Slow: 1\r\n").await;
        }
        let sent = std::time::Instant::now();
        let response = server.me_bearer(&tokens.access).await;
        latencies.push(sent.elapsed());
        assert_eq!(response.status(), StatusCode::OK, "another client was refused under slowloris");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    latencies.sort();
    let metrics = server.client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let open = metrics.lines().find_map(|line| line.strip_prefix("latchkey_http_connections ")).unwrap_or("?");
    println!(
        "slowloris: {} slow connections, {open} open at the server; other client's /v1/me p50 {:?}, p99 {:?} over {} requests",
        slow.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100],
        latencies.len()
    );
    assert!(latencies.len() >= 20);
}
