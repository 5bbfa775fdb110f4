//! Runs the example service.
//!
//! ```sh
//! LATCHKEY_URL=http://localhost:8080 LATCHKEY_SERVICE_TOKEN=... cargo run -p protected-service
//! curl -H "authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:3000/hello
//! curl -X PUT -H "authorization: Bearer $ACCESS_TOKEN" -H 'content-type: application/json' \
//!      -d '{"quantity": 2}' http://127.0.0.1:3000/cart/items/apple
//! curl -H "authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:3000/cart
//! ```

use std::process::ExitCode;

use latchkey_verifier::{Verifier, VerifierConfig};

#[tokio::main]
async fn main() -> ExitCode {
    let issuer = std::env::var("LATCHKEY_URL").unwrap_or_else(|_| "http://localhost:8080".into());
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let mut config = VerifierConfig::new(issuer);
    if let Ok(audience) = std::env::var("LATCHKEY_AUDIENCE") {
        config = config.with_audience(audience);
    }
    if let Ok(token) = std::env::var("LATCHKEY_SERVICE_TOKEN") {
        config = config.with_service_token(token);
    }
    let verifier = match Verifier::connect(config).await {
        Ok(verifier) => verifier,
        Err(err) => {
            eprintln!("protected-service: {err}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("protected-service: cannot listen on {listen}: {err}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("protected-service listening on http://{listen}");
    match axum::serve(listener, protected_service::app(verifier)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("protected-service: {err}");
            ExitCode::FAILURE
        }
    }
}
