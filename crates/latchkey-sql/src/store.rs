//! One implementation of every store trait for both SQL backends, over sqlx's `Any` driver:
//! the embedded SQLite default and PostgreSQL for scale-out. The schemas use the same
//! representations (UUID text, integer microseconds), so the queries are shared; the dialects
//! differ only in placeholders (`?` vs `$n`), migrations, and how revocation-log writers are
//! serialised.

use std::borrow::Cow;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use latchkey_core::accounts::{Account, PasswordHash, UserId, Username};
use latchkey_core::audit::{AuditEvent, AuditFilter, AuditKind};
use latchkey_core::clients::ClientId;
use latchkey_core::secret::TokenDigest;
use latchkey_core::sessions::{AppSession, ClientInfo, DataWrite, Session, SessionId, SessionKind, StoredData};
use latchkey_core::store::{
    AccountStore, AuditLog, CreateAccount, KeyStore, Revocation, RevocationLog, RevokeScope, Rotation, SessionStore,
    StoreError, StoreHealth, StoredKey, Stores,
};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor, Row};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

mod authorization;
mod clients;
mod sign_ins;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Why a SQL store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// Neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("unsupported database URL scheme in {0:?} (use sqlite: or postgres:)")]
    Scheme(String),
    /// The database could not be reached or opened.
    #[error("cannot open the {backend} database: {source}")]
    Open {
        /// Which backend.
        backend: Backend,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// The embedded migrations failed.
    #[error("cannot migrate the {backend} database: {source}")]
    Migrate {
        /// Which backend.
        backend: Backend,
        /// Why.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

/// The SQL backends latchkey runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: one file, one process writing at a time.
    Sqlite,
    /// Shared by many instances.
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        })
    }
}

impl Backend {
    /// The backend a database URL names.
    pub fn of_url(url: &str) -> Result<Self, SqlError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(SqlError::Scheme(url.to_owned()))
        }
    }
}

/// Every latchkey store on one SQL database.
#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    // Connections taken from the pool and given back: one per query or transaction.
    operations: Arc<AtomicU64>,
    // Kept for the change listener's own connection. May hold a password: never printed.
    url: Arc<str>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore").field("backend", &self.backend).finish_non_exhaustive()
    }
}

/// The PostgreSQL channel on which committed changes that other instances cache (revocations,
/// signing keys) are announced.
const CHANGES_CHANNEL: &str = "latchkey_changes";

/// Wakes an instance when another instance (or the admin CLI) changed what it caches.
pub struct ChangeListener {
    listener: sqlx::postgres::PgListener,
}

impl ChangeListener {
    /// Waits for the next announced change, or for the end of a lost connection (after which
    /// announcements may have been missed): either way the caller should resync. An error
    /// means the database cannot be reached right now.
    pub async fn changed(&mut self) -> Result<(), sqlx::Error> {
        self.listener.try_recv().await.map(|_| ())
    }
}

/// A `sqlite:` URL for a file path, creating the file if needed.
fn sqlite_url(path: &Path) -> String {
    let mut escaped = String::new();
    for c in path.display().to_string().chars() {
        match c {
            '%' | '?' | '#' | ' ' => escaped.push_str(&format!("%{:02X}", c as u32)),
            c => escaped.push(c),
        }
    }
    format!("sqlite://{escaped}?mode=rwc")
}

impl SqlStore {
    /// Opens (creating if needed) the SQLite file at `path` and applies the migrations.
    pub async fn open_sqlite_file(path: &Path) -> Result<Self, SqlError> {
        Self::open(&sqlite_url(path)).await
    }

