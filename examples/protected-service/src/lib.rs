//! An example service protected by latchkey tokens, verified locally with
//! `latchkey-verifier`: no call to latchkey per request, revocations from the feed. Its cart
//! lives in the caller's latchkey session (API.md, "Session data"), so it needs no session
//! store of its own and the cart ends with the login.

use axum::extract::Path;
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use latchkey_verifier::{LatchkeySession, LatchkeyUser, SessionData, SessionDataError, Verifier};
use serde::Deserialize;
use serde_json::{Value, json};

/// The service's routes: `GET /hello` for any verified user; the caller's cart at `GET /cart`,
/// `PUT /cart/items/{item}` (`{"quantity": n}`) and `DELETE /cart/items/{item}`; `GET /healthz`
/// for anyone.
pub fn app(verifier: Verifier) -> Router {
    Router::new()
        .route(
            "/hello",
            get(|LatchkeyUser(user): LatchkeyUser| async move {
                axum::Json(json!({ "hello": user.username, "user_id": user.user_id, "session_id": user.session_id }))
            }),
        )
        .route("/cart", get(cart))
        .route("/cart/items/{item}", put(set_quantity))
        .route("/cart/items/{item}", delete(remove))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(verifier)
}

/// The body of `PUT /cart/items/{item}`.
#[derive(Debug, Deserialize)]
struct Quantity {
    quantity: u32,
}

/// The cart as the service shows it: the items and their quantities, and the data's version.
fn shown(data: SessionData) -> Json<Value> {
    let items = data.data.get("cart").cloned().unwrap_or_else(|| json!({}));
    Json(json!({ "items": items, "version": data.etag }))
}

async fn cart(session: LatchkeySession) -> Result<Json<Value>, SessionDataError> {
    session.data().await.map(shown)
}

/// Sets one item's quantity with a merge patch, so two tabs adding different items at once
/// both land; a quantity of zero removes the item.
async fn set_quantity(
    session: LatchkeySession,
    Path(item): Path<String>,
    Json(Quantity { quantity }): Json<Quantity>,
) -> Result<Json<Value>, SessionDataError> {
    let value = if quantity == 0 { Value::Null } else { json!(quantity) };
    session.patch(&json!({ "cart": { item: value } })).await.map(shown)
}

async fn remove(session: LatchkeySession, Path(item): Path<String>) -> Result<Json<Value>, SessionDataError> {
    session.patch(&json!({ "cart": { item: null } })).await.map(shown)
}
