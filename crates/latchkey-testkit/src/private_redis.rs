//! A Redis server of a test's own (its own port, nothing on disk), which the test may stop and
//! start without disturbing any other test: for fault tests.

use std::process::Command;
use std::time::{Duration, Instant};

/// A private Redis server; shut down when dropped.
#[derive(Debug)]
pub struct PrivateRedis {
    port: u16,
}

impl PrivateRedis {
    /// Starts `redis-server` on a free loopback port, keeping nothing on disk.
    ///
    /// # Panics
    /// When `redis-server` is missing (`scripts/services` installs it) or does not start.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let server = Self { port };
        server.up();
        server
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn cli(&self, args: &[&str]) -> bool {
        Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .is_ok_and(|output| output.status.success() && !String::from_utf8_lossy(&output.stdout).contains("ERR"))
    }

    /// Starts the server (empty, as a Redis that keeps nothing on disk restarts) and waits
    /// until it answers.
    pub fn up(&self) {
        let status = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "yes", "--dir", "/tmp", "--logfile", ""])
            .status()
            .expect("redis-server (scripts/services installs it)");
        assert!(status.success(), "redis-server did not start");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.cli(&["ping"]) {
            assert!(Instant::now() < deadline, "redis-server on port {} does not answer", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server at once, losing everything it held.
    pub fn down(&self) {
        let _ = self.cli(&["shutdown", "nosave"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cli(&["ping"]) {
            assert!(Instant::now() < deadline, "redis-server on port {} does not stop", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.cli(&["shutdown", "nosave"]);
    }
}
