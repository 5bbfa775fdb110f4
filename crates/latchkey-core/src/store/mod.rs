//! The stores a service runs on, as one bundle, and readiness. Each store trait is defined with
//! its concept (accounts, sessions, keys, revocation, throttle, audit, clients, authorization, logout) and gathered here for
//! the backends (SQLite, PostgreSQL, Redis), which one conformance suite checks alike.
//!
//! `Ok(None)` means "not found"; `Err` means the infrastructure failed and maps to 503.

pub(crate) mod error;

use std::sync::Arc;

use async_trait::async_trait;

pub use crate::accounts::{AccountStore, CreateAccount};
pub use crate::audit::AuditLog;
pub use crate::authorization::{CodeStore, ConsentStore};
pub use crate::clients::ClientStore;
pub use crate::keys::{KeyStore, StoredKey};
pub use crate::logout::AppSignInStore;
pub use crate::revocation::{Revocation, RevocationLog, RevokeScope};
pub use crate::sessions::{DataWrite, Rotation, SessionStore, StoredData};
pub use crate::throttle::ThrottleStore;
pub use error::StoreError;

/// The stores a latchkey service runs on.
#[derive(Clone)]
pub struct Stores {
    /// Accounts.
    pub accounts: Arc<dyn AccountStore>,
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// The durable log of revocations (where a revoking session store writes it).
    pub revocations: Arc<dyn RevocationLog>,
    /// Keys.
    pub keys: Arc<dyn KeyStore>,
    /// Counters of failed password attempts.
    pub throttle: Arc<dyn ThrottleStore>,
    /// The audit trail.
    pub audit: Arc<dyn AuditLog>,
    /// Registered apps (single sign-on).
    pub clients: Arc<dyn ClientStore>,
    /// Authorization codes (single sign-on).
    pub codes: Arc<dyn CodeStore>,
    /// Users' consent to apps (single sign-on).
    pub consents: Arc<dyn ConsentStore>,
    /// Apps' sign-ins and their logout deliveries (single sign-on).
    pub sign_ins: Arc<dyn AppSignInStore>,
    /// Whether the stores answer (for `/readyz`), and what they have been asked (`/metrics`).
    pub health: Arc<dyn StoreHealth>,
}

/// Readiness of a backend, and how much it has been asked (for `/readyz` and `/metrics`).
#[async_trait]
pub trait StoreHealth: Send + Sync + 'static {
    /// `Ok` when the backend answers a trivial query.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The operations this process has sent to each backend so far, by the backend's name
    /// (`sqlite`, `postgres`, `redis`): what a request or a background task costs a store.
    fn operations(&self) -> Vec<(&'static str, u64)>;
}

/// Ready only when every one of several backends is (SQL and Redis, say).
pub struct AllHealthy(pub Vec<Arc<dyn StoreHealth>>);

#[async_trait]
impl StoreHealth for AllHealthy {
    async fn ping(&self) -> Result<(), StoreError> {
        for backend in &self.0 {
            backend.ping().await?;
        }
        Ok(())
    }

    fn operations(&self) -> Vec<(&'static str, u64)> {
        self.0.iter().flat_map(|backend| backend.operations()).collect()
    }
}
