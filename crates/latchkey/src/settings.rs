//! Configuration: defaults, then a TOML file, then `LATCHKEY_*` environment variables, then
//! flags — each later source overriding the earlier. Unknown TOML keys are rejected. Values
//! are turned into checked domain values once, here.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use ipnet::IpNet;
use latchkey_core::Policy;
use latchkey_core::accounts::Argon2Settings;
use latchkey_core::policy::PolicySetting;
use latchkey_core::throttle::{ThrottlePolicy, ThrottleSetting};
use latchkey_http::{Origin, ServiceToken};
use latchkey_redis::RedisTarget;
use serde::{Deserialize, Deserializer, Serialize};
use time::Duration;

/// The defaults of the settings this binary owns (the `--help` texts and the README quote
/// these). The domain's defaults are its types' own ([`Policy::default`],
/// [`Argon2Settings::default`]); [`shown`] prints them for `--help`.
pub mod defaults {
    /// `LATCHKEY_LISTEN`.
    pub const LISTEN: &str = "127.0.0.1:8080";
    /// `LATCHKEY_PUBLIC_URL`.
    pub const PUBLIC_URL: &str = "http://localhost:8080";
    /// `LATCHKEY_DATA_DIR`.
    pub const DATA_DIR: &str = "./latchkey-data";
    /// `LATCHKEY_REDIS_PREFIX`.
    pub const REDIS_PREFIX: &str = "latchkey";
    /// `LATCHKEY_SYNC_INTERVAL`.
    pub const SYNC_INTERVAL: &str = "1s";
    /// `LATCHKEY_COOKIE_NAME`.
    pub const COOKIE_NAME: &str = "latchkey";
    /// `LATCHKEY_LOG_FORMAT`.
    pub const LOG_FORMAT: &str = "text";
    /// `LATCHKEY_MAX_CONNECTIONS`.
    pub const MAX_CONNECTIONS: usize = 10_000;
    /// `LATCHKEY_CLIENT_TIMEOUT` (API.md: a request head or a stalled body, 30 s).
    pub const CLIENT_TIMEOUT: &str = "30s";
}

/// A domain default as `--help` shows it: a duration in its largest whole unit (`10m`, `7d`).
fn shown(value: Duration) -> String {
    let seconds = value.whole_seconds();
    let (count, unit) = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")]
        .into_iter()
        .find(|(unit, _)| seconds != 0 && seconds % unit == 0)
        .map_or((seconds, "s"), |(size, unit)| (seconds / size, unit));
    format!("{count}{unit}")
}

/// Accepts a TOML list either as an array of strings or as one comma-separated string.
fn list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        One(String),
        Many(Vec<String>),
    }
    Ok(Option::<List>::deserialize(deserializer)?.map(|list| match list {
        List::One(text) => text,
        List::Many(items) => items.join(","),
    }))
}

