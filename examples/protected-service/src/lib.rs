//! An example service protected by latchkey tokens, verified locally with
//! `latchkey-verifier`: no call to latchkey per request, revocations from the feed.

use axum::Router;
use axum::routing::get;
use latchkey_verifier::{LatchkeyUser, Verifier};
use serde_json::json;

/// The service's routes: `GET /hello` for any verified user, `GET /healthz` for anyone.
pub fn app(verifier: Verifier) -> Router {
    Router::new()
        .route(
            "/hello",
            get(|LatchkeyUser(user): LatchkeyUser| async move {
                axum::Json(json!({ "hello": user.username, "user_id": user.user_id, "session_id": user.session_id }))
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .with_state(verifier)
}