    /// Opens a `sqlite:` or `postgres:` URL and applies the migrations.
    pub async fn open(url: &str) -> Result<Self, SqlError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = Backend::of_url(url)?;
        let operations = Arc::new(AtomicU64::new(0));
        let released = Arc::clone(&operations);
        let options = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            // How long a request waits for a connection before it fails closed with 503. A
            // PostgreSQL outage should be answered promptly; SQLite waits are local lock waits.
            .acquire_timeout(match backend {
                Backend::Sqlite => StdDuration::from_secs(5),
                Backend::Postgres => StdDuration::from_secs(1),
            })
            .after_release(move |_, _| {
                released.fetch_add(1, Ordering::Relaxed);
                Box::pin(async { Ok(true) })
            })
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets checks read while a login writes. FULL syncs the log at every
                        // commit, so a write that was acknowledged — a revocation above all —
                        // survives a power loss, not only a crash of the process.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA busy_timeout = 5000",
                            "PRAGMA foreign_keys = ON",
                        ] {
                            connection.execute(pragma).await?;
                        }
                    }
                    Ok(())
                })
            });
        let pool = options.connect(url).await.map_err(|source| SqlError::Open { backend, source })?;
        let migrations = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrations.run(&pool).await.map_err(|source| SqlError::Migrate { backend, source })?;
        let store = Self { pool, backend, operations, url: url.into() };
        store.fill_in_skeletons().await.map_err(|source| SqlError::Open { backend, source })?;
        Ok(store)
    }

    /// Gives accounts made before skeletons were kept theirs, oldest first. An account whose
    /// skeleton an older one holds keeps none: it is never changed, and `latchkey user
    /// collisions` lists it.
    async fn fill_in_skeletons(&self) -> Result<(), sqlx::Error> {
        let rows = sqlx::query("SELECT id, username FROM accounts WHERE skeleton IS NULL ORDER BY created_at")
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            let (id, username): (String, String) = (row.try_get("id")?, row.try_get("username")?);
            let skeleton = Username::from_trusted(username).skeleton();
            let fill = self.sql(
                "UPDATE accounts SET skeleton = ? WHERE id = ? AND NOT EXISTS \
                 (SELECT 1 FROM accounts AS other WHERE other.skeleton = ?)",
            );
            // Another instance filling in at the same moment may win the index; this row is
            // then tried again at the next start.
            let _ = sqlx::query(&fill).bind(skeleton.clone()).bind(id).bind(skeleton).execute(&self.pool).await;
        }
        Ok(())
    }

    /// A listener for changes announced by other instances: PostgreSQL's `LISTEN`, so a
    /// revocation made anywhere reaches this instance in milliseconds. `None` on SQLite, where
    /// only processes on one machine share the file and the periodic sync suffices.
    pub async fn change_listener(&self) -> Result<Option<ChangeListener>, SqlError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let open = |source| SqlError::Open { backend: Backend::Postgres, source };
        let mut listener = sqlx::postgres::PgListener::connect(&self.url).await.map_err(open)?;
        listener.listen(CHANGES_CHANNEL).await.map_err(open)?;
        Ok(Some(ChangeListener { listener }))
    }

    /// Appends revocations to the log inside `tx`. On PostgreSQL the caller holds the log's
    /// advisory lock (see `lock_log`), so positions become visible in order.
    async fn append_to_log(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        revoked: &[(SessionId, SessionKind, OffsetDateTime)],
        at: OffsetDateTime,
    ) -> Result<Vec<Revocation>, StoreError> {
        let insert = self.sql(
            "INSERT INTO revocations (session_id, kind, revoked_at, active_until) VALUES (?, ?, ?, ?) RETURNING position",
        );
        let mut entries = Vec::with_capacity(revoked.len());
        for (session_id, kind, until) in revoked {
            let cursor: i64 = sqlx::query_scalar(&insert)
                .bind(session_id.to_string())
                .bind(kind.as_str())
                .bind(micros(at))
                .bind(micros(*until))
                .fetch_one(&mut **tx)
                .await
                .map_err(fail)?;
            entries.push(Revocation { cursor, session_id: *session_id, kind: *kind, revoked_at: at, until: *until });
        }
        Ok(entries)
    }

    /// Serialises revocation-log writers for the rest of `tx` (PostgreSQL): positions must
    /// become visible in order, or a reader resuming after N could skip an earlier position
    /// committed later. SQLite has one writer at a time anyway.
    async fn lock_log(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(REVOCATION_LOG_LOCK)
                .execute(&mut **tx)
                .await
                .map_err(fail)?;
        }
        Ok(())
    }

    /// Announces a change to other instances, delivered when `tx` commits (PostgreSQL only).
    async fn announce_change(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')").bind(CHANGES_CHANNEL).execute(&mut **tx).await.map_err(fail)?;
        }
        Ok(())
    }

    /// The query text for this backend: queries are written with `?` placeholders, which
    /// PostgreSQL spells `$1`, `$2`, ...
    fn sql<'a>(&self, text: impl Into<Cow<'a, str>>) -> Cow<'a, str> {
        let text = text.into();
        match self.backend {
            Backend::Sqlite => text,
            Backend::Postgres => {
                let mut numbered = String::with_capacity(text.len() + 8);
                let mut n = 0;
                for c in text.chars() {
                    if c == '?' {
                        n += 1;
                        numbered.push_str(&format!("${n}"));
                    } else {
                        numbered.push(c);
                    }
                }
                Cow::Owned(numbered)
            }
        }
    }

    /// The row `sql` selects by its one parameter `key`, decoded by `decode`.
    async fn one<K, T>(
        &self,
        sql: &str,
        key: K,
        decode: fn(&AnyRow) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError>
    where
        K: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send + 'static,
    {
        let sql = self.sql(sql);
        sqlx::query(&sql).bind(key).fetch_optional(&self.pool).await.map_err(fail)?.as_ref().map(decode).transpose()
    }

    /// Inserts a key row inside a transaction.
    async fn insert_key(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>, key: &StoredKey) -> Result<(), StoreError> {
        sqlx::query(&self.sql("INSERT INTO keys (kid, alg, material, created_at, retired_at) VALUES (?, ?, ?, ?, ?)"))
            .bind(key.kid.clone())
            .bind(key.alg.clone())
            .bind(key.material.clone())
            .bind(micros(key.created_at))
            .bind(key.retired_at.map(micros))
            .execute(&mut **tx)
            .await
            .map_err(fail)?;
        Ok(())
    }

    /// This store behind every trait, with failed-attempt counters in this process.
    pub fn stores(self) -> Stores {
        let store = Arc::new(self);
        // Failed-attempt counters are short-lived and hot: they stay in this process's memory
        // (in Redis when the deployment has one), never in SQL.
        let throttle = Arc::new(latchkey_core::throttle::LocalThrottle::new());
        Stores {
            accounts: store.clone(),
            sessions: store.clone(),
            revocations: store.clone(),
            keys: store.clone(),
            audit: store.clone(),
            clients: store.clone(),
            codes: store.clone(),
            consents: store.clone(),
            sign_ins: store.clone(),
            health: store,
            throttle,
        }
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn fail(err: sqlx::Error) -> StoreError {
    StoreError::unavailable(err)
}

fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

fn from_micros(us: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .map_err(|_| StoreError::Corrupt(format!("timestamp {us} out of range")))
}

fn uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::try_parse(text).map_err(|_| StoreError::Corrupt(format!("malformed id {text:?}")))
}

fn account_from(row: &AnyRow) -> Result<Account, StoreError> {
    Ok(Account {
        id: UserId::from_uuid(uuid(row.try_get("id").map_err(fail)?)?),
        username: Username::from_trusted(row.try_get("username").map_err(fail)?),
        password_hash: PasswordHash::from_stored(row.try_get("password_hash").map_err(fail)?),
        created_at: from_micros(row.try_get("created_at").map_err(fail)?)?,
        disabled: row.try_get::<i64, _>("disabled").map_err(fail)? != 0,
    })
}

const SESSION_COLUMNS: &str = "id, user_id, kind, secret_digest, refresh_counter, rotated_at, created_at, \
     last_seen_at, absolute_expires_at, idle_timeout_us, user_agent, ip, revoked_at, client_id, sso_session_id, scope";

fn session_from(row: &AnyRow) -> Result<Session, StoreError> {
    let kind: String = row.try_get("kind").map_err(fail)?;
    let digest: Option<Vec<u8>> = row.try_get("secret_digest").map_err(fail)?;
    let optional_time = |column: &str| -> Result<Option<OffsetDateTime>, StoreError> {
        row.try_get::<Option<i64>, _>(column).map_err(fail)?.map(from_micros).transpose()
    };
    Ok(Session {
        id: SessionId::from_uuid(uuid(row.try_get("id").map_err(fail)?)?),
        user_id: UserId::from_uuid(uuid(row.try_get("user_id").map_err(fail)?)?),
        kind: SessionKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("session kind {kind:?}")))?,
        secret_digest: match digest {
            Some(bytes) => {
                Some(TokenDigest::from_slice(&bytes).ok_or_else(|| StoreError::Corrupt("digest length".into()))?)
            }
            None => None,
        },
        refresh_counter: u64::try_from(row.try_get::<i64, _>("refresh_counter").map_err(fail)?)
            .map_err(|_| StoreError::Corrupt("negative refresh counter".into()))?,
        rotated_at: optional_time("rotated_at")?,
        created_at: from_micros(row.try_get("created_at").map_err(fail)?)?,
        last_seen_at: from_micros(row.try_get("last_seen_at").map_err(fail)?)?,
        absolute_expires_at: from_micros(row.try_get("absolute_expires_at").map_err(fail)?)?,
        idle_timeout: Duration::microseconds(row.try_get("idle_timeout_us").map_err(fail)?),
        client: ClientInfo {
            user_agent: row.try_get("user_agent").map_err(fail)?,
            ip: row.try_get("ip").map_err(fail)?,
        },
        revoked_at: optional_time("revoked_at")?,
        app: app_from(row)?,
    })
}

