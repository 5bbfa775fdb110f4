//! `GET /v1/verify`: forward authentication for reverse proxies. The hot path.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use crate::auth::{authenticate, is_unsafe};
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::NO_STORE;

static USER_ID: HeaderName = HeaderName::from_static("x-auth-user-id");
static USERNAME: HeaderName = HeaderName::from_static("x-auth-username");
static SESSION_ID: HeaderName = HeaderName::from_static("x-auth-session-id");
static KIND: HeaderName = HeaderName::from_static("x-auth-kind");
static FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
static ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");

/// Whether the request the proxy is asking about was unsafe. Proxies name its method in
/// `X-Forwarded-Method` (Traefik, Caddy) or `X-Original-Method` (nginx); a proxy that sets one
/// may pass the other through from the client, so the request counts as unsafe when any of
/// them names an unsafe method — a client cannot talk its way out of the CSRF rule.
fn original_method_is_unsafe(headers: &HeaderMap) -> bool {
    [&FORWARDED_METHOD, &ORIGINAL_METHOD]
        .into_iter()
        .flat_map(|name| headers.get_all(name))
        .any(|value| Method::from_bytes(value.as_bytes()).map_or(true, |method| is_unsafe(&method)))
}

/// The username as an identity header: ASCII, with every byte of its UTF-8 outside `!`–`~`,
/// and `%` itself, percent-encoded in upper-case hex (API.md, "Identity headers").
fn username_header(username: &str) -> Result<HeaderValue, ApiError> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut encoded = Vec::with_capacity(username.len());
    for &byte in username.as_bytes() {
        if byte.is_ascii_graphic() && byte != b'%' {
            encoded.push(byte);
        } else {
            encoded.extend_from_slice(&[b'%', HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xF)]]);
        }
    }
    // Taken as it is, without the copy `from_bytes` would make.
    HeaderValue::from_maybe_shared(axum::body::Bytes::from(encoded))
        .map_err(|_| ApiError::Internal("unrepresentable header".into()))
}

/// `200` with the caller in `X-Auth-*` headers, `401` without a valid credential, `403` when a
/// cookie-carried unsafe original request fails the CSRF rule. Called by the proxy.
///
/// Takes the request whole so its headers are borrowed, not cloned, and sizes the response's
/// header map once: this is the hot path.
#[utoipa::path(
    get,
    path = "/v1/verify",
    tag = "gateways",
    params(("X-Forwarded-Method" = Option<String>, Header, description = "The original method"), ("X-Original-Method" = Option<String>, Header, description = "The original method")),
    security((), ("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "Authenticated; the caller in X-Auth-User-Id, X-Auth-Username, X-Auth-Session-Id, X-Auth-Kind"),
        (status = 401, description = "No valid credential", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF rule for an unsafe original method", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 503, description = "A store is unavailable", body = crate::wire::Problem, content_type = "application/problem+json")
    )
)]
pub(super) async fn verify(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let headers = request.headers();
    let unsafe_method = original_method_is_unsafe(headers);
    let caller = authenticate(&state, headers, unsafe_method).await?.caller;
    let mut response = ().into_response();
    let out = response.headers_mut();
    // Room for these five and the request id and nosniff the middleware adds, so it never grows.
    out.reserve(8);
    out.insert(USER_ID.clone(), uuid_header(caller.user_id.as_uuid())?);
    out.insert(USERNAME.clone(), username_header(caller.username.as_str())?);
    out.insert(SESSION_ID.clone(), uuid_header(caller.session_id.as_uuid())?);
    out.insert(KIND.clone(), HeaderValue::from_static(caller.kind.as_str()));
    out.insert(NO_STORE.0, NO_STORE.1);
    Ok(response)
}

/// A UUID's hyphenated text as a header value, formatted on the stack.
fn uuid_header(id: Uuid) -> Result<HeaderValue, ApiError> {
    let mut buffer = Uuid::encode_buffer();
    header_value(id.hyphenated().encode_lower(&mut buffer))
}

fn header_value(text: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(text).map_err(|_| ApiError::Internal("unrepresentable header".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_become_ascii_header_values() {
        let encoded = |name: &str| username_header(name).map(|value| value.to_str().map(str::to_owned));
        assert_eq!(encoded("alice").ok().and_then(Result::ok).as_deref(), Some("alice"));
        assert_eq!(encoded("straße").ok().and_then(Result::ok).as_deref(), Some("stra%C3%9Fe"));
        assert_eq!(encoded("100%").ok().and_then(Result::ok).as_deref(), Some("100%25"));
        assert_eq!(encoded("a b").ok().and_then(Result::ok).as_deref(), Some("a%20b"));
    }

    #[test]
    fn any_unsafe_original_method_counts() {
        let mut headers = HeaderMap::new();
        assert!(!original_method_is_unsafe(&headers));
        headers.insert("x-forwarded-method", HeaderValue::from_static("GET"));
        assert!(!original_method_is_unsafe(&headers));
        headers.insert("x-original-method", HeaderValue::from_static("POST"));
        assert!(original_method_is_unsafe(&headers), "a client's GET cannot hide the proxy's POST");
        headers.insert("x-original-method", HeaderValue::from_static("not a method"));
        assert!(original_method_is_unsafe(&headers), "an unreadable method is treated as unsafe");
    }
}
