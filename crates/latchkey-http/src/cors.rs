//! CORS per API.md: the allowed origins get tower-http's CORS handling (with credentials and
//! the route's methods); every other request — no `Origin`, or one not allowed — bypasses it
//! entirely, so it gets no CORS header at all (tower-http would still add
//! `Access-Control-Allow-Credentials`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::Response;
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

use crate::auth::CSRF_HEADER;
use crate::config::HttpConfig;
use crate::middleware::REQUEST_ID;

/// Grants CORS to the allowed origins only, for `methods`.
#[derive(Clone)]
pub struct AllowedOriginsCors {
    config: Arc<HttpConfig>,
    cors: CorsLayer,
}

impl AllowedOriginsCors {
    /// The request headers every route's preflight allows.
    const REQUEST_HEADERS: [HeaderName; 3] =
        [header::CONTENT_TYPE, header::AUTHORIZATION, HeaderName::from_static(CSRF_HEADER)];

    /// The grant for one route.
    pub fn new(config: Arc<HttpConfig>, methods: &[Method]) -> Self {
        let origins: Vec<HeaderValue> =
            config.all_origins().filter_map(|origin| HeaderValue::from_str(origin.as_str()).ok()).collect();
        let cors = CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods(methods.to_vec())
            .allow_headers(Self::REQUEST_HEADERS)
            .expose_headers([REQUEST_ID.clone()])
            .max_age(Duration::from_secs(600));
        Self { config, cors }
    }
}

impl AllowedOriginsCors {
    /// Also allows `If-Match` and `If-None-Match` in requests and shows `ETag` in answers, for
    /// a route whose resource has versions.
    pub fn with_entity_tags(mut self) -> Self {
        let mut headers = Self::REQUEST_HEADERS.to_vec();
        headers.extend([header::IF_MATCH, header::IF_NONE_MATCH]);
        self.cors = self.cors.allow_headers(headers).expose_headers([REQUEST_ID.clone(), header::ETAG]);
        self
    }
}

impl<S: Clone> Layer<S> for AllowedOriginsCors {
    type Service = OriginGate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OriginGate { config: Arc::clone(&self.config), with_cors: self.cors.layer(inner.clone()), plain: inner }
    }
}

/// The service [`AllowedOriginsCors`] makes.
#[derive(Clone)]
pub struct OriginGate<S> {
    config: Arc<HttpConfig>,
    with_cors: Cors<S>,
    plain: S,
}

impl<S> Service<Request> for OriginGate<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call drives a fresh clone to readiness (oneshot), so this is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let allowed = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|origin| origin.to_str().ok())
            .is_some_and(|origin| self.config.origin_allowed(origin));
        if allowed {
            let service = self.with_cors.clone();
            Box::pin(async move { service.oneshot(request).await })
        } else {
            let service = self.plain.clone();
            Box::pin(async move { service.oneshot(request).await })
        }
    }
}