/// The settings as given: every one optional, from flags, the environment or the TOML file
/// (the same struct parses all three, so the names cannot drift apart).
#[derive(Debug, Clone, Default, Args, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsArgs {
    /// A TOML file with any of the settings below (keys are the flag names with `_`).
    #[arg(long, env = "LATCHKEY_CONFIG", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    #[arg(long, env = "LATCHKEY_LISTEN", global = true, help = format!("Address:port to bind [default: {}]", defaults::LISTEN))]
    listen: Option<String>,

    #[arg(long, env = "LATCHKEY_PUBLIC_URL", global = true, help = format!("The issuer and cookie origin [default: {}]", defaults::PUBLIC_URL))]
    public_url: Option<String>,

    #[arg(long, env = "LATCHKEY_DATA_DIR", global = true, help = format!("Embedded database and generated keys [default: {}]", defaults::DATA_DIR))]
    data_dir: Option<PathBuf>,

    #[arg(
        long,
        env = "LATCHKEY_DATABASE_URL",
        global = true,
        help = "sqlite://... or postgres://... [default: SQLite in the data dir]"
    )]
    database_url: Option<String>,

    #[arg(
        long,
        env = "LATCHKEY_REDIS_URL",
        global = true,
        help = "Redis for sessions (accounts, keys and the revocation log stay in SQL) [default: none]"
    )]
    redis_url: Option<String>,

    #[arg(
        long,
        env = "LATCHKEY_REDIS_CLUSTER_NODES",
        global = true,
        help = "Redis Cluster for sessions instead: comma-separated seed nodes, redis://host:port,... [default: none]"
    )]
    redis_cluster_nodes: Option<String>,

    #[arg(long, env = "LATCHKEY_REDIS_PREFIX", global = true, help = format!("Prefix of latchkey's Redis keys [default: {}]", defaults::REDIS_PREFIX))]
    redis_prefix: Option<String>,

    #[arg(long, env = "LATCHKEY_SIGNING_ALG", global = true, help = format!("EdDSA, ES256, RS256 or HS256 [default: {}]", Policy::default().signing_alg))]
    signing_alg: Option<String>,

    #[arg(
        long,
        env = "LATCHKEY_SIGNING_KEY_FILE",
        global = true,
        help = "Sign with this PKCS#8 PEM private key (or HS256 secret file) instead of generated keys [default: none]"
    )]
    signing_key_file: Option<PathBuf>,

    #[arg(
        long,
        env = "LATCHKEY_MASTER_KEY_FILE",
        global = true,
        help = "Encrypt the stored signing keys and server secret with a key derived from this file (>= 32 bytes) [default: none, stored in the clear]"
    )]
    master_key_file: Option<PathBuf>,

    #[arg(long, env = "LATCHKEY_AUDIENCE", global = true, help = "aud of access tokens [default: the public URL]")]
    audience: Option<String>,

    #[arg(long, env = "LATCHKEY_ACCESS_TOKEN_TTL", global = true, help = format!("Access-token lifetime [default: {}]", shown(Policy::default().access_token_ttl)))]
    access_token_ttl: Option<String>,

    #[arg(long, env = "LATCHKEY_SESSION_IDLE_TIMEOUT", global = true, help = format!("Cookie sessions end after this much inactivity [default: {}]", shown(Policy::default().session_idle_timeout)))]
    session_idle_timeout: Option<String>,

    #[arg(long, env = "LATCHKEY_SESSION_ABSOLUTE_TIMEOUT", global = true, help = format!("Cookie sessions end this long after login [default: {}]", shown(Policy::default().session_absolute_timeout)))]
    session_absolute_timeout: Option<String>,

    #[arg(long, env = "LATCHKEY_REFRESH_IDLE_TIMEOUT", global = true, help = format!("Token sessions end after this long without a refresh [default: {}]", shown(Policy::default().refresh_idle_timeout)))]
    refresh_idle_timeout: Option<String>,

    #[arg(long, env = "LATCHKEY_REFRESH_ABSOLUTE_TIMEOUT", global = true, help = format!("Token sessions end this long after login [default: {}]", shown(Policy::default().refresh_absolute_timeout)))]
    refresh_absolute_timeout: Option<String>,

    #[arg(long, env = "LATCHKEY_REFRESH_REUSE_GRACE", global = true, help = format!("Concurrent-refresh grace window [default: {}]", shown(Policy::default().refresh_reuse_grace)))]
    refresh_reuse_grace: Option<String>,

    #[arg(long, env = "LATCHKEY_SESSION_TOUCH_INTERVAL", global = true, help = format!("Sliding renewal writes last_seen_at at most this often [default: {}]", shown(Policy::default().touch_interval)))]
    session_touch_interval: Option<String>,

    #[arg(long, env = "LATCHKEY_SESSION_CACHE_TTL", global = true, help = format!("How long a cookie check may be answered from this instance's cache; 0s: always read the store [default: {}]", shown(Policy::default().cookie_cache_ttl)))]
    session_cache_ttl: Option<String>,

    #[arg(long, env = "LATCHKEY_SYNC_INTERVAL", global = true, help = format!("How often revocations and keys made by other processes are picked up [default: {}]", defaults::SYNC_INTERVAL))]
    sync_interval: Option<String>,

    #[arg(
        long,
        env = "LATCHKEY_ALLOWED_ORIGINS",
        global = true,
        help = "Extra origins allowed by the CSRF rule and CORS, comma-separated [default: none]"
    )]
    #[serde(default, deserialize_with = "list")]
    allowed_origins: Option<String>,

    #[arg(
        long,
        env = "LATCHKEY_TRUSTED_PROXIES",
        global = true,
        help = "CIDRs whose X-Forwarded-For is believed, comma-separated [default: none]"
    )]
    #[serde(default, deserialize_with = "list")]
    trusted_proxies: Option<String>,

    #[arg(
        long,
        env = "LATCHKEY_SERVICE_TOKEN",
        global = true,
        hide_env_values = true,
        help = "Bearer secret (>= 32 characters) for the revocation feed /v1/revocations [default: none, feed off]"
    )]
    service_token: Option<String>,

    #[arg(long, env = "LATCHKEY_COOKIE_NAME", global = true, help = format!("Cookie name stem: <stem>_session, <stem>_at, <stem>_rt [default: {}]", defaults::COOKIE_NAME))]
    cookie_name: Option<String>,

    #[arg(
        long,
        env = "LATCHKEY_COOKIE_DOMAIN",
        global = true,
        help = "Domain attribute of cookies (switches __Host- to __Secure-) [default: none, host-only]"
    )]
    cookie_domain: Option<String>,

    #[arg(long, env = "LATCHKEY_ARGON2_MEMORY_KIB", global = true, help = format!("Argon2id memory in KiB [default: {}]", Argon2Settings::default().memory_kib))]
    argon2_memory_kib: Option<u32>,

    #[arg(long, env = "LATCHKEY_ARGON2_ITERATIONS", global = true, help = format!("Argon2id passes [default: {}]", Argon2Settings::default().iterations))]
    argon2_iterations: Option<u32>,

    #[arg(long, env = "LATCHKEY_ARGON2_PARALLELISM", global = true, help = format!("Argon2id lanes [default: {}]", Argon2Settings::default().parallelism))]
    argon2_parallelism: Option<u32>,

    #[arg(
        long,
        env = "LATCHKEY_ARGON2_CONCURRENCY",
        global = true,
        help = "Password hashes computed at once [default: the number of CPUs]"
    )]
    argon2_concurrency: Option<usize>,

    #[arg(long, env = "LATCHKEY_LOG_FORMAT", global = true, help = format!("text or json [default: {}]", defaults::LOG_FORMAT))]
    log_format: Option<String>,

    #[arg(long, env = "LATCHKEY_KEY_ROTATION_INTERVAL", global = true, help = format!("A generated signing key older than this is replaced (the next key is published ahead); 0s: only by hand [default: {}]", Policy::default().key_rotation_interval.map_or_else(|| "0s".to_owned(), shown)))]
    key_rotation_interval: Option<String>,

    #[arg(long, env = "LATCHKEY_THROTTLE_ACCOUNT_ATTEMPTS", global = true, help = format!("Failed password attempts on one account before waits begin [default: {}]", ThrottlePolicy::default().account_free))]
    throttle_account_attempts: Option<u32>,

    #[arg(long, env = "LATCHKEY_THROTTLE_ADDRESS_ATTEMPTS", global = true, help = format!("Failed password attempts from one client address (IPv6: /64) before waits begin [default: {}]", ThrottlePolicy::default().address_free))]
    throttle_address_attempts: Option<u32>,

    #[arg(long, env = "LATCHKEY_THROTTLE_PASSWORD_ATTEMPTS", global = true, help = format!("Failed attempts with one password, over any accounts, before waits begin (password spraying) [default: {}]", ThrottlePolicy::default().password_free))]
    throttle_password_attempts: Option<u32>,

    #[arg(long, env = "LATCHKEY_THROTTLE_MAX_DELAY", global = true, help = format!("Longest wait after failed attempts (waits start at 1s and double) [default: {}]", shown(ThrottlePolicy::default().max_delay)))]
    throttle_max_delay: Option<String>,

    #[arg(long, env = "LATCHKEY_MAX_CONNECTIONS", global = true, help = format!("Client connections served at once; more are answered 503 and closed (lowered to what the open-files limit allows) [default: {}]", defaults::MAX_CONNECTIONS))]
    max_connections: Option<usize>,

    #[arg(long, env = "LATCHKEY_CLIENT_TIMEOUT", global = true, help = format!("A connection that has not sent a whole request head (or its next one) within this, or whose body stalls this long, is closed [default: {}]", defaults::CLIENT_TIMEOUT))]
    client_timeout: Option<String>,

    #[arg(long, env = "LATCHKEY_MAX_SESSIONS_PER_USER", global = true, help = format!("Live sessions one user may hold; a login past it ends the one used longest ago [default: {}]", Policy::default().max_sessions_per_user))]
    max_sessions_per_user: Option<u32>,
}

