//! Server state: what one session of each kind costs the server in the embedded store,
//! measured as the difference that `n` logins of one kind make. (Its share of latchkey's
//! memory, and the other stores at larger sizes, are still to come.)

use std::path::Path;
use std::time::Instant;

use reqwest::StatusCode;

use super::chart::BarChart;
use super::local::{CHEAP_HASHING, LocalServer, expect};
use super::report::{Assertion, Section, Verdict};
use super::{CompareError, Effort, progress};

/// The embedded store's size in bytes: its pages, as a reader sees them (the write-ahead log
/// included), whatever the files' sizes on disk (SQLite reuses its log and grows the database
/// file in steps).
async fn store_bytes(data: &Path) -> Result<u64, CompareError> {
    use sqlx::ConnectOptions;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(data.join("latchkey.db")).read_only(true);
    let mut connection =
        options.connect().await.map_err(|err| CompareError::Run(format!("reading the store: {err}")))?;
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&mut connection)
        .await
        .map_err(|err| CompareError::Run(format!("reading the store: {err}")))?;
    let size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut connection)
        .await
        .map_err(|err| CompareError::Run(format!("reading the store: {err}")))?;
    Ok(u64::try_from(pages * size).unwrap_or_default())
}

/// Sessions per user: many users with a few devices each, as in life (a login lists its user's
/// sessions for the per-user cap, so one user with every session would measure that instead).
const SESSIONS_PER_USER: usize = 20;

/// The users the measurement logs in as.
fn users(n: usize) -> Vec<String> {
    (0..n.div_ceil(SESSIONS_PER_USER)).map(|index| format!("state{index}")).collect()
}

/// `n` logins of `kind` (`cookie` or `token`) spread over the users, each followed by a check
/// of its credential (`GET /v1/me`), which puts the session in latchkey's caches.
async fn log_in_and_check(server: &LocalServer, kind: &str, n: usize) -> Result<(), CompareError> {
    let users = users(n);
    for index in 0..n {
        let user = &users[index % users.len()];
        let (header, value) = if kind == "cookie" {
            ("cookie", server.cookie_login(user).await?.0)
        } else {
            let tokens = server.token_login(user).await?;
            ("authorization", format!("Bearer {}", tokens["access_token"].as_str().unwrap_or_default()))
        };
        expect(server.me_with(header, &value).await?, StatusCode::OK, "a check")?;
    }
    Ok(())
}

pub(crate) async fn measure(binary: &Path, effort: Effort, started: Instant) -> Result<Section, CompareError> {
    let n = effort.sessions;
    let [memory, iterations] = CHEAP_HASHING;
    let settings = [memory, iterations];

    // On disk: the store's files after a clean stop, before and after n logins of each kind.
    let data = std::env::temp_dir().join(format!("latchkey-compare-state-{}", std::process::id()));
    let on_disk = async {
        let server = LocalServer::start_in(binary, &settings, &data)?;
        for user in users(n) {
            server.sign_up(&user).await?;
        }
        server.stop()?;
        let mut sizes = vec![store_bytes(&data).await?];
        for kind in ["cookie", "token"] {
            progress(started, &format!("  {n} {kind} sessions into the embedded store"));
            let server = LocalServer::start_in(binary, &settings, &data)?;
            log_in_and_check(&server, kind, n).await?;
            server.stop()?;
            sizes.push(store_bytes(&data).await?);
        }
        Ok::<_, CompareError>(sizes)
    }
    .await;
    let _ = std::fs::remove_dir_all(&data);
    let sizes = on_disk?;

    let per = |values: &[u64], index: usize| (values[index + 1].saturating_sub(values[index])) as f64 / n as f64;
    let (disk_cookie, disk_token) = (per(&sizes, 0), per(&sizes, 1));
    let table = vec![
        ["store", "bytes per cookie session", "bytes per token session", "sessions of each kind"]
            .map(str::to_owned)
            .to_vec(),
        vec![
            "the embedded store (SQLite pages, after a clean stop)".into(),
            format!("{disk_cookie:.0}"),
            format!("{disk_token:.0}"),
            n.to_string(),
        ],
    ];
    Ok(Section {
        title: "Server state".into(),
        method: format!(
            "{n} logins of each kind by {} users on the embedded store (SQLite), each credential checked once \
             (`GET /v1/me`): the store's pages after a clean stop, before and after the logins of each kind. A \
             login's audit record is part of what it costs. Still to come (issue 15): latchkey's memory per \
             session, PostgreSQL and Redis, and 100k and 1M sessions.",
            users(n).len()
        ),
        table,
        charts: vec![BarChart {
            file: "state.svg".into(),
            title: "What one session costs the server".into(),
            unit: "bytes per session".into(),
            bars: vec![("cookie session, on disk".into(), disk_cookie), ("token session, on disk".into(), disk_token)],
        }],
        assertions: vec![
            Assertion {
                claim:
                    "\"서버 부하: 높음 (사용자 수만큼 메모리 점유)\" (sessions load the server: memory for every user)"
                        .into(),
                figure: format!(
                    "a cookie session took {disk_cookie:.0} B in the embedded store (with its login's audit record)"
                ),
                verdict: Verdict::Holds,
            },
            Assertion {
                claim: "\"확장성 높음 (서버 stateless)\" (tokens scale: the server keeps no state)".into(),
                figure: format!(
                    "a revocable token session kept {disk_token:.0} B in the embedded store (its refresh rotation, \
                     with its login's audit record); only a bare JWT, which cannot be revoked (see Revocation), keeps \
                     nothing"
                ),
                verdict: Verdict::DoesNotHold,
            },
        ],
    })
}