/// The app part of a session row: all three columns or none.
fn app_from(row: &AnyRow) -> Result<Option<AppSession>, StoreError> {
    let client: Option<String> = row.try_get("client_id").map_err(fail)?;
    let sso: Option<String> = row.try_get("sso_session_id").map_err(fail)?;
    let scope: Option<String> = row.try_get("scope").map_err(fail)?;
    let (Some(client), Some(sso), Some(scope)) = (client, sso, scope) else {
        return Ok(None);
    };
    Ok(Some(AppSession {
        client_id: ClientId::parse(&client).ok_or_else(|| StoreError::Corrupt("session's client id".into()))?,
        sso_session: SessionId::from_uuid(uuid(&sso)?),
        scopes: scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
    }))
}

fn revocation_from(row: &AnyRow) -> Result<Revocation, StoreError> {
    let kind: String = row.try_get("kind").map_err(fail)?;
    Ok(Revocation {
        cursor: row.try_get("position").map_err(fail)?,
        session_id: SessionId::from_uuid(uuid(row.try_get("session_id").map_err(fail)?)?),
        kind: SessionKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("session kind {kind:?}")))?,
        revoked_at: from_micros(row.try_get("revoked_at").map_err(fail)?)?,
        until: from_micros(row.try_get("active_until").map_err(fail)?)?,
    })
}

