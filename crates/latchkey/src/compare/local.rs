//! A latchkey instance for one measurement: this binary, `serve`d on a free loopback port with
//! a scratch data directory, stopped and removed when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Client, StatusCode, redirect};
use serde_json::{Value, json};

use super::CompareError;

/// The password of every account the comparison makes.
pub const PASSWORD: &str = "correct horse battery";
/// Cheap password hashing, for instances whose logins are set-up rather than measured.
pub const CHEAP_HASHING: [(&str, &str); 2] =
    [("LATCHKEY_ARGON2_MEMORY_KIB", "256"), ("LATCHKEY_ARGON2_ITERATIONS", "1")];
/// The service token of instances that serve the revocation feed.
pub const SERVICE_TOKEN: &str = "latchkey-compare-service-token-0123456789";

/// A running instance.
pub struct LocalServer {
    child: Child,
    /// `http://127.0.0.1:PORT`, also its public URL and issuer.
    pub base: String,
    /// A client that follows no redirects.
    pub http: Client,
    env: Vec<(String, String)>,
    binary: std::path::PathBuf,
    data: std::path::PathBuf,
    /// Whether the data directory is the caller's (kept) rather than this instance's own.
    keep_data: bool,
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep_data {
            let _ = std::fs::remove_dir_all(&self.data);
        }
    }
}

impl LocalServer {
    /// Starts `binary serve` with `settings` over the defaults (the measurements' own settings
    /// win over anything in the caller's environment).
    pub fn start(binary: &Path, settings: &[(&str, &str)]) -> Result<Self, CompareError> {
        Self::launch(binary, &["serve"], settings, None)
    }

    /// Starts the HTTP ceiling (`binary bench ceiling`): a bare handler at `/`.
    pub fn ceiling(binary: &Path) -> Result<Self, CompareError> {
        Self::launch(binary, &["bench", "ceiling"], &[], None)
    }

    /// Starts an instance on the data directory `data`, which outlives it (to be measured, or
    /// started on again).
    pub fn start_in(binary: &Path, settings: &[(&str, &str)], data: &Path) -> Result<Self, CompareError> {
        Self::launch(binary, &["serve"], settings, Some(data))
    }

