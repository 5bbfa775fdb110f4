//! A Redis Cluster of three masters on loopback ports, from the machine's `redis-server`, for
//! the tests that must pass on a cluster. Nothing is kept on disk but each node's cluster
//! state file, in a directory removed with the cluster.

use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A running three-master cluster; shut down when dropped.
#[derive(Debug)]
pub struct RedisCluster {
    ports: Vec<u16>,
    _dir: TempDir,
}

fn free_port() -> u16 {
    // The cluster bus listens on port + 10000, so keep ports low enough for that.
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn cli(port: u16, args: &[&str]) -> Option<String> {
    let output =
        Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", &port.to_string()]).args(args).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

impl RedisCluster {
    /// Starts three `redis-server --cluster-enabled yes` nodes, joins them with
    /// `redis-cli --cluster create` and waits until every node reports the cluster ok.
    ///
    /// # Panics
    /// When `redis-server` or `redis-cli` is missing (`scripts/services` installs them) or the
    /// cluster does not form.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        for port in &ports {
            let port = port.to_string();
            let status = Command::new("redis-server")
                .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--cluster-enabled", "yes", "--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--cluster-node-timeout", "2000", "--daemonize", "yes", "--logfile", ""])
                .arg("--dir")
                .arg(dir.path())
                .status()
                .expect("redis-server (scripts/services installs it)");
            assert!(status.success(), "redis-server on port {port} did not start");
        }
        let cluster = Self { ports, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in &cluster.ports {
            while cli(*port, &["ping"]).is_none_or(|reply| !reply.contains("PONG")) {
                assert!(Instant::now() < deadline, "redis-server on port {port} does not answer");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let nodes: Vec<String> = cluster.ports.iter().map(|port| format!("127.0.0.1:{port}")).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        for port in &cluster.ports {
            while cli(*port, &["cluster", "info"]).is_none_or(|info| !info.contains("cluster_state:ok")) {
                assert!(Instant::now() < deadline, "the cluster did not become ok on port {port}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        cluster
    }

    /// The nodes' URLs, as `LATCHKEY_REDIS_CLUSTER_NODES` takes them.
    pub fn node_urls(&self) -> Vec<String> {
        self.ports.iter().map(|port| format!("redis://127.0.0.1:{port}")).collect()
    }

    /// How many keys each master holds: a test can check the data really spread.
    pub fn keys_per_node(&self) -> Vec<u64> {
        self.ports.iter().map(|port| cli(*port, &["dbsize"]).and_then(|n| n.trim().parse().ok()).unwrap_or(0)).collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for port in &self.ports {
            let _ = cli(*port, &["shutdown", "nosave"]);
        }
    }
}
