//! The connection loop: HTTP/1.1 over TCP with the limits a public server needs against slow
//! and greedy clients (API.md, "HTTP hygiene").
//!
//! `axum::serve` sets no timer, so hyper's header-read timeout never fires there, and it
//! accepts every connection it is handed. This loop owns both: a client that has not sent a
//! whole request head within the client timeout is closed (idle keep-alive connections too,
//! since hyper waits for their next head the same way), a body that stalls for the client
//! timeout ends its request with `408`, and past the connection cap a new connection is
//! answered `503` and closed at once while the ones in progress keep being served.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;
use tracing::{debug, warn};

use crate::routes::App;
use crate::state::AppState;

/// Most bytes of a request head (request line and headers) hyper reads before answering `431`
/// on its own. The application's own limit on headers ([`crate::middleware::HEADER_LIMIT`])
/// is lower and answers in the contract's format; this one bounds the request line and the
/// method, which no handler ever sees.
pub const REQUEST_HEAD_LIMIT: usize = 64 * 1024;

/// How long a shutdown keeps reading requests already sent on open connections before it
/// closes the idle ones.
const SHUTDOWN_SETTLE: Duration = Duration::from_millis(300);

/// How long a graceful shutdown waits for requests in flight before it drops them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Limits on clients' connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once; more are answered `503` and closed.
    pub max_connections: usize,
    /// Time allowed for a whole request head, for an idle keep-alive connection's next
    /// request, and for each stretch of a request body.
    pub client_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self { max_connections: 10_000, client_timeout: Duration::from_secs(30) }
    }
}

impl ConnectionLimits {
    /// These limits, with the connection cap lowered to what `open_files` (this process's
    /// limit on open files) leaves room for: a cap the kernel cannot honour would turn into
    /// failed accepts and store connections instead of clean `503`s.
    pub fn fitted_to(self, open_files: u64) -> Self {
        // Files the process needs besides clients: the store pools, Redis, logs, the listener.
        const RESERVED: u64 = 256;
        let room = usize::try_from(open_files.saturating_sub(RESERVED)).unwrap_or(usize::MAX).max(1);
        Self { max_connections: self.max_connections.min(room), ..self }
    }
}

/// The answer to a connection past the cap: written without reading the request, then closed.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/problem+json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 167\r\n\
\r\n\
{\"type\":\"urn:latchkey:problem:over_capacity\",\"title\":\"Service unavailable\",\"status\":503,\"code\":\"over_capacity\",\"detail\":\"the server is at its connection limit; retry\"}";

/// Serves the application of `state` on `listener` within `limits` until `shutdown`
/// completes, then lets requests in flight finish (for at most 30 s).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = crate::router(state.clone());
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.client_timeout)
        .max_buf_size(REQUEST_HEAD_LIMIT)
        .max_header_size(REQUEST_HEAD_LIMIT)
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors or a connection reset before accept: neither is
                    // the listener's end, so wait a moment instead of spinning on the error.
                    warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            state.metrics.observe_connection_refused();
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = connection_service(app.clone(), peer, limits.client_timeout);
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        let state = state.clone();
        state.metrics.observe_connection_opened();
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                debug!(error = %err, "connection ended with an error");
            }
            state.metrics.observe_connection_closed();
            drop(slot);
        });
    }
    drop(listener);
    // A request a client has just sent on a keep-alive connection may not be read yet, and
    // hyper closes a connection it finds idle at once: a moment first lets such requests in, so
    // they are served rather than cut off.
    tokio::time::sleep(SHUTDOWN_SETTLE).await;
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        warn!("requests still in flight after {SHUTDOWN_GRACE:?}; stopping anyway");
    }
    Ok(())
}

/// The application for one connection: knows its peer (`ConnectInfo`), and fails a request
/// body that stalls for `body_timeout`.
fn connection_service(
    app: App,
    peer: SocketAddr,
    body_timeout: Duration,
) -> TowerToHyperService<
    impl tower::Service<Request<Incoming>, Response = axum::response::Response, Error = Infallible, Future: Send>
    + Clone
    + Send
    + 'static,
> {
    TowerToHyperService::new(app.map_request(move |request: Request<Incoming>| {
        // A request without a body (most checks) is not wrapped: nothing there can stall.
        let mut request = request.map(|body| {
            if axum::body::HttpBody::is_end_stream(&body) {
                Body::new(body)
            } else {
                Body::new(TimeoutBody::new(body_timeout, body))
            }
        });
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    }))
}

/// Answers a connection past the cap with `503` and closes it, without waiting on the client.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(OVER_CAPACITY)).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_over_capacity_answer_is_well_formed_http() {
        let text = std::str::from_utf8(OVER_CAPACITY).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .and_then(|value| value.parse().ok())
            .expect("content-length");
        assert_eq!(length, body.len());
        let problem: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(problem["status"], 503);
    }

    #[test]
    fn the_connection_cap_leaves_room_for_the_process_own_files() {
        let limits = ConnectionLimits::default();
        assert_eq!(limits.fitted_to(1_048_576).max_connections, 10_000);
        assert_eq!(limits.fitted_to(1_024).max_connections, 768);
        assert_eq!(limits.fitted_to(10).max_connections, 1);
    }
}
