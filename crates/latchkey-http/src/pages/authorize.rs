//! The authorization endpoint (OpenID Connect Core §3.1.2) and its consent page: where an app
//! sends the browser to sign its user in. The request goes through the sign-in page when the
//! browser has no recent enough sign-in, and through the consent page the first time a user
//! meets an app; it ends with the browser back at the app, with a code or an error.
//!
//! An unknown client or a redirect URI that is not the client's gets an error page here and is
//! never redirected to: anything else would make latchkey an open redirect.

use askama::Template;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_core::authorization::{
    AuthorizationError, AuthorizationParams, AuthorizationRequest, Decision, answer_location,
};
use latchkey_core::sessions::{Caller, SessionKind};
use serde::Deserialize;
use url::Url;

use super::notice::Notice;
use super::{CarriesCsrfToken, PageError, SignedInForm, content_security_policy, query, render, signed_in};
use crate::body::{FormBody, body_of};
use crate::cookies::request_cookie;
use crate::error::ApiError;
use crate::state::AppState;

/// The authorization endpoint's path (in the discovery document).
pub(crate) const AUTHORIZE_PATH: &str = "/oauth2/authorize";

/// `GET /oauth2/authorize`.
pub(super) async fn authorize_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    match query::<AuthorizationParams>(raw) {
        Ok(params) => authorize(&state, &headers, params).await,
        Err(refused) => refused.into_response(),
    }
}

/// `POST /oauth2/authorize` (OIDC Core §3.1.2.1 allows the request as a form).
pub(super) async fn authorize_post(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    match body_of::<FormBody<AuthorizationParams>>(request).await {
        Ok(FormBody(params)) => authorize(&state, &headers, params).await,
        Err(err) => PageError::from(err).into_response(),
    }
}

/// The browser's sign-in at latchkey, if it has one: a cookie session (a hybrid token in a
/// cookie is a first-party app's session, not a sign-in other apps can rely on); and whether
/// it is signed in at all (then the sign-in page must show its form rather than pass it on).
async fn sign_in_of(state: &AppState, headers: &HeaderMap) -> Result<(Option<Caller>, bool), PageError> {
    let caller = signed_in(state, headers).await?.map(|auth| auth.caller);
    let signed_in = caller.is_some();
    Ok((caller.filter(|caller| caller.kind == SessionKind::Cookie), signed_in))
}

async fn authorize(state: &AppState, headers: &HeaderMap, params: AuthorizationParams) -> Response {
    let request = match state.service.check_authorization(params.clone()).await {
        Ok(request) => request,
        Err(refused) => return refusal(state, refused),
    };
    let (browser, signed_in) = match sign_in_of(state, headers).await {
        Ok(found) => found,
        Err(err) => return err.into_response(),
    };
    let decision = state.service.authorize(&request, browser.as_ref()).await;
    next_step(state, headers, &request, params, (browser.as_ref(), signed_in), decision)
}

/// Takes the browser where `decision` says.
fn next_step(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthorizationRequest,
    mut params: AuthorizationParams,
    (browser, signed_in): (Option<&Caller>, bool),
    decision: Result<Decision, AuthorizationError>,
) -> Response {
    match (decision, browser) {
        (Ok(Decision::Redirect(location)), _) => Redirect::to(&location).into_response(),
        (Ok(Decision::Consent), Some(browser)) => consent_page(state, request, &params, browser),
        (Ok(Decision::SignIn { mark }), _) => {
            params.signed_in_after = Some(mark);
            to_sign_in(state, headers, &params, signed_in)
        }
        // Consent is only asked of a signed-in browser.
        (Ok(Decision::Consent), None) => to_sign_in(state, headers, &params, signed_in),
        (Err(refused), _) => refusal(state, refused),
    }
}

/// Sends the browser to sign in (again), to come back to the request afterwards. A browser
/// that is signed in (not recently enough, or only with a first-party app's hybrid cookies)
/// is asked for its password on the form; other cookies it carries no longer work and are
/// cleared.
fn to_sign_in(state: &AppState, headers: &HeaderMap, params: &AuthorizationParams, again: bool) -> Response {
    let request = serde_urlencoded::to_string(params.pairs()).unwrap_or_default();
    let return_to = format!("{AUTHORIZE_PATH}?{request}");
    let stale = !again
        && (request_cookie(headers, &state.cookies.session).is_some()
            || request_cookie(headers, &state.cookies.access).is_some());
    let mut query = vec![("return_to", return_to.as_str())];
    if again {
        query.push(("notice", Notice::Reauthenticate.as_str()));
    } else if stale {
        query.push(("notice", Notice::SessionEnded.as_str()));
    }
    let target = format!("/login?{}", serde_urlencoded::to_string(&query).unwrap_or_default());
    if stale {
        (state.cookies.removals(), Redirect::to(&target)).into_response()
    } else {
        Redirect::to(&target).into_response()
    }
}

