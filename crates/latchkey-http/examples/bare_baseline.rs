//! The HTTP ceiling `scripts/loadtest` measures latchkey against: a bare axum handler that
//! returns a fixed JSON body, with no middleware, served by `axum::serve` on the same machine.
//! Usage: `bare_baseline 127.0.0.1:PORT`.

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    let app = Router::new()
        .route("/", get(|| async { ([(axum::http::header::CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#) }));
    eprintln!("bare baseline on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
