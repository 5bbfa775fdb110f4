//! The caller's own account and devices: `GET /v1/me`, `GET /v1/sessions`,
//! `DELETE /v1/sessions/{id}`, `POST /v1/logout`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use latchkey_core::sessions::{Session, SessionId};

use crate::auth::{Auth, Via};
use crate::body::OptionalJsonBody;
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::{Device, Logout, LogoutScope, Me, MeSession, NO_STORE, User, rfc3339};

/// Who the caller is and through which session. Any authenticated caller.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "either kind",
    security((), ("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The caller", body = crate::wire::Me),
        (status = 401, description = "No valid credential", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 503, description = "A store is unavailable", body = crate::wire::Problem, content_type = "application/problem+json")
    )
)]
pub(super) async fn me(State(state): State<AppState>, Auth(auth): Auth) -> Result<Response, ApiError> {
    let profile = state
        .service
        .profile(&auth.caller)
        .await?
        .ok_or(ApiError::Unauthenticated { bad_bearer: auth.via == Via::Bearer })?;
    let session = &profile.session;
    let me = Me {
        user: User::new(session.user_id, &profile.username, profile.created_at),
        session: MeSession {
            id: session.id.to_string(),
            kind: session.kind.as_str(),
            expires_at: rfc3339(session.absolute_expires_at),
        },
        auth: auth.via.as_str(),
        csrf_token: (auth.via == Via::Cookie).then(|| state.service.csrf_token(session.id)),
    };
    Ok(([NO_STORE], Json(me)).into_response())
}

/// The caller's live sessions, both kinds, newest first. Any authenticated caller.
#[utoipa::path(
    get,
    path = "/v1/sessions",
    tag = "either kind",
    security((), ("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The device list", body = Vec<crate::wire::Device>),
        (status = 401, description = "No valid credential", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 503, description = "A store is unavailable", body = crate::wire::Problem, content_type = "application/problem+json")
    )
)]
pub(super) async fn sessions(State(state): State<AppState>, Auth(auth): Auth) -> Result<Response, ApiError> {
    let sessions = state.service.sessions(auth.caller.user_id).await?;
    let names = state.service.app_names(&sessions).await?;
    let app_name =
        |session: &Session| session.app.as_ref().and_then(|app| names.get(&app.client_id)).map(String::as_str);
    let list: Vec<Device> =
        sessions.iter().map(|session| Device::new(session, auth.caller.session_id, app_name(session))).collect();
    Ok(([NO_STORE], Json(list)).into_response())
}

/// Revokes one of the caller's sessions; `404` for any id that is not theirs. Any
/// authenticated caller.
#[utoipa::path(
    delete,
    path = "/v1/sessions/{id}",
    tag = "either kind",
    params(("id" = String, Path, description = "The session id")),
    security((), ("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No valid credential", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF rule", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not one of the caller's sessions", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 503, description = "A store is unavailable", body = crate::wire::Problem, content_type = "application/problem+json")
    )
)]
pub(super) async fn revoke_one(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let session = SessionId::parse(&id).ok_or(ApiError::SessionNotFound)?;
    state.service.revoke_own(&auth.caller, session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends the current session, the caller's other sessions, or all of them. A cookie caller's
/// cookies are cleared when its own session ends. Any authenticated caller.
#[utoipa::path(
    post,
    path = "/v1/logout",
    tag = "either kind",
    request_body(content = Option<crate::wire::Logout>, content_type = "application/json"),
    security((), ("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 400, description = "Malformed JSON", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF rule", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown scope", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 503, description = "A store is unavailable", body = crate::wire::Problem, content_type = "application/problem+json")
    )
)]
pub(super) async fn logout(
    State(state): State<AppState>,
    Auth(auth): Auth,
    OptionalJsonBody(body): OptionalJsonBody<Logout>,
) -> Result<Response, ApiError> {
    let scope = body.map(|body| body.scope).unwrap_or_default();
    let caller = &auth.caller;
    state.service.log_out(caller, scope.into()).await?;
    if auth.via == Via::Cookie && scope != LogoutScope::Others {
        let jar = state.cookies.removals();
        return Ok((StatusCode::NO_CONTENT, jar).into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
