//! What apps that sign their users in through latchkey ask of it besides the token endpoint:
//! the userinfo endpoint (OpenID Connect Core §5.3) and introspection (RFC 7662).

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::bearer_token;
use crate::body::OAuthParams;
use crate::client_auth::authenticated_client;
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::{ActiveToken, Introspection, NO_STORE, UserInfo};

/// The userinfo endpoint's path.
pub(crate) const USERINFO_PATH: &str = "/oauth2/userinfo";
/// The introspection endpoint's path.
pub(crate) const INTROSPECTION_PATH: &str = "/oauth2/introspect";

/// Who an app's access token speaks for: `sub`, and `preferred_username` with the `profile`
/// scope. Only an app's token, active now (its session live in the store).
#[utoipa::path(
    get,
    path = "/oauth2/userinfo",
    tag = "single sign-on",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = crate::wire::UserInfo),
        (status = 401, description = "No app's access token, or one that is expired or revoked", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 503, description = "A store is unavailable", body = crate::wire::Problem, content_type = "application/problem+json")
    )
)]
pub(super) async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let refused = ApiError::Unauthenticated { bad_bearer: true };
    let token = bearer_token(&headers).ok_or(ApiError::Unauthenticated { bad_bearer: false })?;
    let active = state.service.inspect_token(token).await?.filter(|active| active.access).ok_or(refused)?;
    let Some(app) = &active.session.app else {
        return Err(ApiError::Unauthenticated { bad_bearer: true });
    };
    let body = UserInfo {
        sub: active.session.user_id.to_string(),
        preferred_username: app.scopes.iter().any(|scope| scope == "profile").then(|| active.username.clone()),
    };
    Ok((StatusCode::OK, [NO_STORE], Json(body)).into_response())
}

/// `POST /oauth2/userinfo`: the same, for clients that post (OIDC Core §5.3.1).
#[utoipa::path(
    post,
    path = "/oauth2/userinfo",
    tag = "single sign-on",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = crate::wire::UserInfo),
        (status = 401, description = "No app's access token, or one that is expired or revoked", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 503, description = "A store is unavailable", body = crate::wire::Problem, content_type = "application/problem+json")
    )
)]
pub(super) async fn userinfo_post(state: State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    userinfo(state, headers).await
}

/// RFC 7662: whether a token is active, for the app it was issued to (authenticated as a
/// confidential client) or for a service holding the service token. Anything expired, revoked,
/// unknown or issued to another app is `{"active": false}`.
#[utoipa::path(
    post,
    path = "/oauth2/introspect",
    tag = "single sign-on",
    request_body(content((crate::wire::IntrospectionRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The token's state", body = crate::wire::Introspection),
        (status = 400, description = "invalid_request", body = crate::wire::OAuthError, content_type = "application/json"),
        (status = 401, description = "invalid_client", body = crate::wire::OAuthError, content_type = "application/json"),
        (status = 413, description = "Body over 64 KiB", body = crate::wire::OAuthError, content_type = "application/json"),
        (status = 415, description = "Neither a form nor JSON", body = crate::wire::OAuthError, content_type = "application/json"),
        (status = 503, description = "temporarily_unavailable", body = crate::wire::OAuthError, content_type = "application/json")
    )
)]
pub(super) async fn introspect(State(state): State<AppState>, request: Request) -> Response {
    match introspection(&state, request).await {
        Ok(response) => response,
        Err(err) => err.into_oauth(),
    }
}

async fn introspection(state: &AppState, request: Request) -> Result<Response, ApiError> {
    let headers = request.headers().clone();
    let params = OAuthParams::from_request(request, &()).await?;
    let service = bearer_token(&headers)
        .is_some_and(|token| state.config.service_token.as_ref().is_some_and(|expected| expected.matches(token)));
    let app = if service {
        None
    } else {
        match authenticated_client(state, &headers, &params).await? {
            Some(app) if !app.is_public() => Some(app),
            _ => return Err(ApiError::InvalidClient),
        }
    };
    let token = params.get("token").ok_or(ApiError::InvalidRequest("token is required"))?;
    let active = state.service.inspect_token(token).await?.filter(|active| match &app {
        Some(app) => active.session.app.as_ref().is_some_and(|granted| granted.client_id == app.id),
        None => true,
    });
    let body = Introspection {
        active: active.is_some(),
        token: active.map(|active| ActiveToken {
            sub: active.session.user_id.to_string(),
            client_id: active.session.app.as_ref().map(|app| app.client_id.to_string()),
            sid: active.session.id.to_string(),
            scope: active.session.app.as_ref().map(|app| app.scope()),
            exp: active.exp,
            iat: active.iat,
            username: active.username,
            token_type: if active.access { "Bearer" } else { "refresh_token" },
        }),
    };
    Ok((StatusCode::OK, [NO_STORE], Json(body)).into_response())
}
