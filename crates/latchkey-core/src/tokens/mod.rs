//! Tokens of a token session: the access token's claims and the rules it is verified by
//! (light: a third-party verifier needs only this), the rotating refresh token, issuing a
//! pair, refreshing it with reuse detection, the bearer check with its cache, whether a token
//! is active (introspection, userinfo), and the ID token an app gets with its pair (single
//! sign-on).
//!
//! Not here: the keys that sign and verify ([`crate::keys`]), and the session a pair belongs to
//! ([`crate::sessions`]).

mod access;
#[cfg(feature = "server")]
mod bearer;
#[cfg(feature = "server")]
mod id;
#[cfg(feature = "server")]
mod introspect;
#[cfg(feature = "server")]
mod issue;
#[cfg(feature = "server")]
mod refresh;

pub use access::{
    ACCESS_TOKEN_TYP, AccessClaims, LEEWAY_SECONDS, MAX_TOKEN_BYTES, TokenRejection, TokenSettings, VerifyingKeys,
    acceptance_window, is_expired,
};
#[cfg(feature = "server")]
pub(crate) use bearer::BearerChecks;
#[cfg(feature = "server")]
pub use bearer::UNKNOWN_KID_RELOAD_INTERVAL;
#[cfg(feature = "server")]
pub use id::{ID_TOKEN_TYP, IdTokenClaims, at_hash};
#[cfg(feature = "server")]
pub use introspect::ActiveToken;
#[cfg(feature = "server")]
pub use issue::TokenPair;
#[cfg(feature = "server")]
pub use refresh::RefreshToken;
