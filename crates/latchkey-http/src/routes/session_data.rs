//! `GET`/`PUT`/`PATCH /v1/session/data`: the data an app keeps in the caller's session, with
//! its version as a strong `ETag` and `If-Match` (RFC 9110 §13.1.1) so writers never lose each
//! other's updates. Either kind, and the hybrid; cookie-carried writes follow the CSRF rule
//! (the [`Auth`] extractor applies it to every unsafe method).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::sessions::{DataChange, DataTag, Precondition, SessionData};

use crate::auth::{Auth, Via};
use crate::body::{JSON, MERGE_PATCH_JSON, json_document};
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::NO_STORE;

/// The caller's session data: `{}` until something is written. `If-None-Match` naming the
/// current version answers `304`; `If-Match` naming none answers `412`.
#[utoipa::path(
    get,
    path = "/v1/session/data",
    tag = "either kind",
    params(
        ("If-Match" = Option<String>, Header, description = "Entity tags one of which must name the current version"),
        ("If-None-Match" = Option<String>, Header, description = "Entity tags of versions the client already has")
    ),
    security((), ("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The session's data (a JSON object)", body = Object,
            headers(("ETag" = String, description = "The strong entity tag of this version"))),
        (status = 304, description = "The version named in If-None-Match is current",
            headers(("ETag" = String, description = "The strong entity tag of this version"))),
        (status = 401, description = "No valid credential, or the session has ended", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names no current version", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 503, description = "A store is unavailable", body = crate::wire::Problem, content_type = "application/problem+json")
    )
)]
pub(super) async fn read(
    State(state): State<AppState>,
    Auth(auth): Auth,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let data = state.service.session_data(&auth.caller).await?.ok_or_else(|| ended(auth.via))?;
    if !if_match(&headers).allows(&data.tag) {
        return Err(ApiError::PreconditionFailed);
    }
    if if_none_match(&headers).is_some_and(|known| known.allows(&data.tag)) {
        return Ok((StatusCode::NOT_MODIFIED, [NO_STORE, (header::ETAG, etag(&data.tag)?)]).into_response());
    }
    answer(data)
}

/// Replaces the caller's session data with the body, a JSON object of at most 16,384 bytes as
/// compact JSON.
#[utoipa::path(
    put,
    path = "/v1/session/data",
    tag = "either kind",
    params(("If-Match" = Option<String>, Header, description = "Entity tags one of which must name the current version")),
    request_body(content = Object, content_type = "application/json"),
    security((), ("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The new data", body = Object,
            headers(("ETag" = String, description = "The strong entity tag of the new version"))),
        (status = 400, description = "Malformed JSON", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential, or the session has ended", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF rule", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names no current version; nothing changed", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Over 16,384 bytes as compact JSON, or a body over 64 KiB", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a JSON object", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 503, description = "A store is unavailable", body = crate::wire::Problem, content_type = "application/problem+json")
    )
)]
pub(super) async fn replace(state: State<AppState>, auth: Auth, request: Request) -> Result<Response, ApiError> {
    change(state, auth, request, JSON, DataChange::Replace).await
}

/// Applies a JSON Merge Patch (RFC 7396) to the caller's session data; the result must be a
/// JSON object of at most 16,384 bytes as compact JSON.
#[utoipa::path(
    patch,
    path = "/v1/session/data",
    tag = "either kind",
    params(("If-Match" = Option<String>, Header, description = "Entity tags one of which must name the current version")),
    request_body(content = Object, content_type = "application/merge-patch+json"),
    security((), ("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The new data", body = Object,
            headers(("ETag" = String, description = "The strong entity tag of the new version"))),
        (status = 400, description = "Malformed JSON", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential, or the session has ended", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 403, description = "CSRF rule", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names no current version; nothing changed", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The result is over 16,384 bytes as compact JSON, or the body over 64 KiB", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/merge-patch+json", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The result is not a JSON object", body = crate::wire::Problem, content_type = "application/problem+json"),
        (status = 503, description = "A store is unavailable", body = crate::wire::Problem, content_type = "application/problem+json")
    )
)]
pub(super) async fn patch(state: State<AppState>, auth: Auth, request: Request) -> Result<Response, ApiError> {
    change(state, auth, request, MERGE_PATCH_JSON, DataChange::MergePatch).await
}

/// A write: the body of `media` type, made into a change, applied under `If-Match`.
async fn change(
    State(state): State<AppState>,
    Auth(auth): Auth,
    request: Request,
    media: &'static str,
    make: fn(serde_json::Value) -> DataChange,
) -> Result<Response, ApiError> {
    let precondition = if_match(request.headers());
    let document = json_document(request, media).await?;
    let data = state.service.change_session_data(&auth.caller, &precondition, &make(document)).await?;
    answer(data.ok_or_else(|| ended(auth.via))?)
}

