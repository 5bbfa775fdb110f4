//! The bodies of the OpenAPI 3.1 description of the contract, served at `GET /openapi.json`
//! (the document itself is assembled in [`crate::routes`]; each operation is declared beside its
//! handler). The API suite checks every route is described; schemathesis checks every answer
//! against the description.

#![allow(dead_code)] // The body types below exist for their schemas; handlers write the same JSON.

use latchkey_core::{UserId, Username};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, ToSchema};

use crate::wire::rfc3339;

/// An RFC 9457 problem document: every error outside the token endpoints.
#[derive(ToSchema)]
pub(crate) struct Problem {
    /// `urn:latchkey:problem:<code>`.
    r#type: String,
    title: String,
    status: u16,
    /// Stable, machine-readable: clients branch on this.
    code: String,
    detail: String,
    /// The offending field of a `422`.
    field: Option<String>,
}

/// An RFC 6749 §5.2 error: every error of the token endpoints.
#[derive(ToSchema)]
pub(crate) struct OAuthError {
    error: String,
    error_description: String,
}

/// A username and password presented at login (any strings: a wrong one is a `401`).
#[derive(ToSchema)]
pub(crate) struct Credentials {
    username: String,
    password: String,
}

/// A new account's username and password (the policy also refuses common passwords).
#[derive(ToSchema)]
pub(crate) struct SignUp {
    #[schema(min_length = 3, max_length = 64)]
    username: String,
    #[schema(min_length = 8, max_length = 256)]
    password: String,
}

/// An account as the API shows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct User {
    #[schema(format = "uuid")]
    pub(crate) id: String,
    pub(crate) username: String,
    #[schema(format = DateTime)]
    pub(crate) created_at: String,
}

impl User {
    /// The account of `id` as every answer that carries it shows it.
    pub(crate) fn new(id: UserId, username: &Username, created_at: OffsetDateTime) -> Self {
        Self { id: id.to_string(), username: username.as_str().to_owned(), created_at: rfc3339(created_at) }
    }
}

/// A new cookie session.
#[derive(ToSchema)]
pub(crate) struct CookieSession {
    #[schema(format = "uuid")]
    id: String,
    kind: String,
    #[schema(format = DateTime)]
    expires_at: String,
    #[schema(format = DateTime)]
    idle_expires_at: String,
}

/// The answer to a cookie login (the secret travels only in `Set-Cookie`).
#[derive(ToSchema)]
pub(crate) struct CookieLogin {
    user: User,
    session: CookieSession,
    csrf_token: String,
}

/// A password change.
#[derive(ToSchema)]
pub(crate) struct PasswordChange {
    current_password: String,
    #[schema(min_length = 8, max_length = 256)]
    new_password: String,
}

/// A token request (RFC 6749 §4.3 and §6), as a form or as JSON.
// Serialize only lends utoipa serde's `untagged` (a oneOf of the two shapes).
#[derive(ToSchema, serde::Serialize)]
#[serde(untagged)]
pub(crate) enum TokenRequest {
    /// Log in.
    Password(PasswordGrant),
    /// Rotate the refresh token.
    Refresh(RefreshGrant),
}

/// The password grant (RFC 6749 §4.3).
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct PasswordGrant {
    #[schema(pattern = "^password$")]
    grant_type: String,
    username: String,
    password: String,
}

/// The refresh grant (RFC 6749 §6); with `?delivery=cookie` the token comes from its cookie.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct RefreshGrant {
    #[schema(pattern = "^refresh_token$")]
    grant_type: String,
    refresh_token: Option<String>,
}

/// Where the token endpoint puts the tokens.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum Delivery {
    /// In the JSON body (the default).
    Body,
    /// In HttpOnly cookies, with a CSRF token in the body (the hybrid).
    Cookie,
}

/// Which sessions a logout ends.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum LogoutScope {
    /// The caller's own (the default).
    Current,
    /// Every other session of the caller's.
    Others,
    /// All of the caller's sessions.
    All,
}

/// Tokens in the body (the default delivery).
#[derive(ToSchema)]
pub(crate) struct TokenPair {
    access_token: String,
    token_type: String,
    expires_in: i64,
    refresh_token: String,
    #[schema(format = "uuid")]
    session_id: String,
}

/// Tokens delivered as cookies (`?delivery=cookie`): the body keeps only what scripts need.
#[derive(ToSchema)]
pub(crate) struct CookieDelivery {
    token_type: String,
    expires_in: i64,
    csrf_token: String,
    #[schema(format = "uuid")]
    session_id: String,
}

/// A token endpoint answer.
#[derive(ToSchema)]
pub(crate) enum TokenResponse {
    /// The default delivery.
    Body(TokenPair),
    /// `?delivery=cookie`.
    Cookies(CookieDelivery),
}

/// RFC 7009 revocation.
#[derive(ToSchema)]
pub(crate) struct RevokeRequest {
    #[schema(min_length = 1)]
    token: String,
    token_type_hint: Option<String>,
}

/// The session of `/v1/me`.
#[derive(Serialize, ToSchema)]
pub(crate) struct MeSession {
    #[schema(format = "uuid")]
    pub(crate) id: String,
    pub(crate) kind: &'static str,
    #[schema(format = DateTime)]
    pub(crate) expires_at: String,
}

/// Who is calling.
#[derive(Serialize, ToSchema)]
pub(crate) struct Me {
    pub(crate) user: User,
    pub(crate) session: MeSession,
    /// `cookie` or `bearer`.
    pub(crate) auth: &'static str,
    /// Only for cookie-carried calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) csrf_token: Option<String>,
}

/// One device of the device list.
#[derive(ToSchema)]
pub(crate) struct Device {
    #[schema(format = "uuid")]
    id: String,
    kind: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    last_seen_at: String,
    #[schema(format = DateTime)]
    expires_at: String,
    user_agent: Option<String>,
    ip: Option<String>,
    current: bool,
}

/// Which sessions a logout ends (default `current`).
#[derive(ToSchema)]
pub(crate) struct Logout {
    scope: Option<LogoutScope>,
}

/// One revoked token session.
#[derive(ToSchema)]
pub(crate) struct RevokedSession {
    #[schema(format = "uuid")]
    sid: String,
    #[schema(format = DateTime)]
    until: String,
}

/// A snapshot of the revocation feed.
#[derive(ToSchema)]
pub(crate) struct RevocationSnapshot {
    cursor: String,
    revoked: Vec<RevokedSession>,
}

/// `/healthz` and `/readyz`.
#[derive(ToSchema)]
pub(crate) struct Status {
    status: String,
}

/// Declares the two ways to authenticate.
pub(crate) struct AuthSchemes;

impl Modify for AuthSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("latchkey_session"))),
        );
    }
}
