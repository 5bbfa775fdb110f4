//! Black-box tests of the HTTP contract (`API.md`) against the real `latchkey` binary on a
//! random port with a real SQLite file. One test binary; names are sentences.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod accounts;
mod audit;
mod cli_and_config;
mod clients;
mod compare;
mod contract;
mod cookie_sessions;
mod either_kind;
mod embedded_verifier;
mod expiry;
mod helpers;
mod hybrid;
mod jwt_attacks;
mod keys;
mod pages;
mod revocation_feed;
mod session_attacks;
mod session_data;
mod sso;
mod throttling;
mod token_sessions;
mod transport;
mod verify;
