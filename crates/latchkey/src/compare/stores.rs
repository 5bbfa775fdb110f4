//! The shared stores a scale-out deployment uses, when the comparison is given them: a scratch
//! PostgreSQL database per measurement (created on the given server, dropped after), and a
//! scratch key prefix in the given Redis (its keys deleted after). What they hold is read from
//! the stores themselves: a database's size, the memory of each key, and their own counters of
//! work done (transactions, commands, CPU).

use redis::AsyncCommands;
use sqlx::{Connection, PgConnection};

use super::CompareError;

/// The shared stores the comparison may use (none: the embedded store only).
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedStores {
    /// A PostgreSQL URL whose user may create databases.
    pub(crate) postgres: Option<String>,
    /// A Redis URL.
    pub(crate) redis: Option<String>,
}

fn failed(what: &str) -> impl Fn(&dyn std::fmt::Display) -> CompareError + '_ {
    move |err| CompareError::Run(format!("{what}: {err}"))
}

/// A PostgreSQL database of the comparison's own, dropped by [`ScratchDatabase::drop_now`].
pub(crate) struct ScratchDatabase {
    admin: String,
    name: String,
    /// Its URL.
    pub(crate) url: String,
}

impl ScratchDatabase {
    /// Creates an empty database on the server `admin` names.
    pub(crate) async fn create(admin: &str, purpose: &str) -> Result<Self, CompareError> {
        let name = format!("latchkey_compare_{}_{purpose}", std::process::id());
        let mut connection = PgConnection::connect(admin).await.map_err(|err| failed("PostgreSQL")(&err))?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&mut connection)
            .await
            .map_err(|err| failed("PostgreSQL")(&err))?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await
            .map_err(|err| failed("PostgreSQL")(&err))?;
        let mut url = url::Url::parse(admin).map_err(|err| failed("the PostgreSQL URL")(&err))?;
        url.set_path(&name);
        Ok(Self { admin: admin.to_owned(), name, url: url.to_string() })
    }

    /// A size in bytes that `query` reads from the database.
    async fn size(&self, query: &str) -> Result<u64, CompareError> {
        let mut connection = PgConnection::connect(&self.url).await.map_err(|err| failed("PostgreSQL")(&err))?;
        let size: i64 =
            sqlx::query_scalar(query).fetch_one(&mut connection).await.map_err(|err| failed("PostgreSQL")(&err))?;
        Ok(u64::try_from(size).unwrap_or_default())
    }

    /// Its size: every table, index and TOAST file (`pg_database_size`).
    pub(crate) async fn bytes(&self) -> Result<u64, CompareError> {
        self.size("SELECT pg_database_size(current_database())").await
    }

    /// The size of its revocation log (the denylist's durable home): the table and its indexes.
    pub(crate) async fn revocation_log_bytes(&self) -> Result<u64, CompareError> {
        self.size("SELECT pg_total_relation_size('revocations')").await
    }

    /// Drops it (its connections first).
    pub(crate) async fn drop_now(self) -> Result<(), CompareError> {
        let mut connection = PgConnection::connect(&self.admin).await.map_err(|err| failed("PostgreSQL")(&err))?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .execute(&mut connection)
            .await
            .map_err(|err| failed("PostgreSQL")(&err))?;
        Ok(())
    }
}

/// A key prefix of the comparison's own in a Redis, its keys deleted by
/// [`ScratchPrefix::clear`].
pub(crate) struct ScratchPrefix {
    connection: redis::aio::MultiplexedConnection,
    /// The prefix.
    pub(crate) prefix: String,
}

impl ScratchPrefix {
    /// Connects to `url` and names a prefix no one else uses.
    pub(crate) async fn new(url: &str, purpose: &str) -> Result<Self, CompareError> {
        let client = redis::Client::open(url).map_err(|err| failed("Redis")(&err))?;
        let connection = client.get_multiplexed_async_connection().await.map_err(|err| failed("Redis")(&err))?;
        Ok(Self { connection, prefix: format!("latchkey-compare-{}-{purpose}", std::process::id()) })
    }

    async fn keys(&self) -> Result<Vec<Vec<u8>>, CompareError> {
        let mut connection = self.connection.clone();
        let pattern = format!("{}*", self.prefix);
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut connection)
                .await
                .map_err(|err| failed("Redis")(&err))?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// The memory Redis reports for the prefix's keys (`MEMORY USAGE` of each, summed: the
    /// values, the keys and their allocations).
    pub(crate) async fn bytes(&self) -> Result<u64, CompareError> {
        let mut total = 0;
        let mut connection = self.connection.clone();
        for key in self.keys().await? {
            let usage: Option<u64> = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(&key)
                .arg("SAMPLES")
                .arg(0)
                .query_async(&mut connection)
                .await
                .map_err(|err| failed("Redis")(&err))?;
            total += usage.unwrap_or_default();
        }
        Ok(total)
    }

    /// The CPU time the whole Redis server has used so far (user and system, its main thread
    /// and the rest), in microseconds (`INFO cpu`).
    pub(crate) async fn cpu_micros(&self) -> Result<u64, CompareError> {
        let mut connection = self.connection.clone();
        let cpu: String =
            redis::cmd("INFO").arg("cpu").query_async(&mut connection).await.map_err(|err| failed("Redis")(&err))?;
        let field = |name: &str| {
            cpu.lines()
                .find_map(|line| line.strip_prefix(&format!("{name}:")))
                .and_then(|value| value.trim().parse::<f64>().ok())
                .unwrap_or_default()
        };
        Ok(((field("used_cpu_sys") + field("used_cpu_user")) * 1e6) as u64)
    }

    /// Deletes the prefix's keys.
    pub(crate) async fn clear(&self) -> Result<(), CompareError> {
        let mut connection = self.connection.clone();
        for chunk in self.keys().await?.chunks(500) {
            let _: () = connection.del(chunk).await.map_err(|err| failed("Redis")(&err))?;
        }
        Ok(())
    }
}

/// The resident memory of process `pid` (`VmRSS`), in bytes.
pub(crate) fn resident_bytes(pid: u32) -> Result<u64, CompareError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|err| CompareError::Run(format!("the memory of process {pid}: {err}")))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| CompareError::Run(format!("no VmRSS for process {pid}")))
}