fn key_from(row: &AnyRow) -> Result<StoredKey, StoreError> {
    Ok(StoredKey {
        kid: row.try_get("kid").map_err(fail)?,
        alg: row.try_get("alg").map_err(fail)?,
        material: row.try_get("material").map_err(fail)?,
        created_at: from_micros(row.try_get("created_at").map_err(fail)?)?,
        retired_at: row.try_get::<Option<i64>, _>("retired_at").map_err(fail)?.map(from_micros).transpose()?,
    })
}

#[async_trait]
impl AccountStore for SqlStore {
    async fn create(&self, account: &Account) -> Result<CreateAccount, StoreError> {
        let sql = self.sql(
            "INSERT INTO accounts (id, username, password_hash, created_at, disabled, skeleton) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        );
        // Either unique index refuses it: the name itself, or its confusable skeleton.
        let inserted = sqlx::query(&sql)
            .bind(account.id.to_string())
            .bind(account.username.as_str().to_owned())
            .bind(account.password_hash.as_str().to_owned())
            .bind(micros(account.created_at))
            .bind(i64::from(account.disabled))
            .bind(account.username.skeleton())
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(if inserted.rows_affected() == 1 { CreateAccount::Created } else { CreateAccount::UsernameTaken })
    }

    async fn by_username(&self, username: &Username) -> Result<Option<Account>, StoreError> {
        self.one("SELECT * FROM accounts WHERE username = ?", username.as_str().to_owned(), account_from).await
    }

    async fn by_id(&self, id: UserId) -> Result<Option<Account>, StoreError> {
        self.one("SELECT * FROM accounts WHERE id = ?", id.to_string(), account_from).await
    }

    async fn list(&self) -> Result<Vec<Account>, StoreError> {
        let rows = sqlx::query("SELECT * FROM accounts ORDER BY created_at, username")
            .fetch_all(&self.pool)
            .await
            .map_err(fail)?;
        rows.iter().map(account_from).collect()
    }

    async fn set_password_hash(&self, id: UserId, hash: &PasswordHash) -> Result<(), StoreError> {
        sqlx::query(&self.sql("UPDATE accounts SET password_hash = ? WHERE id = ?"))
            .bind(hash.as_str().to_owned())
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn set_disabled(&self, id: UserId, disabled: bool) -> Result<bool, StoreError> {
        let updated = sqlx::query(&self.sql("UPDATE accounts SET disabled = ? WHERE id = ?"))
            .bind(i64::from(disabled))
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(updated.rows_affected() == 1)
    }
}

/// The SQL condition for "live at ?now" (binds `now` twice).
const LIVE: &str = "revoked_at IS NULL AND absolute_expires_at > ? AND last_seen_at + idle_timeout_us > ?";

/// The key of PostgreSQL's transaction-scoped advisory lock that serialises revocation-log
/// writers (any constant unique to latchkey).
const REVOCATION_LOG_LOCK: i64 = 0x6c61_7463_686b_6579; // "latchkey"

#[async_trait]
impl SessionStore for SqlStore {
    async fn insert(&self, session: &Session) -> Result<(), StoreError> {
        let sql = self.sql(format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ));
        let app = session.app.as_ref();
        sqlx::query(&sql)
            .bind(session.id.to_string())
            .bind(session.user_id.to_string())
            .bind(session.kind.as_str())
            .bind(session.secret_digest.map(|d| d.as_bytes().to_vec()))
            .bind(i64::try_from(session.refresh_counter).unwrap_or(i64::MAX))
            .bind(session.rotated_at.map(micros))
            .bind(micros(session.created_at))
            .bind(micros(session.last_seen_at))
            .bind(micros(session.absolute_expires_at))
            .bind(i64::try_from(session.idle_timeout.whole_microseconds()).unwrap_or(i64::MAX))
            .bind(session.client.user_agent.clone())
            .bind(session.client.ip.clone())
            .bind(session.revoked_at.map(micros))
            .bind(app.map(|app| app.client_id.to_string()))
            .bind(app.map(|app| app.sso_session.to_string()))
            .bind(app.map(AppSession::scope))
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn get(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.one(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?"), id.to_string(), session_from).await
    }

    async fn get_with_data(&self, id: SessionId) -> Result<Option<(Session, StoredData)>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS}, session_data.version AS data_version, session_data.data AS data \
             FROM sessions LEFT JOIN session_data ON session_data.session_id = sessions.id WHERE sessions.id = ?"
        );
        self.one(&sql, id.to_string(), |row| {
            let session = session_from(row)?;
            let version: Option<i64> = row.try_get("data_version").map_err(fail)?;
            let json: Option<String> = row.try_get("data").map_err(fail)?;
            let data = match (version, json) {
                (Some(version), Some(json)) => StoredData {
                    version: u64::try_from(version).map_err(|_| StoreError::Corrupt("session data version".into()))?,
                    json,
                },
                _ => StoredData::empty(),
            };
            Ok((session, data))
        })
        .await
    }

