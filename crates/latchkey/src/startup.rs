//! Start-up: open the store, start the service, bind the listener, serve until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use latchkey_core::accounts::{HashError, PasswordHasher};
use latchkey_core::clock::SystemClock;
use latchkey_core::keys::{self, KeyCustody, MasterKey};
use latchkey_core::store::{AllHealthy, Stores};
use latchkey_core::{AuthError, Latchkey};
use latchkey_http::{AppState, ConnectionLimits, HttpConfig};
use latchkey_redis::{RedisOpenError, RedisSessionStore, RevocationListener};
use latchkey_sql::{ChangeListener, SqlError, SqlStore};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::backchannel;
use crate::settings::{Database, Settings};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be made.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] SqlError),
    /// Redis could not be reached.
    #[error(transparent)]
    Redis(#[from] RedisOpenError),
    /// The signing key file could not be read or used.
    #[error("signing key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The master key file could not be read or is too short.
    #[error("master key file {path}: {reason}")]
    MasterKeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The Argon2 parameters are invalid.
    #[error(transparent)]
    Hasher(#[from] HashError),
    /// The service could not start (keys, store).
    #[error("cannot start: {0}")]
    Service(#[from] AuthError),
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Opens the configured store, creating the data directory if needed. The directory and the
/// SQLite file are made readable by their owner only: they hold the signing keys and the
/// server secret, and a copy of them mints working tokens.
pub async fn open_store(settings: &Settings) -> Result<SqlStore, StartError> {
    let store = match &settings.database {
        Database::SqliteFile(path) => {
            if let Some(parent) = path.parent() {
                create_private_dir(parent).map_err(|source| StartError::DataDir { path: parent.to_owned(), source })?;
            }
            create_private_file(path).map_err(|source| StartError::DataDir { path: path.clone(), source })?;
            SqlStore::open_sqlite_file(path).await?
        }
        Database::Url(url) => SqlStore::open(url).await?,
    };
    Ok(store)
}

/// Creates `dir` (and its parents) owner-only if it does not exist; warns when an existing one
/// is open to others.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        warn_if_shared(dir);
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates the SQLite file owner-only if it does not exist (SQLite gives its `-wal` and `-shm`
/// files the same permissions); warns when an existing one is open to others.
fn create_private_file(path: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            warn_if_shared(path);
            Ok(())
        }
        Err(err) => Err(err),
    }
}

/// Warns when a path of the data directory can be read by others than its owner.
fn warn_if_shared(path: &std::path::Path) {
    #[cfg(unix)]
    if let Ok(metadata) = std::fs::metadata(path) {
        let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions());
        if mode & 0o077 != 0 {
            warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "others can read latchkey's data, which holds its keys; chmod it to the owner only");
        }
    }
}

/// The stores the settings name: SQL for everything, or — with `LATCHKEY_REDIS_URL` — Redis
/// for sessions and failed-attempt counters, appending revocations to the SQL log so none is
/// lost with Redis.
pub async fn stores_for(settings: &Settings, sql: &SqlStore) -> Result<Stores, StartError> {
    let mut stores = sql.clone().stores();
    if let Some(target) = &settings.redis {
        let redis = Arc::new(RedisSessionStore::open(target, &settings.redis_prefix, Arc::new(sql.clone())).await?);
        stores.health = Arc::new(AllHealthy(vec![stores.health, redis.clone()]));
        stores.throttle = Arc::new(redis.throttle());
        stores.sessions = redis;
    }
    Ok(stores)
}

/// Starts the domain service on the configured store.
pub async fn start_service(settings: &Settings) -> Result<Latchkey, StartError> {
    let sql = open_store(settings).await?;
    start_service_on(settings, stores_for(settings, &sql).await?).await
}

/// Starts the domain service on `stores`.
async fn start_service_on(settings: &Settings, stores: Stores) -> Result<Latchkey, StartError> {
    let hasher = PasswordHasher::new(settings.argon2, settings.argon2_concurrency)?;
    let file_key = match &settings.signing_key_file {
        None => None,
        Some(path) => {
            let contents = std::fs::read(path)
                .map_err(|err| StartError::KeyFile { path: path.clone(), reason: err.to_string() })?;
            let key = keys::from_key_file(settings.policy.signing_alg, &contents, time::OffsetDateTime::now_utc())
                .map_err(|err| StartError::KeyFile { path: path.clone(), reason: err.to_string() })?;
            Some(key)
        }
    };
    let master_key = match &settings.master_key_file {
        None => None,
        Some(path) => {
            let failed = |reason: String| StartError::MasterKeyFile { path: path.clone(), reason };
            let contents = zeroize::Zeroizing::new(std::fs::read(path).map_err(|err| failed(err.to_string()))?);
            Some(MasterKey::from_file_bytes(&contents).map_err(|err| failed(err.to_string()))?)
        }
    };
    Ok(Latchkey::start(
        stores,
        Arc::new(SystemClock),
        hasher,
        settings.policy.clone(),
        KeyCustody { file_key, master_key },
    )
    .await?)
}

/// A built server: bound, not yet serving.
pub struct Application {
    listener: TcpListener,
    changes: Option<ChangeListener>,
    /// Where to subscribe to revocations announced over Redis, and the key prefix.
    redis_announcements: Option<(String, String)>,
    state: AppState,
    sync_interval: StdDuration,
    limits: ConnectionLimits,
    shutdown: watch::Sender<bool>,
}