/// An authorization error: an error page for what must not be redirected, else the error
/// back at the app (`error`, `error_description`, `state`, `iss`).
fn refusal(state: &AppState, refused: AuthorizationError) -> Response {
    match refused {
        AuthorizationError::NotRedirectable(why) => {
            let mut page = PageError::from(ApiError::InvalidRequest(why));
            page.hint = Some("Go back to the app and try again; if this persists, its operator must register the address it uses with latchkey.".into());
            page.into_response()
        }
        AuthorizationError::Redirected(error) => {
            let mut params = vec![("error", error.code.as_str()), ("error_description", error.description)];
            if let Some(state_param) = &error.state {
                params.push(("state", state_param));
            }
            let issuer = state.service.policy().issuer.clone();
            params.push(("iss", &issuer));
            Redirect::to(&answer_location(&error.redirect_uri, &params)).into_response()
        }
        AuthorizationError::Failed(err) => PageError::from(err).into_response(),
    }
}

/// The consent page.
#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    signed_in: Option<String>,
    app_name: &'a str,
    scopes: Vec<&'static str>,
    request: Vec<(&'static str, &'a str)>,
    csrf_token: String,
}

/// What a user is told an app will see, per scope.
fn scope_description(scope: &str) -> Option<&'static str> {
    match scope {
        "openid" => Some("Your account's ID, to know it is you when you come back"),
        "profile" => Some("Your username"),
        _ => None,
    }
}

fn consent_page(
    state: &AppState,
    request: &AuthorizationRequest,
    params: &AuthorizationParams,
    browser: &Caller,
) -> Response {
    let page = ConsentPage {
        signed_in: Some(browser.username.to_string()),
        app_name: &request.client.name,
        scopes: request.scopes.iter().filter_map(|scope| scope_description(scope)).collect(),
        request: params.pairs(),
        csrf_token: state.service.csrf_token(browser.session_id),
    };
    let mut response = render(StatusCode::OK, &page);
    allow_form_to_reach(state, &mut response, &request.redirect_uri);
    response
}

/// The consent form: the decision, the CSRF token, and the request carried unchanged.
#[derive(Deserialize)]
pub(super) struct ConsentForm {
    #[serde(default)]
    csrf_token: Option<String>,
    #[serde(default)]
    decision: String,
    #[serde(flatten)]
    request: AuthorizationParams,
}

impl CarriesCsrfToken for ConsentForm {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token.as_deref()
    }
}

/// `POST /oauth2/consent`: "Allow" or "Deny", from the signed-in browser the page was shown to.
pub(super) async fn consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    SignedInForm { auth, form }: SignedInForm<ConsentForm>,
) -> Response {
    let allow = match form.decision.as_str() {
        "allow" => true,
        "deny" => false,
        _ => return PageError::from(ApiError::InvalidRequest("decision must be allow or deny")).into_response(),
    };
    let request = match state.service.check_authorization(form.request.clone()).await {
        Ok(request) => request,
        Err(refused) => return refusal(&state, refused),
    };
    if auth.caller.kind != SessionKind::Cookie {
        return to_sign_in(&state, &headers, &form.request, true);
    }
    let decision = state.service.answer_consent(&request, &auth.caller, allow).await;
    next_step(&state, &headers, &request, form.request, (Some(&auth.caller), true), decision)
}

/// Lets a page's forms end at `uri`'s origin: browsers hold the redirects that follow a form's
/// submission to the page's `form-action`, and the sign-in and consent forms end at the app.
pub(super) fn allow_form_to_reach(state: &AppState, response: &mut Response, uri: &str) {
    let Some(origin) = Url::parse(uri).ok().map(|url| url.origin().ascii_serialization()) else { return };
    if origin == "null" {
        return;
    }
    let allowed = state.config.allowed_origins.iter().map(|origin| origin.as_str());
    let form_action = std::iter::once("'self'").chain(allowed).chain([origin.as_str()]).collect::<Vec<_>>().join(" ");
    if let Ok(value) = HeaderValue::from_str(&content_security_policy(&form_action)) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The app a `return_to` on the sign-in page leads to, when it is an authorization request:
/// its redirect URI (to let the sign-in form's redirects end there).
pub(super) fn redirect_uri_of(return_to: &str) -> Option<String> {
    let query = return_to.strip_prefix(AUTHORIZE_PATH)?.strip_prefix('?')?;
    let params: AuthorizationParams = serde_urlencoded::from_str(query).ok()?;
    params.redirect_uri
}
