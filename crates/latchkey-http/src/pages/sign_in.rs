//! `/signup`, `/login` and `/logout`: the forms that start and end a cookie session.

use askama::Template;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_core::revocation::LogoutScope;
use latchkey_core::sessions::SessionKind;
use serde::Deserialize;

use super::authorize;
use super::notice::{Notice, signed_out};
use super::return_to::{ReturnTo, ReturnToError};
use super::{CarriesCsrfToken, PageError, SignedInForm, check_form, query, render, sentence, signed_in};
use crate::body::{FormBody, body_of};
use crate::error::ApiError;
use crate::metrics::LoginOutcome;
use crate::routes::session::{client_info, session_cookie_jar};
use crate::state::AppState;
use crate::wire::NO_STORE;

/// Where a signed-in browser goes when nobody said where.
const HOME: &str = "/account";

/// Form errors, each tied to the field it is about (or to the whole form as `form`).
#[derive(Debug, Default)]
pub(crate) struct FormErrors(Vec<(String, String)>);

impl FormErrors {
    /// One error on `field`.
    pub(crate) fn on(field: &str, message: String) -> Self {
        Self(vec![(field.to_owned(), message)])
    }

    /// The error on `field`, if any.
    pub(crate) fn get(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|(name, _)| name == field).map(|(_, message)| message.as_str())
    }

    /// Every error, field first, for the summary at the top of the form.
    pub(crate) fn all(&self) -> &[(String, String)] {
        &self.0
    }

    /// An error of the API for a form: its detail as a sentence, on the field it names.
    /// Shown beside its field, an invalid value needs no "invalid value for …" prefix.
    pub(crate) fn from_api(err: &ApiError) -> Self {
        match err {
            ApiError::InvalidInput { field, detail } => Self::on(field, sentence(detail)),
            ApiError::UsernameTaken => Self::on("username", sentence(&err.public_detail())),
            _ => Self::on("form", sentence(&err.public_detail())),
        }
    }
}

/// `/login`'s and `/signup`'s query.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct EntryQuery {
    return_to: String,
    notice: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LogInPage {
    signed_in: Option<String>,
    username: String,
    return_to: Option<String>,
    signup_href: String,
    notice: Option<&'static str>,
    errors: FormErrors,
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignUpPage {
    signed_in: Option<String>,
    username: String,
    return_to: Option<String>,
    login_href: String,
    errors: FormErrors,
}

/// `href` of a page that keeps the `return_to`.
fn keeping_return_to(path: &str, return_to: Option<&ReturnTo>) -> String {
    match return_to {
        Some(return_to) => {
            format!("{path}?{}", serde_urlencoded::to_string([("return_to", return_to.as_str())]).unwrap_or_default())
        }
        None => path.to_owned(),
    }
}

impl LogInPage {
    fn new(return_to: Option<&ReturnTo>) -> Self {
        Self {
            signed_in: None,
            username: String::new(),
            return_to: return_to.map(ReturnTo::to_string),
            signup_href: keeping_return_to("/signup", return_to),
            notice: None,
            errors: FormErrors::default(),
        }
    }

    fn refusing(return_to: &ReturnToError) -> Self {
        Self { errors: FormErrors::on("return_to", sentence(&return_to.to_string())), ..Self::new(None) }
    }
}

impl SignUpPage {
    fn new(return_to: Option<&ReturnTo>) -> Self {
        Self {
            signed_in: None,
            username: String::new(),
            return_to: return_to.map(ReturnTo::to_string),
            login_href: keeping_return_to("/login", return_to),
            errors: FormErrors::default(),
        }
    }
}

/// `GET /login`: the sign-in form. A browser that is signed in already goes straight on.
pub(super) async fn log_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let params: EntryQuery = query(raw)?;
    let return_to = match ReturnTo::parse(&state.config, &params.return_to) {
        Ok(return_to) => return_to,
        Err(refused) => return Ok(render(StatusCode::BAD_REQUEST, &LogInPage::refusing(&refused))),
    };
    let notice = Notice::parse(&params.notice);
    let show_form = matches!(notice, Some(Notice::SessionEnded | Notice::Reauthenticate));
    if !show_form && signed_in(&state, &headers).await?.is_some() {
        return Ok(Redirect::to(return_to.as_ref().map_or(HOME, ReturnTo::as_str)).into_response());
    }
    let page = LogInPage { notice: notice.map(Notice::message), ..LogInPage::new(return_to.as_ref()) };
    Ok(login_page(&state, StatusCode::OK, &page, return_to.as_ref()))
}

/// Renders the sign-in page; when it signs in for an app's authorization request, its form's
/// redirects may end at the app.
fn login_page(state: &AppState, status: StatusCode, page: &LogInPage, return_to: Option<&ReturnTo>) -> Response {
    let mut response = render(status, page);
    if let Some(redirect_uri) = return_to.and_then(|return_to| authorize::redirect_uri_of(return_to.as_str())) {
        authorize::allow_form_to_reach(state, &mut response, &redirect_uri);
    }
    response
}

#[derive(Deserialize)]
pub(super) struct LogInForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    return_to: String,
}

