//! `GET /v1/revocations`: the revocation feed, for services that verify access tokens locally
//! with the JWKS and still want "log out everywhere" to bite. A snapshot (optionally after a
//! cursor) or, with `Accept: text/event-stream`, server-sent events that resume losslessly
//! from `Last-Event-ID`.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use latchkey_core::Latchkey;
use latchkey_core::sessions::SessionKind;
use latchkey_core::store::Revocation;
use tokio::sync::{broadcast, watch};
use tracing::warn;

use crate::auth::bearer_token;
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::{NO_STORE, RevocationSnapshot, RevokedSession};

/// An entry as an event's data.
fn entry_json(entry: &Revocation) -> String {
    serde_json::to_string(&RevokedSession::new(entry)).unwrap_or_default()
}

fn parse_cursor(text: &str, field: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|cursor| *cursor >= 0)
        .ok_or_else(|| ApiError::invalid(field, "not a cursor this feed issued"))
}

/// The feed. Callers: services holding `LATCHKEY_SERVICE_TOKEN`; `404` when none is configured.
#[utoipa::path(
    get,
    path = "/v1/revocations",
    tag = "gateways",
    params(("since" = Option<String>, Query, description = "Resume after this cursor")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A snapshot, or server-sent events with Accept: text/event-stream", body = crate::wire::RevocationSnapshot),
        (status = 400, description = "Malformed query", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid service token", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 404, description = "The feed is off", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a cursor", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 503, description = "A store is unavailable", body = crate::wire::Problem, content_type = "application/problem+json")
    )
)]
pub(super) async fn revocations(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let Some(expected) = &state.config.service_token else { return Err(ApiError::NotFound) };
    let presented = bearer_token(&headers);
    if !presented.is_some_and(|token| expected.matches(token)) {
        return Err(ApiError::Unauthenticated { bad_bearer: presented.is_some() });
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.as_deref().unwrap_or_default())
        .map_err(|_| ApiError::Malformed("malformed query string".into()))?;
    let since = match pairs.iter().find(|(name, _)| name == "since") {
        Some((_, value)) => Some(parse_cursor(value, "since")?),
        None => None,
    };
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"));
    if wants_stream {
        let resume = match headers.get("last-event-id").and_then(|value| value.to_str().ok()) {
            Some(id) => Some(parse_cursor(id, "Last-Event-ID")?),
            None => since,
        };
        let events = event_stream(state.service.clone(), state.shutdown.clone(), resume.unwrap_or(0)).await?;
        return Ok(([NO_STORE], Sse::new(events).keep_alive(KeepAlive::default())).into_response());
    }
    let (entries, cursor) = state.service.revocations_after(since.unwrap_or(0)).await?;
    let revoked = entries.iter().map(RevokedSession::new).collect();
    Ok(([NO_STORE], Json(RevocationSnapshot { cursor: cursor.to_string(), revoked })).into_response())
}

struct Feed {
    service: Latchkey,
    live: broadcast::Receiver<Revocation>,
    pending: VecDeque<Revocation>,
    last_sent: i64,
    shutdown: watch::Receiver<bool>,
}

/// Entries after `start`: the backlog from the store, then live ones, each once, in log order.
async fn event_stream(
    service: Latchkey,
    shutdown: watch::Receiver<bool>,
    start: i64,
) -> Result<impl Stream<Item = Result<Event, Infallible>>, ApiError> {
    // Subscribe before reading the backlog, so nothing falls between the two.
    let live = service.subscribe_revocations();
    let (backlog, _) = service.revocations_after(start).await?;
    let feed = Feed { service, live, pending: backlog.into(), last_sent: start, shutdown };
    Ok(stream::unfold(feed, |mut feed| async move {
        loop {
            if let Some(entry) = feed.pending.pop_front() {
                if entry.cursor <= feed.last_sent {
                    continue;
                }
                feed.last_sent = entry.cursor;
                if entry.kind != SessionKind::Token || entry.until <= feed.service.now() {
                    continue;
                }
                let event = Event::default().id(entry.cursor.to_string()).data(entry_json(&entry));
                return Some((Ok(event), feed));
            }
            if *feed.shutdown.borrow() {
                return None;
            }
            tokio::select! {
                _ = feed.shutdown.changed() => return None,
                received = feed.live.recv() => match received {
                    Ok(entry) => feed.pending.push_back(entry),
                    // Fell behind the broadcast: catch up from the store.
                    Err(broadcast::error::RecvError::Lagged(_)) => match feed.service.revocations_after(feed.last_sent).await {
                        Ok((entries, _)) => feed.pending.extend(entries),
                        Err(err) => {
                            // Ending the stream makes the client reconnect with Last-Event-ID.
                            warn!(error = %err, "revocation feed could not catch up; closing the stream");
                            return None;
                        }
                    },
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }))
}
