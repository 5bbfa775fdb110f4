//! The SQLite implementation of every store trait.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use latchkey_core::account::{Account, UserId, Username};
use latchkey_core::password::PasswordHash;
use latchkey_core::secret::TokenDigest;
use latchkey_core::session::{ClientInfo, Session, SessionId, SessionKind};
use latchkey_core::store::{
    AccountStore, CreateAccount, KeyStore, Revocation, RevokeScope, Rotation, SessionStore, StoreError, StoreHealth,
    StoredKey, Stores,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Why the SQLite store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// The URL or path is not usable.
    #[error("invalid SQLite location {0:?}")]
    Location(String),
    /// The database could not be opened.
    #[error("cannot open the SQLite database: {0}")]
    Open(#[source] sqlx::Error),
    /// The embedded migrations failed.
    #[error("cannot migrate the SQLite database: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// Every latchkey store on one SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies the migrations.
    pub async fn open_path(path: &Path) -> Result<Self, SqliteError> {
        let options = SqliteConnectOptions::new().filename(path);
        Self::open_with(options).await
    }

    /// Opens a `sqlite://` URL and applies the migrations.
    pub async fn open_url(url: &str) -> Result<Self, SqliteError> {
        let options = SqliteConnectOptions::from_str(url).map_err(|_| SqliteError::Location(url.to_owned()))?;
        Self::open_with(options).await
    }

    async fn open_with(options: SqliteConnectOptions) -> Result<Self, SqliteError> {
        let options = options
            .create_if_missing(true)
            // WAL lets checks read while a login writes; NORMAL is durable across application
            // crashes, which is what a session store needs.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(StdDuration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(StdDuration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(SqliteError::Open)?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await.map_err(SqliteError::Migrate)?;
        Ok(Self { pool })
    }

    /// The row `sql` selects by its one parameter `key`, decoded by `decode`.
    async fn one<K, T>(
        &self,
        sql: &str,
        key: K,
        decode: fn(&SqliteRow) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError>
    where
        K: for<'q> sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Send + 'static,
    {
        sqlx::query(sql).bind(key).fetch_optional(&self.pool).await.map_err(fail)?.as_ref().map(decode).transpose()
    }

    /// This store behind every trait.
    pub fn stores(self) -> Stores {
        let store = Arc::new(self);
        Stores { accounts: store.clone(), sessions: store.clone(), keys: store.clone(), health: store }
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

fn account_from(row: &SqliteRow) -> Result<Account, StoreError> {
    Ok(Account {
        id: UserId::from_uuid(uuid(row.try_get("id").map_err(fail)?)?),
        username: Username::from_trusted(row.try_get("username").map_err(fail)?),
        password_hash: PasswordHash::from_stored(row.try_get("password_hash").map_err(fail)?),
        created_at: from_micros(row.try_get("created_at").map_err(fail)?)?,
        disabled: row.try_get::<i64, _>("disabled").map_err(fail)? != 0,
    })
}

const SESSION_COLUMNS: &str = "id, user_id, kind, secret_digest, refresh_counter, rotated_at, created_at, \
     last_seen_at, absolute_expires_at, idle_timeout_us, user_agent, ip, revoked_at";

fn session_from(row: &SqliteRow) -> Result<Session, StoreError> {
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
    })
}

fn revocation_from(row: &SqliteRow) -> Result<Revocation, StoreError> {
    let kind: String = row.try_get("kind").map_err(fail)?;
    Ok(Revocation {
        cursor: row.try_get("cursor").map_err(fail)?,
        session_id: SessionId::from_uuid(uuid(row.try_get("session_id").map_err(fail)?)?),
        kind: SessionKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("session kind {kind:?}")))?,
        revoked_at: from_micros(row.try_get("revoked_at").map_err(fail)?)?,
        until: from_micros(row.try_get("until").map_err(fail)?)?,
    })
}

