//! Prometheus metrics: requests and latencies by route, logins by outcome, live sessions.
//! One registry per application (no global recorder), so tests can build many apps.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    kind: &'static str,
    outcome: &'static str,
}

/// The outcome of a login attempt, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// A session was made.
    Success,
    /// Wrong username or password.
    InvalidCredentials,
    /// Refused before the password was checked (CSRF, bad input).
    Refused,
    /// Refused unchecked by the throttle.
    Throttled,
    /// The infrastructure failed.
    Error,
}

impl LoginOutcome {
    fn as_str(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Refused => "refused",
            Self::Throttled => "throttled",
            Self::Error => "error",
        }
    }
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs to ~3.3 s: the hot path is sub-millisecond, a login tens of milliseconds.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// The metrics of one application.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    logins: Family<LoginLabels, Counter>,
    /// One unlabelled series, created at the first count: a store that cannot count its
    /// sessions (Redis) shows no sample rather than a false zero.
    active_sessions: Family<Vec<(String, String)>, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("latchkey");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let logins = Family::<LoginLabels, Counter>::default();
        let active_sessions = Family::<Vec<(String, String)>, Gauge>::default();
        registry.register("http_requests", "HTTP requests by route, method and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route", latency.clone());
        registry.register("logins", "Login attempts by session kind and outcome", logins.clone());
        registry.register("active_sessions", "Sessions live now, both kinds", active_sessions.clone());
        Self { registry, requests, latency, logins, active_sessions }
    }

    /// Counts a finished request. `route` is the matched route template, never the raw path,
    /// so ids and tokens in paths cannot reach the labels.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels { route: route.to_owned(), method: method.to_owned(), status })
            .inc();
        self.latency.get_or_create(&RouteLabels { route: route.to_owned() }).observe(seconds);
    }

    /// Counts a login attempt.
    pub fn observe_login(&self, kind: &'static str, outcome: LoginOutcome) {
        self.logins.get_or_create(&LoginLabels { kind, outcome: outcome.as_str() }).inc();
    }

    /// Renders the Prometheus text format, with the live-session count given by the caller.
    pub fn render(&self, active_sessions: Option<u64>) -> String {
        if let Some(count) = active_sessions {
            self.active_sessions.get_or_create(&Vec::new()).set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_gauge_shows_a_count_or_no_sample() {
        let metrics = Metrics::new();
        let uncounted = metrics.render(None);
        assert!(!uncounted.contains("latchkey_active_sessions{"), "{uncounted}");
        let counted = metrics.render(Some(2));
        assert!(counted.contains("\nlatchkey_active_sessions{} 2\n"), "{counted}");
    }
}
