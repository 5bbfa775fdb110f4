//! Revocation: ending sessions before they expire, and making every instance and every verifier
//! refuse their credentials. Here are the local denylist every check consults (light: the
//! embeddable verifier keeps one too), the revocation log with its causes and the log's store
//! trait, logout and revoking, and the feed that carries revocations to other instances and
//! verifiers.
//!
//! Not here: a session's natural end by expiry ([`crate::sessions`]).

mod denylist;
#[cfg(feature = "server")]
mod feed;
#[cfg(feature = "server")]
mod log;
#[cfg(feature = "server")]
mod revoke;

pub use denylist::Denylist;
#[cfg(feature = "server")]
pub(crate) use feed::LocalRevocations;
#[cfg(feature = "server")]
pub use log::{Revocation, RevocationCause, RevocationLog, RevokeScope};
#[cfg(feature = "server")]
pub use revoke::LogoutScope;
