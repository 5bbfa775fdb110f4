//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): where an app sends the browser
//! to sign out of latchkey. With an `id_token_hint` latchkey issued, the sign-in it names ends
//! at once; without one the user is asked to confirm with a form that carries the session's
//! CSRF token, so a link on a foreign page cannot sign anybody out. Then the browser goes to
//! the app's `post_logout_redirect_uri` — only one registered for that app — with `state`.

use askama::Template;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_core::authorization::answer_location;
use latchkey_core::clients::{Client, ClientId};
use latchkey_core::revocation::LogoutScope;
use latchkey_core::sessions::SessionKind;
use serde::Deserialize;

use super::authorize::allow_form_to_reach;
use super::notice::{Notice, signed_out};
use super::{CarriesCsrfToken, PageError, SignedInForm, query, render, signed_in};
use crate::body::{FormBody, body_of};
use crate::error::ApiError;
use crate::state::AppState;

/// The end-session endpoint's path (in the discovery document).
pub(crate) const END_SESSION_PATH: &str = "/oauth2/logout";

/// The parameters of a logout request (query or form).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct LogoutRequest {
    id_token_hint: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

/// Where the browser goes afterwards, once checked.
struct Afterwards {
    client: Option<Client>,
    /// A registered post-logout URI, if the request named one.
    redirect: Option<String>,
    state: Option<String>,
}

impl Afterwards {
    /// The browser's way out: to the app's page with `state`, else latchkey's signed-out page.
    fn leave(&self, state: &AppState) -> Response {
        match &self.redirect {
            Some(uri) => {
                let params: Vec<(&str, &str)> = self.state.iter().map(|value| ("state", value.as_str())).collect();
                (state.cookies.removals(), Redirect::to(&answer_location(uri, &params))).into_response()
            }
            None => signed_out(state, Notice::SignedOut),
        }
    }
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|value| !value.is_empty())
}

/// Checks what the request names: the app (from the hint, else `client_id`; both must agree)
/// and its post-logout URI, which must be one registered for that app.
async fn afterwards(
    state: &AppState,
    request: &LogoutRequest,
    hinted: Option<&ClientId>,
) -> Result<Afterwards, PageError> {
    let named = match present(&request.client_id) {
        Some(text) => Some(ClientId::parse(text).ok_or(ApiError::InvalidRequest("client_id is not a known app"))?),
        None => None,
    };
    if named.as_ref().zip(hinted).is_some_and(|(named, hinted)| named != hinted) {
        return Err(ApiError::InvalidRequest("client_id is not the app the id_token_hint was issued to").into());
    }
    let client = match named.as_ref().or(hinted) {
        Some(id) => {
            Some(state.service.client(id).await?.ok_or(ApiError::InvalidRequest("client_id is not a known app"))?)
        }
        None => None,
    };
    let redirect = match (present(&request.post_logout_redirect_uri), &client) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(ApiError::InvalidRequest("post_logout_redirect_uri needs client_id or id_token_hint").into());
        }
        (Some(uri), Some(client)) => {
            if !client.post_logout_redirect_uris.iter().any(|registered| registered.as_str() == uri) {
                return Err(
                    ApiError::InvalidRequest("post_logout_redirect_uri is not one registered for this app").into()
                );
            }
            Some(uri.to_owned())
        }
    };
    Ok(Afterwards { client, redirect, state: present(&request.state).map(str::to_owned) })
}

/// `GET /oauth2/logout`.
pub(super) async fn end_session_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    match query::<LogoutRequest>(raw) {
        Ok(request) => end_session(&state, &headers, request).await.unwrap_or_else(IntoResponse::into_response),
        Err(refused) => refused.into_response(),
    }
}

/// `POST /oauth2/logout` (the same request as a form).
pub(super) async fn end_session_post(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    match body_of::<FormBody<LogoutRequest>>(request).await {
        Ok(FormBody(request)) => {
            end_session(&state, &headers, request).await.unwrap_or_else(IntoResponse::into_response)
        }
        Err(err) => PageError::from(err).into_response(),
    }
}

#[derive(Template)]
#[template(path = "end_session.html")]
struct EndSessionPage<'a> {
    signed_in: Option<String>,
    app_name: Option<&'a str>,
    request: Vec<(&'static str, &'a str)>,
    csrf_token: String,
}

async fn end_session(state: &AppState, headers: &HeaderMap, request: LogoutRequest) -> Result<Response, PageError> {
    let hinted = present(&request.id_token_hint).and_then(|hint| state.service.id_token_hint(hint));
    let afterwards = afterwards(state, &request, hinted.as_ref().map(|hinted| &hinted.client_id)).await?;
    if let Some(hinted) = &hinted {
        state.service.end_hinted_sign_in(hinted).await?;
        return Ok(afterwards.leave(state));
    }
    let browser = signed_in(state, headers).await?.filter(|auth| auth.caller.kind == SessionKind::Cookie);
    let Some(browser) = browser else {
        // Nobody to sign out here.
        return Ok(afterwards.leave(state));
    };
    let mut carried = Vec::new();
    if let Some(client) = &afterwards.client {
        carried.push(("client_id", client.id.as_str()));
    }
    if let Some(uri) = &afterwards.redirect {
        carried.push(("post_logout_redirect_uri", uri.as_str()));
    }
    if let Some(value) = &afterwards.state {
        carried.push(("state", value.as_str()));
    }
    let page = EndSessionPage {
        signed_in: Some(browser.caller.username.to_string()),
        app_name: afterwards.client.as_ref().map(|client| client.name.as_str()),
        request: carried,
        csrf_token: state.service.csrf_token(browser.caller.session_id),
    };
    let mut response = render(StatusCode::OK, &page);
    if let Some(uri) = &afterwards.redirect {
        allow_form_to_reach(state, &mut response, uri);
    }
    Ok(response)
}

/// The confirmation form.
#[derive(Deserialize)]
pub(super) struct ConfirmForm {
    #[serde(default)]
    csrf_token: Option<String>,
    #[serde(flatten)]
    request: LogoutRequest,
}

impl CarriesCsrfToken for ConfirmForm {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token.as_deref()
    }
}

/// `POST /oauth2/logout/confirm`: "Sign out", from the signed-in browser the page was shown to.
pub(super) async fn confirm(
    State(state): State<AppState>,
    SignedInForm { auth, form }: SignedInForm<ConfirmForm>,
) -> Result<Response, PageError> {
    let afterwards = afterwards(&state, &form.request, None).await?;
    state.service.log_out(&auth.caller, LogoutScope::Current).await?;
    Ok(afterwards.leave(&state))
}
