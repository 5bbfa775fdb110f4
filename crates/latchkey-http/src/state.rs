//! The one application state, built in one place and cheap to clone.

use std::sync::Arc;

use latchkey_core::Latchkey;

use crate::config::HttpConfig;
use crate::cookies::CookieNames;
use crate::metrics::Metrics;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The domain service.
    pub service: Latchkey,
    /// HTTP settings.
    pub config: Arc<HttpConfig>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Cookie names, computed once.
    pub cookies: Arc<CookieNames>,
}

impl AppState {
    /// Bundles the parts.
    pub fn new(service: Latchkey, config: HttpConfig) -> Self {
        let cookies = Arc::new(CookieNames::new(&config));
        Self { service, config: Arc::new(config), metrics: Arc::new(Metrics::new()), cookies }
    }
}
