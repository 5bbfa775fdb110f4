//! A PostgreSQL server of a test's own (its own data directory and port), which the test may
//! stop and start without disturbing any other test: for fault tests.

use std::path::PathBuf;
use std::process::Command;

/// A private PostgreSQL server; stopped and deleted when dropped.
#[derive(Debug)]
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

fn as_postgres(program: &PathBuf) -> Command {
    // PostgreSQL refuses to run as root; tests on CI run as root.
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--"]).arg(program);
    command
}

impl PrivatePostgres {
    /// Initialises a cluster with trust authentication on a free loopback port and starts it.
    ///
    /// # Panics
    /// When PostgreSQL's server binaries or `runuser` are missing (`scripts/services` installs
    /// PostgreSQL), or the server does not start.
    pub fn start() -> Self {
        let versions = std::fs::read_dir("/usr/lib/postgresql").expect("PostgreSQL is installed (scripts/services)");
        let mut versions: Vec<PathBuf> = versions.filter_map(Result::ok).map(|entry| entry.path()).collect();
        versions.sort();
        let bin = versions.pop().expect("a PostgreSQL version").join("bin");
        let dir = tempfile::Builder::new().prefix("latchkey-pg-").tempdir().expect("tempdir");
        let status = Command::new("chown").arg("postgres:postgres").arg(dir.path()).status().expect("chown");
        assert!(status.success(), "chown the private PostgreSQL directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let init = as_postgres(&bin.join("initdb"))
            .args(["-D"])
            .arg(dir.path().join("data"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync"])
            .output()
            .expect("initdb");
        assert!(init.status.success(), "initdb: {}", String::from_utf8_lossy(&init.stderr));
        let server = Self { dir, bin, port };
        server.up();
        server
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        let options = format!("-p {} -c listen_addresses=127.0.0.1 -k {}", self.port, self.dir.path().display());
        as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-o", &options, "-l"])
            .arg(self.dir.path().join("server.log"))
            .args(args)
            .output()
            .expect("pg_ctl")
    }

    /// Starts the server and waits until it accepts connections.
    pub fn up(&self) {
        let output = self.pg_ctl(&["-w", "start"]);
        assert!(output.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// Stops the server at once (open connections are cut, as in an outage).
    pub fn down(&self) {
        let output = self.pg_ctl(&["-w", "-m", "immediate", "stop"]);
        assert!(output.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&output.stderr));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
    }
}