/// `200` with the data and its `ETag`.
fn answer(data: SessionData) -> Result<Response, ApiError> {
    let headers = [
        NO_STORE,
        (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (header::ETAG, etag(&data.tag)?),
    ];
    Ok((headers, data.json).into_response())
}

/// The session ended (or the credential no longer names a live one of its user's).
fn ended(via: Via) -> ApiError {
    ApiError::Unauthenticated { bad_bearer: via == Via::Bearer }
}

fn etag(tag: &DataTag) -> Result<HeaderValue, ApiError> {
    HeaderValue::try_from(format!("\"{}\"", tag.as_str()))
        .map_err(|_| ApiError::Internal("unrepresentable ETag".into()))
}

/// `If-Match`: no header is no condition. Its tags are compared strongly, so a weak one
/// matches nothing; a header that is not a list of entity tags matches nothing either, so a
/// client that meant a condition never overwrites by mistake.
fn if_match(headers: &HeaderMap) -> Precondition {
    match entity_tags(headers, header::IF_MATCH) {
        None => Precondition::None,
        Some(EntityTags::Any) => Precondition::AnyVersion,
        Some(EntityTags::List(tags)) => {
            Precondition::OneOf(tags.into_iter().filter(|tag| !tag.weak).map(|tag| tag.opaque).collect())
        }
        Some(EntityTags::Malformed) => Precondition::OneOf(Vec::new()),
    }
}

/// `If-None-Match`, as the versions the client has: compared weakly (a weak tag names the
/// same version as its strong twin). A malformed header is ignored (RFC 9110 §13.1.2 leaves
/// the request to go ahead).
fn if_none_match(headers: &HeaderMap) -> Option<Precondition> {
    match entity_tags(headers, header::IF_NONE_MATCH)? {
        EntityTags::Any => Some(Precondition::AnyVersion),
        EntityTags::List(tags) => Some(Precondition::OneOf(tags.into_iter().map(|tag| tag.opaque).collect())),
        EntityTags::Malformed => None,
    }
}

/// What an `If-Match` or `If-None-Match` field holds.
#[derive(Debug, PartialEq, Eq)]
enum EntityTags {
    /// `*`.
    Any,
    /// A list of entity tags.
    List(Vec<EntityTag>),
    /// Anything else.
    Malformed,
}

#[derive(Debug, PartialEq, Eq)]
struct EntityTag {
    weak: bool,
    opaque: String,
}

/// The entity tags of every `name` field of the request, as one list (RFC 9110 §5.3); `None`
/// without any.
fn entity_tags(headers: &HeaderMap, name: header::HeaderName) -> Option<EntityTags> {
    let mut fields = headers.get_all(name).iter().peekable();
    fields.peek()?;
    let mut tags = Vec::new();
    for field in fields {
        let Ok(text) = field.to_str() else { return Some(EntityTags::Malformed) };
        if text.trim() == "*" {
            return Some(EntityTags::Any);
        }
        for member in text.split(',').map(str::trim).filter(|member| !member.is_empty()) {
            let (weak, quoted) = match member.strip_prefix("W/") {
                Some(rest) => (true, rest),
                None => (false, member),
            };
            let opaque = quoted.strip_prefix('"').and_then(|rest| rest.strip_suffix('"'));
            // etagc: any visible character but the quote (commas cannot be inside: the split).
            match opaque.filter(|opaque| opaque.bytes().all(|byte| byte.is_ascii_graphic() && byte != b'"')) {
                Some(opaque) => tags.push(EntityTag { weak, opaque: opaque.to_owned() }),
                None => return Some(EntityTags::Malformed),
            }
        }
    }
    Some(if tags.is_empty() { EntityTags::Malformed } else { EntityTags::List(tags) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(name.clone(), HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")));
        }
        headers
    }

    fn strong(opaque: &str) -> EntityTag {
        EntityTag { weak: false, opaque: opaque.into() }
    }

    #[test]
    fn entity_tag_lists_parse_across_fields_and_reject_what_is_not_one() {
        let read = |values: &[&str]| entity_tags(&headers(header::IF_MATCH, values), header::IF_MATCH);
        assert_eq!(read(&[]), None);
        assert_eq!(read(&[" * "]), Some(EntityTags::Any));
        assert_eq!(
            read(&[r#""a", W/"b""#, r#""c""#]),
            Some(EntityTags::List(vec![strong("a"), EntityTag { weak: true, opaque: "b".into() }, strong("c")]))
        );
        assert_eq!(read(&[r#""""#]), Some(EntityTags::List(vec![strong("")])));
        for malformed in ["a", r#""a"#, r#"w/"a""#, r#""a"b""#, "", " , "] {
            assert_eq!(read(&[malformed]), Some(EntityTags::Malformed), "{malformed:?}");
        }
    }

    #[test]
    fn if_match_compares_strongly_and_a_malformed_one_matches_nothing() {
        let session = latchkey_core::sessions::SessionId::generate();
        let tag = DataTag::of(session, 1);
        let quoted = format!("\"{}\"", tag.as_str());
        let weak = format!("W/{quoted}");
        assert!(if_match(&HeaderMap::new()).allows(&tag));
        assert!(if_match(&headers(header::IF_MATCH, &[quoted.as_str()])).allows(&tag));
        assert!(!if_match(&headers(header::IF_MATCH, &[weak.as_str()])).allows(&tag));
        assert!(!if_match(&headers(header::IF_MATCH, &[tag.as_str()])).allows(&tag));
        assert!(if_none_match(&headers(header::IF_NONE_MATCH, &[weak.as_str()])).is_some_and(|p| p.allows(&tag)));
        assert!(if_none_match(&headers(header::IF_NONE_MATCH, &["garbage"])).is_none());
    }
}
