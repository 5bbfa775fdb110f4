//! `GET /v1/verify`: forward authentication for reverse proxies. The hot path.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

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
pub(super) async fn verify(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let unsafe_method = original_method(&headers).is_some_and(|method| is_unsafe(&method));
    let auth = authenticate(&state, &headers, unsafe_method).await?;
    let caller = &auth.caller;
    let header =
        |value: String| HeaderValue::from_str(&value).map_err(|_| ApiError::Internal("unrepresentable header".into()));
    let headers = [
        (USER_ID.clone(), header(caller.user_id.to_string())?),
        (USERNAME.clone(), header(caller.username.as_str().to_owned())?),
        (SESSION_ID.clone(), header(caller.session_id.to_string())?),
        (KIND.clone(), HeaderValue::from_static(caller.kind.as_str())),
        NO_STORE,
    ];
    Ok((StatusCode::OK, headers).into_response())
}