/// `POST /login`: signs in with a new cookie session and goes on to `return_to`. Refused from
/// a cross-site page (login CSRF); wrong credentials and throttling answer as the API does.
pub(super) async fn log_in(State(state): State<AppState>, request: Request) -> Response {
    let kind = SessionKind::Cookie.as_str();
    let headers = request.headers().clone();
    let client = client_info(&state, &request);
    let form = match body_of::<FormBody<LogInForm>>(request).await {
        Ok(FormBody(form)) => form,
        Err(err) => {
            state.metrics.observe_login(kind, LoginOutcome::Refused);
            return PageError::from(err).into_response();
        }
    };
    if let Err(refused) = check_form(&state, &headers, None, None) {
        state.metrics.observe_login(kind, LoginOutcome::Refused);
        return refused.into_response();
    }
    let return_to = match ReturnTo::parse(&state.config, &form.return_to) {
        Ok(return_to) => return_to,
        Err(refused) => {
            state.metrics.observe_login(kind, LoginOutcome::Refused);
            let page = LogInPage { username: form.username, ..LogInPage::refusing(&refused) };
            return render(StatusCode::BAD_REQUEST, &page);
        }
    };
    let err = match state.log_in(&form.username, form.password, SessionKind::Cookie, client).await {
        Ok(login) => {
            return match session_cookie_jar(&state, &login) {
                Ok(jar) => {
                    let target = return_to.as_ref().map_or(HOME, ReturnTo::as_str);
                    (jar, [NO_STORE], Redirect::to(target)).into_response()
                }
                Err(err) => PageError::from(err).into_response(),
            };
        }
        Err(err) => ApiError::from(err),
    };
    match err {
        ApiError::InvalidCredentials { .. } | ApiError::TooManyAttempts { .. } | ApiError::InvalidInput { .. } => {
            let page = LogInPage {
                username: form.username,
                errors: FormErrors::on("form", sentence(&err.public_detail())),
                ..LogInPage::new(return_to.as_ref())
            };
            let mut response = login_page(&state, err.status(), &page, return_to.as_ref());
            err.add_retry_after(response.headers_mut());
            response
        }
        other => PageError::from(other).into_response(),
    }
}

/// `GET /signup`: the form that creates an account.
pub(super) async fn sign_up_page(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let params: EntryQuery = query(raw)?;
    match ReturnTo::parse(&state.config, &params.return_to) {
        Ok(return_to) => Ok(render(StatusCode::OK, &SignUpPage::new(return_to.as_ref()))),
        Err(refused) => {
            let page = SignUpPage {
                errors: FormErrors::on("return_to", sentence(&refused.to_string())),
                ..SignUpPage::new(None)
            };
            Ok(render(StatusCode::BAD_REQUEST, &page))
        }
    }
}

#[derive(Deserialize)]
pub(super) struct SignUpForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
    #[serde(default)]
    return_to: String,
}

/// `POST /signup`: creates the account under the API's policy, then sends the browser to sign
/// in (keeping `return_to`).
pub(super) async fn sign_up(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<FormBody<SignUpForm>, ApiError>,
) -> Result<Response, PageError> {
    let FormBody(form) = form?;
    check_form(&state, &headers, None, None)?;
    let return_to = match ReturnTo::parse(&state.config, &form.return_to) {
        Ok(return_to) => return_to,
        Err(refused) => {
            let page = SignUpPage {
                username: form.username,
                errors: FormErrors::on("return_to", sentence(&refused.to_string())),
                ..SignUpPage::new(None)
            };
            return Ok(render(StatusCode::BAD_REQUEST, &page));
        }
    };
    let refused = |status: StatusCode, username: String, errors: FormErrors| {
        render(status, &SignUpPage { username, errors, ..SignUpPage::new(return_to.as_ref()) })
    };
    if form.password != form.password_confirm {
        let errors = FormErrors::on("password_confirm", "The two passwords are not the same.".into());
        return Ok(refused(StatusCode::UNPROCESSABLE_ENTITY, form.username, errors));
    }
    match state.service.sign_up(&form.username, form.password).await.map_err(ApiError::from) {
        Ok(_) => {
            let mut params = vec![("notice", Notice::Created.as_str())];
            if let Some(return_to) = &return_to {
                params.push(("return_to", return_to.as_str()));
            }
            let query = serde_urlencoded::to_string(&params).unwrap_or_default();
            Ok(Redirect::to(&format!("/login?{query}")).into_response())
        }
        Err(err @ (ApiError::UsernameTaken | ApiError::InvalidInput { .. })) => {
            Ok(refused(err.status(), form.username, FormErrors::from_api(&err)))
        }
        Err(other) => Err(other.into()),
    }
}

/// A form that carries only the CSRF token.
#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf_token: Option<String>,
}

impl CarriesCsrfToken for CsrfForm {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token.as_deref()
    }
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogOutPage {
    signed_in: Option<String>,
    csrf_token: String,
}

/// `GET /logout`: asks to confirm (a GET never ends a session: a link or an image could).
pub(super) async fn log_out_page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    let Some(auth) = signed_in(&state, &headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let page = LogOutPage {
        signed_in: Some(auth.caller.username.to_string()),
        csrf_token: state.service.csrf_token(auth.caller.session_id),
    };
    Ok(render(StatusCode::OK, &page))
}

/// `POST /logout`: ends this device's session and clears its cookies.
pub(super) async fn log_out(
    State(state): State<AppState>,
    SignedInForm { auth, .. }: SignedInForm<CsrfForm>,
) -> Result<Response, PageError> {
    state.service.log_out(&auth.caller, LogoutScope::Current).await?;
    Ok(signed_out(&state, Notice::SignedOut))
}
