//! `/account`: who is signed in, every device they are signed in on (both kinds, and the apps
//! signed in through latchkey), the apps they have allowed, and the forms that end sessions,
//! withdraw an app's consent and change the password.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_core::AuthError;
use latchkey_core::clients::ClientId;
use latchkey_core::sessions::SessionId;
use serde::Deserialize;

use super::devices::{DeviceRow, Moment};
use super::notice::{Notice, signed_out};
use super::sign_in::{CsrfForm, FormErrors};
use super::{CarriesCsrfToken, PageError, SignedInForm, query, render, sentence, signed_in, to_login};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::LogoutScope;

/// What the account page confirms after one of its forms, named in `done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    Revoked,
    OthersSignedOut,
    PasswordChanged,
    Withdrawn,
}

impl Done {
    const ALL: [Self; 4] = [Self::Revoked, Self::OthersSignedOut, Self::PasswordChanged, Self::Withdrawn];

    fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::OthersSignedOut => "others_signed_out",
            Self::PasswordChanged => "password_changed",
            Self::Withdrawn => "withdrawn",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::Revoked => "That device is signed out.",
            Self::OthersSignedOut => "Every other device is signed out.",
            Self::PasswordChanged => "Your password is changed, and every other device is signed out.",
            Self::Withdrawn => "The app may no longer sign you in, and its sessions are ended.",
        }
    }

    fn redirect(self) -> Response {
        Redirect::to(&format!("/account?done={}", self.as_str())).into_response()
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    signed_in: Option<String>,
    username: String,
    user_id: String,
    member_since: Moment,
    devices: Vec<DeviceRow>,
    apps: Vec<AppRow>,
    csrf_token: String,
    done: Option<&'static str>,
    errors: FormErrors,
}

impl AccountPage {
    /// The page for `auth`'s user as it is now.
    async fn of(state: &AppState, auth: &Authenticated) -> Result<Self, PageError> {
        let caller = &auth.caller;
        let account =
            state.service.account(caller.user_id).await?.ok_or(ApiError::Unauthenticated { bad_bearer: false })?;
        let now = state.service.now();
        let sessions = state.service.sessions(caller.user_id).await?;
        let names = state.service.app_names(&sessions).await?;
        let devices = sessions
            .iter()
            .map(|session| {
                let app_name = session.app.as_ref().and_then(|app| names.get(&app.client_id)).map(String::as_str);
                DeviceRow::new(session, now, session.id == caller.session_id, app_name)
            })
            .collect();
        let apps = state
            .service
            .allowed_apps(caller.user_id)
            .await?
            .into_iter()
            .map(|app| AppRow {
                client_id: app.consent.client_id.to_string(),
                name: app.name,
                scopes: app.consent.scopes.join(", "),
                allowed: Moment::new(app.consent.granted_at, now),
            })
            .collect();
        Ok(Self {
            signed_in: Some(account.username.to_string()),
            username: account.username.to_string(),
            user_id: account.id.to_string(),
            member_since: Moment::new(account.created_at, now),
            devices,
            apps,
            csrf_token: state.service.csrf_token(caller.session_id),
            done: None,
            errors: FormErrors::default(),
        })
    }
}

/// An app the user has allowed, on the account page.
struct AppRow {
    client_id: String,
    name: String,
    scopes: String,
    allowed: Moment,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct AccountQuery {
    done: String,
}

/// `GET /account`.
pub(super) async fn account_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let Some(auth) = signed_in(&state, &headers).await? else {
        return Ok(to_login(&state, &headers, "/account"));
    };
    let params: AccountQuery = query(raw)?;
    let done = Done::ALL.into_iter().find(|done| done.as_str() == params.done).map(Done::message);
    let page = AccountPage { done, ..AccountPage::of(&state, &auth).await? };
    Ok(render(StatusCode::OK, &page))
}

