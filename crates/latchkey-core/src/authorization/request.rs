//! An authorization request (OpenID Connect Core §3.1.2.1) as the contract checks it: the
//! client and its redirect URI first, which decide whether an error may be sent back at all,
//! then everything else, whose errors go back to the app.

use std::fmt;

use time::{Duration, OffsetDateTime};

use super::CodeChallenge;
use crate::clients::{Client, ClientId};
use crate::error::AuthError;

/// The scopes latchkey grants; anything else asked for is dropped from the grant.
pub const SUPPORTED_SCOPES: [&str; 2] = ["openid", "profile"];

/// Longest `state` and `nonce` kept, in bytes: they come back in a URL and a token.
const MAX_ECHOED: usize = 512;

/// The parameters of an authorization request, as sent (query or form).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct AuthorizationParams {
    /// `response_type`.
    pub response_type: Option<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// `state`.
    pub state: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// `code_challenge`.
    pub code_challenge: Option<String>,
    /// `code_challenge_method`.
    pub code_challenge_method: Option<String>,
    /// `prompt`.
    pub prompt: Option<String>,
    /// `max_age`.
    pub max_age: Option<String>,
    /// `signed_in_after`: latchkey's own mark on a request it sent through the sign-in page to
    /// ask for the password again (a time and its MAC under the server secret, so it cannot be
    /// forged to skip `prompt=login`).
    pub signed_in_after: Option<String>,
}

/// What the app asked the user to go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// Show pages as needed.
    Default,
    /// Never show a page: answer `login_required` or `consent_required` instead.
    None,
    /// Ask for the password again.
    Login,
}

/// A checked authorization request.
#[derive(Clone)]
pub struct AuthorizationRequest {
    /// The app.
    pub client: Client,
    /// Where the answer goes (one of the client's, character for character).
    pub redirect_uri: String,
    /// The scopes to grant, `openid` first, unknown ones dropped.
    pub scopes: Vec<String>,
    /// Sent back unchanged.
    pub state: Option<String>,
    /// Put into the ID token.
    pub nonce: Option<String>,
    /// The PKCE challenge (S256).
    pub challenge: CodeChallenge,
    /// What the app asked for.
    pub prompt: Prompt,
    /// The oldest sign-in the app accepts, in seconds.
    pub max_age: Option<Duration>,
    /// The sign-in must have happened at or after this: the time of latchkey's mark (see
    /// [`AuthorizationParams::signed_in_after`]), once its MAC is checked.
    pub signed_in_after: Option<OffsetDateTime>,
    /// The mark as sent, for the service to check.
    pub(crate) mark: Option<String>,
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("client", &self.client.id)
            .field("scopes", &self.scopes)
            .field("prompt", &self.prompt)
            .finish_non_exhaustive()
    }
}

impl AuthorizationRequest {
    /// Whether a sign-in made at `auth_time` is recent enough for this request at `now`.
    pub fn accepts_sign_in(&self, auth_time: OffsetDateTime, now: OffsetDateTime) -> bool {
        match self.signed_in_after {
            // The request went through the sign-in page for this very reason: a sign-in made
            // since meets `prompt=login` and any `max_age` (even 0).
            Some(mark) => auth_time > mark,
            None => self.prompt != Prompt::Login && self.max_age.is_none_or(|max_age| now - auth_time <= max_age),
        }
    }
}

/// The error codes of an authorization response (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationErrorCode {
    /// A parameter is missing, repeated or wrong.
    InvalidRequest,
    /// Not `response_type=code`.
    UnsupportedResponseType,
    /// No `openid` in the scope.
    InvalidScope,
    /// The user pressed "Deny".
    AccessDenied,
    /// `prompt=none` and the user is not signed in (or not recently enough).
    LoginRequired,
    /// `prompt=none` and the consent page would be needed.
    ConsentRequired,
    /// The stores failed.
    TemporarilyUnavailable,
    /// Something unexpected failed.
    ServerError,
}

impl AuthorizationErrorCode {
    /// The `error` parameter's value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
        }
    }
}

/// An error that goes back to the app at its (checked) redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectedError {
    /// The checked redirect URI.
    pub redirect_uri: String,
    /// The request's `state`.
    pub state: Option<String>,
    /// The error.
    pub code: AuthorizationErrorCode,
    /// Why, for the app's developer.
    pub description: &'static str,
}

/// Why an authorization request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizationError {
    /// The client is unknown or the redirect URI is not one of its own: shown to the user on
    /// an error page, never sent anywhere (it would be an open redirect).
    #[error("{0}")]
    NotRedirectable(&'static str),
    /// Anything else, once the redirect URI is known to be the client's: sent back to it.
    #[error("{}", .0.description)]
    Redirected(RedirectedError),
    /// The service failed (a store, signing): an error page, never a redirect.
    #[error(transparent)]
    Failed(#[from] AuthError),
}

impl AuthorizationError {
    /// The error for `request`'s app.
    pub fn to_app(request: &AuthorizationRequest, code: AuthorizationErrorCode, description: &'static str) -> Self {
        Self::Redirected(RedirectedError {
            redirect_uri: request.redirect_uri.clone(),
            state: request.state.clone(),
            code,
            description,
        })
    }
}

/// A parameter given once and not empty (RFC 6749 §3.1: empty counts as absent).
fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|value| !value.is_empty())
}

