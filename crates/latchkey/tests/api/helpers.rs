//! The harness: the real `latchkey` binary on a random port with a fresh SQLite file, driven
//! over real HTTP.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

pub use latchkey_testkit::client::*;
pub use latchkey_testkit::fixtures::*;

/// A running server process, and the API client of it (the server derefs to it, so a test
/// says `server.sign_up(..)`).
pub struct Server {
    child: Child,
    /// The data directory (SQLite file and keys), removed when the server is dropped.
    pub _data_dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    logs: Arc<Mutex<String>>,
    // Dropped after the process is killed (fields drop after `Drop::drop`).
    _database: Option<latchkey_testkit::postgres::ScratchDatabase>,
    _redis: Option<latchkey_testkit::redis::ScratchPrefix>,
    api: ApiClient,
}

impl std::ops::Deref for Server {
    type Target = ApiClient;

    fn deref(&self) -> &ApiClient {
        &self.api
    }
}

/// The environment every test server gets: random port, private data dir, cheap Argon2.
fn base_env(data_dir: &std::path::Path) -> Vec<(String, String)> {
    vec![
        ("LATCHKEY_LISTEN".into(), "127.0.0.1:0".into()),
        ("LATCHKEY_DATA_DIR".into(), data_dir.display().to_string()),
        ("LATCHKEY_SYNC_INTERVAL".into(), "200ms".into()),
        ("LATCHKEY_LOG".into(), "info,sqlx=warn".into()),
    ]
    .into_iter()
    .chain(CHEAP_ARGON2_ENV.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())))
    .collect()
}

/// Runs the binary with `args`, the given environment, and a clean `LATCHKEY_*` slate.
pub fn command(args: &[&str], env: &[(String, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("LATCHKEY_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    command
}

/// Runs a command that must end by itself (a start that fails); kills it and fails the test
/// if it is still running after `limit`, rather than hanging the suite.
pub fn output_within(mut command: Command, limit: Duration) -> std::process::Output {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let output = child.wait_with_output().expect("output");
    panic!("still running after {limit:?}: {}", String::from_utf8_lossy(&output.stderr));
}

impl Server {
    /// A server with default settings.
    pub async fn start() -> Self {
        Self::with(&[]).await
    }

    /// A server with extra `LATCHKEY_*` settings, on the backend `LATCHKEY_TEST_BACKEND` names:
    /// `sqlite` (the default), `postgres` (a scratch database per server), or `redis` (sessions
    /// in Redis under a scratch prefix, the rest in a scratch PostgreSQL database).
    pub async fn with(extra: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let mut env = base_env(data_dir.path());
        let backend = std::env::var("LATCHKEY_TEST_BACKEND").unwrap_or_else(|_| "sqlite".into());
        let database = match backend.as_str() {
            "postgres" | "redis" => {
                let database = latchkey_testkit::postgres::ScratchDatabase::create().await;
                env.push(("LATCHKEY_DATABASE_URL".into(), database.url().to_owned()));
                Some(database)
            }
            "sqlite" => None,
            other => panic!("LATCHKEY_TEST_BACKEND={other}: expected sqlite, postgres or redis"),
        };
        let redis = (backend == "redis").then(|| {
            let prefix = latchkey_testkit::redis::ScratchPrefix::new();
            env.push(("LATCHKEY_REDIS_URL".into(), latchkey_testkit::redis::url()));
            env.push(("LATCHKEY_REDIS_PREFIX".into(), prefix.prefix().to_owned()));
            prefix
        });
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        Self::spawn(data_dir, env, database, redis)
    }

    fn spawn(
        data_dir: tempfile::TempDir,
        env: Vec<(String, String)>,
        database: Option<latchkey_testkit::postgres::ScratchDatabase>,
        redis: Option<latchkey_testkit::redis::ScratchPrefix>,
    ) -> Self {
        let mut child =
            command(&["serve"], &env).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().expect("spawn latchkey");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = line.split("listening on http://").nth(1) {
                    let address = address.split_whitespace().next().unwrap_or_default().to_owned();
                    let _ = tx.send(address);
                }
                let mut logs = sink.lock().expect("logs");
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let address = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
            panic!("the server did not start; its log:\n{}", logs.lock().map(|l| l.clone()).unwrap_or_default())
        });
        Self {
            child,
            api: ApiClient::new(format!("http://{address}")),
            _data_dir: data_dir,
            env,
            logs,
            _database: database,
            _redis: redis,
        }
    }

    /// The server's own SQL store, opened beside it (to inspect what it keeps at rest).
    pub async fn sql_store(&self) -> latchkey_sql::SqlStore {
        let url = self.env.iter().find(|(name, _)| name == "LATCHKEY_DATABASE_URL").map(|(_, url)| url.clone());
        match url {
            Some(url) => latchkey_sql::SqlStore::open(&url).await.expect("open the server's database"),
            None => latchkey_sql::SqlStore::open_sqlite_file(&self._data_dir.path().join("latchkey.db"))
                .await
                .expect("open the server's SQLite file"),
        }
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().map(|logs| logs.clone()).unwrap_or_default()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit (after a signal), up to `limit`.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Runs an admin command against this server's store; returns (success, stdout, stderr).
    pub fn cli(&self, args: &[&str], stdin: &str) -> (bool, String, String) {
        self.run_cli(args, stdin, &self.env)
    }

    /// Runs an admin command against this server's store with extra settings.
    pub fn cli_with(&self, args: &[&str], extra: &[(&str, &str)]) -> (bool, String, String) {
        let mut env = self.env.clone();
        env.extend(extra.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())));
        self.run_cli(args, "", &env)
    }

    fn run_cli(&self, args: &[&str], stdin: &str, env: &[(String, String)]) -> (bool, String, String) {
        let mut child = command(args, env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cli");
        child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
        let output = child.wait_with_output().expect("cli output");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
