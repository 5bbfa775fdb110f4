//! The data of the session a request's token names (API.md, "Session data"): a cart, a form's
//! progress, a preference, kept by latchkey with the session. The service reads and writes it
//! by calling latchkey with the request's own access token, so it can touch the caller's
//! session and nothing else, and every instance of the service sees the same data.
//!
//! ```no_run
//! use axum::{Json, Router, routing::post};
//! use latchkey_verifier::{LatchkeySession, SessionDataError, Verifier};
//! use serde_json::{Value, json};
//!
//! async fn add_to_cart(session: LatchkeySession, Json(item): Json<String>) -> Result<Json<Value>, SessionDataError> {
//!     let data = session.patch(&json!({ "cart": { item: 1 } })).await?;
//!     Ok(Json(Value::Object(data.data)))
//! }
//! # fn app(verifier: Verifier) -> Router { Router::new().route("/cart", post(add_to_cart)).with_state(verifier) }
//! ```

use std::fmt;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::{LatchkeyUser, Rejection, VerifiedUser, Verifier, bearer};

/// How long a call to latchkey for session data may take in all.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A session's data and the tag of its version (send it back as `if_match` to change only
/// that version).
#[derive(Clone, PartialEq)]
pub struct SessionData {
    /// The data: a JSON object, empty at first.
    pub data: Map<String, Value>,
    /// The strong entity tag of this version, quotes included, as latchkey's `ETag`.
    pub etag: String,
}

// The data is the app's and may be personal: debug output shows only its shape.
impl fmt::Debug for SessionData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionData").field("keys", &self.data.len()).field("etag", &self.etag).finish()
    }
}

/// Why a read or write of session data failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionDataError {
    /// The token's session has ended (logged out, revoked or expired): latchkey answered `401`.
    #[error("the session has ended")]
    Ended,
    /// The data changed since the version `if_match` named; nothing was written (`412`).
    #[error("the session's data changed since the version named; read it again")]
    Changed,
    /// latchkey refused the new data (not an object, or over its size limit): its detail.
    #[error("latchkey refused the data: {detail}")]
    Refused {
        /// latchkey's status (`413` or `422`).
        status: u16,
        /// latchkey's explanation.
        detail: String,
    },
    /// latchkey could not be reached, or answered something unexpected.
    #[error("latchkey is unavailable: {0}")]
    Unavailable(String),
}

