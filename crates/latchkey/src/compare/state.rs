//! Server state: what one session of each kind costs the server — in each store (the embedded
//! SQLite, and PostgreSQL and Redis when the comparison is given them) and in latchkey's own
//! memory — measured as the difference that `n` logins of one kind make, for each size asked.

use std::path::Path;
use std::time::Instant;

use futures_util::StreamExt;
use reqwest::StatusCode;

use super::chart::BarChart;
use super::local::{CHEAP_HASHING, LocalServer, expect};
use super::report::{Assertion, Section, Verdict};
use super::stores::{ScratchDatabase, ScratchPrefix, SharedStores, resident_bytes};
use super::wire::WireFigures;
use super::{CompareError, Effort, progress};

/// A size in bytes that `query` reads from the embedded store in `data`.
async fn embedded_size(data: &Path, query: &str) -> Result<u64, CompareError> {
    use sqlx::ConnectOptions;
    let failed = |err: sqlx::Error| CompareError::Run(format!("reading the store: {err}"));
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(data.join("latchkey.db")).read_only(true);
    let mut connection = options.connect().await.map_err(failed)?;
    let bytes: i64 = sqlx::query_scalar(query).fetch_one(&mut connection).await.map_err(failed)?;
    Ok(u64::try_from(bytes).unwrap_or_default())
}

/// The size of the embedded store's revocation log (the denylist's durable home): its table's
/// and index's pages (SQLite's `dbstat`).
async fn embedded_revocation_log_bytes(data: &Path) -> Result<u64, CompareError> {
    embedded_size(
        data,
        "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN ('revocations', 'revocations_by_active_until')",
    )
    .await
}

/// The embedded store's size in bytes: its pages in use (free pages left out), as a reader sees
/// them (the write-ahead log included), whatever the files' sizes on disk (SQLite reuses its
/// log and grows the database file in steps).
async fn embedded_bytes(data: &Path) -> Result<u64, CompareError> {
    embedded_size(
        data,
        "SELECT (page_count - freelist_count) * page_size FROM pragma_page_count, pragma_freelist_count, pragma_page_size",
    )
    .await
}

/// Sessions per user: many users with a few devices each, as in life (a login lists its user's
/// sessions for the per-user cap, so one user with every session would measure that instead).
const SESSIONS_PER_USER: usize = 20;

/// Logins in flight at once while filling a store.
const CONCURRENT_LOGINS: usize = 8;

/// The users named `stem…` who hold `n` sessions.
fn users(stem: &str, n: usize) -> Vec<String> {
    (0..n.div_ceil(SESSIONS_PER_USER)).map(|index| format!("{stem}{index}")).collect()
}

/// `n` logins of `kind` (`cookie` or `token`) spread over the users `stem…`, each followed by a
/// check of its credential (`GET /v1/me`), which puts the session in latchkey's caches; a
/// credential of each user (the header and its value).
async fn log_in_and_check(
    server: &LocalServer,
    kind: &str,
    stem: &str,
    n: usize,
) -> Result<Vec<(&'static str, String)>, CompareError> {
    let users = users(stem, n);
    let mut credentials = Vec::with_capacity(users.len());
    let count = users.len();
    let logins = futures_util::stream::iter(0..n).map(|index| {
        let user = users[index % count].clone();
        async move {
            let (header, value) = if kind == "cookie" {
                ("cookie", server.cookie_login(&user).await?.0)
            } else {
                let tokens = server.token_login(&user).await?;
                ("authorization", format!("Bearer {}", tokens["access_token"].as_str().unwrap_or_default()))
            };
            expect(server.me_with(header, &value).await?, StatusCode::OK, "a check")?;
            Ok::<_, CompareError>((index < count).then_some((header, value)))
        }
    });
    let mut logins = logins.buffer_unordered(CONCURRENT_LOGINS);
    while let Some(done) = logins.next().await {
        credentials.extend(done?);
    }
    Ok(credentials)
}

