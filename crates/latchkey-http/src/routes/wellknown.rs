//! `GET /.well-known/jwks.json` and `GET /.well-known/openid-configuration`. Public.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;
use crate::wire::Discovery;

/// The public keys (RFC 7517). Retired keys stay until their tokens have expired; a key due to
/// sign is published ahead. Cached for [`latchkey_core::keys::jwks_max_age`], so verifiers see
/// a rotation before its first token; they also refetch on an unknown `kid`.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "discovery",
    responses(
        (status = 200, description = "The JWKS", body = Object)
    )
)]
pub(super) async fn jwks(State(state): State<AppState>) -> Response {
    let max_age = latchkey_core::keys::jwks_max_age(state.service.policy().access_token_ttl).whole_seconds();
    let cache =
        HeaderValue::from_str(&format!("public, max-age={max_age}")).unwrap_or(HeaderValue::from_static("no-cache"));
    let body = state.service.keys().jwks().to_string();
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json")), (header::CACHE_CONTROL, cache)], body)
        .into_response()
}

/// Discovery metadata (OpenID Connect Discovery / RFC 8414 names).
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "discovery",
    responses(
        (status = 200, description = "Discovery metadata", body = crate::wire::Discovery)
    )
)]
pub(super) async fn discovery(State(state): State<AppState>) -> Response {
    let base = &state.config.public_url;
    let alg = state.service.keys().signer_alg().as_str();
    let body = Discovery {
        issuer: state.service.policy().issuer.clone(),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        token_endpoint: format!("{base}/v1/token"),
        revocation_endpoint: format!("{base}/v1/token/revoke"),
        grant_types_supported: vec!["password", "refresh_token"],
        response_types_supported: vec![],
        token_endpoint_auth_methods_supported: vec!["none"],
        revocation_endpoint_auth_methods_supported: vec!["none"],
        id_token_signing_alg_values_supported: vec![alg],
        access_token_signing_alg_values_supported: vec![alg],
        subject_types_supported: vec!["public"],
    };
    ([(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"))], Json(body)).into_response()
}
