//! latchkey's domain, arranged by concept. Each concept owns its types, its rules, its store
//! trait and the service operations on it (as `impl Latchkey` blocks), so a change to one
//! concept touches one folder:
//!
//! - [`accounts`]: who can log in; usernames, new-password rules, Argon2id hashing, sign-up,
//!   the password check, password change, disabling.
//! - [`sessions`]: one login on one device, as a cookie or as tokens; logging in, the cookie
//!   check and its CSRF token, the caller and their profile.
//! - [`tokens`]: access-token claims and verification, refresh tokens, issuing and refreshing
//!   pairs, the bearer check.
//! - [`keys`]: key material, the key set and its JWKS, custody and sealing, rotation.
//! - [`revocation`]: the denylist, the revocation log, logout and revoking, the feed.
//! - [`throttle`]: counting failed password attempts and the waits they demand.
//! - [`audit`]: the trail of security events.
//! - [`clients`]: apps that sign their users in through latchkey (OpenID Connect relying
//!   parties), their redirect URIs and secrets.
//! - [`authorization`]: PKCE, authorization codes and users' consent to apps; the
//!   authorization request, the consent decision, redeeming a code for an app's session.
//! - [`logout`]: apps' sign-ins under sign-ins at latchkey, and the back-channel logout
//!   deliveries their ends make.
//!
//! Shared by all of them: [`policy`] (the deployment's settings and the rules derived from
//! them), [`error`] (the service's one error enum), [`ids`], [`secret`] (random secrets,
//! digests, the server secret's MACs), [`clock`], and [`store`] (the bundle of store traits
//! the backends implement). [`Latchkey`] is the one entry point the HTTP layer and the CLI
//! call.
//!
//! This crate knows nothing of HTTP, SQL or Redis. Without its default `server` feature it is
//! only what verifying an access token needs ([`tokens`]' access part, [`keys`]' material and
//! set, the [`revocation`] denylist, [`ids`], [`secret`], [`clock`], the session record): no
//! password hashing, password strength or username rules, so a service that only checks
//! tokens (`latchkey-verifier`) stays light.

#[cfg(feature = "server")]
pub mod accounts;
#[cfg(feature = "server")]
pub mod audit;
#[cfg(feature = "server")]
pub mod authorization;
#[cfg(feature = "server")]
pub mod clients;
pub mod clock;
#[cfg(feature = "server")]
pub mod error;
pub mod ids;
pub mod keys;
#[cfg(feature = "server")]
mod latchkey;
#[cfg(feature = "server")]
pub mod logout;
#[cfg(feature = "server")]
pub mod policy;
pub mod revocation;
pub mod secret;
pub mod sessions;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "server")]
pub mod throttle;
pub mod tokens;

#[cfg(feature = "server")]
pub use accounts::{Account, Username};
pub use clock::{Clock, ManualClock, SystemClock};
#[cfg(feature = "server")]
pub use error::AuthError;
pub use ids::{SessionId, UserId};
#[cfg(feature = "server")]
pub use latchkey::Latchkey;
#[cfg(feature = "server")]
pub use policy::Policy;
pub use sessions::{Session, SessionKind};