    async fn write_data(&self, id: SessionId, expected: u64, json: &str) -> Result<DataWrite, StoreError> {
        // On PostgreSQL the session's row is share-locked, so a write that races a revocation
        // waits for it and then finds the session revoked: no data is written after its
        // session ended. SQLite has one writer at a time, so nothing can interleave there.
        let unrevoked = match self.backend {
            Backend::Postgres => {
                "EXISTS (SELECT 1 FROM sessions WHERE sessions.id = ? AND sessions.revoked_at IS NULL FOR SHARE)"
            }
            Backend::Sqlite => "EXISTS (SELECT 1 FROM sessions WHERE sessions.id = ? AND sessions.revoked_at IS NULL)",
        };
        let id = id.to_string();
        let written = if expected == 0 {
            let sql = self.sql(format!(
                "INSERT INTO session_data (session_id, version, data) SELECT ?, 1, ? WHERE {unrevoked} \
                 ON CONFLICT (session_id) DO NOTHING"
            ));
            sqlx::query(&sql).bind(id.clone()).bind(json.to_owned()).bind(id).execute(&self.pool).await
        } else {
            let sql = self.sql(format!(
                "UPDATE session_data SET version = version + 1, data = ? WHERE session_id = ? AND version = ? AND {unrevoked}"
            ));
            sqlx::query(&sql)
                .bind(json.to_owned())
                .bind(id.clone())
                .bind(i64::try_from(expected).unwrap_or(i64::MAX))
                .bind(id)
                .execute(&self.pool)
                .await
        };
        Ok(if written.map_err(fail)?.rows_affected() == 1 { DataWrite::Written } else { DataWrite::Lost })
    }

