//! Scalability: the same checks with 1, 2 and 3 instances sharing PostgreSQL and Redis, behind
//! nginx (the shipped `deploy/nginx.conf.template`) where nginx is installed, and what each
//! check asks of the shared stores: the operations latchkey sent to each (its metrics) and
//! Redis's CPU time.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::chart::BarChart;
use super::load::{Credentials, LoadRun, Throughput, cpu_time_of_command};
use super::local::{CHEAP_HASHING, LocalServer};
use super::report::{Assertion, Section, Verdict};
use super::stores::{ScratchDatabase, ScratchPrefix, SharedStores};
use super::{CompareError, Effort, progress};

/// The nginx configuration latchkey ships; the comparison fills it in as `deploy/local-cluster`
/// does.
const NGINX_TEMPLATE: &str = include_str!("../../../../deploy/nginx.conf.template");

/// Connections open at once during a load run.
const CONNECTIONS: usize = 32;

/// What one kind of check asked of the deployment, per check.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StoreWork {
    /// Checks per second, all instances together.
    pub(crate) rate: f64,
    /// latchkey's CPU time per check, all instances together, in microseconds.
    pub(crate) latchkey_cpu_micros: f64,
    /// Redis requests per check (a command, script or pipeline each).
    pub(crate) redis_commands: f64,
    /// Redis CPU time per check, in microseconds.
    pub(crate) redis_cpu_micros: f64,
    /// PostgreSQL operations per check (queries or transactions).
    pub(crate) postgres_transactions: f64,
    /// PostgreSQL's CPU time per check (its processes on this machine), in microseconds;
    /// `None` when PostgreSQL runs elsewhere.
    pub(crate) postgres_cpu_micros: Option<f64>,
}

/// What the capacity model takes from this section.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ScaleFigures {
    /// A cookie check, this instance's cache on (the default), one instance.
    pub(crate) cookie: StoreWork,
    /// A cookie check read from Redis every time (cache off).
    pub(crate) cookie_uncached: StoreWork,
    /// A bearer check, one instance.
    pub(crate) bearer: StoreWork,
}

/// nginx in front of some instances, stopped when dropped.
struct Nginx {
    dir: PathBuf,
    address: SocketAddr,
}

