//! How an app authenticates at the token, introspection and revocation endpoints (RFC 6749
//! §2.3.1): `client_secret_basic` (HTTP Basic with the form-encoded id and secret),
//! `client_secret_post` (`client_id` and `client_secret` in the body), or, for a public
//! client, its `client_id` alone. A request uses one method only.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latchkey_core::clients::Client;
use percent_encoding::percent_decode_str;

use crate::body::OAuthParams;
use crate::error::ApiError;
use crate::state::AppState;

/// The client credentials a request presented: the id, and the secret if any.
#[derive(PartialEq, Eq)]
struct Presented {
    id: String,
    secret: Option<String>,
}

/// A component of Basic credentials, form-decoded (`+` is a space, as RFC 6749 §2.3.1 encodes).
fn form_decoded(text: &str) -> Option<String> {
    percent_decode_str(&text.replace('+', " ")).decode_utf8().ok().map(|text| text.into_owned())
}

/// The `Authorization: Basic` credentials, if the request has that header; a malformed one is
/// `invalid_client`.
fn basic(headers: &HeaderMap) -> Result<Option<Presented>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let Some(encoded) = value.to_str().ok().and_then(|value| {
        let (scheme, rest) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
    }) else {
        return Ok(None);
    };
    let decoded = STANDARD.decode(encoded).ok().and_then(|bytes| String::from_utf8(bytes).ok());
    let (id, secret) = decoded.as_deref().and_then(|text| text.split_once(':')).ok_or(ApiError::InvalidClient)?;
    let (Some(id), Some(secret)) = (form_decoded(id), form_decoded(secret)) else {
        return Err(ApiError::InvalidClient);
    };
    Ok(Some(Presented { id, secret: Some(secret) }))
}

fn presented(headers: &HeaderMap, params: &OAuthParams) -> Result<Option<Presented>, ApiError> {
    let in_body = match (params.get("client_id"), params.get("client_secret")) {
        (Some(id), secret) => Some(Presented { id: id.to_owned(), secret: secret.map(str::to_owned) }),
        (None, Some(_)) => return Err(ApiError::InvalidRequest("client_secret needs client_id")),
        (None, None) => None,
    };
    match (basic(headers)?, in_body) {
        (Some(basic), None) => Ok(Some(basic)),
        // A body's client_id that repeats Basic's is allowed (some libraries send both).
        (Some(basic), Some(body)) if body.secret.is_none() && body.id == basic.id => Ok(Some(basic)),
        (Some(_), Some(_)) => Err(ApiError::InvalidRequest("use one method of client authentication")),
        (None, body) => Ok(body),
    }
}

/// The app a request authenticates as, if it presents client credentials; `invalid_client`
/// when it presents wrong ones.
pub(crate) async fn authenticated_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &OAuthParams,
) -> Result<Option<Client>, ApiError> {
    match presented(headers, params)? {
        None => Ok(None),
        Some(Presented { id, secret }) => Ok(Some(state.service.authenticate_client(&id, secret.as_deref()).await?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(authorization).unwrap_or(HeaderValue::from_static("")),
        );
        headers
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        // RFC 6749 §2.3.1: the id and secret are form-encoded before Base64.
        let encoded = STANDARD.encode("my%20app:s3cr%2Bt+x");
        let found = basic(&headers(&format!("Basic {encoded}"))).ok().flatten();
        assert!(found == Some(Presented { id: "my app".into(), secret: Some("s3cr+t x".into()) }));
    }

    #[test]
    fn malformed_basic_credentials_are_invalid_client_and_other_schemes_are_ignored() {
        assert!(matches!(basic(&headers("Basic !!!")), Err(ApiError::InvalidClient)));
        let no_colon = STANDARD.encode("justanid");
        assert!(matches!(basic(&headers(&format!("Basic {no_colon}"))), Err(ApiError::InvalidClient)));
        assert!(matches!(basic(&headers("Bearer abc")), Ok(None)));
    }
}
