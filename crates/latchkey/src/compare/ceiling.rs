//! The HTTP ceiling a check is measured against: a bare axum handler that answers a fixed JSON
//! body, with no middleware, served by `axum::serve` from this same binary (its allocator and
//! build profile), in its own process so that it can be given the server's core.

use axum::Router;
use axum::routing::get;

/// What the ceiling answers to `GET /`.
pub const CEILING_BODY: &str = r#"{"status":"ok"}"#;

/// Serves the ceiling on `listen` until the process is stopped; prints where it listens.
pub async fn serve_ceiling(listen: std::net::SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let app = Router::new()
        .route("/", get(|| async { ([(axum::http::header::CONTENT_TYPE, "application/json")], CEILING_BODY) }));
    eprintln!("ceiling listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