/// Every user of `credentials` logs out everywhere (`POST /v1/logout`, scope `all`).
async fn log_out_everywhere(server: &LocalServer, credentials: &[(&'static str, String)]) -> Result<(), CompareError> {
    let logouts = futures_util::stream::iter(credentials).map(|(header, value)| async move {
        let response = server
            .http
            .post(format!("{}/v1/logout", server.base))
            .header(*header, value)
            .json(&serde_json::json!({ "scope": "all" }))
            .send()
            .await?;
        expect(response.status(), StatusCode::NO_CONTENT, "log out everywhere")
    });
    let mut logouts = logouts.buffer_unordered(CONCURRENT_LOGINS);
    while let Some(done) = logouts.next().await {
        done?;
    }
    Ok(())
}

/// Where sessions are kept in one measured deployment, and how its size is read.
enum Store {
    Embedded(std::path::PathBuf),
    Postgres(ScratchDatabase),
    Redis(ScratchPrefix),
}

impl Store {
    fn label(&self) -> &'static str {
        Self::label_of(self)
    }

    fn label_of(store: &Self) -> &'static str {
        match store {
            Self::Embedded(_) => "the embedded store (SQLite pages in use)",
            Self::Postgres(_) => "PostgreSQL (`pg_database_size`)",
            Self::Redis(_) => "Redis (`MEMORY USAGE` of the session keys)",
        }
    }

    async fn bytes(&self) -> Result<u64, CompareError> {
        match self {
            Self::Embedded(data) => embedded_bytes(data).await,
            Self::Postgres(database) => database.bytes().await,
            Self::Redis(prefix) => prefix.bytes().await,
        }
    }

    /// The size of the SQL store's revocation log, where `server` keeps it.
    async fn revocation_log_bytes(&self, server: &LocalServer) -> Result<u64, CompareError> {
        match self {
            Self::Embedded(data) => embedded_revocation_log_bytes(data).await,
            Self::Postgres(database) => database.revocation_log_bytes().await,
            // With Redis, the log stays in the instance's SQL store: here its embedded one.
            Self::Redis(_) => embedded_revocation_log_bytes(server.data_dir()).await,
        }
    }

    async fn remove(self) -> Result<(), CompareError> {
        match self {
            Self::Embedded(data) => Ok(std::fs::remove_dir_all(data)?),
            Self::Postgres(database) => database.drop_now().await,
            Self::Redis(prefix) => prefix.clear().await,
        }
    }
}

/// What a session costs the shared stores at the largest size measured, per kind (cookie,
/// token), where they were measured: the capacity model's inputs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StateFigures {
    /// Redis memory per session.
    pub(crate) redis: Option<(f64, f64)>,
    /// PostgreSQL bytes per session.
    pub(crate) postgres: Option<(f64, f64)>,
}

/// One row: a store at one size.
struct Measured {
    store: &'static str,
    sessions: usize,
    store_cookie: f64,
    store_token: f64,
    memory_cookie: f64,
    memory_token: f64,
    denylist_token: f64,
}

/// Fills one deployment with `n` sessions of each kind and reads what each took.
async fn measure_store(
    binary: &Path,
    store: &Store,
    settings: &[(&str, &str)],
    n: usize,
    started: Instant,
) -> Result<Measured, CompareError> {
    let server = match store {
        Store::Embedded(data) => LocalServer::start_in(binary, settings, data)?,
        _ => LocalServer::start(binary, settings)?,
    };
    // Logins of each kind before the measurement (a tenth as many, by other users), so that
    // pools, caches and the allocator's arenas exist before it starts.
    let warm = (n / 10).max(CONCURRENT_LOGINS);
    for (stem, count) in [("cookie", n), ("token", n), ("warm-cookie", warm), ("warm-token", warm)] {
        for user in users(stem, count) {
            server.sign_up(&user).await?;
        }
    }
    log_in_and_check(&server, "cookie", "warm-cookie", warm).await?;
    log_in_and_check(&server, "token", "warm-token", warm).await?;
    let mut sizes = vec![store.bytes().await?];
    let mut memory = vec![resident_bytes(server.pid())?];
    let mut token_users = Vec::new();
    for kind in ["cookie", "token"] {
        progress(started, &format!("  {n} {kind} sessions into {}", store.label()));
        token_users = log_in_and_check(&server, kind, kind, n).await?;
        sizes.push(store.bytes().await?);
        memory.push(resident_bytes(server.pid())?);
    }
    progress(started, &format!("  the token sessions' users log out everywhere ({})", store.label()));
    let log_before = store.revocation_log_bytes(&server).await?;
    log_out_everywhere(&server, &token_users).await?;
    let log_after = store.revocation_log_bytes(&server).await?;
    server.stop()?;
    let per = |values: &[u64], index: usize| values[index + 1].saturating_sub(values[index]) as f64 / n as f64;
    Ok(Measured {
        store: store.label(),
        sessions: n,
        store_cookie: per(&sizes, 0),
        store_token: per(&sizes, 1),
        memory_cookie: per(&memory, 0),
        memory_token: per(&memory, 1),
        denylist_token: log_after.saturating_sub(log_before) as f64 / n as f64,
    })
}

