//! `GET /.well-known/jwks.json` and `GET /.well-known/openid-configuration`. Public.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use latchkey_core::authorization::SUPPORTED_SCOPES;
use latchkey_core::clients::IdTokenAlg;

use super::oidc::{INTROSPECTION_PATH, USERINFO_PATH};
use crate::pages::{AUTHORIZE_PATH, END_SESSION_PATH};
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
    let access_alg = state.service.keys().signer_alg().as_str();
    let app_auth = vec!["client_secret_basic", "client_secret_post", "none"];
    let body = Discovery {
        issuer: state.service.policy().issuer.clone(),
        authorization_endpoint: format!("{base}{AUTHORIZE_PATH}"),
        token_endpoint: format!("{base}/v1/token"),
        userinfo_endpoint: format!("{base}{USERINFO_PATH}"),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        revocation_endpoint: format!("{base}/v1/token/revoke"),
        introspection_endpoint: format!("{base}{INTROSPECTION_PATH}"),
        end_session_endpoint: format!("{base}{END_SESSION_PATH}"),
        scopes_supported: SUPPORTED_SCOPES.to_vec(),
        claims_supported: vec![
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "sid",
            "at_hash",
            "azp",
            "preferred_username",
        ],
        grant_types_supported: vec!["authorization_code", "refresh_token", "password"],
        response_types_supported: vec!["code"],
        response_modes_supported: vec!["query"],
        code_challenge_methods_supported: vec!["S256"],
        prompt_values_supported: vec!["none", "login", "consent", "select_account"],
        token_endpoint_auth_methods_supported: app_auth.clone(),
        revocation_endpoint_auth_methods_supported: app_auth,
        introspection_endpoint_auth_methods_supported: vec!["client_secret_basic", "client_secret_post"],
        id_token_signing_alg_values_supported: IdTokenAlg::ALL.iter().map(IdTokenAlg::as_str).collect(),
        access_token_signing_alg_values_supported: vec![access_alg],
        subject_types_supported: vec!["public"],
        authorization_response_iss_parameter_supported: true,
        backchannel_logout_supported: true,
        backchannel_logout_session_supported: true,
    };
    ([(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"))], Json(body)).into_response()
}
