//! Authentication of a request by bearer token or cookie, and the CSRF rule for
//! cookie-carried credentials.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, Method, header};
use latchkey_core::sessions::Caller;

use crate::cookies::request_cookies;
use crate::error::ApiError;
use crate::state::AppState;

/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the credential arrived: `/v1/me`'s `auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A cookie (a cookie session, or a hybrid token session's access-token cookie).
    Cookie,
    /// An `Authorization: Bearer` header.
    Bearer,
}

impl Via {
    /// The contract's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Via::Cookie => "cookie",
            Via::Bearer => "bearer",
        }
    }
}

/// An authenticated request.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// Who.
    pub caller: Caller,
    /// How the credential arrived.
    pub via: Via,
}

/// Whether a method changes state, so that cookie-carried requests need the CSRF token.
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// What an `Authorization` header holds, as far as latchkey is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorization<'a> {
    /// No `Authorization`, an empty one, or another scheme (`Basic`, ...): not latchkey's
    /// credential, so the session cookie still counts.
    Absent,
    /// `Bearer` with a token (scheme case-insensitive, RFC 6750).
    Bearer(&'a str),
    /// `Bearer` without a usable token (empty, or not text): refused, never skipped.
    MalformedBearer,
}

/// Reads the `Authorization` header.
pub fn authorization(headers: &HeaderMap) -> Authorization<'_> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Authorization::Absent };
    let bytes = value.as_bytes();
    let scheme_end = bytes.iter().position(|byte| *byte == b' ').unwrap_or(bytes.len());
    if !bytes[..scheme_end].eq_ignore_ascii_case(b"bearer") {
        return Authorization::Absent;
    }
    match value.to_str().map(|text| text[scheme_end..].trim()) {
        Ok(token) if !token.is_empty() => Authorization::Bearer(token),
        _ => Authorization::MalformedBearer,
    }
}

/// The token of an `Authorization: Bearer` header, if it carries one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    match authorization(headers) {
        Authorization::Bearer(token) => Some(token),
        Authorization::Absent | Authorization::MalformedBearer => None,
    }
}

/// Authenticates by `Authorization: Bearer`, else by the hybrid access-token cookie, else by
/// the session cookie; applies the CSRF rule to cookie-carried credentials when the (original)
/// method is unsafe. A `Bearer` header decides alone (a bad one is refused, not skipped); any
/// other `Authorization` is not latchkey's and is ignored (API.md, "Credentials in one
/// request").
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    unsafe_method: bool,
) -> Result<Authenticated, ApiError> {
    let service = &state.service;
    match authorization(headers) {
        Authorization::Bearer(token) => {
            return match service.authenticate_bearer(token).await? {
                Ok(caller) => Ok(Authenticated { caller, via: Via::Bearer }),
                Err(_) => Err(ApiError::Unauthenticated { bad_bearer: true }),
            };
        }
        // A Bearer credential that is empty or not even text is an invalid token (RFC 6750 §3.1).
        Authorization::MalformedBearer => return Err(ApiError::Unauthenticated { bad_bearer: true }),
        Authorization::Absent => {}
    }
    let names = &state.cookies;
    let [access_token, session_secret] = request_cookies(headers, [&names.access, &names.session]);
    let mut caller = None;
    if let Some(token) = access_token {
        caller = service.authenticate_bearer(token).await?.ok();
    }
    if caller.is_none()
        && let Some(secret) = session_secret
    {
        caller = service.authenticate_cookie(secret).await?;
    }
    let caller = caller.ok_or(ApiError::Unauthenticated { bad_bearer: false })?;
    if unsafe_method {
        check_csrf(state, headers, &caller)?;
    }
    Ok(Authenticated { caller, via: Via::Cookie })
}

/// Where a CSRF token travels: the API's header, or a hidden field of a page's form (a form
/// cannot set headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfCarrier {
    /// The `X-CSRF-Token` header.
    Header,
    /// The `csrf_token` field of a form.
    FormField,
}

/// The CSRF rule: the session's token in `X-CSRF-Token`, and an allowed `Origin` if any.
pub fn check_csrf(state: &AppState, headers: &HeaderMap, caller: &Caller) -> Result<(), ApiError> {
    let presented = headers.get(CSRF_HEADER).and_then(|value| value.to_str().ok());
    check_csrf_token(state, headers, caller, presented, CsrfCarrier::Header)
}

/// The CSRF rule with the token taken from wherever `carrier` says it was: an allowed `Origin`
/// (if any), and `presented` equal to the session's token.
pub fn check_csrf_token(
    state: &AppState,
    headers: &HeaderMap,
    caller: &Caller,
    presented: Option<&str>,
    carrier: CsrfCarrier,
) -> Result<(), ApiError> {
    check_origin(state, headers)?;
    let (missing, mismatched) = match carrier {
        CsrfCarrier::Header => {
            ("the X-CSRF-Token header is missing", "the X-CSRF-Token header does not match the session")
        }
        CsrfCarrier::FormField => {
            ("the form's CSRF token is missing", "the form's CSRF token does not match the session")
        }
    };
    match presented {
        Some(token) if state.service.csrf_matches(caller.session_id, token) => Ok(()),
        Some(_) => Err(ApiError::CsrfRejected(mismatched)),
        None => Err(ApiError::CsrfRejected(missing)),
    }
}

/// Refuses a request whose `Origin` is present and not allowed, and one without `Origin` that
/// the browser marks as cross-site (`Sec-Fetch-Site`, Fetch Metadata). An allowed origin on
/// another site (`LATCHKEY_ALLOWED_ORIGINS`) is cross-site by nature and still accepted.
pub fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let refused = || ApiError::CsrfRejected("cross-site requests are refused");
    match headers.get(header::ORIGIN) {
        Some(origin) if origin.to_str().is_ok_and(|origin| state.config.origin_allowed(origin)) => Ok(()),
        Some(_) => Err(refused()),
        None if headers.get("sec-fetch-site").is_some_and(|site| site.as_bytes() == b"cross-site") => Err(refused()),
        None => Ok(()),
    }
}

/// The authenticated caller of a handler.
pub struct Auth(pub Authenticated);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(state, &parts.headers, is_unsafe(&parts.method)).await.map(Auth)
    }
}

/// The client's address: the peer, or — when the peer is a trusted proxy — the right-most
/// address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(state: &AppState, extensions: &Extensions, headers: &HeaderMap) -> Option<IpAddr> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())?;
    let trusted = |ip: &IpAddr| state.config.trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return Some(peer);
    }
    let forwarded =
        headers.get_all("x-forwarded-for").iter().filter_map(|value| value.to_str().ok()).collect::<Vec<_>>().join(",");
    let mut client = peer;
    for hop in forwarded.split(',').rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else { break };
        client = ip;
        if !trusted(&ip) {
            break;
        }
    }
    Some(client)
}
