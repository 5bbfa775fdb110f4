//! The HTTP layer's one error enum, mapped once to the contract: `application/problem+json`
//! (RFC 9457) everywhere, RFC 6749 §5.2 bodies on the token endpoint.

use crate::wire::{OAuthError, Problem};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::AuthError;
use latchkey_core::sessions::DataError;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Syntactically broken JSON or form data.
    #[error("the request body is not well-formed: {0}")]
    Malformed(String),
    /// A token endpoint's request without a parameter it needs, or with a value it does not
    /// take (RFC 6749 §5.2 `invalid_request`).
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// A refresh token that is invalid, expired or revoked (RFC 6749 §5.2 `invalid_grant`).
    #[error("the grant (refresh token or authorization code) is invalid, expired or revoked")]
    InvalidGrant,
    /// An app's authentication failed (RFC 6749 §5.2 `invalid_client`).
    #[error("client authentication failed: unknown client, wrong secret, or a secret from a public client")]
    InvalidClient,
    /// A `grant_type` the token endpoint does not take.
    #[error("supported grant types: password, refresh_token")]
    UnsupportedGrantType,
    /// A well-formed body with a missing field, a wrong type or a bad value.
    #[error("invalid value for {field}: {detail}")]
    InvalidInput {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A body type the route does not take.
    #[error("unsupported media type; send {expected}")]
    UnsupportedMediaType {
        /// What the route takes.
        expected: &'static str,
    },
    /// A body above the limit.
    #[error("the request body is larger than 64 KiB")]
    PayloadTooLarge,
    /// Session data larger than the limit as compact JSON.
    #[error("{0}")]
    SessionDataTooLarge(DataError),
    /// An `If-Match` that names no current version; nothing was changed.
    #[error("the session's data has changed since the version If-Match names; read it again")]
    PreconditionFailed,
    /// A method the route does not take.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A request body that stalled for the client timeout.
    #[error("the request body stalled; send it without pauses")]
    BodyTimeout,
    /// Request headers larger than the limit, in all.
    #[error("the request headers are larger than 32 KiB in all")]
    HeadersTooLarge,
    /// No such route.
    #[error("not found")]
    NotFound,
    /// Sign-up with a username that is taken.
    #[error("this username is taken")]
    UsernameTaken,
    /// Wrong username or password (the one answer for every reason).
    #[error("the username or password is wrong")]
    InvalidCredentials {
        /// 401 at login, 403 for a password change's wrong current password.
        status: StatusCode,
    },
    /// Too many failed password attempts; retry after this many seconds.
    #[error("too many failed attempts; retry in {retry_after} s")]
    TooManyAttempts {
        /// Seconds until an attempt will be checked again (`Retry-After`).
        retry_after: u64,
    },
    /// No credential, or one that is not valid.
    #[error("authentication required")]
    Unauthenticated {
        /// Whether a bearer token was presented and refused (RFC 6750 `invalid_token`).
        bad_bearer: bool,
    },
    /// The CSRF rule refused the request.
    #[error("{0}")]
    CsrfRejected(&'static str),
    /// A session id that is not the caller's.
    #[error("no such session")]
    SessionNotFound,
    /// A store did not answer; the cause goes to the log only.
    #[error("a store is unavailable")]
    StoreUnavailable(String),
    /// Anything else; the detail goes to the log only.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// Invalid input on `field`.
    pub fn invalid(field: &str, detail: impl ToString) -> Self {
        Self::InvalidInput { field: field.to_owned(), detail: detail.to_string() }
    }

    /// The HTTP status of this error.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Malformed(_) | Self::InvalidRequest(_) | Self::InvalidGrant | Self::UnsupportedGrantType => {
                StatusCode::BAD_REQUEST
            }
            Self::InvalidInput { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge | Self::SessionDataTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::NotFound | Self::SessionNotFound => StatusCode::NOT_FOUND,
            Self::UsernameTaken => StatusCode::CONFLICT,
            Self::InvalidCredentials { status } => *status,
            Self::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unauthenticated { .. } | Self::InvalidClient => StatusCode::UNAUTHORIZED,
            Self::CsrfRejected(_) => StatusCode::FORBIDDEN,
            Self::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_request",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidGrant => "invalid_grant",
            Self::InvalidClient => "invalid_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidInput { .. } => "invalid_input",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::PayloadTooLarge | Self::SessionDataTooLarge(_) => "payload_too_large",
            Self::PreconditionFailed => "precondition_failed",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::BodyTimeout => "request_timeout",
            Self::HeadersTooLarge => "headers_too_large",
            Self::NotFound => "not_found",
            Self::UsernameTaken => "username_taken",
            Self::InvalidCredentials { .. } => "invalid_credentials",
            Self::TooManyAttempts { .. } => "too_many_attempts",
            Self::Unauthenticated { bad_bearer: true } => "invalid_token",
            Self::Unauthenticated { bad_bearer: false } => "unauthenticated",
            Self::CsrfRejected(_) => "csrf_rejected",
            Self::SessionNotFound => "session_not_found",
            Self::StoreUnavailable(_) => "store_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    /// The short human title (the problem document's `title`).
    pub(crate) fn title(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "Malformed request",
            Self::InvalidRequest(_) => "Invalid request",
            Self::InvalidGrant => "Invalid grant",
            Self::InvalidClient => "Invalid client",
            Self::UnsupportedGrantType => "Unsupported grant type",
            Self::InvalidInput { .. } => "Invalid input",
            Self::UnsupportedMediaType { .. } => "Unsupported media type",
            Self::PayloadTooLarge | Self::SessionDataTooLarge(_) => "Payload too large",
            Self::PreconditionFailed => "Precondition failed",
            Self::MethodNotAllowed => "Method not allowed",
            Self::BodyTimeout => "Request timeout",
            Self::HeadersTooLarge => "Request headers too large",
            Self::NotFound => "Not found",
            Self::UsernameTaken => "Username taken",
            Self::InvalidCredentials { .. } => "Invalid credentials",
            Self::TooManyAttempts { .. } => "Too many attempts",
            Self::Unauthenticated { .. } => "Unauthenticated",
            Self::CsrfRejected(_) => "CSRF check failed",
            Self::SessionNotFound => "Session not found",
            Self::StoreUnavailable(_) => "Service unavailable",
            Self::Internal(_) => "Internal error",
        }
    }

    /// The RFC 6749 §5.2 form of this error, for the token endpoints.
    pub fn into_oauth(self) -> Response {
        let (status, error) = match &self {
            Self::InvalidCredentials { .. } | Self::InvalidGrant => (StatusCode::BAD_REQUEST, "invalid_grant"),
            Self::UnsupportedGrantType => (StatusCode::BAD_REQUEST, "unsupported_grant_type"),
            Self::InvalidClient => (StatusCode::UNAUTHORIZED, "invalid_client"),
            // An extension error code (RFC 6749 §8.5), as other OAuth servers answer it.
            Self::TooManyAttempts { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            Self::CsrfRejected(_) => (StatusCode::FORBIDDEN, "invalid_request"),
            Self::StoreUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
            Self::PayloadTooLarge
            | Self::UnsupportedMediaType { .. }
            | Self::MethodNotAllowed
            | Self::BodyTimeout
            | Self::HeadersTooLarge => (self.status(), "invalid_request"),
            _ => (StatusCode::BAD_REQUEST, "invalid_request"),
        };
        let mut response = oauth_error(status, error, self.public_detail());
        if let Self::InvalidClient = self {
            // RFC 6749 §5.2: a 401 names the scheme the client may authenticate with.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="latchkey""#));
        }
        self.add_retry_after(response.headers_mut());
        self.attach_fault(&mut response);
        response
    }

    /// The detail shown to the client. A server error's own cause is never shown: it goes to
    /// the log, under the answer's `X-Request-Id` (see [`ServerFault`]).
    pub(crate) fn public_detail(&self) -> String {
        match self {
            Self::Internal(_) => "internal error; the X-Request-Id of this answer finds it in the log".to_owned(),
            other => other.to_string(),
        }
    }

    /// Hands a server error's cause to the frame, which logs it once with the request's id.
    pub(crate) fn attach_fault(&self, response: &mut Response) {
        if let Self::Internal(cause) | Self::StoreUnavailable(cause) = self {
            response.extensions_mut().insert(ServerFault(cause.clone()));
        }
    }

    /// Adds `Retry-After` to a throttled answer.
    pub(crate) fn add_retry_after(&self, headers: &mut HeaderMap) {
        if let Self::TooManyAttempts { retry_after } = self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::UsernameTaken => Self::UsernameTaken,
            AuthError::InvalidUsername(why) => Self::invalid("username", why),
            AuthError::InvalidPassword(why) => Self::invalid("password", why),
            AuthError::InvalidCredentials => Self::InvalidCredentials { status: StatusCode::UNAUTHORIZED },
            AuthError::InvalidGrant => Self::InvalidGrant,
            // The caller is signed in; only the password they retyped is refused.
            AuthError::WrongCurrentPassword => Self::InvalidCredentials { status: StatusCode::FORBIDDEN },
            AuthError::Throttled(throttled) => {
                // Whole seconds, rounded up, so a client that waits as told is let through.
                let millis = throttled.retry_after.whole_milliseconds().max(1);
                let retry_after = u64::try_from((millis + 999) / 1000).unwrap_or(u64::MAX);
                Self::TooManyAttempts { retry_after }
            }
            AuthError::NotFound => Self::SessionNotFound,
            AuthError::InvalidClient => Self::InvalidClient,
            // Clients are registered by the operator's commands; no route changes one.
            AuthError::Client(err) => Self::Internal(err.to_string()),
            AuthError::Data(err) => match err {
                DataError::NotAnObject => Self::invalid("body", err),
                DataError::TooLarge { .. } => Self::SessionDataTooLarge(err),
                DataError::PreconditionFailed => Self::PreconditionFailed,
                DataError::Contended | DataError::Unreadable => Self::StoreUnavailable(err.to_string()),
            },
            AuthError::Store(err) => Self::StoreUnavailable(err.to_string()),
            AuthError::Hash(err) => Self::Internal(err.to_string()),
            AuthError::Key(err) => Self::Internal(err.to_string()),
            AuthError::Policy(err) => Self::Internal(err.to_string()),
            AuthError::RotationPending => Self::Internal(AuthError::RotationPending.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = self.public_detail();
        let body = Problem {
            r#type: format!("urn:latchkey:problem:{}", self.code()),
            title: self.title(),
            status: status.as_u16(),
            code: self.code(),
            detail,
            field: match &self {
                Self::InvalidInput { field, .. } => Some(field.clone()),
                _ => None,
            },
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Self::Unauthenticated { bad_bearer } = &self {
            let challenge = if *bad_bearer { r#"Bearer error="invalid_token""# } else { "Bearer" };
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        self.add_retry_after(&mut headers);
        let mut response = (status, headers, serde_json::to_string(&body).unwrap_or_default()).into_response();
        self.attach_fault(&mut response);
        response
    }
}

/// Why an answer is a server error, carried from the error to the [`crate::middleware::Frame`]
/// in the response's extensions: the frame writes the one log line of each server error, with
/// the request's id, route and method. Never sent to the client.
#[derive(Debug, Clone)]
pub(crate) struct ServerFault(pub(crate) String);

/// An RFC 6749 §5.2 answer of the token endpoints.
fn oauth_error(status: StatusCode, error: &'static str, error_description: String) -> Response {
    let body = OAuthError { error, error_description };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ];
    (status, headers, serde_json::to_string(&body).unwrap_or_default()).into_response()
}
