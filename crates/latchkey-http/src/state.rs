//! The one application state, built in one place and cheap to clone.

use std::sync::Arc;

use tokio::sync::watch;

use latchkey_core::sessions::{ClientInfo, Login, SessionKind};
use latchkey_core::{AuthError, Latchkey};

use crate::config::HttpConfig;
use crate::cookies::CookieNames;
use crate::metrics::{LoginOutcome, Metrics};

/// What every handler can reach. Axum clones the state for each request (and each
/// middleware), so it is one shared pointer: a clone is one atomic increment.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of the application state.
pub struct Shared {
    /// The domain service.
    pub service: Latchkey,
    /// HTTP settings.
    pub config: Arc<HttpConfig>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Cookie names, computed once.
    pub cookies: CookieNames,
    /// Turns `true` when the server shuts down, so long-lived responses (the revocation feed's
    /// event streams) end and graceful shutdown can complete.
    pub shutdown: watch::Receiver<bool>,
}

impl AppState {
    /// Bundles the parts.
    pub fn new(service: Latchkey, config: HttpConfig) -> Self {
        Self::with_shutdown(service, config, watch::channel(false).1)
    }

    /// Bundles the parts with the signal that ends event streams at shutdown.
    pub fn with_shutdown(service: Latchkey, config: HttpConfig, shutdown: watch::Receiver<bool>) -> Self {
        let cookies = CookieNames::new(&config);
        Self(Arc::new(Shared { service, config: Arc::new(config), metrics: Metrics::new(), cookies, shutdown }))
    }
}

impl AppState {
    /// Logs in and counts the outcome in the metrics: the one path for both login endpoints.
    pub(crate) async fn log_in(
        &self,
        username: &str,
        password: String,
        kind: SessionKind,
        client: ClientInfo,
    ) -> Result<Login, AuthError> {
        let result = self.service.log_in(username, password, kind, client).await;
        let outcome = match &result {
            Ok(_) => LoginOutcome::Success,
            Err(AuthError::InvalidCredentials) => LoginOutcome::InvalidCredentials,
            Err(AuthError::Throttled(_)) => LoginOutcome::Throttled,
            Err(_) => LoginOutcome::Error,
        };
        self.metrics.observe_login(kind.as_str(), outcome);
        result
    }
}
