//! The web pages people use: sign-up, sign-in and sign-out, the account page with its device
//! list, and the playground that shows the two ways to stay signed in side by side.
//!
//! Rendered on the server from templates compiled into the binary. Every form is a plain HTML
//! form that works without script and posts back here; a form cannot set headers, so the
//! CSRF rule of API.md takes the session's token from a hidden `csrf_token` field instead of
//! `X-CSRF-Token` (and still checks `Origin` and `Sec-Fetch-Site`). The only script is the
//! playground's, served from `/assets` under a Content-Security-Policy that allows no inline
//! script or style.

mod account;
mod assets;
mod authorize;
mod devices;
mod end_session;
mod notice;
mod return_to;
mod sign_in;

pub(crate) use authorize::AUTHORIZE_PATH;
pub(crate) use end_session::END_SESSION_PATH;

use askama::Template;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use latchkey_core::AuthError;
use latchkey_core::sessions::Caller;
use serde::de::DeserializeOwned;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::auth::{Authenticated, CsrfCarrier, authenticate, check_csrf_token, check_origin};
use crate::body::{FormBody, body_of};
use crate::config::HttpConfig;
use crate::cookies::request_cookie;
use crate::error::ApiError;
use crate::middleware::Routes;
use crate::state::AppState;
use crate::wire::NO_STORE;

/// The pages' routes, each answering with the pages' security headers.
pub(crate) fn routes(config: &HttpConfig) -> Routes {
    let method_not_allowed = || async { PageError::from(ApiError::MethodNotAllowed) };
    let routes = Routes::default()
        .route("/", get(|| async { Redirect::to("/account") }))
        .route("/signup", get(sign_in::sign_up_page).post(sign_in::sign_up))
        .route("/login", get(sign_in::log_in_page).post(sign_in::log_in))
        .route("/logout", get(sign_in::log_out_page).post(sign_in::log_out))
        .route("/account", get(account::account_page))
        .route("/account/sessions/{id}/revoke", post(account::revoke))
        .route("/account/logout", post(account::log_out))
        .route("/account/apps/{client_id}/withdraw", post(account::withdraw))
        .route("/account/password", post(account::change_password))
        .route(authorize::AUTHORIZE_PATH, get(authorize::authorize_get).post(authorize::authorize_post))
        .route("/oauth2/consent", post(authorize::consent))
        .route(END_SESSION_PATH, get(end_session::end_session_get).post(end_session::end_session_post))
        .route("/oauth2/logout/confirm", post(end_session::confirm))
        .route("/playground", get(playground))
        .route("/assets/{name}", get(assets::asset));
    routes.map_router(|mut router| {
        router = router.method_not_allowed_fallback(method_not_allowed);
        for (name, value) in security_headers(config) {
            // A page may widen its own policy's `form-action` (see `authorize`); the rest is
            // the same for every page.
            router = if name == header::CONTENT_SECURITY_POLICY {
                router.layer(SetResponseHeaderLayer::if_not_present(name, value))
            } else {
                router.layer(SetResponseHeaderLayer::overriding(name, value))
            };
        }
        router
    })
}

/// The headers every page carries: a Content-Security-Policy that allows scripts, styles and
/// requests only from this server and no inline code at all, forms posting only here (or to an
/// allowed origin, where a sign-in's redirect may lead), no framing by anyone, no `Referer` to
/// other origins (a `return_to` in a URL stays here; `no-referrer` would also make browsers
/// send `Origin: null` on the pages' own forms, which the CSRF rule refuses), and a browsing
/// context of its own.
fn security_headers(config: &HttpConfig) -> Vec<(HeaderName, HeaderValue)> {
    let allowed = config.allowed_origins.iter().map(|origin| origin.as_str());
    let form_action = std::iter::once("'self'").chain(allowed).collect::<Vec<_>>().join(" ");
    // Configured origins are checked at start; should one still not fit a header, forms may
    // post here only, which is stricter, never looser.
    let csp = HeaderValue::from_str(&content_security_policy(&form_action))
        .or_else(|_| HeaderValue::from_str(&content_security_policy("'self'")))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    vec![
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
        (HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin")),
        (HeaderName::from_static("cross-origin-resource-policy"), HeaderValue::from_static("same-origin")),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
        ),
    ]
}

/// The pages' Content-Security-Policy, with forms allowed to post to `form_action`.
fn content_security_policy(form_action: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'; \
         require-trusted-types-for 'script'; trusted-types 'none'"
    )
}

/// Renders a page with `status`. Pages show a user's data or a CSRF token, so none is stored.
fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (status, [NO_STORE], Html(body)).into_response(),
        Err(err) => PageError::from(ApiError::Internal(format!("template: {err}"))).into_response(),
    }
}

/// A failure that ends a page request: the same status, title and detail as the API's
/// problem document, shown as a page, with a hint where latchkey can tell what went wrong.
#[derive(Debug)]
pub(crate) struct PageError {
    error: ApiError,
    hint: Option<String>,
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        Self { error, hint: None }
    }
}

impl From<AuthError> for PageError {
    fn from(err: AuthError) -> Self {
        ApiError::from(err).into()
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    signed_in: Option<String>,
    status: u16,
    title: &'static str,
    detail: String,
    hint: Option<String>,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.error.status();
        let page = ErrorPage {
            signed_in: None,
            status: status.as_u16(),
            title: self.error.title(),
            detail: sentence(&self.error.public_detail()),
            hint: self.hint,
        };
        let mut response = render(status, &page);
        self.error.add_retry_after(response.headers_mut());
        self.error.attach_fault(&mut response);
        response
    }
}

