//! The contract's shapes on the wire: every JSON body the API takes or gives, as one typed
//! definition that the handlers build or parse and the OpenAPI document (served at
//! `GET /openapi.json`, assembled in [`crate::routes`]) describes, so the two cannot drift
//! apart; and how values appear (times, the header that keeps an answer out of caches), the
//! same for the API and the pages.

use axum::http::{HeaderValue, header};
use latchkey_core::revocation::Revocation;
use latchkey_core::{Session, SessionId, UserId, Username};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, ToSchema};

/// RFC 3339 in UTC, to the second.
pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0).unwrap_or(at).format(&Rfc3339).unwrap_or_default()
}

/// `Cache-Control: no-store` for responses that carry a secret or a user's data.
pub(crate) const NO_STORE: (header::HeaderName, HeaderValue) =
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store"));

/// An RFC 9457 problem document: every error outside the token endpoints.
#[derive(Serialize, ToSchema)]
pub(crate) struct Problem {
    /// `urn:latchkey:problem:<code>`.
    pub(crate) r#type: String,
    pub(crate) title: &'static str,
    pub(crate) status: u16,
    /// Stable, machine-readable: clients branch on this.
    pub(crate) code: &'static str,
    pub(crate) detail: String,
    /// The offending field of a `422`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) field: Option<String>,
}

/// An RFC 6749 §5.2 error: every error of the token endpoints.
#[derive(Serialize, ToSchema)]
pub(crate) struct OAuthError {
    pub(crate) error: &'static str,
    pub(crate) error_description: String,
}

/// A username and password presented at login (any strings: a wrong one is a `401`).
#[derive(Deserialize, ToSchema)]
pub(crate) struct Credentials {
    pub(crate) username: String,
    pub(crate) password: String,
}

