//! `POST /v1/accounts` and `POST /v1/account/password`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use latchkey_core::AuthError;

use crate::auth::Auth;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::NO_STORE;
use crate::wire::{PasswordChange, SignUp, User};

/// Creates an account. Anyone may call it.
#[utoipa::path(
    post,
    path = "/v1/accounts",
    tag = "accounts",
    request_body = crate::wire::SignUp,
    responses(
        (status = 201, description = "The account", body = crate::wire::User),
        (status = 400, description = "Malformed JSON", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field fails the policy", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Username taken", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 503, description = "A store is unavailable", body = crate::wire::Problem, content_type = "application/problem+json")
    )
)]
pub(super) async fn sign_up(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SignUp>,
) -> Result<impl IntoResponse, ApiError> {
    let account = state.service.sign_up(&body.username, body.password).await?;
    Ok((StatusCode::CREATED, [NO_STORE], Json(User::new(account.id, &account.username, account.created_at))))
}

/// Changes the caller's password and revokes their other sessions. Any authenticated caller
/// (cookie callers pass the CSRF rule).
#[utoipa::path(
    post,
    path = "/v1/account/password",
    tag = "accounts",
    request_body = crate::wire::PasswordChange,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Changed; every other session revoked"),
        (status = 400, description = "Malformed JSON", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field fails the policy", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Wrong current password or CSRF rule", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 503, description = "A store is unavailable", body = crate::wire::Problem, content_type = "application/problem+json")
    )
)]
pub(super) async fn change_password(
    State(state): State<AppState>,
    Auth(auth): Auth,
    JsonBody(body): JsonBody<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    match state.service.change_password(&auth.caller, body.current_password, body.new_password).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(AuthError::InvalidPassword(why)) => Err(ApiError::invalid("new_password", why)),
        Err(other) => Err(other.into()),
    }
}