impl SettingsArgs {
    /// These settings over `lower`: each one set here wins. Done on the settings' serialised
    /// form, so that a new setting needs no line here.
    fn over(&self, lower: &SettingsArgs) -> Result<SettingsArgs, SettingsError> {
        let merge_failed = |err: serde_json::Error| invalid("LATCHKEY_CONFIG", err);
        let mut merged = serde_json::to_value(lower).map_err(merge_failed)?;
        if let (Some(merged), serde_json::Value::Object(high)) =
            (merged.as_object_mut(), serde_json::to_value(self).map_err(merge_failed)?)
        {
            merged.extend(high.into_iter().filter(|(_, value)| !value.is_null()));
        }
        let mut args: SettingsArgs = serde_json::from_value(merged).map_err(merge_failed)?;
        args.config.clone_from(&self.config);
        Ok(args)
    }
}

/// Why the settings cannot be used. Each names the setting.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The TOML file could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML file is not valid (including unknown keys).
    #[error("invalid configuration file {path}: {source}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// Why.
        source: toml::de::Error,
    },
    /// A value is not valid.
    #[error("invalid {name}: {reason}")]
    Invalid {
        /// The setting's environment name.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

fn invalid(name: &'static str, reason: impl ToString) -> SettingsError {
    SettingsError::Invalid { name, reason: reason.to_string() }
}

/// A duration setting as given (`10m`, `1500ms`), or `default` when not given.
fn duration_or(name: &'static str, given: Option<&str>, default: Duration) -> Result<Duration, SettingsError> {
    let Some(text) = given else { return Ok(default) };
    let parsed = humantime::parse_duration(text).map_err(|err| invalid(name, format!("{text:?}: {err}")))?;
    Duration::try_from(parsed).map_err(|err| invalid(name, err))
}

/// A duration setting of this binary's own, which must be longer than zero.
fn duration(name: &'static str, given: Option<&str>, default: &str) -> Result<Duration, SettingsError> {
    let parsed = duration_or(name, Some(given.unwrap_or(default)), Duration::ZERO)?;
    if parsed <= Duration::ZERO {
        return Err(invalid(name, "must be longer than zero"));
    }
    Ok(parsed)
}

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum Database {
    /// A `sqlite:` or `postgres:` URL.
    Url(String),
    /// SQLite file in the data directory (the zero-configuration default).
    SqliteFile(PathBuf),
}

/// Checked settings, ready to build a server from.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Public URL without a trailing slash.
    pub public_url: String,
    /// The public URL's origin.
    pub public_origin: Origin,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database.
    pub database: Database,
    /// Redis (standalone or a cluster) for sessions, if configured.
    pub redis: Option<RedisTarget>,
    /// Prefix of Redis keys.
    pub redis_prefix: String,
    /// Operator-provided signing key file.
    pub signing_key_file: Option<PathBuf>,
    /// The file the master key is derived from.
    pub master_key_file: Option<PathBuf>,
    /// The domain's policy (lifetimes, identity, limits, throttling), checked by
    /// [`Policy::checked`].
    pub policy: Policy,
    /// How often other processes' revocations and keys are picked up.
    pub sync_interval: Duration,
    /// Extra allowed origins.
    pub allowed_origins: Vec<Origin>,
    /// Trusted proxies.
    pub trusted_proxies: Vec<IpNet>,
    /// The revocation feed's bearer secret.
    pub service_token: Option<ServiceToken>,
    /// Cookie name stem.
    pub cookie_name: String,
    /// Cookie domain.
    pub cookie_domain: Option<String>,
    /// Argon2id parameters.
    pub argon2: Argon2Settings,
    /// Simultaneous hashes (0 = CPUs).
    pub argon2_concurrency: usize,
    /// Emit JSON logs.
    pub json_logs: bool,
    /// Limits on client connections.
    pub connections: latchkey_http::ConnectionLimits,
}