impl IntoResponse for SessionDataError {
    fn into_response(self) -> Response {
        let status = match &self {
            SessionDataError::Ended => StatusCode::UNAUTHORIZED,
            SessionDataError::Changed => StatusCode::PRECONDITION_FAILED,
            SessionDataError::Refused { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
            }
            SessionDataError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let mut response = (status, self.to_string()).into_response();
        if status == StatusCode::UNAUTHORIZED {
            let challenge = HeaderValue::from_static(r#"Bearer error="invalid_token""#);
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// A change to send.
enum Write<'a> {
    Replace(&'a Value),
    MergePatch(&'a Value),
}

impl Verifier {
    /// The data of the session `access_token` names.
    pub async fn session_data(&self, access_token: &str) -> Result<SessionData, SessionDataError> {
        let request = self.inner.http.get(self.data_url());
        self.call(request, access_token).await
    }

    /// Applies a JSON Merge Patch (RFC 7396: members set, `null` removes) to the data of the
    /// session `access_token` names; with `if_match`, only if the data is still at that version.
    pub async fn patch_session_data(
        &self,
        access_token: &str,
        patch: &Value,
        if_match: Option<&str>,
    ) -> Result<SessionData, SessionDataError> {
        self.write(access_token, Write::MergePatch(patch), if_match).await
    }

    /// Replaces the data of the session `access_token` names; with `if_match`, only if the
    /// data is still at that version.
    pub async fn replace_session_data(
        &self,
        access_token: &str,
        data: &Value,
        if_match: Option<&str>,
    ) -> Result<SessionData, SessionDataError> {
        self.write(access_token, Write::Replace(data), if_match).await
    }

    fn data_url(&self) -> String {
        format!("{}/v1/session/data", self.inner.config.endpoint)
    }

    async fn write(
        &self,
        access_token: &str,
        write: Write<'_>,
        if_match: Option<&str>,
    ) -> Result<SessionData, SessionDataError> {
        let (method, media, body) = match write {
            Write::Replace(data) => (reqwest::Method::PUT, "application/json", data),
            Write::MergePatch(patch) => (reqwest::Method::PATCH, "application/merge-patch+json", patch),
        };
        let mut request =
            self.inner.http.request(method, self.data_url()).header(header::CONTENT_TYPE, media).body(body.to_string());
        if let Some(tag) = if_match {
            request = request.header(header::IF_MATCH, tag);
        }
        self.call(request, access_token).await
    }

    /// Sends a data request with the caller's token and reads latchkey's answer.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        access_token: &str,
    ) -> Result<SessionData, SessionDataError> {
        let unavailable = |err: reqwest::Error| SessionDataError::Unavailable(err.without_url().to_string());
        let response = request.bearer_auth(access_token).timeout(CALL_TIMEOUT).send().await.map_err(unavailable)?;
        let status = response.status();
        let etag = response.headers().get(header::ETAG).and_then(|tag| tag.to_str().ok()).map(str::to_owned);
        match status {
            StatusCode::OK => {
                let data = response.json::<Map<String, Value>>().await.map_err(unavailable)?;
                let etag = etag.ok_or_else(|| SessionDataError::Unavailable("latchkey sent no ETag".into()))?;
                Ok(SessionData { data, etag })
            }
            StatusCode::UNAUTHORIZED => Err(SessionDataError::Ended),
            StatusCode::PRECONDITION_FAILED => Err(SessionDataError::Changed),
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNPROCESSABLE_ENTITY => {
                let problem: Value = response.json().await.unwrap_or_default();
                let detail = problem["detail"].as_str().unwrap_or("refused").to_owned();
                Err(SessionDataError::Refused { status: status.as_u16(), detail })
            }
            other => Err(SessionDataError::Unavailable(format!("latchkey answered {other}"))),
        }
    }
}

/// The extractor for a handler that keeps data in the caller's session: a verified, unrevoked
/// token (like [`LatchkeyUser`]) and the means to read and write its session's data.
pub struct LatchkeySession {
    /// Who the token belongs to.
    pub user: VerifiedUser,
    access_token: String,
    verifier: Verifier,
}

// The token is a credential: never shown.
impl fmt::Debug for LatchkeySession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatchkeySession").field("user", &self.user).finish_non_exhaustive()
    }
}

impl LatchkeySession {
    /// The session's data.
    pub async fn data(&self) -> Result<SessionData, SessionDataError> {
        self.verifier.session_data(&self.access_token).await
    }

    /// Applies a JSON Merge Patch to the session's data. Concurrent patches of different
    /// members all land.
    pub async fn patch(&self, patch: &Value) -> Result<SessionData, SessionDataError> {
        self.verifier.patch_session_data(&self.access_token, patch, None).await
    }

    /// Applies a JSON Merge Patch only if the data is still at the version `etag` names.
    pub async fn patch_if(&self, patch: &Value, etag: &str) -> Result<SessionData, SessionDataError> {
        self.verifier.patch_session_data(&self.access_token, patch, Some(etag)).await
    }

    /// Replaces the session's data.
    pub async fn replace(&self, data: &Value) -> Result<SessionData, SessionDataError> {
        self.verifier.replace_session_data(&self.access_token, data, None).await
    }
}

impl<S> FromRequestParts<S> for LatchkeySession
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let LatchkeyUser(user) = LatchkeyUser::from_request_parts(parts, state).await?;
        let access_token = bearer(parts).ok_or(Rejection::Missing)?.to_owned();
        Ok(Self { user, access_token, verifier: Verifier::from_ref(state) })
    }
}
