//! Server load: what a check (`GET /v1/verify`) costs latchkey for each kind of credential —
//! requests per second as a ratio of the HTTP ceiling in the same run (a bare handler from this
//! binary, `latchkey bench ceiling`), and the server's CPU time per check. A cookie session with
//! and without this instance's cache, a bearer token whose verification is cached, and bearer
//! tokens each presented once (a cold signature check every time).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::chart::BarChart;
use super::load::{Credentials, LoadRun, Throughput, pin, pin_self, unpin_self};
use super::local::{CHEAP_HASHING, LocalServer, expect};
use super::report::{Assertion, Section, Verdict};
use super::{CompareError, Effort, progress};

/// Connections open at once during a load run.
const CONNECTIONS: usize = 32;

/// One measured check: its label, where it is sent, what it carries.
struct Target<'a> {
    label: &'static str,
    server: &'a LocalServer,
    path: &'static str,
    credentials: Credentials,
}

/// Refreshes `chains` token sessions one after another until `n` distinct access tokens are
/// minted (each chain's refresh token rotated by each answer).
async fn mint_access_tokens(server: &LocalServer, user: &str, n: usize) -> Result<Vec<String>, CompareError> {
    let chains = 4;
    let mut minted = Vec::with_capacity(n);
    let mut tasks = Vec::new();
    for chain in 0..chains {
        let wanted = n / chains + usize::from(chain < n % chains);
        let (http, base) = (server.http.clone(), server.base.clone());
        let mut refresh = server.token_login(user).await?["refresh_token"].as_str().unwrap_or_default().to_owned();
        tasks.push(tokio::spawn(async move {
            let mut tokens = Vec::with_capacity(wanted);
            while tokens.len() < wanted {
                let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
                let response = http.post(format!("{base}/v1/token")).form(&form).send().await?;
                expect(response.status(), reqwest::StatusCode::OK, "a refresh")?;
                let answer: Value = response.json().await?;
                refresh = answer["refresh_token"].as_str().unwrap_or_default().to_owned();
                tokens.push(format!("Bearer {}", answer["access_token"].as_str().unwrap_or_default()));
            }
            Ok::<_, CompareError>(tokens)
        }));
    }
    for task in tasks {
        minted.extend(task.await.map_err(|err| CompareError::Run(err.to_string()))??);
    }
    Ok(minted)
}

/// The median of `values`.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// latchkey's CPU time per check on one core, in microseconds, caches on: a cookie check and
/// a bearer check (the capacity model's inputs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckCosts {
    /// A cookie check answered from the instance's cache.
    pub(crate) cookie_micros: f64,
    /// A bearer check whose verification is cached.
    pub(crate) bearer_micros: f64,
}