impl Settings {
    /// Layers defaults, the TOML file named by `args.config`, and `args` (flags and
    /// environment, as clap resolved them), and checks every value.
    pub fn load(args: &SettingsArgs) -> Result<Self, SettingsError> {
        let merged = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| SettingsError::File { path: path.clone(), source })?;
                let file: SettingsArgs =
                    toml::from_str(&text).map_err(|source| SettingsError::Toml { path: path.clone(), source })?;
                args.over(&file)?
            }
            None => args.clone(),
        };
        Self::resolve(&merged)
    }

    fn resolve(given: &SettingsArgs) -> Result<Self, SettingsError> {
        let redis = redis_target(given)?;
        let listen_text = given.listen.as_deref().unwrap_or(defaults::LISTEN);
        let listen = listen_text
            .parse()
            .map_err(|_| invalid("LATCHKEY_LISTEN", format!("{listen_text:?} is not address:port")))?;
        let public_url = given.public_url.as_deref().unwrap_or(defaults::PUBLIC_URL).trim_end_matches('/').to_owned();
        let parsed = url::Url::parse(&public_url).map_err(|err| invalid("LATCHKEY_PUBLIC_URL", err))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(invalid("LATCHKEY_PUBLIC_URL", "must be an http or https URL"));
        }
        let public_origin =
            Origin::parse(&parsed.origin().ascii_serialization()).map_err(|err| invalid("LATCHKEY_PUBLIC_URL", err))?;
        let data_dir = given.data_dir.clone().unwrap_or_else(|| PathBuf::from(defaults::DATA_DIR));
        let database = match given.database_url.as_deref() {
            None => Database::SqliteFile(data_dir.join("latchkey.db")),
            Some(url) => match latchkey_sql::Backend::of_url(url) {
                Ok(_) => Database::Url(url.to_owned()),
                Err(err) => return Err(invalid("LATCHKEY_DATABASE_URL", err)),
            },
        };
        let split = |text: &Option<String>| -> Vec<String> {
            text.as_deref()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let allowed_origins = split(&given.allowed_origins)
            .iter()
            .map(|origin| Origin::parse(origin))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| invalid("LATCHKEY_ALLOWED_ORIGINS", err))?;
        let trusted_proxies = split(&given.trusted_proxies)
            .iter()
            .map(|cidr| cidr.parse::<IpNet>().or_else(|_| cidr.parse::<std::net::IpAddr>().map(IpNet::from)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| invalid("LATCHKEY_TRUSTED_PROXIES", err))?;
        let cookie_name = given.cookie_name.clone().unwrap_or_else(|| defaults::COOKIE_NAME.to_owned());
        if cookie_name.is_empty() || !cookie_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(invalid("LATCHKEY_COOKIE_NAME", "use letters, digits, _ and -"));
        }
        let log_format = given.log_format.as_deref().unwrap_or(defaults::LOG_FORMAT);
        let json_logs = match log_format {
            "text" => false,
            "json" => true,
            other => return Err(invalid("LATCHKEY_LOG_FORMAT", format!("{other:?} is neither text nor json"))),
        };
        let settings = Self {
            listen,
            policy: policy(given, &public_url)?,
            public_url,
            public_origin,
            data_dir,
            database,
            redis,
            redis_prefix: given.redis_prefix.clone().unwrap_or_else(|| defaults::REDIS_PREFIX.to_owned()),
            signing_key_file: given.signing_key_file.clone(),
            master_key_file: given.master_key_file.clone(),
            sync_interval: duration("LATCHKEY_SYNC_INTERVAL", given.sync_interval.as_deref(), defaults::SYNC_INTERVAL)?,
            allowed_origins,
            trusted_proxies,
            service_token: given
                .service_token
                .as_deref()
                .map(ServiceToken::new)
                .transpose()
                .map_err(|err| invalid("LATCHKEY_SERVICE_TOKEN", err))?,
            cookie_name,
            cookie_domain: given.cookie_domain.clone(),
            argon2: {
                let base = Argon2Settings::default();
                Argon2Settings {
                    memory_kib: given.argon2_memory_kib.unwrap_or(base.memory_kib),
                    iterations: given.argon2_iterations.unwrap_or(base.iterations),
                    parallelism: given.argon2_parallelism.unwrap_or(base.parallelism),
                }
            },
            argon2_concurrency: given.argon2_concurrency.unwrap_or(0),
            json_logs,
            connections: latchkey_http::ConnectionLimits {
                max_connections: match given.max_connections.unwrap_or(defaults::MAX_CONNECTIONS) {
                    0 => return Err(invalid("LATCHKEY_MAX_CONNECTIONS", "must allow at least one connection")),
                    cap => cap,
                },
                client_timeout: duration(
                    "LATCHKEY_CLIENT_TIMEOUT",
                    given.client_timeout.as_deref(),
                    defaults::CLIENT_TIMEOUT,
                )?
                .unsigned_abs(),
            },
        };
        Ok(settings)
    }
}