/// The CSRF rule for a page's form: an allowed `Origin` (no cross-site page may sign anyone
/// in), and for a signed-in `caller` the session's token from the form. A form of latchkey's
/// own page opened at an address other than the public URL fails the `Origin` check; the
/// refusal then says where to open the pages.
fn check_form(
    state: &AppState,
    headers: &HeaderMap,
    caller: Option<&Caller>,
    csrf_token: Option<&str>,
) -> Result<(), PageError> {
    let checked = match caller {
        Some(caller) => check_csrf_token(state, headers, caller, csrf_token, CsrfCarrier::FormField),
        None => check_origin(state, headers),
    };
    checked.map_err(|error| {
        let origin = header_str(headers, header::ORIGIN);
        let host = header_str(headers, header::HOST);
        let opened_elsewhere = !host.is_empty()
            && !state.config.origin_allowed(origin)
            && origin.split_once("://").is_some_and(|(_, authority)| authority == host);
        let hint = opened_elsewhere.then(|| {
            format!(
                "This page was opened at {origin}, but latchkey's public URL is {}. Open the page there and try again.",
                state.config.public_url
            )
        });
        PageError { error, hint }
    })
}

/// A form that carries the session's CSRF token in its `csrf_token` field.
pub(crate) trait CarriesCsrfToken {
    /// The token as posted, if any.
    fn csrf_token(&self) -> Option<&str>;
}

/// A form posted by a signed-in browser that passed the CSRF rule. A browser that is not
/// signed in is sent to sign in; a refused form gets the error page.
pub(crate) struct SignedInForm<T> {
    /// Who posted it.
    pub auth: Authenticated,
    /// What was posted.
    pub form: T,
}

impl<T: DeserializeOwned + CarriesCsrfToken> FromRequest<AppState> for SignedInForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let headers = request.headers().clone();
        let Some(auth) = signed_in(state, &headers).await.map_err(IntoResponse::into_response)? else {
            return Err(to_login(state, &headers, "/account"));
        };
        let FormBody(form) =
            body_of::<FormBody<T>>(request).await.map_err(|err| PageError::from(err).into_response())?;
        check_form(state, &headers, Some(&auth.caller), form.csrf_token()).map_err(IntoResponse::into_response)?;
        Ok(Self { auth, form })
    }
}

fn header_str(headers: &HeaderMap, name: HeaderName) -> &str {
    headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or_default()
}

/// The API's lower-case error detail as a sentence for a page: capitalised, with a full stop.
fn sentence(detail: &str) -> String {
    let mut chars = detail.chars();
    let Some(first) = chars.next() else { return String::new() };
    let mut text: String = first.to_uppercase().chain(chars).collect();
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

/// Who is asking for a page, if anyone: the session cookie (or a hybrid access-token cookie),
/// checked as the API checks it. Forms check the CSRF rule themselves.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Option<Authenticated>, PageError> {
    match authenticate(state, headers, false).await {
        Ok(auth) => Ok(Some(auth)),
        Err(ApiError::Unauthenticated { .. }) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Parses a page's query string; the parameters are all optional.
pub(crate) fn query<T: DeserializeOwned + Default>(raw: Option<String>) -> Result<T, PageError> {
    match raw {
        None => Ok(T::default()),
        Some(raw) => {
            serde_urlencoded::from_str(&raw).map_err(|err| PageError::from(ApiError::Malformed(err.to_string())))
        }
    }
}

/// Sends an anonymous browser to the sign-in page, to come back to `path` afterwards. A
/// session cookie that no longer works (revoked, expired) is cleared, and the page says why.
fn to_login(state: &AppState, headers: &HeaderMap, path: &str) -> Response {
    let stale = request_cookie(headers, &state.cookies.session).is_some()
        || request_cookie(headers, &state.cookies.access).is_some();
    let mut params = vec![("return_to", path)];
    if stale {
        params.push(("notice", notice::Notice::SessionEnded.as_str()));
    }
    let query = serde_urlencoded::to_string(&params).unwrap_or_default();
    let redirect = Redirect::to(&format!("/login?{query}"));
    if stale { (state.cookies.removals(), redirect).into_response() } else { redirect.into_response() }
}

/// The playground: the token mode and the cookie mode, side by side.
#[derive(Template)]
#[template(path = "playground.html")]
struct PlaygroundPage {
    signed_in: Option<String>,
    cookie_name: String,
}

async fn playground(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    let signed_in = signed_in(&state, &headers).await?.map(|auth| auth.caller.username.to_string());
    Ok(render(StatusCode::OK, &PlaygroundPage { signed_in, cookie_name: state.cookies.session.clone() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Origin;

    #[test]
    fn details_read_as_sentences() {
        assert_eq!(sentence("the username or password is wrong"), "The username or password is wrong.");
        assert_eq!(sentence("done."), "Done.");
        assert_eq!(sentence(""), "");
    }

    #[test]
    fn forms_may_post_only_here_or_to_allowed_origins_and_nothing_runs_inline() {
        let mut config = HttpConfig::new(Origin::parse("https://auth.example.com").expect("origin"));
        config.allowed_origins.push(Origin::parse("https://app.example.com").expect("origin"));
        let headers = security_headers(&config);
        let csp = headers.iter().find(|(name, _)| name == header::CONTENT_SECURITY_POLICY).expect("csp");
        let csp = csp.1.to_str().expect("ascii");
        assert!(csp.contains("form-action 'self' https://app.example.com;"), "{csp}");
        assert!(csp.contains("script-src 'self';") && !csp.contains("unsafe-inline"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    }
}