/// A new account's username and password (the policy also refuses common passwords).
#[derive(Deserialize, ToSchema)]
pub(crate) struct SignUp {
    #[schema(min_length = 3, max_length = 64)]
    pub(crate) username: String,
    #[schema(min_length = 8, max_length = 256)]
    pub(crate) password: String,
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
#[derive(Serialize, ToSchema)]
pub(crate) struct CookieSession {
    #[schema(format = "uuid")]
    pub(crate) id: String,
    pub(crate) kind: &'static str,
    #[schema(format = DateTime)]
    pub(crate) expires_at: String,
    #[schema(format = DateTime)]
    pub(crate) idle_expires_at: String,
}

impl CookieSession {
    /// A new session as the login answer shows it.
    pub(crate) fn new(session: &Session) -> Self {
        Self {
            id: session.id.to_string(),
            kind: session.kind.as_str(),
            expires_at: rfc3339(session.absolute_expires_at),
            idle_expires_at: rfc3339(session.idle_expires_at()),
        }
    }
}

/// The answer to a cookie login (the secret travels only in `Set-Cookie`).
#[derive(Serialize, ToSchema)]
pub(crate) struct CookieLogin {
    pub(crate) user: User,
    pub(crate) session: CookieSession,
    pub(crate) csrf_token: String,
}

/// A password change.
#[derive(Deserialize, ToSchema)]
pub(crate) struct PasswordChange {
    pub(crate) current_password: String,
    #[schema(min_length = 8, max_length = 256)]
    pub(crate) new_password: String,
}

// The token endpoints read their parameters by name from a form or from JSON (RFC 6749 §3.2:
// unknown parameters are ignored), and answer a missing one in RFC 6749's terms; these types
// describe the parameters for the document and are never built.

/// A token request (RFC 6749 §4.3 and §6), as a form or as JSON.
// Serialize only lends utoipa serde's `untagged` (a oneOf of the two shapes).
#[derive(ToSchema, Serialize)]
#[serde(untagged)]
#[allow(dead_code, reason = "describes the parameters the token endpoint reads by name")]
pub(crate) enum TokenRequest {
    /// Log in.
    Password(PasswordGrant),
    /// Rotate the refresh token.
    Refresh(RefreshGrant),
    /// An app redeems an authorization code (single sign-on).
    AuthorizationCode(AuthorizationCodeGrant),
}

/// The authorization code grant (RFC 6749 §4.1.3, with PKCE), for an app that authenticates
/// with `client_secret_basic`, `client_secret_post`, or (public) `client_id` alone.
#[derive(ToSchema, Serialize)]
pub(crate) struct AuthorizationCodeGrant {
    #[schema(pattern = "^authorization_code$")]
    grant_type: String,
    code: String,
    redirect_uri: String,
    code_verifier: String,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// The password grant (RFC 6749 §4.3).
#[derive(ToSchema, Serialize)]
pub(crate) struct PasswordGrant {
    #[schema(pattern = "^password$")]
    grant_type: String,
    username: String,
    password: String,
}

/// The refresh grant (RFC 6749 §6); with `?delivery=cookie` the token comes from its cookie.
#[derive(ToSchema, Serialize)]
pub(crate) struct RefreshGrant {
    #[schema(pattern = "^refresh_token$")]
    grant_type: String,
    refresh_token: Option<String>,
}

/// RFC 7009 revocation; an app's token needs that app's authentication (Basic, or
/// `client_id` and `client_secret` here).
#[derive(ToSchema)]
#[allow(dead_code, reason = "describes the parameters the revocation endpoint reads by name")]
pub(crate) struct RevokeRequest {
    #[schema(min_length = 1)]
    token: String,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// RFC 7662 introspection, by a confidential app (Basic, or `client_id` and `client_secret`
/// here) or with the service token.
#[derive(ToSchema)]
#[allow(dead_code, reason = "describes the parameters the introspection endpoint reads by name")]
pub(crate) struct IntrospectionRequest {
    #[schema(min_length = 1)]
    token: String,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// Where the token endpoint puts the tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum Delivery {
    /// In the JSON body (the default).
    Body,
    /// In HttpOnly cookies, with a CSRF token in the body (the hybrid).
    Cookie,
}

/// Tokens in the body (the default delivery).
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenPair {
    pub(crate) access_token: String,
    /// Always `Bearer`.
    pub(crate) token_type: &'static str,
    pub(crate) expires_in: i64,
    pub(crate) refresh_token: String,
    #[schema(format = "uuid")]
    pub(crate) session_id: String,
}

/// An app's tokens (single sign-on): the `authorization_code` grant's answer, and the
/// `refresh_token` grant's for an app's session (without a new ID token).
#[derive(Serialize, ToSchema)]
pub(crate) struct AppTokens {
    pub(crate) access_token: String,
    /// Always `Bearer`.
    pub(crate) token_type: &'static str,
    pub(crate) expires_in: i64,
    pub(crate) refresh_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id_token: Option<String>,
    pub(crate) scope: String,
}

/// The userinfo endpoint's answer.
#[derive(Serialize, ToSchema)]
pub(crate) struct UserInfo {
    pub(crate) sub: String,
    /// With the `profile` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) preferred_username: Option<String>,
}

/// RFC 7662 introspection: `{"active": false}` alone, or everything about an active token.
#[derive(Serialize, ToSchema)]
pub(crate) struct Introspection {
    pub(crate) active: bool,
    #[serde(flatten)]
    pub(crate) token: Option<ActiveToken>,
}

/// What introspection tells of an active token.
#[derive(Serialize, ToSchema)]
pub(crate) struct ActiveToken {
    pub(crate) sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_id: Option<String>,
    pub(crate) sid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) scope: Option<String>,
    pub(crate) exp: i64,
    pub(crate) iat: i64,
    pub(crate) username: String,
    /// `Bearer` for an access token, `refresh_token` for a refresh token.
    pub(crate) token_type: &'static str,
}

/// Tokens delivered as cookies (`?delivery=cookie`): the body keeps only what scripts need.
#[derive(Serialize, ToSchema)]
pub(crate) struct CookieDelivery {
    /// Always `Bearer`.
    pub(crate) token_type: &'static str,
    pub(crate) expires_in: i64,
    pub(crate) csrf_token: String,
    #[schema(format = "uuid")]
    pub(crate) session_id: String,
}

/// A token endpoint answer.
#[derive(ToSchema)]
#[allow(dead_code, reason = "the oneOf of the answers; each is built on its own")]
pub(crate) enum TokenResponse {
    /// The default delivery.
    Body(TokenPair),
    /// An app's tokens.
    App(AppTokens),
    /// `?delivery=cookie`.
    Cookies(CookieDelivery),
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
#[derive(Serialize, ToSchema)]
pub(crate) struct Device {
    #[schema(format = "uuid")]
    pub(crate) id: String,
    pub(crate) kind: &'static str,
    #[schema(format = DateTime)]
    pub(crate) created_at: String,
    #[schema(format = DateTime)]
    pub(crate) last_seen_at: String,
    #[schema(format = DateTime)]
    pub(crate) expires_at: String,
    pub(crate) user_agent: Option<String>,
    pub(crate) ip: Option<String>,
    pub(crate) current: bool,
    /// The app whose session this is (single sign-on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_id: Option<String>,
    /// That app's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_name: Option<String>,
}

impl Device {
    /// `session` in the device list of the caller whose credential belongs to `current`;
    /// `app_name` names the app of an app's session.
    pub(crate) fn new(session: &Session, current: SessionId, app_name: Option<&str>) -> Self {
        Self {
            id: session.id.to_string(),
            kind: session.kind.as_str(),
            created_at: rfc3339(session.created_at),
            last_seen_at: rfc3339(session.last_seen_at),
            expires_at: rfc3339(session.absolute_expires_at),
            user_agent: session.client.user_agent.clone(),
            ip: session.client.ip.clone(),
            current: session.id == current,
            client_id: session.app.as_ref().map(|app| app.client_id.to_string()),
            client_name: app_name.map(str::to_owned),
        }
    }
}

/// Which sessions a logout ends, as the API's body and the account page's form name them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(rename_all = "lowercase")]
pub(crate) enum LogoutScope {
    /// The caller's own (the default).
    #[default]
    Current,
    /// Every other session of the caller's.
    Others,
    /// All of the caller's sessions.
    All,
}

impl From<LogoutScope> for latchkey_core::revocation::LogoutScope {
    fn from(scope: LogoutScope) -> Self {
        match scope {
            LogoutScope::Current => Self::Current,
            LogoutScope::Others => Self::Others,
            LogoutScope::All => Self::All,
        }
    }
}

/// Which sessions a logout ends (default `current`).
#[derive(Default, Deserialize, ToSchema)]
pub(crate) struct Logout {
    #[serde(default)]
    pub(crate) scope: LogoutScope,
}

/// One revoked token session.
#[derive(Serialize, ToSchema)]
pub(crate) struct RevokedSession {
    #[schema(format = "uuid")]
    pub(crate) sid: String,
    #[schema(format = DateTime)]
    pub(crate) until: String,
}

impl RevokedSession {
    /// A revocation as the feed shows it.
    pub(crate) fn new(entry: &Revocation) -> Self {
        Self { sid: entry.session_id.to_string(), until: rfc3339(entry.until) }
    }
}

/// A snapshot of the revocation feed.
#[derive(Serialize, ToSchema)]
pub(crate) struct RevocationSnapshot {
    pub(crate) cursor: String,
    pub(crate) revoked: Vec<RevokedSession>,
}

/// `/healthz` and `/readyz`.
#[derive(Serialize, ToSchema)]
pub(crate) struct Status {
    /// `ok` or `ready`.
    pub(crate) status: &'static str,
}

/// Discovery metadata (OpenID Connect Discovery 1.0 / RFC 8414 names).
#[derive(Serialize, ToSchema)]
pub(crate) struct Discovery {
    pub(crate) issuer: String,
    pub(crate) authorization_endpoint: String,
    pub(crate) token_endpoint: String,
    pub(crate) userinfo_endpoint: String,
    pub(crate) jwks_uri: String,
    pub(crate) revocation_endpoint: String,
    pub(crate) introspection_endpoint: String,
    pub(crate) end_session_endpoint: String,
    pub(crate) scopes_supported: Vec<&'static str>,
    pub(crate) claims_supported: Vec<&'static str>,
    pub(crate) grant_types_supported: Vec<&'static str>,
    pub(crate) response_types_supported: Vec<&'static str>,
    pub(crate) response_modes_supported: Vec<&'static str>,
    pub(crate) code_challenge_methods_supported: Vec<&'static str>,
    pub(crate) prompt_values_supported: Vec<&'static str>,
    pub(crate) token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub(crate) revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub(crate) introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub(crate) id_token_signing_alg_values_supported: Vec<&'static str>,
    pub(crate) access_token_signing_alg_values_supported: Vec<&'static str>,
    pub(crate) subject_types_supported: Vec<&'static str>,
    pub(crate) authorization_response_iss_parameter_supported: bool,
    pub(crate) backchannel_logout_supported: bool,
    pub(crate) backchannel_logout_session_supported: bool,
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
