//! latchkey's domain: accounts, passwords, sessions of both kinds, signed tokens, the keyring,
//! the clock and the store traits every backend implements.
//!
//! This crate knows nothing of HTTP, SQL or Redis. The [`service::Latchkey`] service is the one
//! entry point the HTTP layer and the CLI call; stores plug in through the traits of [`store`].
//!
//! Without its default `server` feature the crate is only what verifying an access token needs
//! ([`keys`], [`ids`], [`denylist`], [`secret`], [`clock`], [`session`]): no password hashing,
//! password strength or username rules, so a service that only checks tokens
//! (`latchkey-verifier`) stays light.

#[cfg(feature = "server")]
pub mod account;
#[cfg(feature = "server")]
pub mod audit;
pub mod clock;
pub mod denylist;
pub mod ids;
pub mod keys;
#[cfg(feature = "server")]
pub mod password;
pub mod secret;
#[cfg(feature = "server")]
pub mod service;
pub mod session;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "server")]
pub mod throttle;

#[cfg(feature = "server")]
pub use account::{Account, Username};
pub use clock::{Clock, ManualClock, SystemClock};
pub use ids::{SessionId, UserId};
#[cfg(feature = "server")]
pub use service::{Latchkey, Policy};
pub use session::{Session, SessionKind};
