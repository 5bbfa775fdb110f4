//! `POST /v1/token` (RFC 6749 §5 shape; password, refresh_token and, for apps signing in through
//! latchkey, authorization_code grants; `?delivery=cookie` for the hybrid) and
//! `POST /v1/token/revoke` (RFC 7009). Every error uses RFC 6749 §5.2.

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use latchkey_core::sessions::{AppSession, Credential, Session, SessionKind};
use latchkey_core::tokens::TokenPair;

use crate::auth::{CSRF_HEADER, check_origin};
use crate::body::OAuthParams;
use crate::client_auth::authenticated_client;
use crate::cookies::request_cookie;
use crate::error::ApiError;
use crate::metrics::LoginOutcome;
use crate::routes::session::client_info;
use crate::state::AppState;
use crate::wire::{self, CookieDelivery, Delivery, NO_STORE};

const PRAGMA_NO_CACHE: (header::HeaderName, HeaderValue) = (header::PRAGMA, HeaderValue::from_static("no-cache"));

/// Where the tokens go: the JSON body (default), or HttpOnly cookies (the hybrid).
fn delivery(request: &Request) -> Result<Delivery, ApiError> {
    let query = request.uri().query().unwrap_or_default();
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query).map_err(|_| ApiError::InvalidRequest("malformed query string"))?;
    match pairs.iter().find(|(name, _)| name == "delivery").map(|(_, value)| value.as_str()) {
        None | Some("body") => Ok(Delivery::Body),
        Some("cookie") => Ok(Delivery::Cookie),
        Some(_) => Err(ApiError::InvalidRequest("delivery must be body or cookie")),
    }
}

fn invalid_request(description: &'static str) -> Response {
    ApiError::InvalidRequest(description).into_oauth()
}

/// The token endpoint. Anyone may call it; the hybrid refresh needs the session's CSRF token.
#[utoipa::path(
    post,
    path = "/v1/token",
    tag = "token sessions",
    request_body(content((crate::wire::TokenRequest = "application/x-www-form-urlencoded"), (crate::wire::TokenRequest = "application/json"))),
    params(("delivery" = Option<crate::wire::Delivery>, Query, description = "body (default) or cookie")),
    responses(
        (status = 200, description = "A token pair, in the body or (delivery=cookie) in cookies; an app's tokens with its ID token", body = crate::wire::TokenResponse),
        (status = 400, description = "invalid_request, invalid_grant or unsupported_grant_type", body = crate::wire::OAuthError, content_type = "application/json"),
        (status = 401, description = "invalid_client", body = crate::wire::OAuthError, content_type = "application/json"),
        (status = 403, description = "CSRF rule (cookie delivery)", body = crate::wire::OAuthError, content_type = "application/json"),
        (status = 413, description = "Body over 64 KiB", body = crate::wire::OAuthError, content_type = "application/json"),
        (status = 415, description = "Neither a form nor JSON", body = crate::wire::OAuthError, content_type = "application/json"),
        (status = 429, description = "too_many_attempts", body = crate::wire::OAuthError, content_type = "application/json"),
        (status = 503, description = "temporarily_unavailable", body = crate::wire::OAuthError, content_type = "application/json")
    )
)]
pub(super) async fn token(State(state): State<AppState>, request: Request) -> Response {
    match issue(&state, request).await {
        Ok(response) | Err(response) => response,
    }
}

