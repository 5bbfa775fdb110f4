//! `latchkey compare`: the background articles' comparison of session login and token login,
//! measured on this machine with this build. It runs latchkey itself (this very binary, on
//! free loopback ports, each with a scratch data directory) in each mode, measures, and writes
//! a Markdown report with SVG charts beside it. Every figure in the report is a measurement of
//! this run; each assertion of the articles gets the figure that tests it and a verdict.
//!
//! Built so far: the data on the wire, the server's state per session (embedded store and
//! memory), revocation, the cost of logging in and refreshing, and the attacks with the tests
//! that prove latchkey's defences.
//! The server's state per session, the load of a check and scale-out are sections still to
//! come (issue 15).

mod chart;
mod costs;
mod local;
mod report;
mod revocation;
mod security;
mod state;
mod wire;

use std::path::PathBuf;
use std::time::{Duration, Instant};

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
}

/// How much each measurement does: `--quick` or the full run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Effort {
    /// Whether this is `--quick`.
    pub(crate) quick: bool,
    /// Logins timed (and refreshes).
    pub(crate) logins: usize,
    /// Credentials followed through a revocation.
    pub(crate) revocations: usize,
    /// Access-token lifetime while measuring revocation (the JWKS-only verifier waits it out).
    pub(crate) access_ttl: Duration,
    /// Sessions of each kind whose cost to the server is measured.
    pub(crate) sessions: usize,
}

impl Effort {
    fn of(quick: bool) -> Self {
        if quick {
            Self { quick, logins: 8, revocations: 4, access_ttl: Duration::from_secs(6), sessions: 300 }
        } else {
            Self { quick, logins: 60, revocations: 30, access_ttl: Duration::from_secs(60), sessions: 10_000 }
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
    let effort = Effort::of(args.quick);
    let started = Instant::now();
    std::fs::create_dir_all(&args.out)?;
    let mut report = Report::new(args.quick);
    progress(started, "data on the wire: a server per signing algorithm");
    report.push(wire::measure(&binary, started).await?);
    progress(started, "server state: what a session of each kind costs on disk and in memory");
    report.push(state::measure(&binary, effort, started).await?);
    progress(started, "revocation: log out everywhere, then follow every credential");
    report.push(revocation::measure(&binary, effort, started).await?);
    progress(started, "login and refresh against their bare cryptography");
    report.push(costs::measure(&binary, effort, started).await?);
    progress(started, "security: the attacks the articles name, and the tests that prove the defences");
    report.push(security::measure());
    let path = report.write(&args.out, started.elapsed())?;
    progress(started, &format!("report written to {}", path.display()));
    Ok(path)
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