impl Application {
    /// Opens the store, starts the service and binds the listener (port 0 picks a free port).
    pub async fn build(settings: &Settings) -> Result<Self, StartError> {
        if settings.master_key_file.is_none() {
            warn!(
                "the signing keys and the server secret are stored unsealed: a copy of the database mints working tokens; set LATCHKEY_MASTER_KEY_FILE to seal them"
            );
        }
        let store = open_store(settings).await?;
        let changes = store.change_listener().await?;
        let service = start_service_on(settings, stores_for(settings, &store).await?).await?;
        let config = HttpConfig {
            public_url: settings.public_url.clone(),
            public_origin: settings.public_origin.clone(),
            allowed_origins: settings.allowed_origins.clone(),
            cookie_name: settings.cookie_name.clone(),
            cookie_domain: settings.cookie_domain.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
            service_token: settings.service_token.clone(),
        };
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|source| StartError::Bind { address: settings.listen, source })?;
        let (shutdown, stopping) = watch::channel(false);
        let redis_announcements = settings
            .redis
            .as_ref()
            .and_then(|target| target.subscription_url())
            .map(|url| (url.to_owned(), settings.redis_prefix.clone()));
        Ok(Self {
            listener,
            changes,
            redis_announcements,
            state: AppState::with_shutdown(service, config, stopping),
            sync_interval: settings.sync_interval.unsigned_abs(),
            limits: settings.connections,
            shutdown,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let address = self.local_addr()?;
        let service = self.state.service.clone();
        let sync = tokio::spawn(keep_in_sync(service.clone(), self.sync_interval));
        // The sweep runs ten times slower than the sync: each pass reads every open sign-in.
        let sweep = tokio::spawn(backchannel::sweep_sign_ins(service.clone(), self.sync_interval * 10));
        let deliver = match backchannel::HttpLogoutTransport::new() {
            Ok(transport) => Some(tokio::spawn(backchannel::deliver_logouts(service.clone(), transport))),
            Err(err) => {
                warn!(error = %err, "no HTTP client for back-channel logout: no logout token will be delivered");
                None
            }
        };
        let listen = self.changes.map(|changes| tokio::spawn(follow_changes(service.clone(), changes)));
        let announcements = self
            .redis_announcements
            .map(|(url, prefix)| tokio::spawn(follow_redis_announcements(service, url, prefix)));
        let limits = self.limits.fitted_to(raise_open_files_limit());
        info!(%address, max_connections = limits.max_connections, "listening on http://{address}");
        let stopping = self.shutdown;
        let signal = async move {
            shutdown.await;
            // Ends the revocation feed's event streams, which would otherwise hold the graceful
            // shutdown open forever.
            let _ = stopping.send(true);
        };
        let served = latchkey_http::serve(self.listener, self.state, limits, signal).await;
        sync.abort();
        sweep.abort();
        for task in [listen, announcements, deliver].into_iter().flatten() {
            task.abort();
        }
        info!("stopped");
        served
    }
}

/// Raises this process's soft limit on open files to its hard limit (the default soft limit,
/// often 1,024, would let about a thousand idle clients stop all service) and returns the limit
/// now in force.
fn raise_open_files_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(err) => {
            warn!(error = %err, "could not raise the open-files limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1_024, |(soft, _)| soft)
        }
    }
}

/// Picks up revocations and key changes made by other processes, and purges ended sessions
/// hourly.
async fn keep_in_sync(service: Latchkey, every: StdDuration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let purge_every = (3600 / every.as_secs().max(1)).max(1);
    let mut ticks: u64 = 0;
    loop {
        ticker.tick().await;
        ticks += 1;
        if let Err(err) = service.sync().await {
            warn!(error = %err, "sync with the store failed; will retry");
        }
        if ticks.is_multiple_of(purge_every) {
            match service.purge().await {
                Ok(purged) if purged > 0 => info!(purged, "purged ended sessions and expired keys"),
                Ok(_) => {}
                Err(err) => warn!(error = %err, "purge failed; will retry"),
            }
        }
    }
}

/// Syncs whenever another instance announces a change (PostgreSQL `NOTIFY`), so revocations
/// made anywhere bite here within milliseconds; the periodic sync remains the fallback bound.
async fn follow_changes(service: Latchkey, mut changes: ChangeListener) {
    loop {
        match changes.changed().await {
            Ok(()) => {
                if let Err(err) = service.sync().await {
                    warn!(error = %err, "sync after a change announcement failed; will retry");
                }
            }
            Err(err) => {
                warn!(error = %err, "listening for changes failed; retrying in 1 s (the periodic sync still runs)");
                tokio::time::sleep(StdDuration::from_secs(1)).await;
            }
        }
    }
}

/// Refuses sessions revoked on other instances as their announcements arrive over Redis
/// pub/sub. Pub/sub delivers nothing while disconnected, so every (re)subscription is followed
/// by a sync from the durable log: a lost message cannot leave a revoked session alive.
async fn follow_redis_announcements(service: Latchkey, url: String, prefix: String) {
    loop {
        match RevocationListener::connect(&url, &prefix).await {
            Ok(mut listener) => {
                if let Err(err) = service.sync().await {
                    warn!(error = %err, "sync after subscribing to Redis failed; the periodic sync will retry");
                }
                while let Some(announced) = listener.next().await {
                    for revocation in &announced {
                        service.deny(revocation.session_id, revocation.until);
                    }
                    // Brings the same entries in log order to the revocation feed.
                    if let Err(err) = service.sync().await {
                        warn!(error = %err, "sync after a Redis announcement failed; will retry");
                    }
                }
                warn!("the Redis revocation subscription dropped; resubscribing");
            }
            Err(err) => warn!(error = %err, "subscribing to Redis revocations failed; retrying in 1 s"),
        }
        tokio::time::sleep(StdDuration::from_secs(1)).await;
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    info!("shutting down; letting in-flight requests finish");
}