async fn issue(state: &AppState, request: Request) -> Result<Response, Response> {
    let delivery = delivery(&request).map_err(ApiError::into_oauth)?;
    let headers = request.headers().clone();
    let client = client_info(state, &request);
    let params = OAuthParams::from_request(request, &()).await.map_err(ApiError::into_oauth)?;
    if delivery == Delivery::Cookie {
        check_origin(state, &headers).map_err(ApiError::into_oauth)?;
    }
    let kind = SessionKind::Token.as_str();
    let app = authenticated_client(state, &headers, &params).await.map_err(ApiError::into_oauth)?;
    match params.get("grant_type") {
        None => Err(invalid_request("grant_type is required")),
        Some("password") => {
            let (Some(username), Some(password)) = (params.get("username"), params.get("password")) else {
                state.metrics.observe_login(kind, LoginOutcome::Refused);
                return Err(invalid_request("the password grant needs username and password"));
            };
            let login = state
                .log_in(username, password.to_owned(), SessionKind::Token, client)
                .await
                .map_err(|err| ApiError::from(err).into_oauth())?;
            let Credential::Tokens(pair) = login.credential else {
                return Err(ApiError::Internal("a token login produced a cookie".into()).into_oauth());
            };
            Ok(respond(state, delivery, &login.session, pair))
        }
        Some("refresh_token") => {
            let presented = match delivery {
                Delivery::Body => params.get("refresh_token").map(str::to_owned),
                Delivery::Cookie => request_cookie(&headers, &state.cookies.refresh).map(str::to_owned),
            };
            let Some(presented) = presented else {
                return Err(invalid_request("the refresh_token grant needs a refresh token"));
            };
            if delivery == Delivery::Cookie {
                let csrf = headers.get(CSRF_HEADER).and_then(|value| value.to_str().ok());
                let session = state.service.refresh_token_session(&presented);
                let csrf_ok =
                    session.zip(csrf).is_some_and(|(session, token)| state.service.csrf_matches(session, token));
                if session.is_some() && !csrf_ok {
                    return Err(
                        ApiError::CsrfRejected("the X-CSRF-Token header does not match the session").into_oauth()
                    );
                }
            }
            let (session, pair) = state
                .service
                .refresh(&presented, app.as_ref().map(|app| &app.id))
                .await
                .map_err(|err| ApiError::from(err).into_oauth())?;
            match &session.app {
                Some(granted) if delivery == Delivery::Body => Ok(app_tokens(pair, None, granted.scope())),
                _ => Ok(respond(state, delivery, &session, pair)),
            }
        }
        Some("authorization_code") => {
            if delivery == Delivery::Cookie {
                return Err(invalid_request("an app's tokens are delivered in the body"));
            }
            let Some(app) = app else { return Err(ApiError::InvalidClient.into_oauth()) };
            let (Some(code), Some(redirect_uri), Some(verifier)) =
                (params.get("code"), params.get("redirect_uri"), params.get("code_verifier"))
            else {
                return Err(invalid_request("the authorization_code grant needs code, redirect_uri and code_verifier"));
            };
            let issued = state
                .service
                .redeem_code(&app, code, redirect_uri, verifier, client)
                .await
                .map_err(|err| ApiError::from(err).into_oauth())?;
            let scope = issued.session.app.as_ref().map(AppSession::scope).unwrap_or_default();
            Ok(app_tokens(issued.pair, Some(issued.id_token), scope))
        }
        Some(_) => Err(ApiError::UnsupportedGrantType.into_oauth()),
    }
}

/// An app's tokens in the body.
fn app_tokens(pair: TokenPair, id_token: Option<String>, scope: String) -> Response {
    let body = wire::AppTokens {
        access_token: pair.access_token,
        token_type: "Bearer",
        expires_in: pair.expires_in,
        refresh_token: pair.refresh_token.to_string(),
        id_token,
        scope,
    };
    (StatusCode::OK, [NO_STORE, PRAGMA_NO_CACHE], Json(body)).into_response()
}

fn respond(state: &AppState, delivery: Delivery, session: &Session, pair: TokenPair) -> Response {
    match delivery {
        Delivery::Body => {
            let body = wire::TokenPair {
                session_id: pair.session_id.to_string(),
                refresh_token: pair.refresh_token.to_string(),
                access_token: pair.access_token,
                token_type: "Bearer",
                expires_in: pair.expires_in,
            };
            (StatusCode::OK, [NO_STORE, PRAGMA_NO_CACHE], Json(body)).into_response()
        }
        Delivery::Cookie => {
            let names = &state.cookies;
            let refresh_life = session.absolute_expires_at - state.service.now();
            let jar = CookieJar::new()
                .add(names.access_cookie(&pair.access_token, time::Duration::seconds(pair.expires_in)))
                .add(names.refresh_cookie(&pair.refresh_token, refresh_life));
            let body = CookieDelivery {
                token_type: "Bearer",
                expires_in: pair.expires_in,
                csrf_token: state.service.csrf_token(session.id),
                session_id: pair.session_id.to_string(),
            };
            (StatusCode::OK, [NO_STORE, PRAGMA_NO_CACHE], jar, Json(body)).into_response()
        }
    }
}

/// RFC 7009 revocation: ends the session of the refresh or access token given. `200` for any
/// well-formed request, whether or not the token was valid. Anyone may call it.
#[utoipa::path(
    post,
    path = "/v1/token/revoke",
    tag = "token sessions",
    request_body(content((crate::wire::RevokeRequest = "application/x-www-form-urlencoded"), (crate::wire::RevokeRequest = "application/json"))),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke"),
        (status = 400, description = "invalid_request", body = crate::wire::OAuthError, content_type = "application/json"),
        (status = 401, description = "invalid_client: an app's token without its app's authentication", body = crate::wire::OAuthError, content_type = "application/json"),
        (status = 413, description = "Body over 64 KiB", body = crate::wire::OAuthError, content_type = "application/json"),
        (status = 415, description = "Neither a form nor JSON", body = crate::wire::OAuthError, content_type = "application/json"),
        (status = 503, description = "temporarily_unavailable", body = crate::wire::OAuthError, content_type = "application/json")
    )
)]
pub(super) async fn revoke(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    let params = match OAuthParams::from_request(request, &()).await {
        Ok(params) => params,
        Err(err) => return err.into_oauth(),
    };
    let app = match authenticated_client(&state, &headers, &params).await {
        Ok(app) => app,
        Err(err) => return err.into_oauth(),
    };
    let Some(token) = params.get("token") else {
        return invalid_request("token is required");
    };
    match state.service.revoke_token(token, app.as_ref().map(|app| &app.id)).await {
        Ok(()) => (StatusCode::OK, [NO_STORE]).into_response(),
        Err(err) => ApiError::from(err).into_oauth(),
    }
}