pub(crate) async fn measure(
    binary: &Path,
    effort: &Effort,
    stores: &SharedStores,
    wire: &WireFigures,
    started: Instant,
) -> Result<(Section, StateFigures), CompareError> {
    let [memory, iterations] = CHEAP_HASHING;
    let mut rows: Vec<Measured> = Vec::new();
    let largest = effort.sessions.iter().copied().max().unwrap_or_default();
    let mut figures = StateFigures::default();
    for &n in &effort.sessions {
        let data = std::env::temp_dir().join(format!("latchkey-compare-state-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&data)?;
        let mut deployments = vec![(Store::Embedded(data), Vec::new())];
        if let Some(admin) = &stores.postgres {
            let database = ScratchDatabase::create(admin, &format!("state{n}")).await?;
            let url = database.url.clone();
            deployments.push((Store::Postgres(database), vec![("LATCHKEY_DATABASE_URL".to_owned(), url)]));
        }
        if let Some(url) = &stores.redis {
            let prefix = ScratchPrefix::new(url, &format!("state{n}")).await?;
            let settings = vec![
                ("LATCHKEY_REDIS_URL".to_owned(), url.clone()),
                ("LATCHKEY_REDIS_PREFIX".to_owned(), prefix.prefix.clone()),
            ];
            deployments.push((Store::Redis(prefix), settings));
        }
        for (store, extra) in deployments {
            let mut settings: Vec<(&str, &str)> = vec![memory, iterations];
            settings.extend(extra.iter().map(|(name, value)| (name.as_str(), value.as_str())));
            let measured = measure_store(binary, &store, &settings, n, started).await;
            let per_kind = measured.as_ref().ok().map(|row| (row.store_cookie, row.store_token));
            if n == largest {
                match store {
                    Store::Postgres(_) => figures.postgres = per_kind,
                    Store::Redis(_) => figures.redis = per_kind,
                    Store::Embedded(_) => {}
                }
            }
            store.remove().await?;
            rows.push(measured?);
        }
    }

    let mut table = vec![
        [
            "store",
            "sessions of each kind",
            "store bytes per cookie session",
            "store bytes per token session",
            "latchkey memory per cookie session (bytes)",
            "latchkey memory per token session (bytes)",
            "revocation log bytes per revoked token session",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for row in &rows {
        table.push(vec![
            row.store.to_owned(),
            row.sessions.to_string(),
            format!("{:.0}", row.store_cookie),
            format!("{:.0}", row.store_token),
            format!("{:.0}", row.memory_cookie),
            format!("{:.0}", row.memory_token),
            format!("{:.0}", row.denylist_token),
        ]);
    }
    let at_largest: Vec<&Measured> = rows.iter().filter(|row| row.sessions == largest).collect();
    let mut bars = Vec::new();
    for row in &at_largest {
        let short = row.store.split(" (").next().unwrap_or(row.store);
        bars.push((format!("cookie, {short}"), row.store_cookie));
        bars.push((format!("token, {short}"), row.store_token));
    }
    let embedded = at_largest.first().ok_or_else(|| CompareError::Run("no store was measured".into()))?;
    let spread = |pick: fn(&Measured) -> f64| {
        let values: Vec<f64> = at_largest.iter().map(|row| pick(row)).collect();
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(0.0, f64::max);
        format!("{low:.0}–{high:.0} B")
    };
    let stores_measured =
        at_largest.iter().map(|row| row.store.split(" (").next().unwrap_or(row.store)).collect::<Vec<_>>().join(", ");
    let not_given = match (&stores.postgres, &stores.redis) {
        (Some(_), Some(_)) => String::new(),
        (None, None) => " PostgreSQL and Redis were not measured: give `--postgres URL` and `--redis URL`.".into(),
        (None, Some(_)) => " PostgreSQL was not measured: give `--postgres URL`.".into(),
        (Some(_), None) => " Redis was not measured: give `--redis URL`.".into(),
    };
    let sizes = effort.sessions.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
    let section = Section {
        title: "Server state".into(),
        method: format!(
            "For each size ({sizes} sessions of each kind), a fresh instance per store: users with \
             {SESSIONS_PER_USER} sessions each log in {CONCURRENT_LOGINS} at a time, first every cookie session, then \
             every token session, each credential checked once (`GET /v1/me`, which puts it in the instance's \
             caches). Each store is read before and after each kind: the embedded store's pages in use, PostgreSQL's \
             database size, Redis's memory for the keys under the run's own prefix (with Redis, accounts, keys and the \
             audit trail stay in the SQL store). A login's audit record is part of what it costs in a SQL store. \
             latchkey's memory is its resident set (VmRSS) before and after; the allocator keeps freed memory, so it \
             is an upper bound and rough at small sizes. Then every token user logs out everywhere, and the SQL \
             store's revocation log (the denylist's durable home: an entry per revoked session, kept until its last \
             access token expires; each instance holds the same entries in memory) is read before and after. Larger sizes: `latchkey compare --sessions \
             10000,100000,1000000` (the embedded store writes each login durably; about 1,000 logins a second \
             here).{not_given}"
        ),
        table,
        charts: vec![BarChart {
            file: "state.svg".into(),
            title: format!("What one session costs its store ({largest} of each kind)"),
            unit: "bytes per session".into(),
            bars,
        }],
        assertions: vec![
            Assertion {
                claim: "\"저장 위치: 서버 (메모리, DB) / 클라이언트 (로컬 스토리지, 쿠키)\" (a session lives on the \
                        server; a token lives with the client)"
                    .into(),
                figure: format!(
                    "a cookie session: {} B at the client, {} at the server (this half holds); a token session: {}–{} B at the client \
                     (its access token) and still {} at the server",
                    wire.cookie,
                    spread(|row| row.store_cookie),
                    wire.smallest_token,
                    wire.largest_token,
                    spread(|row| row.store_token)
                ),
                verdict: Verdict::DoesNotHold,
            },
            Assertion {
                claim:
                    "\"서버 부하: 높음 (사용자 수만큼 메모리 점유)\" (sessions load the server: memory for every user)"
                        .into(),
                figure: format!(
                    "a cookie session took {} in the stores measured ({stores_measured}; in a SQL store with its \
                     login's audit record) and up to {:.0} B of latchkey's memory",
                    spread(|row| row.store_cookie),
                    embedded.memory_cookie
                ),
                verdict: Verdict::Holds,
            },
            Assertion {
                claim: "\"확장성 높음 (서버 stateless)\" (tokens scale: the server keeps no state)".into(),
                figure: format!(
                    "a revocable token session kept {} in the stores measured (its refresh rotation; in a SQL store \
                     with its login's audit record), and a revoked one {} in the revocation log until its access \
                     tokens expire; only a bare JWT, which cannot be revoked (see Revocation), keeps nothing",
                    spread(|row| row.store_token),
                    spread(|row| row.denylist_token)
                ),
                verdict: Verdict::DoesNotHold,
            },
        ],
    };
    Ok((section, figures))
}