/// The domain's policy: each setting given, or the policy's own default; the rules between
/// them are the policy's ([`Policy::checked`]), reported here under the setting's name.
fn policy(given: &SettingsArgs, public_url: &str) -> Result<Policy, SettingsError> {
    let base = Policy::default();
    let throttle = ThrottlePolicy::default();
    let lifetime = |name, text: &Option<String>, default| duration_or(name, text.as_deref(), default);
    let policy = Policy {
        issuer: public_url.to_owned(),
        audience: given.audience.clone().unwrap_or_else(|| public_url.to_owned()),
        signing_alg: match given.signing_alg.as_deref() {
            Some(text) => text.parse().map_err(|err| invalid("LATCHKEY_SIGNING_ALG", err))?,
            None => base.signing_alg,
        },
        access_token_ttl: lifetime("LATCHKEY_ACCESS_TOKEN_TTL", &given.access_token_ttl, base.access_token_ttl)?,
        session_idle_timeout: lifetime(
            "LATCHKEY_SESSION_IDLE_TIMEOUT",
            &given.session_idle_timeout,
            base.session_idle_timeout,
        )?,
        session_absolute_timeout: lifetime(
            "LATCHKEY_SESSION_ABSOLUTE_TIMEOUT",
            &given.session_absolute_timeout,
            base.session_absolute_timeout,
        )?,
        refresh_idle_timeout: lifetime(
            "LATCHKEY_REFRESH_IDLE_TIMEOUT",
            &given.refresh_idle_timeout,
            base.refresh_idle_timeout,
        )?,
        refresh_absolute_timeout: lifetime(
            "LATCHKEY_REFRESH_ABSOLUTE_TIMEOUT",
            &given.refresh_absolute_timeout,
            base.refresh_absolute_timeout,
        )?,
        refresh_reuse_grace: lifetime(
            "LATCHKEY_REFRESH_REUSE_GRACE",
            &given.refresh_reuse_grace,
            base.refresh_reuse_grace,
        )?,
        touch_interval: lifetime(
            "LATCHKEY_SESSION_TOUCH_INTERVAL",
            &given.session_touch_interval,
            base.touch_interval,
        )?,
        cookie_cache_ttl: lifetime("LATCHKEY_SESSION_CACHE_TTL", &given.session_cache_ttl, base.cookie_cache_ttl)?,
        // Zero turns scheduled rotation off.
        key_rotation_interval: match given.key_rotation_interval.as_deref() {
            Some(text) => Some(duration_or("LATCHKEY_KEY_ROTATION_INTERVAL", Some(text), Duration::ZERO)?)
                .filter(|interval| *interval > Duration::ZERO),
            None => base.key_rotation_interval,
        },
        max_sessions_per_user: given.max_sessions_per_user.unwrap_or(base.max_sessions_per_user),
        throttle: ThrottlePolicy {
            account_free: given.throttle_account_attempts.unwrap_or(throttle.account_free),
            address_free: given.throttle_address_attempts.unwrap_or(throttle.address_free),
            password_free: given.throttle_password_attempts.unwrap_or(throttle.password_free),
            max_delay: lifetime("LATCHKEY_THROTTLE_MAX_DELAY", &given.throttle_max_delay, throttle.max_delay)?,
            ..throttle
        },
    };
    policy.checked().map_err(|err| invalid(policy_setting_name(err.setting), err))
}