    async fn touch(&self, id: SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query(&self.sql("UPDATE sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?"))
            .bind(micros(at))
            .bind(id.to_string())
            .bind(micros(at))
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn rotate(&self, id: SessionId, expected: u64, at: OffsetDateTime) -> Result<Rotation, StoreError> {
        let sql = self.sql(
            "UPDATE sessions SET refresh_counter = refresh_counter + 1, rotated_at = ?, last_seen_at = ? \
             WHERE id = ? AND refresh_counter = ? AND revoked_at IS NULL",
        );
        let updated = sqlx::query(&sql)
            .bind(micros(at))
            .bind(micros(at))
            .bind(id.to_string())
            .bind(i64::try_from(expected).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(if updated.rows_affected() == 1 { Rotation::Rotated } else { Rotation::Lost })
    }

    async fn revoke(
        &self,
        scope: RevokeScope,
        at: OffsetDateTime,
        until: &(dyn Fn(SessionKind) -> OffsetDateTime + Send + Sync),
    ) -> Result<Vec<Revocation>, StoreError> {
        // A session's end is also the end of the app sessions under it (single sign-on); the
        // session kept by "all but this one" keeps its apps.
        let (filter, binds) = match scope {
            RevokeScope::One(id) => ("(id = ? OR sso_session_id = ?)", vec![id.to_string(), id.to_string()]),
            RevokeScope::OneOf { user, session } => (
                "user_id = ? AND (id = ? OR sso_session_id = ?)",
                vec![user.to_string(), session.to_string(), session.to_string()],
            ),
            RevokeScope::AllOf(user) => ("user_id = ?", vec![user.to_string()]),
            RevokeScope::UnderSignIn { user, sign_in } => {
                ("user_id = ? AND sso_session_id = ?", vec![user.to_string(), sign_in.to_string()])
            }
            RevokeScope::AllOfExcept(user, keep) => (
                "user_id = ? AND id <> ? AND (sso_session_id IS NULL OR sso_session_id <> ?)",
                vec![user.to_string(), keep.to_string(), keep.to_string()],
            ),
        };
        let now = micros(at);
        let mut tx = self.pool.begin().await.map_err(fail)?;
        // On SQLite the UPDATE below takes the single write lock at once (it comes before any
        // read, so the lock is never upgraded, which WAL answers with SQLITE_BUSY).
        self.lock_log(&mut tx).await?;
        let sql = self.sql(format!("UPDATE sessions SET revoked_at = ? WHERE {LIVE} AND {filter} RETURNING id, kind"));
        let mut query = sqlx::query(&sql).bind(now).bind(now).bind(now);
        for value in &binds {
            query = query.bind(value.clone());
        }
        let rows = query.fetch_all(&mut *tx).await.map_err(fail)?;
        let mut matched = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id").map_err(fail)?;
            let kind: String = row.try_get("kind").map_err(fail)?;
            let kind =
                SessionKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("session kind {kind:?}")))?;
            matched.push((SessionId::from_uuid(uuid(&id)?), kind, until(kind)));
        }
        // The data ends with its session (a session revoked at this very microsecond earlier has
        // none left to drop).
        if !matched.is_empty() {
            let sql = self.sql(format!(
                "DELETE FROM session_data WHERE session_id IN (SELECT id FROM sessions WHERE revoked_at = ? AND {filter})"
            ));
            let mut query = sqlx::query(&sql).bind(now);
            for value in binds {
                query = query.bind(value);
            }
            query.execute(&mut *tx).await.map_err(fail)?;
        }
        let revoked = self.append_to_log(&mut tx, &matched, at).await?;
        if !revoked.is_empty() {
            self.announce_change(&mut tx).await?;
        }
        tx.commit().await.map_err(fail)?;
        Ok(revoked)
    }

    async fn list_live(&self, user: UserId, now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
        let now = micros(now);
        let sql = self.sql(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ? AND {LIVE} ORDER BY created_at DESC, id"
        ));
        let rows =
            sqlx::query(&sql).bind(user.to_string()).bind(now).bind(now).fetch_all(&self.pool).await.map_err(fail)?;
        rows.iter().map(session_from).collect()
    }

    async fn count_live_of(&self, user: UserId, now: OffsetDateTime) -> Result<u64, StoreError> {
        let now = micros(now);
        let sql = self.sql(format!("SELECT count(*) FROM sessions WHERE user_id = ? AND {LIVE}"));
        let count: i64 = sqlx::query_scalar(&sql)
            .bind(user.to_string())
            .bind(now)
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(fail)?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    async fn count_live(&self, now: OffsetDateTime) -> Result<Option<u64>, StoreError> {
        let now = micros(now);
        let sql = self.sql(format!("SELECT count(*) FROM sessions WHERE {LIVE}"));
        let count: i64 = sqlx::query_scalar(&sql).bind(now).bind(now).fetch_one(&self.pool).await.map_err(fail)?;
        Ok(Some(u64::try_from(count).unwrap_or_default()))
    }

    async fn purge(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let before = micros(before);
        let sql = self.sql(
            "DELETE FROM sessions WHERE absolute_expires_at < ? OR last_seen_at + idle_timeout_us < ? OR revoked_at < ?",
        );
        let sessions =
            sqlx::query(&sql).bind(before).bind(before).bind(before).execute(&self.pool).await.map_err(fail)?;
        // Keep the newest log entry so the position never goes backwards.
        let sql = self.sql(
            "DELETE FROM revocations WHERE active_until < ? AND position < (SELECT max(position) FROM revocations)",
        );
        let log = sqlx::query(&sql).bind(before).execute(&self.pool).await.map_err(fail)?;
        Ok(sessions.rows_affected() + log.rows_affected())
    }
}

