//! The harness: the real `latchkey` binary on a random port with a fresh SQLite file, driven
//! over real HTTP.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

/// The public URL's origin in tests (the default public URL).
pub const ORIGIN: &str = "http://localhost:8080";
/// A password that passes the policy.
pub const PASSWORD: &str = "correct horse battery";

/// A running server process.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The data directory (SQLite file and keys), removed when the server is dropped.
    pub _data_dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    logs: Arc<Mutex<String>>,
    // Dropped after the process is killed (fields drop after `Drop::drop`).
    _database: Option<latchkey_testkit::postgres::ScratchDatabase>,
    _redis: Option<latchkey_testkit::redis::ScratchPrefix>,
    /// A client without cookie jar or redirects: tests handle cookies by hand.
    pub client: Client,
}

/// The environment every test server gets: random port, private data dir, cheap Argon2.
fn base_env(data_dir: &std::path::Path) -> Vec<(String, String)> {
    vec![
        ("LATCHKEY_LISTEN".into(), "127.0.0.1:0".into()),
        ("LATCHKEY_DATA_DIR".into(), data_dir.display().to_string()),
        ("LATCHKEY_ARGON2_MEMORY_KIB".into(), "256".into()),
        ("LATCHKEY_ARGON2_ITERATIONS".into(), "1".into()),
        ("LATCHKEY_SYNC_INTERVAL".into(), "200ms".into()),
        ("LATCHKEY_LOG".into(), "info,sqlx=warn".into()),
    ]
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
        let client = Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Self {
            child,
            base: format!("http://{address}"),
            _data_dir: data_dir,
            env,
            logs,
            _database: database,
            _redis: redis,
            client,
        }
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
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

    /// `POST /v1/accounts`; panics unless 201.
    pub async fn sign_up(&self, username: &str) -> Value {
        let response = self.post_json("/v1/accounts", &json!({ "username": username, "password": PASSWORD })).await;
        assert_eq!(response.status(), StatusCode::CREATED, "sign-up of {username}");
        response.json().await.expect("json")
    }

    /// POSTs a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request")
    }

    /// `POST /v1/session` with these credentials and extra request headers, whatever the answer.
    pub async fn login_attempt(&self, username: &str, password: &str, headers: &[(&str, &str)]) -> Response {
        let mut request =
            self.client.post(self.url("/v1/session")).json(&json!({ "username": username, "password": password }));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request")
    }

    /// Logs in with a cookie session; panics unless 200.
    pub async fn cookie_login(&self, username: &str) -> CookieLogin {
        let response = self.post_json("/v1/session", &json!({ "username": username, "password": PASSWORD })).await;
        assert_eq!(response.status(), StatusCode::OK, "cookie login of {username}");
        let cookie = cookie_pair(response.headers(), "latchkey_session").expect("session cookie");
        let body: Value = response.json().await.expect("json");
        CookieLogin {
            cookie,
            csrf: body["csrf_token"].as_str().expect("csrf").to_owned(),
            session_id: body["session"]["id"].as_str().expect("id").to_owned(),
        }
    }

    /// The password grant (form-encoded) at `path` (`/v1/token` or `/v1/token?delivery=cookie`),
    /// with extra request headers.
    pub async fn password_grant(&self, path: &str, username: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = self.client.post(self.url(path)).form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", PASSWORD),
        ]);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request")
    }

    /// Logs in with a token session, sending `headers`; panics unless 200.
    pub async fn token_login_with(&self, username: &str, headers: &[(&str, &str)]) -> Tokens {
        let response = self.password_grant("/v1/token", username, headers).await;
        assert_eq!(response.status(), StatusCode::OK, "token login of {username}");
        Tokens::from(response.json::<Value>().await.expect("json"))
    }

    /// Logs in with a token session; panics unless 200.
    pub async fn token_login(&self, username: &str) -> Tokens {
        self.token_login_with(username, &[]).await
    }

    /// `grant_type=refresh_token`.
    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.client
            .post(self.url("/v1/token"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)])
            .send()
            .await
            .expect("request")
    }

    /// `GET /v1/sessions` with a bearer token: the caller's device list.
    pub async fn sessions(&self, access_token: &str) -> Vec<Value> {
        let response =
            self.client.get(self.url("/v1/sessions")).bearer_auth(access_token).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    /// `GET /v1/sessions` with a cookie header: the caller's device list.
    pub async fn sessions_by_cookie(&self, cookie: &str) -> Vec<Value> {
        let response =
            self.client.get(self.url("/v1/sessions")).header("cookie", cookie).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    /// `GET /v1/me` with a bearer token.
    pub async fn me_bearer(&self, access_token: &str) -> Response {
        self.client.get(self.url("/v1/me")).bearer_auth(access_token).send().await.expect("request")
    }

    /// `GET /v1/me` with a cookie header.
    pub async fn me_cookie(&self, cookie: &str) -> Response {
        self.client.get(self.url("/v1/me")).header("cookie", cookie).send().await.expect("request")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A cookie login's credentials.
pub struct CookieLogin {
    /// `name=value`, ready for a `Cookie` header.
    pub cookie: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// The session id.
    pub session_id: String,
}

/// A token login's credentials.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The JWT.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
    /// The session id.
    pub session_id: String,
}

impl From<Value> for Tokens {
    fn from(body: Value) -> Self {
        Self {
            access: body["access_token"].as_str().expect("access_token").to_owned(),
            refresh: body["refresh_token"].as_str().expect("refresh_token").to_owned(),
            session_id: body["session_id"].as_str().expect("session_id").to_owned(),
        }
    }
}

/// Every `Set-Cookie` header.
pub fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
}

/// The `Set-Cookie` line for `name`.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers).into_iter().find(|line| line.starts_with(&format!("{name}=")))
}

/// `name=value` of the cookie `name` set by a response.
pub fn cookie_pair(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookie(headers, name).and_then(|line| line.split(';').next().map(str::to_owned))
}

/// The JSON body of a problem response, asserting its status, media type and code.
pub async fn expect_problem(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "status for expected {code}");
    let media = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(media, "application/problem+json", "problem media type for {code}");
    let body: Value = response.json().await.expect("problem json");
    assert_eq!(body["code"], code, "problem body {body}");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
    body
}

/// The JSON body of an RFC 6749 error, asserting status and `error`.
pub async fn expect_oauth_error(response: Response, status: StatusCode, error: &str) -> Value {
    assert_eq!(response.status(), status, "status for expected {error}");
    assert_eq!(response.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    let body: Value = response.json().await.expect("oauth error json");
    assert_eq!(body["error"], error, "oauth body {body}");
    assert!(body["error_description"].is_string());
    body
}

/// Decodes a JWT part (header or claims) without verifying anything.
pub fn jwt_part(token: &str, index: usize) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(index).expect("jwt part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("base64url");
    serde_json::from_slice(&bytes).expect("json part")
}
