//! `POST /v1/session`: log in with a cookie session.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use latchkey_core::sessions::{ClientInfo, Credential, Login, SessionKind};

use crate::auth::{check_origin, client_ip};
use crate::body::{JsonBody, body_of};
use crate::error::ApiError;
use crate::metrics::LoginOutcome;
use crate::state::AppState;
use crate::wire::NO_STORE;
use crate::wire::{CookieLogin, CookieSession, Credentials, User};

/// What a login needs from the request besides its body.
pub(crate) fn client_info(state: &AppState, request: &Request) -> ClientInfo {
    let user_agent = request.headers().get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok());
    let ip = client_ip(state, request.extensions(), request.headers()).map(|ip| ip.to_string());
    ClientInfo::new(user_agent, ip)
}

/// Logs in and sets the session cookie. Anyone may call it, but not from a cross-site page.
/// A cookie sent in is ignored: every login mints a new secret.
#[utoipa::path(
    post,
    path = "/v1/session",
    tag = "cookie sessions",
    request_body = crate::wire::Credentials,
    responses(
        (status = 200, description = "A new cookie session (the secret is in Set-Cookie)", body = crate::wire::CookieLogin),
        (status = 400, description = "Malformed JSON", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field fails the policy", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Unknown user or wrong password", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Cross-site request", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 503, description = "A store is unavailable", body = crate::wire::Problem, content_type = "application/problem+json")
    )
)]
pub(super) async fn log_in(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let kind = SessionKind::Cookie.as_str();
    if let Err(refused) = check_origin(&state, request.headers()) {
        state.metrics.observe_login(kind, LoginOutcome::Refused);
        return Err(refused);
    }
    let client = client_info(&state, &request);
    let JsonBody(body) = match body_of::<JsonBody<Credentials>>(request).await {
        Ok(body) => body,
        Err(err) => {
            state.metrics.observe_login(kind, LoginOutcome::Refused);
            return Err(err);
        }
    };
    let login = state.log_in(&body.username, body.password, SessionKind::Cookie, client).await?;
    let jar = session_cookie_jar(&state, &login)?;
    let body = CookieLogin {
        user: User::new(login.account.id, &login.account.username, login.account.created_at),
        session: CookieSession::new(&login.session),
        csrf_token: login.csrf_token,
    };
    Ok((StatusCode::OK, [NO_STORE], jar, Json(body)).into_response())
}

/// The `Set-Cookie` carrying a new cookie session's secret, living as long as the session can.
pub(crate) fn session_cookie_jar(state: &AppState, login: &Login) -> Result<CookieJar, ApiError> {
    let Credential::Cookie(secret) = &login.credential else {
        return Err(ApiError::Internal("a cookie login produced tokens".into()));
    };
    let max_age = login.session.absolute_expires_at - state.service.now();
    Ok(CookieJar::new().add(state.cookies.session_cookie(secret.expose(), max_age)))
}