impl Nginx {
    /// nginx round robin over `upstreams`, or `None` where nginx is not installed.
    fn start(upstreams: &[SocketAddr], purpose: &str) -> Result<Option<Self>, CompareError> {
        if Command::new("nginx").arg("-v").output().is_err() {
            return Ok(None);
        }
        let dir = std::env::temp_dir().join(format!("latchkey-compare-nginx-{}-{purpose}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let servers: String = upstreams.iter().map(|address| format!("        server {address};\n")).collect();
        let config = NGINX_TEMPLATE
            .replace("@RUN@", &dir.display().to_string())
            .replace("@PORT@", &port.to_string())
            .replace("@SERVERS@", servers.trim_end());
        let file = dir.join("nginx.conf");
        std::fs::write(&file, config)?;
        let output = Command::new("nginx").arg("-c").arg(&file).output()?;
        if !output.status.success() {
            return Err(CompareError::Run(format!("nginx did not start: {}", String::from_utf8_lossy(&output.stderr))));
        }
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        for _ in 0..50 {
            if std::net::TcpStream::connect(address).is_ok() {
                return Ok(Some(Self { dir, address }));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(CompareError::Run("nginx did not listen within 5 s".into()))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("nginx").arg("-c").arg(self.dir.join("nginx.conf")).args(["-s", "quit"]).output();
        for _ in 0..50 {
            if !self.dir.join("nginx.pid").exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The operations the instances have sent to `store` so far, together.
async fn operations(instances: &[&LocalServer], store: &str) -> Result<u64, CompareError> {
    let mut total = 0;
    for instance in instances {
        total += instance.store_operations(store).await?;
    }
    Ok(total)
}

/// One load run against `instances` (through `targets`) and what the stores did meanwhile.
async fn measured_run(
    run: LoadRun<'_>,
    instances: &[&LocalServer],
    redis: &ScratchPrefix,
) -> Result<(Throughput, StoreWork), CompareError> {
    let redis_cpu = redis.cpu_micros().await?;
    let postgres_cpu = cpu_time_of_command("postgres");
    let (commands, transactions) = (operations(instances, "redis").await?, operations(instances, "postgres").await?);
    let throughput = run.run().await?;
    let redis_cpu_after = redis.cpu_micros().await?;
    let postgres_cpu_after = cpu_time_of_command("postgres");
    let commands_after = operations(instances, "redis").await?;
    let transactions_after = operations(instances, "postgres").await?;
    let checks = throughput.requests.max(1) as f64;
    Ok((
        throughput,
        StoreWork {
            rate: throughput.per_second(),
            latchkey_cpu_micros: throughput.server_cpu.as_secs_f64() * 1e6 / checks,
            redis_commands: commands_after.saturating_sub(commands) as f64 / checks,
            redis_cpu_micros: redis_cpu_after.saturating_sub(redis_cpu) as f64 / checks,
            postgres_transactions: transactions_after.saturating_sub(transactions) as f64 / checks,
            postgres_cpu_micros: postgres_cpu
                .zip(postgres_cpu_after)
                .map(|(before, after)| after.saturating_sub(before).as_secs_f64() * 1e6 / checks),
        },
    ))
}

/// Runs the section where both shared stores are given; otherwise says what it needs.
pub(crate) async fn measure(
    binary: &Path,
    effort: &Effort,
    stores: &SharedStores,
    started: Instant,
) -> Result<(Section, Option<ScaleFigures>), CompareError> {
    let (Some(postgres), Some(redis)) = (&stores.postgres, &stores.redis) else {
        return Ok((
            Section {
                title: "Scalability".into(),
                method: "Not measured in this run: scale-out needs the shared stores. Give `--postgres URL` and \
                         `--redis URL` (and install nginx to measure through it)."
                    .into(),
                ..Section::default()
            },
            None,
        ));
    };
    let database = ScratchDatabase::create(postgres, "scale").await?;
    let prefix = ScratchPrefix::new(redis, "scale").await?;
    let outcome = measure_on(binary, effort, &database, &prefix, redis, started).await;
    prefix.clear().await?;
    database.drop_now().await?;
    outcome.map(|(section, figures)| (section, Some(figures)))
}

async fn measure_on(
    binary: &Path,
    effort: &Effort,
    database: &ScratchDatabase,
    prefix: &ScratchPrefix,
    redis: &str,
    started: Instant,
) -> Result<(Section, ScaleFigures), CompareError> {
    let duration = if effort.quick { Duration::from_secs(1) } else { Duration::from_secs(5) };
    let [memory, iterations] = CHEAP_HASHING;
    let shared = [
        ("LATCHKEY_DATABASE_URL", database.url.as_str()),
        ("LATCHKEY_REDIS_URL", redis),
        ("LATCHKEY_REDIS_PREFIX", prefix.prefix.as_str()),
        ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1/32"),
        // One issuer for the cluster, as behind a real proxy: a token from any instance is
        // checked by every other.
        ("LATCHKEY_PUBLIC_URL", "http://latchkey-cluster.localhost"),
        memory,
        iterations,
    ];
    let mut instances = vec![LocalServer::start(binary, &shared)?];
    instances[0].sign_up("scale").await?;
    let cookie = instances[0].cookie_login("scale").await?.0;
    let access = instances[0].token_login("scale").await?["access_token"].as_str().unwrap_or_default().to_owned();
    let checks = [
        ("cookie session", Credentials::always("cookie", &cookie)?),
        ("bearer token", Credentials::always("authorization", &format!("Bearer {access}"))?),
    ];
    let mut rows = vec![
        [
            "instances",
            "check (`GET /v1/verify`)",
            "checks/s",
            "latchkey CPU µs per check",
            "Redis requests per 1,000 checks",
            "Redis CPU ms per 1,000 checks",
            "PostgreSQL operations per 1,000 checks",
            "PostgreSQL CPU ms per 1,000 checks",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    let mut figures = ScaleFigures::default();
    let mut through_nginx = true;
    let mut bars = Vec::new();
    for count in 1..=3 {
        while instances.len() < count {
            instances.push(LocalServer::start(binary, &shared)?);
        }
        let addresses = instances.iter().map(LocalServer::address).collect::<Result<Vec<_>, _>>()?;
        let nginx = Nginx::start(&addresses, &count.to_string())?;
        through_nginx &= nginx.is_some();
        let targets = nginx.as_ref().map_or_else(|| addresses.clone(), |nginx| vec![nginx.address]);
        let pids: Vec<u32> = instances.iter().map(LocalServer::pid).collect();
        for (label, credentials) in &checks {
            progress(started, &format!("  {count} instance(s): {label} checks for {duration:?}"));
            let run = LoadRun {
                targets: &targets,
                path: "/v1/verify",
                credentials: credentials.clone(),
                connections: CONNECTIONS,
                duration,
                servers: &pids,
            };
            let (_, work) = measured_run(run, &instances.iter().collect::<Vec<_>>(), prefix).await?;
            if count == 1 {
                if *label == "cookie session" {
                    figures.cookie = work;
                } else {
                    figures.bearer = work;
                }
            }
            bars.push((format!("{label}, {count} instance(s)"), work.rate));
            rows.push(row(&count.to_string(), label, &work));
        }
    }
    drop(instances);

    // A cookie check that reads Redis every time: what a store round trip costs Redis.
    progress(started, &format!("  1 instance, cache off: cookie session checks for {duration:?}"));
    let mut uncached_settings = shared.to_vec();
    uncached_settings.push(("LATCHKEY_SESSION_CACHE_TTL", "0s"));
    let uncached = LocalServer::start(binary, &uncached_settings)?;
    let uncached_cookie = uncached.cookie_login("scale").await?.0;
    let run = LoadRun {
        targets: &[uncached.address()?],
        path: "/v1/verify",
        credentials: Credentials::always("cookie", &uncached_cookie)?,
        connections: CONNECTIONS,
        duration,
        servers: &[uncached.pid()],
    };
    figures.cookie_uncached = measured_run(run, &[&uncached], prefix).await?.1;
    rows.push(row("1 (cache off)", "cookie session", &figures.cookie_uncached));
    drop(uncached);

    let (cookie, bearer, uncached) = (figures.cookie, figures.bearer, figures.cookie_uncached);
    let section = Section {
        title: "Scalability".into(),
        method: format!(
            "1, 2 and 3 instances on one PostgreSQL database and one Redis (sessions in Redis), {}; \
             {CONNECTIONS} keep-alive connections for {:.0} s per check; instances, nginx, PostgreSQL, Redis and the \
             load share this machine's {} cores, so checks/s shows what the shared stores allow rather than what more \
             machines would add. The stores' work is read before and after each run: the operations the instances sent to \
             each store from their metrics (`latchkey_store_operations_total`: a Redis request is a command, script \
             or pipeline; a PostgreSQL operation a query or transaction), Redis's CPU time from `INFO cpu`, \
             PostgreSQL's from /proc (every `postgres` process of this machine, when it runs here); the instances' \
             background work in that window (revocation and key sync) included. A last run turns the instance's cache off, so that every cookie \
             check is a Redis read.",
            if through_nginx {
                "behind nginx (the shipped `deploy/nginx.conf.template`, round robin, no affinity)"
            } else {
                "spread round robin by the load generator (nginx is not installed)"
            },
            duration.as_secs_f64(),
            super::load::cores()
        ),
        table: rows,
        charts: vec![BarChart {
            file: "scale.svg".into(),
            title: "Checks per second, 1 to 3 instances on shared PostgreSQL and Redis".into(),
            unit: "checks per second".into(),
            bars,
        }],
        assertions: vec![
            Assertion {
                claim: "\"확장성: 나쁨 (서버 증설 시 세션 공유 처리 필요)\", \"분산 배포 시 Session 동기화 필요\" \
                        (sessions scale badly: more servers must share the sessions)"
                    .into(),
                figure: format!(
                    "every instance served every cookie session from the shared Redis with no affinity; a check cost \
                     Redis {:.1} requests per 1,000 with the instance's cache ({:.0} without it)",
                    cookie.redis_commands * 1000.0,
                    uncached.redis_commands * 1000.0
                ),
                verdict: Verdict::HoldsWithMitigation,
            },
            Assertion {
                claim: "\"RESTful: ❌ (stateful) / ✅ (stateless)\" (only tokens let any server answer any request)"
                    .into(),
                figure: format!(
                    "cookie and bearer checks alike were answered by whichever instance nginx chose; per 1,000 checks \
                     the instances sent {:.1} Redis requests and {:.1} PostgreSQL operations for cookies, {:.1} and \
                     {:.1} for tokens",
                    cookie.redis_commands * 1000.0,
                    cookie.postgres_transactions * 1000.0,
                    bearer.redis_commands * 1000.0,
                    bearer.postgres_transactions * 1000.0
                ),
                verdict: Verdict::DoesNotHold,
            },
        ],
    };
    Ok((section, figures))
}

/// A table row for one run.
fn row(instances: &str, label: &str, work: &StoreWork) -> Vec<String> {
    vec![
        instances.to_owned(),
        label.to_owned(),
        format!("{:.0}", work.rate),
        format!("{:.1}", work.latchkey_cpu_micros),
        format!("{:.1}", work.redis_commands * 1000.0),
        format!("{:.2}", work.redis_cpu_micros),
        format!("{:.1}", work.postgres_transactions * 1000.0),
        work.postgres_cpu_micros.map_or_else(|| "not on this machine".to_owned(), |micros| format!("{micros:.2}")),
    ]
}
