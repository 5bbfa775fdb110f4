//! latchkey's HTTP contract (`API.md`): the axum router, the extractors that authenticate
//! cookies and bearer tokens, the CSRF rule, CORS, and the mapping of every error to
//! `application/problem+json` (or RFC 6749's shape on the token endpoint); and the web pages
//! (sign-up, sign-in, account, playground) built on the same rules.
//!
//! The layer is thin: parse the request, call [`latchkey_core::Latchkey`], map the result.

mod auth;
mod body;
mod client_auth;
mod config;
mod cookies;
mod cors;
mod error;
mod metrics;
mod middleware;
mod pages;
mod routes;
mod server;
mod state;
mod wire;

pub use config::{HttpConfig, Origin, OriginError, ServiceToken, ServiceTokenTooShort};
pub use metrics::Metrics;
pub use middleware::Frame;
pub use routes::{App, router};
pub use server::{ConnectionLimits, REQUEST_HEAD_LIMIT, serve};
pub use state::AppState;