impl AuthorizationParams {
    /// The parameters that were sent, by name, in a fixed order: to carry the request through
    /// the sign-in page (as a query) or the consent page (as hidden fields) unchanged.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("nonce", &self.nonce),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
            ("prompt", &self.prompt),
            ("max_age", &self.max_age),
            ("signed_in_after", &self.signed_in_after),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|value| (name, value)))
        .collect()
    }

    /// The client id and redirect URI, checked before anything else; the client is looked up
    /// by the caller (`lookup`) so this stays free of stores.
    pub fn client_and_redirect(&self) -> Result<(ClientId, &str), AuthorizationError> {
        let client_id = present(&self.client_id)
            .ok_or(AuthorizationError::NotRedirectable("the request names no client (client_id)"))?;
        let client_id = ClientId::parse(client_id)
            .ok_or(AuthorizationError::NotRedirectable("the app (client_id) is not known here"))?;
        let redirect_uri = present(&self.redirect_uri)
            .ok_or(AuthorizationError::NotRedirectable("the request names no address to answer to (redirect_uri)"))?;
        Ok((client_id, redirect_uri))
    }

    /// Checks the request for `client` (already looked up by [`Self::client_and_redirect`]'s
    /// id).
    pub fn check(self, client: Client) -> Result<AuthorizationRequest, AuthorizationError> {
        let (_, redirect_uri) = self.client_and_redirect()?;
        if !client.may_redirect_to(redirect_uri) {
            return Err(AuthorizationError::NotRedirectable(
                "the address to answer to (redirect_uri) is not one registered for this app",
            ));
        }
        let redirect_uri = redirect_uri.to_owned();
        let state = present(&self.state).map(str::to_owned);
        let refuse = |code, description| {
            AuthorizationError::Redirected(RedirectedError {
                redirect_uri: redirect_uri.clone(),
                state: state.clone().filter(|state| state.len() <= MAX_ECHOED),
                code,
                description,
            })
        };
        use AuthorizationErrorCode::*;
        if state.as_ref().is_some_and(|state| state.len() > MAX_ECHOED) {
            return Err(refuse(InvalidRequest, "state is longer than 512 bytes"));
        }
        match present(&self.response_type) {
            None => return Err(refuse(InvalidRequest, "response_type is required")),
            Some("code") => {}
            Some(_) => return Err(refuse(UnsupportedResponseType, "only response_type=code is supported")),
        }
        let asked = present(&self.scope).unwrap_or_default();
        if !asked.split(' ').any(|scope| scope == "openid") {
            return Err(refuse(InvalidScope, "the scope must contain openid"));
        }
        let scopes: Vec<String> = SUPPORTED_SCOPES
            .iter()
            .filter(|supported| asked.split(' ').any(|scope| scope == **supported))
            .map(|scope| (*scope).to_owned())
            .collect();
        let challenge = match (present(&self.code_challenge), present(&self.code_challenge_method)) {
            (Some(challenge), Some("S256")) => CodeChallenge::parse(challenge)
                .ok_or_else(|| refuse(InvalidRequest, "code_challenge must be 43 base64url characters"))?,
            (None, _) => return Err(refuse(InvalidRequest, "PKCE is required: send code_challenge with S256")),
            (Some(_), _) => return Err(refuse(InvalidRequest, "code_challenge_method must be S256")),
        };
        let nonce = present(&self.nonce).map(str::to_owned);
        if nonce.as_ref().is_some_and(|nonce| nonce.len() > MAX_ECHOED) {
            return Err(refuse(InvalidRequest, "nonce is longer than 512 bytes"));
        }
        let prompt = match present(&self.prompt) {
            None => Prompt::Default,
            Some("none") => Prompt::None,
            Some("login") => Prompt::Login,
            Some("consent" | "select_account") => Prompt::Default,
            Some(_) => return Err(refuse(InvalidRequest, "prompt must be none, login, consent or select_account")),
        };
        let max_age = match present(&self.max_age) {
            None => None,
            Some(text) => match text.parse::<u32>() {
                Ok(seconds) => Some(Duration::seconds(i64::from(seconds))),
                Err(_) => return Err(refuse(InvalidRequest, "max_age must be a whole number of seconds")),
            },
        };
        let mark = present(&self.signed_in_after).map(str::to_owned);
        Ok(AuthorizationRequest {
            client,
            redirect_uri,
            scopes,
            state,
            nonce,
            challenge,
            prompt,
            max_age,
            signed_in_after: None,
            mark,
        })
    }
}
