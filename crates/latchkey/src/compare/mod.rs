//! `latchkey compare`: the background articles' comparison of session login and token login,
//! measured on this machine with this build. It runs latchkey itself (this very binary, on
//! free loopback ports, each with a scratch data directory) in each mode, measures, and writes
//! a Markdown report with SVG charts beside it. Every figure in the report is a measurement of
//! this run; each assertion of the articles gets the figure that tests it and a verdict.
//!
//! Its sections: the data on the wire; the server's state per session in each store and in
//! memory; the load of a check against a bare handler; scale-out on shared PostgreSQL and Redis
//! behind nginx, and a capacity model built from those figures; revocation; the cost of logging
//! in and refreshing; and the attacks with the tests that prove latchkey's defences. PostgreSQL
//! and Redis are measured when the caller names them (`--postgres`, `--redis`).

mod capacity;
mod ceiling;
mod chart;
mod checks;
mod costs;
mod load;
mod local;
mod report;
mod revocation;
mod scale;
mod security;
mod state;
mod stores;
mod wire;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use ceiling::serve_ceiling;
pub use local::{CHEAP_HASHING, LocalServer, PASSWORD, SERVICE_TOKEN};
pub use report::{Report, Section, Verdict};

/// What `latchkey compare` is asked for.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// Small sizes and short runs (for CI): the same sections, rougher figures.
    #[arg(long)]
    pub quick: bool,
    /// Where the report goes (`report.md` and its charts).
    #[arg(long, default_value = "latchkey-comparison")]
    pub out: PathBuf,
    /// Sessions of each kind whose cost to the server is measured, one size or several
    /// (`10000,100000,1000000`) [default: 10000; 300 with --quick].
    #[arg(long, value_delimiter = ',')]
    pub sessions: Vec<usize>,
    /// A PostgreSQL server to measure too (scratch databases are created and dropped on it):
    /// a URL whose user may create databases.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// A Redis server to measure too (keys under a scratch prefix, deleted after).
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
}

/// How much each measurement does: `--quick` or the full run.
#[derive(Debug, Clone)]
pub(crate) struct Effort {
    /// Whether this is `--quick`.
    pub(crate) quick: bool,
    /// Logins timed (and refreshes).
    pub(crate) logins: usize,
    /// Credentials followed through a revocation.
    pub(crate) revocations: usize,
    /// Access-token lifetime while measuring revocation (the JWKS-only verifier waits it out).
    pub(crate) access_ttl: Duration,
    /// Sessions of each kind whose cost to the server is measured, for each size.
    pub(crate) sessions: Vec<usize>,
}

impl Effort {
    fn of(args: &CompareArgs) -> Self {
        let quick = args.quick;
        let sessions = match (&args.sessions[..], quick) {
            ([], true) => vec![300],
            ([], false) => vec![10_000],
            (sizes, _) => sizes.iter().map(|&n| n.max(1)).collect(),
        };
        if quick {
            Self { quick, logins: 8, revocations: 4, access_ttl: Duration::from_secs(6), sessions }
        } else {
            Self { quick, logins: 60, revocations: 30, access_ttl: Duration::from_secs(60), sessions }
        }
    }
}

/// Why the comparison could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A latchkey instance or a request to it failed.
    #[error("{0}")]
    Run(String),
    /// The report could not be written.
    #[error("writing the report: {0}")]
    Io(#[from] std::io::Error),
}

impl From<reqwest::Error> for CompareError {
    fn from(err: reqwest::Error) -> Self {
        Self::Run(format!("a request to latchkey failed: {err}"))
    }
}

/// Progress on standard error: the comparison takes minutes.
pub(crate) fn progress(started: Instant, what: &str) {
    eprintln!("compare [{:>5.1} s] {what}", started.elapsed().as_secs_f64());
}

/// Runs every section and writes the report to `args.out`; the report's path.
pub async fn run(args: &CompareArgs) -> Result<PathBuf, CompareError> {
    let binary = std::env::current_exe()?;
    // Read before any pinning narrows it.
    load::cores();
    let effort = Effort::of(args);
    let stores = stores::SharedStores { postgres: args.postgres.clone(), redis: args.redis.clone() };
    let started = Instant::now();
    std::fs::create_dir_all(&args.out)?;
    let mut report = Report::new(args.quick);
    progress(started, "data on the wire: a server per signing algorithm");
    let (section, wire) = wire::measure(&binary, started).await?;
    report.push(section);
    progress(started, "server state: what a session of each kind costs on disk and in memory");
    let (section, state) = state::measure(&binary, &effort, &stores, &wire, started).await?;
    report.push(section);
    progress(started, "server load: what a check costs for each kind of credential");
    let (section, checks) = checks::measure(&binary, &effort, started).await?;
    report.push(section);
    progress(started, "scalability: 1, 2 and 3 instances on shared PostgreSQL and Redis");
    let (section, scale) = scale::measure(&binary, &effort, &stores, started).await?;
    report.push(section);
    report.push(capacity_model(&state, &checks, scale.as_ref()));
    progress(started, "revocation: log out everywhere, then follow every credential");
    report.push(revocation::measure(&binary, &effort, started).await?);
    progress(started, "login and refresh against their bare cryptography");
    report.push(costs::measure(&binary, &effort, started).await?);
    progress(started, "security: the attacks the articles name, and the tests that prove the defences");
    report.push(security::measure());
    let path = report.write(&args.out, started.elapsed())?;
    progress(started, &format!("report written to {}", path.display()));
    Ok(path)
}

/// The capacity model, where the shared stores were measured; otherwise what it needs.
fn capacity_model(
    state: &state::StateFigures,
    checks: &checks::CheckCosts,
    scale: Option<&scale::ScaleFigures>,
) -> Section {
    let (Some(redis), Some(postgres), Some(scale)) = (state.redis, state.postgres, scale) else {
        return Section {
            title: "Capacity model".into(),
            method: "Not built in this run: its inputs include what a session costs PostgreSQL and Redis and what a \
                     check asks of them. Give `--postgres URL` and `--redis URL`."
                .into(),
            ..Section::default()
        };
    };
    let policy = latchkey_core::policy::Policy::default();
    capacity::model(&capacity::Inputs {
        cookie: capacity::ModeInputs {
            redis_bytes: redis.0,
            postgres_bytes: postgres.0,
            latchkey_micros: checks.cookie_micros,
        },
        token: capacity::ModeInputs {
            redis_bytes: redis.1,
            postgres_bytes: postgres.1,
            latchkey_micros: checks.bearer_micros,
        },
        scale: *scale,
        touch_interval: policy.touch_interval.as_seconds_f64(),
        access_ttl: policy.access_token_ttl.as_seconds_f64(),
    })
}

/// The `p`-th percentile of `samples` (nearest rank).
pub(crate) fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied().unwrap_or_default()
}

/// Milliseconds, for tables.
pub(crate) fn ms(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1000.0)
}