#[async_trait]
impl RevocationLog for SqlStore {
    async fn append(
        &self,
        revoked: &[(SessionId, SessionKind, OffsetDateTime)],
        at: OffsetDateTime,
    ) -> Result<Vec<Revocation>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(fail)?;
        self.lock_log(&mut tx).await?;
        let entries = self.append_to_log(&mut tx, revoked, at).await?;
        if !entries.is_empty() {
            self.announce_change(&mut tx).await?;
        }
        tx.commit().await.map_err(fail)?;
        Ok(entries)
    }

    async fn after(&self, cursor: i64, now: OffsetDateTime) -> Result<Vec<Revocation>, StoreError> {
        let sql = self.sql("SELECT * FROM revocations WHERE position > ? AND active_until > ? ORDER BY position");
        let rows = sqlx::query(&sql).bind(cursor).bind(micros(now)).fetch_all(&self.pool).await.map_err(fail)?;
        rows.iter().map(revocation_from).collect()
    }

    async fn latest(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM revocations")
            .fetch_one(&self.pool)
            .await
            .map_err(fail)
    }
}

fn audit_event_from(row: &AnyRow) -> Result<AuditEvent, StoreError> {
    let kind: String = row.try_get("kind").map_err(fail)?;
    let optional_uuid = |column: &str| -> Result<Option<Uuid>, StoreError> {
        row.try_get::<Option<String>, _>(column).map_err(fail)?.as_deref().map(uuid).transpose()
    };
    Ok(AuditEvent {
        at: from_micros(row.try_get("at").map_err(fail)?)?,
        kind: AuditKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("audit kind {kind:?}")))?,
        user_id: optional_uuid("user_id")?.map(UserId::from_uuid),
        username: row.try_get::<Option<String>, _>("username").map_err(fail)?.map(Username::from_trusted),
        session_id: optional_uuid("session_id")?.map(SessionId::from_uuid),
        ip: row.try_get("ip").map_err(fail)?,
        detail: row.try_get("detail").map_err(fail)?,
    })
}

#[async_trait]
impl AuditLog for SqlStore {
    async fn record(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let sql = self.sql(
            "INSERT INTO audit_events (at, kind, user_id, username, session_id, ip, detail) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        );
        sqlx::query(&sql)
            .bind(micros(event.at))
            .bind(event.kind.as_str())
            .bind(event.user_id.map(|id| id.to_string()))
            .bind(event.username.as_ref().map(|name| name.as_str().to_owned()))
            .bind(event.session_id.map(|id| id.to_string()))
            .bind(event.ip.clone())
            .bind(event.detail.clone())
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        let mut conditions = Vec::new();
        let mut texts = Vec::new();
        let mut times = Vec::new();
        if let Some(user) = filter.user {
            conditions.push("user_id = ?");
            texts.push(user.to_string());
        }
        if let Some(kind) = filter.kind {
            conditions.push("kind = ?");
            texts.push(kind.as_str().to_owned());
        }
        if let Some(since) = filter.since {
            conditions.push("at >= ?");
            times.push(micros(since));
        }
        if let Some(until) = filter.until {
            conditions.push("at < ?");
            times.push(micros(until));
        }
        let mut text = String::from("SELECT * FROM audit_events");
        if !conditions.is_empty() {
            text.push_str(" WHERE ");
            text.push_str(&conditions.join(" AND "));
        }
        text.push_str(" ORDER BY at DESC, position DESC LIMIT ?");
        let sql = self.sql(text);
        // Text conditions come first in the statement, times after: bind in the same order.
        let mut query = sqlx::query(&sql);
        for value in texts {
            query = query.bind(value);
        }
        for value in times {
            query = query.bind(value);
        }
        let rows = query.bind(i64::from(filter.limit)).fetch_all(&self.pool).await.map_err(fail)?;
        rows.iter().map(audit_event_from).collect()
    }
}

#[async_trait]
impl KeyStore for SqlStore {
    async fn list(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM keys ORDER BY created_at, kid").fetch_all(&self.pool).await.map_err(fail)?;
        rows.iter().map(key_from).collect()
    }

