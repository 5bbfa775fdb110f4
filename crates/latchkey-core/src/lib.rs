//! latchkey's domain: accounts, passwords, sessions of both kinds, signed tokens, the keyring,
//! the clock and the store traits every backend implements.
//!
//! This crate knows nothing of HTTP, SQL or Redis. The [`service::Latchkey`] service is the one
//! entry point the HTTP layer and the CLI call; stores plug in through the traits of [`store`].

pub mod account;
pub mod audit;
pub mod clock;
pub mod denylist;
pub mod keys;
pub mod password;
pub mod secret;
pub mod service;
pub mod session;
pub mod store;
pub mod throttle;

pub use account::{Account, UserId, Username};
pub use clock::{Clock, ManualClock, SystemClock};
pub use service::{Latchkey, Policy};
pub use session::{Session, SessionId, SessionKind};
