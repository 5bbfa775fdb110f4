//! `GET /v1/verify`: forward authentication for reverse proxies. The hot path.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::NO_STORE;
use crate::auth::{authenticate, is_unsafe};
use crate::error::ApiError;
use crate::state::AppState;

static USER_ID: HeaderName = HeaderName::from_static("x-auth-user-id");
static USERNAME: HeaderName = HeaderName::from_static("x-auth-username");
static SESSION_ID: HeaderName = HeaderName::from_static("x-auth-session-id");
static KIND: HeaderName = HeaderName::from_static("x-auth-kind");

/// The method of the request the proxy is asking about.
fn original_method(headers: &HeaderMap) -> Option<Method> {
    let value = headers.get("x-forwarded-method").or_else(|| headers.get("x-original-method"))?;
    Method::from_bytes(value.as_bytes()).ok()
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
        (status = 401, description = "No valid credential", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF rule for an unsafe original method", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "A store is unavailable", body = crate::openapi::Problem, content_type = "application/problem+json")
    )
)]
pub(super) async fn verify(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let headers = request.headers();
    let unsafe_method = original_method(headers).is_some_and(|method| is_unsafe(&method));
    let caller = authenticate(&state, headers, unsafe_method).await?.caller;
    let mut response = ().into_response();
    let out = response.headers_mut();
    // Room for these five and the request id and nosniff the middleware adds, so it never grows.
    out.reserve(8);
    out.insert(USER_ID.clone(), uuid_header(caller.user_id.as_uuid())?);
    out.insert(USERNAME.clone(), header_value(caller.username.as_str())?);
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
