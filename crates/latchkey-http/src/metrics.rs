//! Prometheus metrics: requests and latencies by route, logins by outcome, live sessions.
//! One registry per application (no global recorder), so tests can build many apps.

use std::sync::{OnceLock, PoisonError, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

/// A request method as a label: one of the standard methods (RFC 9110 §9 and `PATCH`), or
/// `other`. Clients can send any token as a method, so taking it as given would let them make
/// series without bound.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::CONNECT,
        Method::OPTIONS,
        Method::TRACE,
        Method::PATCH,
    ];
    STANDARD.iter().find(|standard| *standard == method).map_or("other", |standard| standard.as_str())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    kind: &'static str,
    outcome: &'static str,
}

/// Counts the requests of one route. The route's latency histogram and the counters of the
/// methods and statuses it has answered are kept at hand once first used, so counting a request
/// takes no hashed label lookup: it is the one cost every request pays, the hot path's included.
/// A route's series still appear in `/metrics` only once it has been asked for.
pub struct RouteRecorder {
    route: &'static str,
    latency: OnceLock<Histogram>,
    latencies: HistogramFamily,
    /// The counters of this route by method and status, as they occur: a route answers a
    /// handful of combinations, so a scan beats hashing the labels.
    seen: RwLock<Vec<(&'static str, u16, Counter)>>,
    requests: Family<RequestLabels, Counter>,
}

impl RouteRecorder {
    /// Combinations of method and status kept at hand; past them (never seen in practice: the
    /// methods are a fixed set and the statuses the application's own) each count is looked
    /// up by its labels.
    const MAX_SEEN: usize = 64;

    /// The route template this recorder counts.
    pub fn route(&self) -> &'static str {
        self.route
    }

    /// Counts a finished request: `method` is one of a fixed set ([`method_label`]), the
    /// status one the application answered.
    pub fn observe(&self, method: &'static str, status: u16, seconds: f64) {
        let latency =
            self.latency.get_or_init(|| self.latencies.get_or_create(&RouteLabels { route: self.route }).clone());
        latency.observe(seconds);
        let matches = |(seen_method, seen_status, _): &&(&'static str, u16, Counter)| {
            *seen_status == status && *seen_method == method
        };
        let seen = self.seen.read().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, _, counter)) = seen.iter().find(matches) {
            counter.inc();
            return;
        }
        drop(seen);
        let counter = self.requests.get_or_create(&RequestLabels { route: self.route, method, status }).clone();
        counter.inc();
        let mut seen = self.seen.write().unwrap_or_else(PoisonError::into_inner);
        if seen.len() < Self::MAX_SEEN && !seen.iter().any(|entry| matches(&entry)) {
            seen.push((method, status, counter));
        }
    }
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
    open_connections: Gauge,
    refused_connections: Counter,
    unknown_kid_reloads: Counter,
    logout_deliveries: Family<DeliveryLabels, Counter>,
    store_operations: Family<StoreLabels, Counter>,
}

/// Labels of the store operations counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StoreLabels {
    store: &'static str,
}

/// Labels of the back-channel logout delivery counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DeliveryLabels {
    outcome: &'static str,
}

