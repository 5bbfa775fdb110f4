//! The frame every request passes through once, around the whole router: the head's hygiene
//! checks, the request id, the metrics, the logging of server errors, and the headers every
//! response carries.
//!
//! Why one hand-written service instead of a stack of layers on the router: axum applies a
//! router's layers to each route, so every layer costs each request a boxed clone of the route
//! and a boxed future. Profiles of `/v1/verify` put that stack ahead of the check itself; here
//! the whole frame is one call and one unboxed future.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, Request, Version, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use pin_project_lite::pin_project;
use tracing::{error, warn};

use crate::error::{ApiError, ServerFault};
use crate::metrics::{Metrics, RouteRecorder, method_label};
use crate::state::AppState;

/// The request-id header.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The metrics label of a request that matched no route.
const UNMATCHED: &str = "unmatched";

// Request ids are an instance prefix plus a counter: unique, and far cheaper than a random
// UUID on the hot path.
static INSTANCE_PREFIX: LazyLock<String> = LazyLock::new(|| {
    let mut bytes = [0u8; 6];
    latchkey_core::secret::fill_random(&mut bytes);
    latchkey_core::secret::b64url(&bytes)
});
static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether a client-sent request id may be echoed: `[A-Za-z0-9._-]{1,128}`.
fn sane_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    (1..=128).contains(&bytes.len())
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The client's request id when it is sane, else a new one.
fn request_id_of(request: &Request<Body>) -> HeaderValue {
    match request.headers().get(&REQUEST_ID) {
        Some(value) if sane_request_id(value) => value.clone(),
        _ => new_request_id(),
    }
}

/// A new request id: the instance prefix, `-`, and the next count, written without the
/// formatting machinery (this runs for nearly every request).
fn new_request_id() -> HeaderValue {
    let mut count = itoa::Buffer::new();
    let count = count.format(REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed));
    let mut id = Vec::with_capacity(INSTANCE_PREFIX.len() + 1 + count.len());
    id.extend_from_slice(INSTANCE_PREFIX.as_bytes());
    id.push(b'-');
    id.extend_from_slice(count.as_bytes());
    // The prefix is base64url and the counter digits: always a valid header value, and taken
    // without a second copy.
    HeaderValue::from_maybe_shared(Bytes::from(id)).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// Most bytes of request headers, names and values, in all. Generous for browsers (whose
/// cookies for one site rarely pass a few KiB) and still far below what would cost memory.
pub const HEADER_LIMIT: usize = 32 * 1024;

/// Why a request is refused before any handler parses it, under the contract's hygiene rules:
/// an HTTP/1.1 request without exactly one `Host` (`400`, RFC 9112 §3.2), and headers past
/// [`HEADER_LIMIT`] (`431`). A made-up method is left to the router, which answers it like any
/// method a route does not take (`405`); its text reaches neither labels nor logs.
fn refusal_of(request: &Request<Body>) -> Option<ApiError> {
    let headers = request.headers();
    if request.version() == Version::HTTP_11 && headers.get_all(header::HOST).iter().count() != 1 {
        Some(ApiError::Malformed("an HTTP/1.1 request must carry exactly one Host header".into()))
    } else if headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum::<usize>() > HEADER_LIMIT {
        Some(ApiError::HeadersTooLarge)
    } else {
        None
    }
}

/// The recorders of requests by route template, found the way axum matches a path: the same
/// list the router is built from, plus one for requests that matched no route. A label is
/// always a template, never the raw path, so ids and tokens in paths cannot reach the labels.
struct RouteRecorders {
    by_template: matchit::Router<usize>,
    matched: Vec<RouteRecorder>,
    unmatched: RouteRecorder,
}

impl RouteRecorders {
    fn new(metrics: &Metrics, templates: &[&'static str]) -> Self {
        let mut by_template = matchit::Router::new();
        let mut matched = Vec::with_capacity(templates.len());
        for template in templates {
            // The router was built from the same templates and refuses conflicting ones first,
            // so an insert here cannot fail; should it, that template's requests read as
            // unmatched in the metrics and nothing else changes.
            if by_template.insert(*template, matched.len()).is_ok() {
                matched.push(metrics.route_recorder(template));
            }
        }
        Self { by_template, matched, unmatched: metrics.route_recorder(UNMATCHED) }
    }

    /// Which route `path` matches, as [`Self::recorder`] takes it; `None` for no route.
    fn of(&self, path: &str) -> Option<usize> {
        self.by_template.at(path).ok().map(|matched| *matched.value)
    }

    /// The recorder of a route [`Self::of`] found.
    fn recorder(&self, route: Option<usize>) -> &RouteRecorder {
        route.and_then(|index| self.matched.get(index)).unwrap_or(&self.unmatched)
    }
}

/// Routes as they are added: the router, and their templates, from which the frame labels
/// requests in the metrics.
#[derive(Default)]
pub(crate) struct Routes {
    router: Router<AppState>,
    templates: Vec<&'static str>,
}

impl Routes {
    /// The router and the templates of its routes, for [`Frame::new`].
    pub(crate) fn into_parts(self) -> (Router<AppState>, Vec<&'static str>) {
        (self.router, self.templates)
    }