/// The name a setting of the policy has here.
fn policy_setting_name(setting: PolicySetting) -> &'static str {
    match setting {
        PolicySetting::AccessTokenTtl => "LATCHKEY_ACCESS_TOKEN_TTL",
        PolicySetting::SessionIdleTimeout => "LATCHKEY_SESSION_IDLE_TIMEOUT",
        PolicySetting::SessionAbsoluteTimeout => "LATCHKEY_SESSION_ABSOLUTE_TIMEOUT",
        PolicySetting::RefreshIdleTimeout => "LATCHKEY_REFRESH_IDLE_TIMEOUT",
        PolicySetting::RefreshAbsoluteTimeout => "LATCHKEY_REFRESH_ABSOLUTE_TIMEOUT",
        PolicySetting::RefreshReuseGrace => "LATCHKEY_REFRESH_REUSE_GRACE",
        PolicySetting::TouchInterval => "LATCHKEY_SESSION_TOUCH_INTERVAL",
        PolicySetting::CookieCacheTtl => "LATCHKEY_SESSION_CACHE_TTL",
        PolicySetting::KeyRotationInterval => "LATCHKEY_KEY_ROTATION_INTERVAL",
        PolicySetting::MaxSessionsPerUser => "LATCHKEY_MAX_SESSIONS_PER_USER",
        PolicySetting::Throttle(ThrottleSetting::AccountFree) => "LATCHKEY_THROTTLE_ACCOUNT_ATTEMPTS",
        PolicySetting::Throttle(ThrottleSetting::AddressFree) => "LATCHKEY_THROTTLE_ADDRESS_ATTEMPTS",
        PolicySetting::Throttle(ThrottleSetting::PasswordFree) => "LATCHKEY_THROTTLE_PASSWORD_ATTEMPTS",
        PolicySetting::Throttle(ThrottleSetting::MaxDelay) => "LATCHKEY_THROTTLE_MAX_DELAY",
    }
}