/// `POST /account/sessions/{id}/revoke`: signs one device out. Revoking this very device is
/// signing out.
pub(super) async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SignedInForm { auth, .. }: SignedInForm<CsrfForm>,
) -> Result<Response, PageError> {
    let session = SessionId::parse(&id).ok_or(ApiError::SessionNotFound)?;
    state.service.revoke_own(&auth.caller, session).await?;
    if session == auth.caller.session_id {
        return Ok(signed_out(&state, Notice::SignedOut));
    }
    Ok(Done::Revoked.redirect())
}

/// `POST /account/apps/{client_id}/withdraw`: withdraws the consent to an app and signs the
/// app out.
pub(super) async fn withdraw(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    SignedInForm { auth, .. }: SignedInForm<CsrfForm>,
) -> Result<Response, PageError> {
    let client = ClientId::parse(&client_id).ok_or(ApiError::NotFound)?;
    if !state.service.withdraw_consent(&auth.caller, &client).await? {
        return Err(ApiError::NotFound.into());
    }
    Ok(Done::Withdrawn.redirect())
}

#[derive(Deserialize)]
pub(super) struct LogOutForm {
    #[serde(default)]
    csrf_token: Option<String>,
    #[serde(default)]
    scope: LogoutScope,
}

impl CarriesCsrfToken for LogOutForm {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token.as_deref()
    }
}

/// `POST /account/logout`: "log out other devices" (`scope=others`) or "log out everywhere"
/// (`scope=all`, which includes this one).
pub(super) async fn log_out(
    State(state): State<AppState>,
    SignedInForm { auth, form }: SignedInForm<LogOutForm>,
) -> Result<Response, PageError> {
    state.service.log_out(&auth.caller, form.scope.into()).await?;
    let notice = match form.scope {
        LogoutScope::Others => return Ok(Done::OthersSignedOut.redirect()),
        LogoutScope::Current => Notice::SignedOut,
        LogoutScope::All => Notice::SignedOutEverywhere,
    };
    Ok(signed_out(&state, notice))
}

#[derive(Deserialize)]
pub(super) struct PasswordForm {
    #[serde(default)]
    csrf_token: Option<String>,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirm: String,
}

impl CarriesCsrfToken for PasswordForm {
    fn csrf_token(&self) -> Option<&str> {
        self.csrf_token.as_deref()
    }
}

/// `POST /account/password`: changes the password (this device stays signed in, every other
/// is signed out), with the API's throttling and messages.
pub(super) async fn change_password(
    State(state): State<AppState>,
    SignedInForm { auth, form }: SignedInForm<PasswordForm>,
) -> Result<Response, PageError> {
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let (status, errors, throttled) = if form.new_password != form.new_password_confirm {
        (unprocessable, FormErrors::on("new_password_confirm", "The two new passwords are not the same.".into()), None)
    } else {
        match state.service.change_password(&auth.caller, form.current_password, form.new_password).await {
            Ok(()) => return Ok(Done::PasswordChanged.redirect()),
            Err(wrong @ AuthError::WrongCurrentPassword) => (
                ApiError::from(wrong).status(),
                FormErrors::on("current_password", "The current password is wrong.".into()),
                None,
            ),
            Err(AuthError::InvalidPassword(why)) => {
                (unprocessable, FormErrors::on("new_password", sentence(&why.to_string())), None)
            }
            Err(other) => match ApiError::from(other) {
                throttled @ ApiError::TooManyAttempts { .. } => {
                    let errors = FormErrors::on("current_password", sentence(&throttled.public_detail()));
                    (throttled.status(), errors, Some(throttled))
                }
                other => return Err(other.into()),
            },
        }
    };
    let page = AccountPage { errors, ..AccountPage::of(&state, &auth).await? };
    let mut response = render(status, &page);
    if let Some(throttled) = throttled {
        throttled.add_retry_after(response.headers_mut());
    }
    Ok(response)
}