    fn launch(
        binary: &Path,
        command_line: &[&str],
        settings: &[(&str, &str)],
        kept: Option<&Path>,
    ) -> Result<Self, CompareError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let base = format!("http://127.0.0.1:{port}");
        let keep_data = kept.is_some();
        let data = match kept {
            Some(data) => data.to_owned(),
            None => std::env::temp_dir().join(format!("latchkey-compare-{}-{port}", std::process::id())),
        };
        std::fs::create_dir_all(&data)?;
        let mut env: Vec<(String, String)> = vec![
            ("LATCHKEY_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("LATCHKEY_PUBLIC_URL".into(), base.clone()),
            ("LATCHKEY_DATA_DIR".into(), data.display().to_string()),
            ("LATCHKEY_LOG".into(), "info,sqlx=warn".into()),
        ];
        env.extend(settings.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())));
        let mut command = Command::new(binary);
        for (name, _) in std::env::vars() {
            if name.starts_with("LATCHKEY_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .args(command_line)
            .envs(env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().ok_or_else(|| CompareError::Run("no standard error".into()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut log = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(Ok(()));
                }
                log.push_str(&line);
                log.push('\n');
            }
            let _ = tx.send(Err(log));
        });
        let failed = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => None,
            Ok(Err(log)) => Some(format!("latchkey did not start:\n{log}")),
            Err(_) => Some("latchkey did not start within 30 s".into()),
        };
        if let Some(why) = failed {
            // Nothing owns the instance yet: stop it here rather than leave it running.
            let _ = child.kill();
            let _ = child.wait();
            if !keep_data {
                let _ = std::fs::remove_dir_all(&data);
            }
            return Err(CompareError::Run(why));
        }
        let http = Client::builder().redirect(redirect::Policy::none()).build()?;
        Ok(Self { child, base, http, env, binary: binary.to_owned(), data, keep_data })
    }

    /// Its data directory (the embedded store, unless it was given another).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The address it listens on.
    pub fn address(&self) -> Result<std::net::SocketAddr, CompareError> {
        self.base
            .trim_start_matches("http://")
            .parse()
            .map_err(|_| CompareError::Run(format!("{} is not an address", self.base)))
    }

    /// The operations it has sent to `store` (`sqlite`, `postgres`, `redis`) so far: its
    /// metric `latchkey_store_operations_total`.
    pub async fn store_operations(&self, store: &str) -> Result<u64, CompareError> {
        let text = self.http.get(format!("{}/metrics", self.base)).send().await?.text().await?;
        let series = format!("latchkey_store_operations_total{{store=\"{store}\"}} ");
        Ok(text
            .lines()
            .find_map(|line| line.strip_prefix(series.as_str()))
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or_default())
    }

    /// Stops the instance as an operator would (SIGTERM) and waits for it to exit, so that its
    /// store is closed and its files complete.
    pub fn stop(mut self) -> Result<(), CompareError> {
        let signalled = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        if !signalled.success() {
            return Err(CompareError::Run("could not signal latchkey".into()));
        }
        self.child.wait()?;
        Ok(())
    }

    /// Runs an admin command against this instance's store; its standard output.
    pub fn cli(&self, args: &[&str]) -> Result<String, CompareError> {
        let output = Command::new(&self.binary).args(args).envs(self.env.iter().cloned()).output()?;
        if !output.status.success() {
            return Err(CompareError::Run(String::from_utf8_lossy(&output.stderr).into_owned()));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Creates an account.
    pub async fn sign_up(&self, username: &str) -> Result<(), CompareError> {
        let body = json!({ "username": username, "password": PASSWORD });
        let response = self.http.post(format!("{}/v1/accounts", self.base)).json(&body).send().await?;
        expect(response.status(), StatusCode::CREATED, "sign-up")
    }

    /// A cookie login: the `Cookie` header's value and the CSRF token.
    pub async fn cookie_login(&self, username: &str) -> Result<(String, String), CompareError> {
        let body = json!({ "username": username, "password": PASSWORD });
        let response = self.http.post(format!("{}/v1/session", self.base)).json(&body).send().await?;
        expect(response.status(), StatusCode::OK, "cookie login")?;
        let cookie = set_cookie(response.headers(), "latchkey_session")?;
        let body: Value = response.json().await?;
        Ok((cookie, body["csrf_token"].as_str().unwrap_or_default().to_owned()))
    }

    /// A token login (password grant): the token endpoint's answer.
    pub async fn token_login(&self, username: &str) -> Result<Value, CompareError> {
        let form = [("grant_type", "password"), ("username", username), ("password", PASSWORD)];
        let response = self.http.post(format!("{}/v1/token", self.base)).form(&form).send().await?;
        expect(response.status(), StatusCode::OK, "token login")?;
        Ok(response.json().await?)
    }

    /// The status of `GET /v1/me` with a header.
    pub async fn me_with(&self, header: &str, value: &str) -> Result<StatusCode, CompareError> {
        Ok(self.http.get(format!("{}/v1/me", self.base)).header(header, value).send().await?.status())
    }
}

/// Fails unless `found` is `expected`.
pub(crate) fn expect(found: StatusCode, expected: StatusCode, what: &str) -> Result<(), CompareError> {
    if found == expected { Ok(()) } else { Err(CompareError::Run(format!("{what} answered {found}"))) }
}

/// `name=value` of the cookie `name` a response set.
pub(crate) fn set_cookie(headers: &reqwest::header::HeaderMap, name: &str) -> Result<String, CompareError> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|line| line.starts_with(&format!("{name}=")))
        .and_then(|line| line.split(';').next())
        .map(str::to_owned)
        .ok_or_else(|| CompareError::Run(format!("no {name} cookie")))
}
