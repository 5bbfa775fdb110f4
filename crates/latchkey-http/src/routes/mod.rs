//! The router: every route of API.md, each with its CORS grant, and the web pages, behind the
//! shared middleware.

mod accounts;
mod me;
mod oidc;
mod ops;
mod revocations;
pub(crate) mod session;
mod session_data;
mod token;
mod verify;
mod wellknown;

use std::sync::Arc;

use axum::Router;
use utoipa::OpenApi;

use crate::wire::AuthSchemes;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post};

use crate::cors::AllowedOriginsCors;
use crate::error::ApiError;
use crate::middleware::{Frame, Routes};
use crate::state::AppState;

/// The whole application: every route behind the [`Frame`] each request passes once.
pub type App = Frame<Router>;

/// Builds the whole application for `state`.
pub fn router(state: AppState) -> App {
    // The 405 fallback is set on each route before its CORS layer, so that preflights (which
    // no handler takes) still reach the CORS grant.
    let cors = |route: MethodRouter<AppState>, methods: &[Method]| {
        route.fallback(method_not_allowed).layer(AllowedOriginsCors::new(Arc::clone(&state.config), methods))
    };
    // Session data is read and written with entity tags: its preflights allow the conditional
    // headers, and its answers show the `ETag` to the calling page.
    let conditional_cors = |route: MethodRouter<AppState>, methods: &[Method]| {
        route
            .fallback(method_not_allowed)
            .layer(AllowedOriginsCors::new(Arc::clone(&state.config), methods).with_entity_tags())
    };
    let plain = |route: MethodRouter<AppState>| route.fallback(method_not_allowed);
    let routes = Routes::default()
        .route("/v1/accounts", cors(post(accounts::sign_up), &[Method::POST]))
        .route("/v1/account/password", cors(post(accounts::change_password), &[Method::POST]))
        .route("/v1/session", cors(post(session::log_in), &[Method::POST]))
        .route(
            "/v1/session/data",
            conditional_cors(
                get(session_data::read).put(session_data::replace).patch(session_data::patch),
                &[Method::GET, Method::PUT, Method::PATCH],
            ),
        )
        .route("/v1/token", cors(post(token::token), &[Method::POST]))
        .route("/v1/token/revoke", cors(post(token::revoke), &[Method::POST]))
        .route("/v1/me", cors(get(me::me), &[Method::GET]))
        .route("/v1/sessions", cors(get(me::sessions), &[Method::GET]))
        .route("/v1/sessions/{id}", cors(delete(me::revoke_one), &[Method::DELETE]))
        .route("/v1/logout", cors(post(me::logout), &[Method::POST]))
        .route(oidc::USERINFO_PATH, cors(get(oidc::userinfo).post(oidc::userinfo_post), &[Method::GET, Method::POST]))
        .route(oidc::INTROSPECTION_PATH, plain(post(oidc::introspect)))
        .route("/v1/verify", plain(get(verify::verify)))
        .route("/v1/revocations", plain(get(revocations::revocations)))
        .route("/.well-known/jwks.json", cors(get(wellknown::jwks), &[Method::GET]))
        .route("/.well-known/openid-configuration", cors(get(wellknown::discovery), &[Method::GET]))
        .route("/healthz", plain(get(ops::healthz)))
        .route("/readyz", plain(get(ops::readyz)))
        .route("/metrics", plain(get(ops::metrics)))
        .route("/openapi.json", cors(get(openapi_document), &[Method::GET]))
        .merge(crate::pages::routes(&state.config));
    let (router, templates) = routes.into_parts();
    let router = router.fallback(|| async { ApiError::NotFound }).with_state(state.clone());
    Frame::new(router, &state, &templates)
}

/// The whole description of the contract: each operation is declared beside its handler, the
/// bodies in [`crate::openapi`].
#[derive(OpenApi)]
#[openapi(
    info(title = "latchkey", description = "Session and token login behind one concept: the HTTP contract (API.md)."),
    paths(
        accounts::sign_up,
        accounts::change_password,
        session::log_in,
        token::token,
        token::revoke,
        me::me,
        me::sessions,
        me::revoke_one,
        me::logout,
        session_data::read,
        session_data::replace,
        session_data::patch,
        oidc::userinfo,
        oidc::userinfo_post,
        oidc::introspect,
        verify::verify,
        revocations::revocations,
        wellknown::jwks,
        wellknown::discovery,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        openapi_document,
    ),
    modifiers(&AuthSchemes)
)]
struct ApiDoc;

/// This OpenAPI document. Public.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object))
)]
async fn openapi_document() -> axum::response::Response {
    axum::response::IntoResponse::into_response(axum::Json(ApiDoc::openapi()))
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