pub(crate) async fn measure(
    binary: &Path,
    effort: &Effort,
    started: Instant,
) -> Result<(Section, CheckCosts), CompareError> {
    let (rounds, duration, cold_tokens) =
        if effort.quick { (1, Duration::from_secs(1), 400) } else { (3, Duration::from_secs(5), 30_000) };
    let [memory, iterations] = CHEAP_HASHING;
    let ceiling = LocalServer::ceiling(binary)?;
    let cached = LocalServer::start(binary, &[memory, iterations])?;
    let uncached = LocalServer::start(binary, &[("LATCHKEY_SESSION_CACHE_TTL", "0s"), memory, iterations])?;
    for server in [&cached, &uncached] {
        server.sign_up("load").await?;
    }
    let cookie = cached.cookie_login("load").await?.0;
    let uncached_cookie = uncached.cookie_login("load").await?.0;
    let access = cached.token_login("load").await?["access_token"].as_str().unwrap_or_default().to_owned();
    progress(started, &format!("  {cold_tokens} access tokens, each to be presented once"));
    let cold = mint_access_tokens(&cached, "load", cold_tokens).await?;
    let per_round = cold.len() / rounds;
    let targets = [
        Target {
            label: "the HTTP ceiling (a bare handler)",
            server: &ceiling,
            path: "/",
            credentials: Credentials::none(),
        },
        Target {
            label: "cookie session, instance cache on",
            server: &cached,
            path: "/v1/verify",
            credentials: Credentials::always("cookie", &cookie)?,
        },
        Target {
            label: "cookie session, cache off (store read)",
            server: &uncached,
            path: "/v1/verify",
            credentials: Credentials::always("cookie", &uncached_cookie)?,
        },
        Target {
            label: "bearer token, verification cached",
            server: &cached,
            path: "/v1/verify",
            credentials: Credentials::always("authorization", &format!("Bearer {access}"))?,
        },
    ];

    // The servers share one core and the load another, where there are two.
    let pinned = [&ceiling, &cached, &uncached].iter().all(|server| pin(server.pid(), "0")) && pin_self("1");
    let mut runs: Vec<Vec<Throughput>> = vec![Vec::new(); targets.len() + 1];
    // Operations sent to the embedded store, per target (none for the ceiling).
    let mut operations = vec![0_u64; targets.len() + 1];
    let outcome = async {
        for round in 0..rounds {
            progress(
                started,
                &format!("  round {} of {rounds}: {} checks of {:?} each", round + 1, targets.len() + 1, duration),
            );
            for (index, target) in targets.iter().enumerate() {
                let run = LoadRun {
                    targets: &[target.server.address()?],
                    path: target.path,
                    credentials: target.credentials.clone(),
                    connections: CONNECTIONS,
                    duration,
                    servers: &[target.server.pid()],
                };
                let before = if index == 0 { 0 } else { target.server.store_operations("sqlite").await? };
                runs[index].push(run.run().await?);
                if index > 0 {
                    operations[index] += target.server.store_operations("sqlite").await?.saturating_sub(before);
                }
            }
            let slice = &cold[round * per_round..(round + 1) * per_round];
            let run = LoadRun {
                targets: &[cached.address()?],
                path: "/v1/verify",
                credentials: Credentials::each_once("authorization", slice)?,
                connections: CONNECTIONS,
                duration,
                servers: &[cached.pid()],
            };
            let before = cached.store_operations("sqlite").await?;
            runs[targets.len()].push(run.run().await?);
            operations[targets.len()] += cached.store_operations("sqlite").await?.saturating_sub(before);
        }
        Ok::<_, CompareError>(())
    }
    .await;
    if pinned {
        unpin_self();
    }
    outcome?;

    let labels: Vec<&str> = targets
        .iter()
        .map(|target| target.label)
        .chain(["bearer token, each presented once (cold signature check)"])
        .collect();
    let rates: Vec<f64> =
        runs.iter().map(|runs| median(&mut runs.iter().map(Throughput::per_second).collect::<Vec<_>>())).collect();
    let cpu: Vec<f64> = runs
        .iter()
        .map(|runs| {
            let (cpu, requests) =
                runs.iter().fold((0.0, 0), |(cpu, n), run| (cpu + run.server_cpu.as_secs_f64(), n + run.requests));
            cpu * 1e6 / requests.max(1) as f64
        })
        .collect();
    let requests: Vec<u64> = runs.iter().map(|runs| runs.iter().map(|run| run.requests).sum()).collect();
    let ceiling_rate = rates[0].max(f64::MIN_POSITIVE);
    let mut table = vec![
        [
            "check (`GET /v1/verify`)",
            "requests/s (median of rounds)",
            "× the HTTP ceiling",
            "server CPU µs per check",
            "store operations per 1,000 checks",
            "checks measured",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for index in 0..labels.len() {
        table.push(vec![
            labels[index].to_owned(),
            format!("{:.0}", rates[index]),
            format!("{:.2}", rates[index] / ceiling_rate),
            format!("{:.1}", cpu[index]),
            if index == 0 {
                "none (no store)".to_owned()
            } else {
                format!("{:.1}", operations[index] as f64 * 1000.0 / requests[index].max(1) as f64)
            },
            requests[index].to_string(),
        ]);
    }
    let (cookie_cached, cookie_store, bearer_cached, bearer_cold) = (cpu[1], cpu[2], cpu[3], cpu[4]);
    let token_cheaper = bearer_cold < cookie_store;
    let costs = CheckCosts { cookie_micros: cookie_cached, bearer_micros: bearer_cached };
    let section = Section {
        title: "Server load".into(),
        method: format!(
            "`GET /v1/verify` (the check a proxy or service asks for) on the embedded store, {CONNECTIONS} keep-alive \
             connections, {rounds} round(s) of {:.0} s per check, the checks alternated in each round; {}. The \
             ceiling is a bare axum handler with a fixed JSON body, from this binary (`latchkey bench ceiling`). The \
             CPU time is the server process's own (user + system, from /proc), divided by the checks it answered; \
             the store operations are the queries and transactions it sent to the embedded store meanwhile (its \
             metric `latchkey_store_operations_total`), its background work included. The \
             cold bearer check presents {} distinct access tokens (minted by refreshes), each once, so each is a \
             signature verification.",
            duration.as_secs_f64(),
            if pinned {
                "servers pinned to CPU 0 and the load generator to CPU 1"
            } else {
                "not pinned (one core, or no taskset)"
            },
            cold.len()
        ),
        table,
        charts: vec![BarChart {
            file: "load.svg".into(),
            title: "Server CPU time per check".into(),
            unit: "microseconds per check".into(),
            bars: labels
                .iter()
                .skip(1)
                .zip(cpu.iter().skip(1))
                .map(|(label, cpu)| ((*label).to_owned(), *cpu))
                .collect(),
        }],
        assertions: vec![
            Assertion {
                claim:
                    "\"서버 부하: 낮음 (단순 암호화 연산만 수행)\", \"토큰 해석만 하면 됨 → 효율적\" (a token check is \
                        cheap: only cryptography)"
                        .into(),
                figure: format!(
                    "a cold token check cost {bearer_cold:.1} µs of server CPU against {cookie_store:.1} µs for a cookie \
                     session read from the store ({:.2}×); cached, {bearer_cached:.1} µs against {cookie_cached:.1} µs",
                    bearer_cold / cookie_store.max(f64::MIN_POSITIVE)
                ),
                verdict: if token_cheaper { Verdict::Holds } else { Verdict::DoesNotHold },
            },
            Assertion {
                claim: "\"효율성: 서버에 상태 저장 → 부하 ↑\" (keeping state on the server makes each check costly)"
                    .into(),
                figure: format!(
                    "a cookie check ran at {:.2}× the HTTP ceiling from the store and {:.2}× from the instance's cache \
                     ({cookie_store:.1} / {cookie_cached:.1} µs of CPU per check)",
                    rates[2] / ceiling_rate,
                    rates[1] / ceiling_rate
                ),
                verdict: if cookie_cached < cookie_store { Verdict::HoldsWithMitigation } else { Verdict::DoesNotHold },
            },
        ],
    };
    Ok((section, costs))
}
