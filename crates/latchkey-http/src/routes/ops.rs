//! `GET /healthz`, `GET /readyz`, `GET /metrics`. For operators and orchestrators.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::metrics::ServiceFigures;
use crate::state::AppState;
use crate::wire::Status;

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "Up", body = crate::wire::Status)
    )
)]
pub(super) async fn healthz() -> Response {
    Json(Status { status: "ok" }).into_response()
}

/// The stores answer; `503 store_unavailable` when not.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = crate::wire::Status),
        (status = 503, description = "A store is unavailable", body = crate::wire::Problem, content_type = "application/problem+json")
    )
)]
pub(super) async fn readyz(State(state): State<AppState>) -> Result<Response, ApiError> {
    state.service.stores().health.ping().await.map_err(|err| ApiError::from(latchkey_core::AuthError::Store(err)))?;
    Ok(Json(Status { status: "ready" }).into_response())
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text")
    )
)]
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let live = state.service.count_live_sessions().await.ok().flatten();
    let figures = ServiceFigures {
        active_sessions: live,
        unknown_kid_reloads: state.service.unknown_kid_reloads(),
        logout_deliveries: state.service.delivery_counts().snapshot(),
        store_operations: state.service.stores().health.operations(),
    };
    let body = state.metrics.render(figures);
    let content_type = HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}