fn key_from(row: &SqliteRow) -> Result<StoredKey, StoreError> {
    Ok(StoredKey {
        kid: row.try_get("kid").map_err(fail)?,
        alg: row.try_get("alg").map_err(fail)?,
        material: row.try_get("material").map_err(fail)?,
        created_at: from_micros(row.try_get("created_at").map_err(fail)?)?,
        retired_at: row.try_get::<Option<i64>, _>("retired_at").map_err(fail)?.map(from_micros).transpose()?,
    })
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create(&self, account: &Account) -> Result<CreateAccount, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO accounts (id, username, password_hash, created_at, disabled) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (username) DO NOTHING",
        )
        .bind(account.id.to_string())
        .bind(account.username.as_str())
        .bind(account.password_hash.as_str())
        .bind(micros(account.created_at))
        .bind(i64::from(account.disabled))
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
        sqlx::query("UPDATE accounts SET password_hash = ? WHERE id = ?")
            .bind(hash.as_str())
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn set_disabled(&self, id: UserId, disabled: bool) -> Result<bool, StoreError> {
        let updated = sqlx::query("UPDATE accounts SET disabled = ? WHERE id = ?")
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

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert(&self, session: &Session) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
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
        .bind(session.client.user_agent.as_deref())
        .bind(session.client.ip.as_deref())
        .bind(session.revoked_at.map(micros))
        .execute(&self.pool)
        .await
        .map_err(fail)?;
        Ok(())
    }

    async fn get(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.one(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?"), id.to_string(), session_from).await
    }

    async fn by_secret(&self, digest: &TokenDigest) -> Result<Option<Session>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE secret_digest = ?");
        self.one(&sql, digest.as_bytes().to_vec(), session_from).await
    }

    async fn touch(&self, id: SessionId, at: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_seen_at = max(last_seen_at, ?) WHERE id = ?")
            .bind(micros(at))
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(())
    }

    async fn rotate(&self, id: SessionId, expected: u64, at: OffsetDateTime) -> Result<Rotation, StoreError> {
        let updated = sqlx::query(
            "UPDATE sessions SET refresh_counter = refresh_counter + 1, rotated_at = ?, last_seen_at = ? \
             WHERE id = ? AND refresh_counter = ? AND revoked_at IS NULL",
        )
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
        let (filter, first, second) = match scope {
            RevokeScope::One(id) => ("id = ?", id.to_string(), None),
            RevokeScope::OneOf { user, session } => {
                ("user_id = ? AND id = ?", user.to_string(), Some(session.to_string()))
            }
            RevokeScope::AllOf(user) => ("user_id = ?", user.to_string(), None),
            RevokeScope::AllOfExcept(user, keep) => {
                ("user_id = ? AND id <> ?", user.to_string(), Some(keep.to_string()))
            }
        };
        let now = micros(at);
        // The UPDATE comes first so the transaction takes SQLite's write lock at once and never
        // has to upgrade a read lock (which WAL mode answers with SQLITE_BUSY).
        let mut tx = self.pool.begin().await.map_err(fail)?;
        let sql = format!("UPDATE sessions SET revoked_at = ? WHERE {LIVE} AND {filter} RETURNING id, kind");
        let mut query = sqlx::query(&sql).bind(now).bind(now).bind(now).bind(first);
        if let Some(second) = second {
            query = query.bind(second);
        }
        let rows = query.fetch_all(&mut *tx).await.map_err(fail)?;
        let mut revoked = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id").map_err(fail)?;
            let kind: String = row.try_get("kind").map_err(fail)?;
            let kind =
                SessionKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("session kind {kind:?}")))?;
            let deadline = until(kind);
            let cursor: i64 = sqlx::query_scalar(
                "INSERT INTO revocations (session_id, kind, revoked_at, until) VALUES (?, ?, ?, ?) RETURNING cursor",
            )
            .bind(&id)
            .bind(kind.as_str())
            .bind(now)
            .bind(micros(deadline))
            .fetch_one(&mut *tx)
            .await
            .map_err(fail)?;
            revoked.push(Revocation {
                cursor,
                session_id: SessionId::from_uuid(uuid(&id)?),
                kind,
                revoked_at: at,
                until: deadline,
            });
        }
        tx.commit().await.map_err(fail)?;
        Ok(revoked)
    }

    async fn list_live(&self, user: UserId, now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
        let now = micros(now);
        let rows = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ? AND {LIVE} ORDER BY created_at DESC, id"
        ))
        .bind(user.to_string())
        .bind(now)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(fail)?;
        rows.iter().map(session_from).collect()
    }

    async fn revocations_after(&self, cursor: i64, now: OffsetDateTime) -> Result<Vec<Revocation>, StoreError> {
        let rows = sqlx::query("SELECT * FROM revocations WHERE cursor > ? AND until > ? ORDER BY cursor")
            .bind(cursor)
            .bind(micros(now))
            .fetch_all(&self.pool)
            .await
            .map_err(fail)?;
        rows.iter().map(revocation_from).collect()
    }

    async fn latest_cursor(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT coalesce(max(cursor), 0) FROM revocations").fetch_one(&self.pool).await.map_err(fail)
    }

    async fn count_live(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let now = micros(now);
        let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM sessions WHERE {LIVE}"))
            .bind(now)
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(fail)?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    async fn purge(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let before = micros(before);
        let sessions = sqlx::query(
            "DELETE FROM sessions WHERE absolute_expires_at < ?1 OR last_seen_at + idle_timeout_us < ?1 OR revoked_at < ?1",
        )
        .bind(before)
        .execute(&self.pool)
        .await
        .map_err(fail)?;
        // Keep the newest log entry so the cursor never goes backwards.
        let log =
            sqlx::query("DELETE FROM revocations WHERE until < ? AND cursor < (SELECT max(cursor) FROM revocations)")
                .bind(before)
                .execute(&self.pool)
                .await
                .map_err(fail)?;
        Ok(sessions.rows_affected() + log.rows_affected())
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn list(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM keys ORDER BY created_at, kid").fetch_all(&self.pool).await.map_err(fail)?;
        rows.iter().map(key_from).collect()
    }

    async fn insert_active(&self, key: &StoredKey, retire_others_at: OffsetDateTime) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(fail)?;
        sqlx::query("UPDATE keys SET retired_at = ? WHERE alg = ? AND retired_at IS NULL")
            .bind(micros(retire_others_at))
            .bind(&key.alg)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        sqlx::query("INSERT INTO keys (kid, alg, material, created_at, retired_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&key.kid)
            .bind(&key.alg)
            .bind(&key.material)
            .bind(micros(key.created_at))
            .bind(key.retired_at.map(micros))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)
    }

    async fn insert_if_absent(&self, key: &StoredKey) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO keys (kid, alg, material, created_at, retired_at) \
             SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM keys WHERE alg = ? AND retired_at IS NULL)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.material)
        .bind(micros(key.created_at))
        .bind(key.retired_at.map(micros))
        .bind(&key.alg)
        .execute(&self.pool)
        .await
        .map_err(fail)?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn delete_retired_before(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM keys WHERE retired_at IS NOT NULL AND retired_at < ?")
            .bind(micros(before))
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        Ok(deleted.rows_affected())
    }
}

#[async_trait]
impl StoreHealth for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(fail)?;
        Ok(())
    }
}