/// Where sessions live in Redis, if anywhere: `LATCHKEY_REDIS_URL` or
/// `LATCHKEY_REDIS_CLUSTER_NODES`, never both.
fn redis_target(given: &SettingsArgs) -> Result<Option<RedisTarget>, SettingsError> {
    let is_redis_url = |url: &str| url.starts_with("redis://") || url.starts_with("rediss://");
    match (&given.redis_url, &given.redis_cluster_nodes) {
        (Some(_), Some(_)) => Err(invalid(
            "LATCHKEY_REDIS_CLUSTER_NODES",
            "set either LATCHKEY_REDIS_URL (one server) or LATCHKEY_REDIS_CLUSTER_NODES (a cluster), not both",
        )),
        (Some(url), None) if !is_redis_url(url) => {
            Err(invalid("LATCHKEY_REDIS_URL", "must start with redis:// or rediss://"))
        }
        (Some(url), None) => Ok(Some(RedisTarget::Standalone(url.clone()))),
        (None, Some(nodes)) => {
            let seeds: Vec<String> =
                nodes.split(',').map(str::trim).filter(|node| !node.is_empty()).map(str::to_owned).collect();
            if seeds.is_empty() || !seeds.iter().all(|seed| is_redis_url(seed)) {
                return Err(invalid("LATCHKEY_REDIS_CLUSTER_NODES", "must be comma-separated redis://host:port URLs"));
            }
            Ok(Some(RedisTarget::Cluster(seeds)))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_resolve_to_the_documented_values() -> Result<(), SettingsError> {
        let settings = Settings::load(&SettingsArgs::default())?;
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.public_url, "http://localhost:8080");
        assert_eq!(settings.policy.audience, "http://localhost:8080");
        assert_eq!(settings.policy.access_token_ttl, Duration::minutes(10));
        assert_eq!(settings.policy.refresh_absolute_timeout, Duration::days(30));
        assert_eq!(settings.argon2, Argon2Settings::default());
        Ok(())
    }

    #[test]
    fn the_file_is_overridden_by_flags_and_environment() -> Result<(), SettingsError> {
        let dir = std::env::temp_dir().join(format!("latchkey-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|source| SettingsError::File { path: dir.clone(), source })?;
        let path = dir.join("latchkey.toml");
        std::fs::write(&path, "access_token_ttl = \"5m\"\nrefresh_reuse_grace = \"3s\"\nallowed_origins = [\"https://app.example\", \"https://admin.example\"]\n")
            .map_err(|source| SettingsError::File { path: path.clone(), source })?;
        let args = SettingsArgs { config: Some(path), access_token_ttl: Some("2m".into()), ..Default::default() };
        let settings = Settings::load(&args)?;
        assert_eq!(settings.policy.access_token_ttl, Duration::minutes(2), "flag/env beats file");
        assert_eq!(settings.policy.refresh_reuse_grace, Duration::seconds(3), "file beats default");
        assert_eq!(settings.allowed_origins.len(), 2);
        Ok(())
    }

    #[test]
    fn the_shipped_default_toml_states_exactly_the_built_in_defaults() -> Result<(), SettingsError> {
        let file: SettingsArgs = toml::from_str(include_str!("../../../config/default.toml"))
            .map_err(|source| SettingsError::Toml { path: "config/default.toml".into(), source })?;
        let from_file = Settings::resolve(&file)?;
        let built_in = Settings::resolve(&SettingsArgs::default())?;
        assert_eq!(format!("{from_file:?}"), format!("{built_in:?}"));
        Ok(())
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_their_name() {
        let unknown: Result<SettingsArgs, _> = toml::from_str("acess_token_ttl = \"5m\"");
        assert!(unknown.is_err());
        let bad = SettingsArgs { access_token_ttl: Some("soon".into()), ..Default::default() };
        assert!(matches!(Settings::load(&bad), Err(SettingsError::Invalid { name: "LATCHKEY_ACCESS_TOKEN_TTL", .. })));
        let bad = SettingsArgs { signing_alg: Some("none".into()), ..Default::default() };
        assert!(matches!(Settings::load(&bad), Err(SettingsError::Invalid { name: "LATCHKEY_SIGNING_ALG", .. })));
        let bad = SettingsArgs { allowed_origins: Some("null".into()), ..Default::default() };
        assert!(matches!(Settings::load(&bad), Err(SettingsError::Invalid { name: "LATCHKEY_ALLOWED_ORIGINS", .. })));
    }
}