    /// Adds `method_router` at `template`.
    pub(crate) fn route(mut self, template: &'static str, method_router: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(template, method_router);
        self.templates.push(template);
        self
    }

    /// Changes the router of these routes as a whole (its fallbacks and layers).
    pub(crate) fn map_router(mut self, change: impl FnOnce(Router<AppState>) -> Router<AppState>) -> Self {
        self.router = change(self.router);
        self
    }

    /// Adds `other`'s routes to these.
    pub(crate) fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.templates.extend(other.templates);
        self
    }
}

/// What every frame of one application shares.
struct FrameParts {
    routes: RouteRecorders,
    /// `Strict-Transport-Security`, where the public URL is https (over plain http a browser
    /// ignores it anyway).
    hsts: Option<HeaderValue>,
}

/// The frame around an application `S` (the router): see the module documentation.
#[derive(Clone)]
pub struct Frame<S> {
    inner: S,
    parts: Arc<FrameParts>,
}

impl<S> Frame<S> {
    /// Frames `inner`, whose routes are `templates`.
    pub(crate) fn new(inner: S, state: &AppState, templates: &[&'static str]) -> Self {
        let hsts =
            state.config.secure_cookies().then(|| HeaderValue::from_static("max-age=63072000; includeSubDomains"));
        Self { inner, parts: Arc::new(FrameParts { routes: RouteRecorders::new(&state.metrics, templates), hsts }) }
    }
}

impl<S> tower::Service<Request<Body>> for Frame<S>
where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = FrameFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let started = Instant::now();
        let request_id = request_id_of(&request);
        let route = self.parts.routes.of(request.uri().path());
        let method = method_label(request.method());
        let answer = match refusal_of(&request) {
            Some(refusal) => Answer::Refused { response: Some(refusal.into_response()) },
            None => Answer::Inner { future: self.inner.call(request) },
        };
        FrameFuture { answer, started, request_id: Some(request_id), route, method, parts: Arc::clone(&self.parts) }
    }
}

pin_project! {
    /// The response of a [`Frame`]: the application's (or the refusal's), finished by the frame.
    pub struct FrameFuture<F> {
        #[pin]
        answer: Answer<F>,
        started: Instant,
        request_id: Option<HeaderValue>,
        // The route the request matched, for its recorder.
        route: Option<usize>,
        method: &'static str,
        parts: Arc<FrameParts>,
    }
}

pin_project! {
    #[project = AnswerProjection]
    enum Answer<F> {
        Refused { response: Option<Response> },
        Inner { #[pin] future: F },
    }
}

impl<F> Future for FrameFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.answer.project() {
            AnswerProjection::Refused { response } => response.take().unwrap_or_default(),
            AnswerProjection::Inner { future } => match ready!(future.poll(cx)) {
                Ok(response) => response,
                Err(never) => match never {},
            },
        };
        let status = response.status().as_u16();
        let method = *this.method;
        let recorder = this.parts.routes.recorder(*this.route);
        recorder.observe(method, status, this.started.elapsed().as_secs_f64());
        let route = recorder.route();
        let request_id = this.request_id.take().unwrap_or_else(|| HeaderValue::from_static("unknown"));
        // Every server error is logged once, here, with its cause and without headers: no
        // credential reaches the log.
        if status >= 500 {
            let fault = response.extensions_mut().remove::<ServerFault>();
            let cause = fault.as_ref().map_or("", |fault| fault.0.as_str());
            let request_id = request_id.to_str().unwrap_or_default();
            if status == 503 {
                warn!(request.id = request_id, %route, %method, status, %cause, "store unavailable");
            } else {
                error!(request.id = request_id, %route, %method, status, %cause, "server error");
            }
        }
        let headers = response.headers_mut();
        headers.insert(REQUEST_ID.clone(), request_id);
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if let Some(hsts) = &this.parts.hsts {
            headers.entry(header::STRICT_TRANSPORT_SECURITY).or_insert_with(|| hsts.clone());
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_templates_never_raw_paths() {
        let metrics = Metrics::new();
        let routes = RouteRecorders::new(&metrics, &["/v1/me", "/v1/sessions/{id}", "/assets/{name}"]);
        let label = |path: &str| routes.recorder(routes.of(path)).route();
        assert_eq!(label("/v1/me"), "/v1/me");
        assert_eq!(label("/v1/sessions/0191b1f0-secret"), "/v1/sessions/{id}");
        assert_eq!(label("/v1/me/"), UNMATCHED);
        assert_eq!(label("/nowhere"), UNMATCHED);
    }
}