/// What the service counts itself, read at each scrape.
#[derive(Debug, Clone, Default)]
pub struct ServiceFigures {
    /// Sessions live now, where the store counts them.
    pub active_sessions: Option<u64>,
    /// Key-set reloads caused by unknown `kid`s so far.
    pub unknown_kid_reloads: u64,
    /// Back-channel logout attempts so far: accepted, to be retried, given up.
    pub logout_deliveries: (u64, u64, u64),
    /// Operations sent to each store so far, by the store's name.
    pub store_operations: Vec<(&'static str, u64)>,
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
        let open_connections = Gauge::default();
        let refused_connections = Counter::default();
        registry.register("http_connections", "Client connections open now", open_connections.clone());
        registry.register(
            "http_connections_refused",
            "Client connections answered 503 at the connection cap",
            refused_connections.clone(),
        );
        let unknown_kid_reloads = Counter::default();
        registry.register(
            "unknown_kid_key_reloads",
            "Key-set reloads from the store caused by tokens naming an unknown kid (at most one a second)",
            unknown_kid_reloads.clone(),
        );
        let logout_deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "backchannel_logout_deliveries",
            "Back-channel logout attempts made by this instance: delivered, retried (the app did not accept; tried again later), failed (given up)",
            logout_deliveries.clone(),
        );
        let store_operations = Family::<StoreLabels, Counter>::default();
        registry.register(
            "store_operations",
            "Operations this instance sent to each store: SQL queries or transactions (connections taken from the pool), Redis requests (a command, script or pipeline)",
            store_operations.clone(),
        );
        Self {
            logout_deliveries,
            store_operations,
            registry,
            requests,
            latency,
            logins,
            active_sessions,
            open_connections,
            refused_connections,
            unknown_kid_reloads,
        }
    }

    /// The recorder of requests to `route`: a matched route template, never the raw path, so
    /// ids and tokens in paths cannot reach the labels. Made once per route when the
    /// application is built.
    pub fn route_recorder(&self, route: &'static str) -> RouteRecorder {
        RouteRecorder {
            route,
            latency: OnceLock::new(),
            latencies: self.latency.clone(),
            seen: RwLock::new(Vec::new()),
            requests: self.requests.clone(),
        }
    }

    /// Counts a login attempt.
    pub fn observe_login(&self, kind: &'static str, outcome: LoginOutcome) {
        self.logins.get_or_create(&LoginLabels { kind, outcome: outcome.as_str() }).inc();
    }

    /// Counts a connection being served.
    pub fn observe_connection_opened(&self) {
        self.open_connections.inc();
    }

    /// Counts a served connection ending.
    pub fn observe_connection_closed(&self) {
        self.open_connections.dec();
    }

    /// Counts a connection refused at the cap.
    pub fn observe_connection_refused(&self) {
        self.refused_connections.inc();
    }

    /// Renders the Prometheus text format, with the figures the service keeps given by the
    /// caller.
    pub fn render(&self, figures: ServiceFigures) -> String {
        let catch_up = |counter: &Counter, total: u64| counter.inc_by(total.saturating_sub(counter.get()));
        catch_up(&self.unknown_kid_reloads, figures.unknown_kid_reloads);
        let (delivered, retried, failed) = figures.logout_deliveries;
        for (outcome, total) in [("delivered", delivered), ("retried", retried), ("failed", failed)] {
            catch_up(&self.logout_deliveries.get_or_create(&DeliveryLabels { outcome }), total);
        }
        for (store, total) in figures.store_operations {
            catch_up(&self.store_operations.get_or_create(&StoreLabels { store }), total);
        }
        if let Some(count) = figures.active_sessions {
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
        let uncounted = metrics.render(ServiceFigures::default());
        assert!(!uncounted.contains("latchkey_active_sessions{"), "{uncounted}");
        let counted = metrics.render(ServiceFigures { active_sessions: Some(2), ..ServiceFigures::default() });
        assert!(counted.contains("\nlatchkey_active_sessions{} 2\n"), "{counted}");
    }

    #[test]
    fn made_up_methods_share_one_label() {
        use axum::http::Method;
        let metrics = Metrics::new();
        let unmatched = metrics.route_recorder("unmatched");
        for n in 0..50 {
            let method = Method::from_bytes(format!("MADEUP{n}").as_bytes()).expect("a token");
            unmatched.observe(method_label(&method), 405, 0.001);
        }
        metrics.route_recorder("/v1/me").observe(method_label(&Method::GET), 200, 0.001);
        let rendered = metrics.render(ServiceFigures::default());
        assert!(!rendered.contains("MADEUP"), "{rendered}");
        assert!(rendered.contains("method=\"other\",status=\"405\"} 50"), "{rendered}");
        assert!(rendered.contains("method=\"GET\""), "{rendered}");
    }

    #[test]
    fn a_route_shows_in_the_metrics_only_once_asked_for() {
        let metrics = Metrics::new();
        let recorder = metrics.route_recorder("/v1/verify");
        let _unused = metrics.route_recorder("/v1/me");
        recorder.observe("GET", 200, 0.001);
        let rendered = metrics.render(ServiceFigures::default());
        assert!(rendered.contains("route=\"/v1/verify\""), "{rendered}");
        assert!(!rendered.contains("route=\"/v1/me\""), "{rendered}");
    }

    #[test]
    fn a_recorder_counts_every_status_even_past_those_it_keeps_at_hand() {
        let metrics = Metrics::new();
        let recorder = metrics.route_recorder("/v1/verify");
        for status in 100..200 {
            for _ in 0..3 {
                recorder.observe("GET", status, 0.001);
            }
        }
        let rendered = metrics.render(ServiceFigures::default());
        for status in 100..200 {
            let series = format!("route=\"/v1/verify\",method=\"GET\",status=\"{status}\"}} 3\n");
            assert!(rendered.contains(&series), "{series} in {rendered}");
        }
        assert!(
            rendered.contains("latchkey_http_request_duration_seconds_count{route=\"/v1/verify\"} 300"),
            "{rendered}"
        );
    }
}
