//! Request bodies: a JSON extractor whose every failure comes out in the contract's error
//! format, the pages' forms, and the form-or-JSON parameters of the token endpoints.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The media type of a request, lowercased, without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim().to_ascii_lowercase();
    Some(essence)
}

fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// The request's body, at most [`BODY_LIMIT`] bytes of it: the one place bodies are read.
async fn read_bytes(req: Request) -> Result<Bytes, ApiError> {
    let body = http_body_util::Limited::new(req.into_body(), BODY_LIMIT);
    match http_body_util::BodyExt::collect(body).await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(ApiError::PayloadTooLarge),
        Err(err) if stalled(err.as_ref()) => Err(ApiError::BodyTimeout),
        Err(_) => Err(ApiError::Malformed("the body could not be read".into())),
    }
}

/// Whether a body failed because it stalled past the client timeout (the connection loop wraps
/// every body in a [`tower_http::timeout::TimeoutBody`]).
fn stalled(rejection: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(rejection);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Deserialises a JSON object, telling broken syntax (400) from bad values (422, naming the field).
/// The whole document is checked for syntax first, so trailing garbage after a well-formed
/// prefix is still a syntax error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let document: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|err| ApiError::Malformed(err.to_string()))?;
    // Every body of the contract is an object; serde would otherwise read an array as a struct.
    if !document.is_object() {
        return Err(ApiError::invalid("body", "expected a JSON object"));
    }
    serde_path_to_error::deserialize(document).map_err(|err| {
        let path = err.path().to_string();
        let message = err.inner().to_string();
        let field = if path.is_empty() || path == "." { missing_field(&message).unwrap_or("body") } else { &path };
        ApiError::invalid(field, strip_position(&message))
    })
}

/// serde names a missing field only in its message: "missing field `password`".
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// A JSON request body (`application/json` or `application/*+json`).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        match media_type(req.headers()) {
            Some(media) if is_json(&media) => {}
            _ => return Err(ApiError::UnsupportedMediaType { expected: "application/json" }),
        }
        let bytes = read_bytes(req).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// The JSON media type.
pub const JSON: &str = "application/json";
/// The media type of a JSON Merge Patch (RFC 7396).
pub const MERGE_PATCH_JSON: &str = "application/merge-patch+json";

/// A request's body as any JSON document, sent as exactly the `media` type (`415` for any
/// other; broken JSON `400`). What the document must be is the caller's rule.
pub async fn json_document(req: Request, media: &'static str) -> Result<serde_json::Value, ApiError> {
    if media_type(req.headers()).as_deref() != Some(media) {
        return Err(ApiError::UnsupportedMediaType { expected: media });
    }
    let bytes = read_bytes(req).await?;
    serde_json::from_slice(&bytes).map_err(|err| ApiError::Malformed(strip_position(&err.to_string())))
}

/// An optional JSON body: an empty body is `None`; anything else must be JSON.
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let media = media_type(req.headers());
        let bytes = read_bytes(req).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        match media {
            Some(media) if is_json(&media) => parse_json(&bytes).map(|value| Self(Some(value))),
            _ => Err(ApiError::UnsupportedMediaType { expected: "application/json" }),
        }
    }
}

/// Runs a body extractor on a request a handler already took whole (to read its headers and
/// connection first).
pub async fn body_of<T: FromRequest<()>>(request: Request) -> Result<T, T::Rejection> {
    T::from_request(request, &()).await
}

/// A form a page posts (`application/x-www-form-urlencoded`), as browsers send it.
pub struct FormBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for FormBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if media_type(req.headers()).as_deref() != Some("application/x-www-form-urlencoded") {
            return Err(ApiError::UnsupportedMediaType { expected: "application/x-www-form-urlencoded" });
        }
        let bytes = read_bytes(req).await?;
        serde_urlencoded::from_bytes(&bytes).map(FormBody).map_err(|err| ApiError::Malformed(err.to_string()))
    }
}

/// The parameters of an OAuth-style request, form-encoded (RFC 6749) or JSON. Each
/// parameter at most once, every value a string.
pub struct OAuthParams(pub HashMap<String, String>);

impl OAuthParams {
    /// A parameter's value, if present and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|value| !value.is_empty())
    }
}

impl<S: Send + Sync> FromRequest<S> for OAuthParams {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let media = media_type(req.headers());
        let bytes = read_bytes(req).await?;
        match media.as_deref() {
            Some("application/x-www-form-urlencoded") => {
                let pairs: Vec<(String, String)> =
                    serde_urlencoded::from_bytes(&bytes).map_err(|err| ApiError::Malformed(err.to_string()))?;
                let mut params = HashMap::with_capacity(pairs.len());
                for (name, value) in pairs {
                    if params.insert(name.clone(), value).is_some() {
                        return Err(ApiError::Malformed(format!("parameter {name} is repeated")));
                    }
                }
                Ok(Self(params))
            }
            Some(media) if is_json(media) => {
                let values: HashMap<String, serde_json::Value> = parse_json(&bytes)?;
                let mut params = HashMap::with_capacity(values.len());
                for (name, value) in values {
                    match value {
                        serde_json::Value::String(text) => {
                            params.insert(name, text);
                        }
                        _ => return Err(ApiError::invalid(&name, "expected a string")),
                    }
                }
                Ok(Self(params))
            }
            _ => Err(ApiError::UnsupportedMediaType {
                expected: "application/x-www-form-urlencoded or application/json",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Login {
        username: String,
        password: String,
    }

    #[test]
    fn broken_json_is_malformed_and_bad_values_name_their_field() {
        assert!(matches!(parse_json::<Login>(b"{\"username\": "), Err(ApiError::Malformed(_))));
        assert!(matches!(parse_json::<Login>(b""), Err(ApiError::Malformed(_))));
        match parse_json::<Login>(br#"{"username": "alice"}"#) {
            Err(ApiError::InvalidInput { field, .. }) => assert_eq!(field, "password"),
            other => panic!("expected invalid input, got {other:?}"),
        }
        match parse_json::<Login>(br#"{"username": 5, "password": "x"}"#) {
            Err(ApiError::InvalidInput { field, .. }) => assert_eq!(field, "username"),
            other => panic!("expected invalid input, got {other:?}"),
        }
        match parse_json::<Login>(b"[1]") {
            Err(ApiError::InvalidInput { field, .. }) => assert_eq!(field, "body"),
            other => panic!("expected invalid input, got {other:?}"),
        }
    }
}
