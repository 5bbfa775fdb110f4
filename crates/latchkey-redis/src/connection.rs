//! One connection type for standalone Redis and Redis Cluster, so the store's code is the same
//! for both.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// Where the sessions live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One Redis server: `redis://host:port/db`.
    Standalone(String),
    /// A Redis Cluster, found through any of these seed nodes (`redis://host:port`).
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// A URL to subscribe through: pub/sub messages reach every node of a cluster, so any
    /// seed will do.
    pub fn subscription_url(&self) -> Option<&str> {
        match self {
            RedisTarget::Standalone(url) => Some(url),
            RedisTarget::Cluster(seeds) => seeds.first().map(String::as_str),
        }
    }
}

/// While Redis is unreachable a request waits about a second at most, then fails (503): the
/// store fails closed promptly and keeps reconnecting in the background.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The connection, and a count of the requests sent over it (a command, a script or a
/// pipeline each), shared by its clones.
#[derive(Clone)]
pub(crate) struct Connection {
    link: Link,
    requests: Arc<AtomicU64>,
}

#[derive(Clone)]
enum Link {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    pub(crate) async fn open(target: &RedisTarget) -> redis::RedisResult<Self> {
        Ok(Self { link: Link::open(target).await?, requests: Arc::new(AtomicU64::new(0)) })
    }

    /// Requests sent so far, by this connection and its clones.
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Link {
    async fn open(target: &RedisTarget) -> redis::RedisResult<Self> {
        match target {
            RedisTarget::Standalone(url) => {
                // No retries inside a reconnection: the manager's backoff starts at a second
                // (plus jitter), so one retry held every request waiting on a reconnection for
                // up to 1.5 s after Redis was back. Without it a reconnection is one attempt,
                // a failed one fails its requests at once (503), and the next request starts
                // another: recovery follows Redis within one request.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(RESPONSE_TIMEOUT)
                    .set_number_of_retries(0);
                let manager = ConnectionManager::new_with_config(redis::Client::open(url.as_str())?, config).await?;
                Ok(Self::Standalone(manager))
            }
            RedisTarget::Cluster(seeds) => {
                let client = ClusterClientBuilder::new(seeds.iter().map(String::as_str))
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(1)
                    .build()?;
                Ok(Self::Cluster(client.get_async_connection().await?))
            }
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match &mut self.link {
            Link::Standalone(manager) => manager.req_packed_command(cmd),
            Link::Cluster(cluster) => cluster.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match &mut self.link {
            Link::Standalone(manager) => manager.req_packed_commands(cmd, offset, count),
            Link::Cluster(cluster) => cluster.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.link {
            Link::Standalone(manager) => manager.get_db(),
            Link::Cluster(cluster) => cluster.get_db(),
        }
    }
}
