//! Cross-cutting request handling: the request id, metrics, and logging of server errors.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Version, header};
use axum::middleware::Next;
use axum::response::Response;
use tracing::{error, warn};

use crate::error::ApiError;
use crate::metrics::{method_label, route_label};
use crate::state::AppState;

/// The request-id header.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

// Request ids are an instance prefix plus a counter: unique, and far cheaper than a random
// UUID on the hot path.
static INSTANCE_PREFIX: LazyLock<String> = LazyLock::new(|| {
    let mut bytes = [0u8; 6];
    latchkey_core::secret::fill_random(&mut bytes);
    latchkey_core::secret::b64url(&bytes)
});
static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether a client-sent request id may be echoed: `[A-Za-z0-9._-]{1,128}`.
fn sane_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    (1..=128).contains(&bytes.len())
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Most bytes of request headers, names and values, in all. Generous for browsers (whose
/// cookies for one site rarely pass a few KiB) and still far below what would cost memory.
pub const HEADER_LIMIT: usize = 32 * 1024;

/// Refuses, before any handler parses them, requests whose head breaks the contract's hygiene
/// rules: an HTTP/1.1 request without exactly one `Host` (`400`, RFC 9112 §3.2), and headers
/// past [`HEADER_LIMIT`] (`431`). A made-up method is left to the router, which answers it like
/// any method a route does not take (`405`); its text reaches neither labels nor logs.
pub async fn check_request_head(request: Request, next: Next) -> Response {
    let refusal =
        if request.version() == Version::HTTP_11 && request.headers().get_all(header::HOST).iter().count() != 1 {
            Some(ApiError::Malformed("an HTTP/1.1 request must carry exactly one Host header".into()))
        } else if request.headers().iter().map(|(name, value)| name.as_str().len() + value.len()).sum::<usize>()
            > HEADER_LIMIT
        {
            Some(ApiError::HeadersTooLarge)
        } else {
            None
        };
    match refusal {
        Some(refusal) => axum::response::IntoResponse::into_response(refusal),
        None => next.run(request).await,
    }
}

/// Gives every response an `X-Request-Id`, records the request in the metrics, and logs server
/// errors once (without headers, so no credential reaches the log).
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = match request.headers().get(&REQUEST_ID) {
        Some(value) if sane_request_id(value) => value.clone(),
        _ => {
            let id = format!("{}-{}", *INSTANCE_PREFIX, REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed));
            HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
        }
    };
    let route = route_label(request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str));
    let method = request.method().clone();
    let mut response = next.run(request).await;
    let status = response.status();
    let elapsed = started.elapsed();
    state.metrics.observe_request(route, &method, status.as_u16(), elapsed.as_secs_f64());
    let method = method_label(&method);
    if status.is_server_error() {
        let id = request_id.to_str().unwrap_or_default();
        if status.as_u16() == 503 {
            warn!(request.id = id, %route, %method, status = status.as_u16(), "store unavailable");
        } else {
            error!(request.id = id, %route, %method, status = status.as_u16(), "server error");
        }
    }
    response.headers_mut().insert(REQUEST_ID.clone(), request_id);
    response
}
