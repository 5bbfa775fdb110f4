//! `POST /v1/accounts` and `POST /v1/account/password`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use latchkey_core::service::AuthError;
use serde::Deserialize;

use super::{NO_STORE, user_json};
use crate::auth::Auth;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
pub(super) struct SignUp {
    username: String,
    password: String,
}

/// Creates an account. Anyone may call it.
pub(super) async fn sign_up(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SignUp>,
) -> Result<impl IntoResponse, ApiError> {
    let account = state.service.sign_up(&body.username, body.password).await?;
    Ok((StatusCode::CREATED, [NO_STORE], Json(user_json(&account))))
}

#[derive(Deserialize)]
pub(super) struct ChangePassword {
    current_password: String,
    new_password: String,
}

/// Changes the caller's password and revokes their other sessions. Any authenticated caller
/// (cookie callers pass the CSRF rule).
pub(super) async fn change_password(
    State(state): State<AppState>,
    Auth(auth): Auth,
    JsonBody(body): JsonBody<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    match state.service.change_password(&auth.caller, body.current_password, body.new_password).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(AuthError::InvalidCredentials) => Err(ApiError::InvalidCredentials { status: StatusCode::FORBIDDEN }),
        Err(AuthError::InvalidPassword(why)) => Err(ApiError::invalid("new_password", why)),
        Err(other) => Err(other.into()),
    }
}
