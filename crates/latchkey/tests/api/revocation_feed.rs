use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

const SERVICE_TOKEN: &str = "feed-secret-0123456789-abcdefghijklmnop";

async fn feed_server() -> Server {
    Server::with(&[("LATCHKEY_SERVICE_TOKEN", SERVICE_TOKEN)]).await
}

async fn snapshot(server: &Server, since: Option<&str>) -> Value {
    let path = match since {
        Some(cursor) => format!("/v1/revocations?since={cursor}"),
        None => "/v1/revocations".to_owned(),
    };
    let response = server.client.get(server.url(&path)).bearer_auth(SERVICE_TOKEN).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

fn sids(snapshot: &Value) -> Vec<String> {
    snapshot["revoked"].as_array().unwrap().iter().map(|entry| entry["sid"].as_str().unwrap().to_owned()).collect()
}

async fn revoke(server: &Server, tokens: &Tokens) {
    let response = server.client.post(server.url("/v1/logout")).bearer_auth(&tokens.access).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

/// Opens the feed as an event stream, resuming after `last_event_id` if given.
async fn open_stream(server: &Server, last_event_id: Option<&str>) -> reqwest::Response {
    let mut request = server
        .client
        .get(server.url("/v1/revocations"))
        .bearer_auth(SERVICE_TOKEN)
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response
}

/// Reads server-sent events until one with an id arrives: (id, data).
async fn next_event(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buffer: &mut String,
) -> (String, Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field =
                |name: &str| block.lines().find_map(|line| line.strip_prefix(name)).map(|v| v.trim().to_owned());
            if let (Some(id), Some(data)) = (field("id:"), field("data:")) {
                return (id, serde_json::from_str(&data).unwrap());
            }
            continue;
        }
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("an event within 5 s")
            .expect("stream open")
            .unwrap();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn the_feed_is_off_without_a_service_token() {
    let server = Server::start().await;
    let response = server.client.get(server.url("/v1/revocations")).bearer_auth(SERVICE_TOKEN).send().await.unwrap();
    expect_problem(response, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn the_feed_needs_the_service_token() {
    let server = feed_server().await;
    server.sign_up("alice").await;
    let user = server.token_login("alice").await;
    let none = server.client.get(server.url("/v1/revocations")).send().await.unwrap();
    expect_problem(none, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    for wrong in ["feed-secret-0123456789-abcdefghijklmnoq", user.access.as_str()] {
        let response = server.client.get(server.url("/v1/revocations")).bearer_auth(wrong).send().await.unwrap();
        expect_problem(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
}

#[tokio::test]
async fn a_short_service_token_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("LATCHKEY_DATA_DIR".to_owned(), dir.path().display().to_string()),
        ("LATCHKEY_SERVICE_TOKEN".to_owned(), "short".to_owned()),
    ];
    let output = output_within(command(&["serve"], &env), Duration::from_secs(20));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("LATCHKEY_SERVICE_TOKEN"));
}

#[tokio::test]
async fn a_snapshot_lists_revoked_token_sessions_and_resumes_from_its_cursor() {
    let server = feed_server().await;
    server.sign_up("alice").await;
    let empty = snapshot(&server, None).await;
    assert_eq!(sids(&empty), Vec::<String>::new());
    let a = server.token_login("alice").await;
    let b = server.token_login("alice").await;
    let web = server.cookie_login("alice").await;
    revoke(&server, &a).await;
    let web_logout = server
        .client
        .post(server.url("/v1/logout"))
        .header("cookie", &web.cookie)
        .header("x-csrf-token", &web.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(web_logout.status(), StatusCode::NO_CONTENT);

    let first = snapshot(&server, None).await;
    assert_eq!(sids(&first), vec![a.session_id.clone()], "token sessions only");
    let until = first["revoked"][0]["until"].as_str().unwrap();
    assert!(until.ends_with('Z'), "{until}");
    let cursor = first["cursor"].as_str().unwrap().to_owned();

    revoke(&server, &b).await;
    let next = snapshot(&server, Some(&cursor)).await;
    assert_eq!(sids(&next), vec![b.session_id.clone()], "only what came after the cursor");
    let later = snapshot(&server, Some(next["cursor"].as_str().unwrap())).await;
    assert!(sids(&later).is_empty());

    for bad in ["-1", "abc", "1.5"] {
        let response = server
            .client
            .get(server.url(&format!("/v1/revocations?since={bad}")))
            .bearer_auth(SERVICE_TOKEN)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
        assert_eq!(problem["field"], "since");
    }
}

#[tokio::test]
async fn an_event_stream_delivers_revocations_as_they_happen_and_resumes_from_last_event_id() {
    let server = feed_server().await;
    server.sign_up("alice").await;
    let a = server.token_login("alice").await;
    let b = server.token_login("alice").await;
    let c = server.token_login("alice").await;

    let response = open_stream(&server, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut stream = Box::pin(response.bytes_stream());
    let mut buffer = String::new();

    revoke(&server, &a).await;
    let (first_id, first) = next_event(&mut stream, &mut buffer).await;
    assert_eq!(first["sid"], a.session_id.as_str());
    assert!(first["until"].is_string());
    drop(stream);

    // Missed while disconnected: delivered on reconnect with Last-Event-ID, in order.
    revoke(&server, &b).await;
    revoke(&server, &c).await;
    let resumed = open_stream(&server, Some(&first_id)).await;
    let mut stream = Box::pin(resumed.bytes_stream());
    let mut buffer = String::new();
    let (_, second) = next_event(&mut stream, &mut buffer).await;
    let (_, third) = next_event(&mut stream, &mut buffer).await;
    assert_eq!(second["sid"], b.session_id.as_str());
    assert_eq!(third["sid"], c.session_id.as_str());
}

#[tokio::test]
async fn revocations_made_by_another_process_reach_the_event_stream() {
    let server = feed_server().await;
    server.sign_up("alice").await;
    let a = server.token_login("alice").await;
    let response = open_stream(&server, None).await;
    let mut stream = Box::pin(response.bytes_stream());
    let (ok, out, err) = server.cli(&["sessions", "revoke", &a.session_id], "");
    assert!(ok, "{out}{err}");
    let (_, event) = next_event(&mut stream, &mut String::new()).await;
    assert_eq!(event["sid"], a.session_id.as_str());
}

#[tokio::test]
async fn shutdown_ends_open_event_streams() {
    let mut server = feed_server().await;
    let response = open_stream(&server, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let status = std::process::Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = server.wait_for_exit(Duration::from_secs(10)).expect("exits with a stream open");
    assert!(exit.success(), "{exit:?}");
    drop(response);
}