    async fn insert_active(&self, key: &StoredKey, retire_others_at: OffsetDateTime) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(fail)?;
        sqlx::query(&self.sql("UPDATE keys SET retired_at = ? WHERE alg = ? AND retired_at IS NULL"))
            .bind(micros(retire_others_at))
            .bind(key.alg.clone())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        self.insert_key(&mut tx, key).await?;
        self.announce_change(&mut tx).await?;
        tx.commit().await.map_err(fail)
    }

    async fn schedule_rotation(&self, key: &StoredKey, due: OffsetDateTime) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(fail)?;
        // The row lock this takes makes a concurrent scheduler wait, then find nothing to retire.
        let retired = sqlx::query(
            &self.sql("UPDATE keys SET retired_at = ? WHERE alg = ? AND retired_at IS NULL AND created_at <= ?"),
        )
        .bind(micros(key.created_at))
        .bind(key.alg.clone())
        .bind(micros(due))
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        if retired.rows_affected() != 1 {
            tx.rollback().await.map_err(fail)?;
            return Ok(false);
        }
        self.insert_key(&mut tx, key).await?;
        self.announce_change(&mut tx).await?;
        tx.commit().await.map_err(fail)?;
        Ok(true)
    }

    async fn replace_material(&self, kid: &str, material: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(fail)?;
        let updated = sqlx::query(&self.sql("UPDATE keys SET material = ? WHERE kid = ?"))
            .bind(material.to_owned())
            .bind(kid.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        self.announce_change(&mut tx).await?;
        tx.commit().await.map_err(fail)?;
        Ok(updated.rows_affected() == 1)
    }

    async fn insert_if_absent(&self, key: &StoredKey) -> Result<bool, StoreError> {
        // The partial unique index (one unretired key per algorithm) makes this atomic even
        // when several instances start at once.
        let sql = self.sql(
            "INSERT INTO keys (kid, alg, material, created_at, retired_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        );
        let inserted = sqlx::query(&sql)
            .bind(key.kid.clone())
            .bind(key.alg.clone())
            .bind(key.material.clone())
            .bind(micros(key.created_at))
            .bind(key.retired_at.map(micros))
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn delete_retired_before(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let deleted = sqlx::query(&self.sql("DELETE FROM keys WHERE retired_at IS NOT NULL AND retired_at < ?"))
            .bind(micros(before))
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(deleted.rows_affected())
    }
}

#[async_trait]
impl StoreHealth for SqlStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(fail)?;
        Ok(())
    }

    fn operations(&self) -> Vec<(&'static str, u64)> {
        let name = match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        vec![(name, self.operations.load(Ordering::Relaxed))]
    }
}

#[cfg(test)]
mod durability_tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_syncs_every_commit_so_an_acknowledged_write_survives_a_power_loss() {
        let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("tempdir: {err}"));
        let store = SqlStore::open_sqlite_file(&dir.path().join("durable.db"))
            .await
            .unwrap_or_else(|err| panic!("open: {err}"));
        // Every pooled connection, not only the first: each is set up by `after_connect`.
        let mut connections = Vec::new();
        for _ in 0..3 {
            connections.push(store.pool.acquire().await.unwrap_or_else(|err| panic!("acquire: {err}")));
        }
        for connection in &mut connections {
            let (level,): (i64,) = sqlx::query_as("PRAGMA synchronous")
                .fetch_one(&mut **connection)
                .await
                .unwrap_or_else(|err| panic!("pragma: {err}"));
            assert_eq!(level, 2, "synchronous = FULL");
        }
    }
}
