//! Multi-instance tests: three `latchkey serve` instances sharing one PostgreSQL database behind
//! nginx, started by `deploy/local-cluster` exactly as a user would start them.
//! `cargo test --test cluster -- --nocapture` prints the measured propagation delays.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

use std::process::Command;
use std::time::{Duration, Instant};

use helpers::*;
use latchkey_testkit::postgres::ScratchDatabase;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/local-cluster");

struct Cluster {
    nginx: String,
    instances: Vec<String>,
    dir: tempfile::TempDir,
    /// The client of nginx; [`Cluster::at`] gives one of each instance.
    api: ApiClient,
    _database: ScratchDatabase,
}

impl Cluster {
    async fn start(extra: &[(&str, &str)]) -> Self {
        let database = ScratchDatabase::create().await;
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(SCRIPT);
        command.args(["start", "3"]);
        for (name, _) in std::env::vars() {
            if name.starts_with("LATCHKEY_") {
                command.env_remove(name);
            }
        }
        command
            .env("LATCHKEY_CLUSTER_DIR", dir.path())
            .env("LATCHKEY_BIN", env!("CARGO_BIN_EXE_latchkey"))
            .env("LATCHKEY_DATABASE_URL", database.url())
            .envs(CHEAP_ARGON2_ENV)
            .envs(extra.iter().copied());
        let output = command.output().expect("deploy/local-cluster");
        assert!(output.status.success(), "cluster start failed: {}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let field = |prefix: &str| -> Vec<String> {
            stdout.lines().filter_map(|line| line.strip_prefix(prefix)).map(|url| url.trim().to_owned()).collect()
        };
        let nginx = field("nginx ").pop().expect("nginx url");
        let instances = field("instance ");
        assert_eq!(instances.len(), 3);
        let api = ApiClient::new(nginx.clone());
        Self { nginx, instances, dir, api, _database: database }
    }

    /// The client of `base` (an instance, or nginx).
    fn at(&self, base: &str) -> ApiClient {
        self.api.at(base)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(SCRIPT).arg("stop").env("LATCHKEY_CLUSTER_DIR", self.dir.path()).status();
    }
}

#[tokio::test]
async fn a_session_made_on_one_instance_works_on_every_other_and_through_nginx() {
    let cluster = Cluster::start(&[]).await;
    cluster.api.sign_up("alice").await;
    let tokens = cluster.at(&cluster.instances[0]).token_login("alice").await;
    let web = cluster.at(&cluster.instances[1]).cookie_login("alice").await;
    for base in cluster.instances.iter().chain([&cluster.nginx]) {
        assert_eq!(
            cluster.at(base).status_of("/v1/verify", &Credential::Bearer(tokens.access.clone())).await,
            StatusCode::OK,
            "{base}"
        );
        assert_eq!(
            cluster.at(base).status_of("/v1/verify", &Credential::Cookie(web.cookie.clone())).await,
            StatusCode::OK,
            "{base}"
        );
        let list: Vec<Value> = cluster
            .api
            .client
            .get(format!("{base}/v1/sessions"))
            .bearer_auth(&tokens.access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list.len(), 2, "{base}: one device list everywhere");
    }
    // The sample application behind nginx's auth_request.
    let app = format!("{}/app/", cluster.nginx);
    let by_token = cluster.api.client.get(&app).bearer_auth(&tokens.access).send().await.unwrap();
    assert_eq!(by_token.text().await.unwrap().trim(), "hello alice (token)");
    let by_cookie = cluster.api.client.get(&app).header("cookie", &web.cookie).send().await.unwrap();
    assert_eq!(by_cookie.text().await.unwrap().trim(), "hello alice (cookie)");
    assert_eq!(cluster.api.client.get(&app).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let csrf = cluster.api.client.post(&app).header("cookie", &web.cookie).send().await.unwrap();
    assert_eq!(csrf.status(), StatusCode::FORBIDDEN, "an unsafe cookie request without the CSRF token");
    let spoofed = cluster
        .api
        .client
        .post(&app)
        .header("cookie", &web.cookie)
        .header("x-forwarded-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), StatusCode::FORBIDDEN, "a client-sent X-Forwarded-Method cannot skip the CSRF rule");
    let forged = cluster
        .api
        .client
        .get(&app)
        .bearer_auth(&tokens.access)
        .header("x-auth-username", "mallory")
        .header("x-auth-kind", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.text().await.unwrap().trim(), "hello alice (token)", "client-sent identity headers are replaced");
    let metrics = cluster.api.client.get(format!("{}/metrics", cluster.nginx)).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::NOT_FOUND, "nginx does not publish the metrics");
    // The same keys and issuer everywhere.
    let mut jwks = Vec::new();
    for base in &cluster.instances {
        jwks.push(
            cluster.api.client.get(format!("{base}/.well-known/jwks.json")).send().await.unwrap().text().await.unwrap(),
        );
    }
    assert!(jwks.windows(2).all(|pair| pair[0] == pair[1]));
}

/// Waits until `base` refuses the credential at `/v1/verify`; returns how long that took after
/// `since`.
async fn refused_after(cluster: &Cluster, base: &str, credential: &Credential, since: Instant) -> Duration {
    refused_at_after("/v1/verify", cluster, base, credential, since).await
}

/// Waits until `base` refuses the credential at `path`; returns how long that took after `since`.
async fn refused_at_after(
    path: &str,
    cluster: &Cluster,
    base: &str,
    credential: &Credential,
    since: Instant,
) -> Duration {
    loop {
        if cluster.at(base).status_of(path, credential).await == StatusCode::UNAUTHORIZED {
            return since.elapsed();
        }
        assert!(since.elapsed() < Duration::from_secs(3), "{base} still accepts a revoked session after 3 s");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

#[tokio::test]
async fn a_revocation_on_one_instance_reaches_every_other_within_the_bound() {
    let cluster = Cluster::start(&[]).await;
    cluster.api.sign_up("alice").await;
    let mut delays = Vec::new();
    for i in 0..200 {
        let home = &cluster.instances[i % 3];
        let others: Vec<&String> = cluster.instances.iter().filter(|base| *base != home).collect();
        // Half token sessions, half cookie sessions; each check warms the other instances'
        // caches first, so what is measured is a cached check learning of the revocation.
        let (credential, logout) = if i % 2 == 0 {
            let tokens = cluster.at(home).token_login("alice").await;
            let logout = cluster.api.client.post(format!("{home}/v1/logout")).bearer_auth(&tokens.access);
            (Credential::Bearer(tokens.access), logout)
        } else {
            let web = cluster.at(home).cookie_login("alice").await;
            let logout = cluster
                .api
                .client
                .post(format!("{home}/v1/logout"))
                .header("cookie", &web.cookie)
                .header("x-csrf-token", &web.csrf);
            (Credential::Cookie(web.cookie), logout)
        };
        for base in &others {
            assert_eq!(cluster.at(base).status_of("/v1/verify", &credential).await, StatusCode::OK);
        }
        assert_eq!(logout.send().await.unwrap().status(), StatusCode::NO_CONTENT);
        let revoked_at = Instant::now();
        assert_eq!(
            cluster.at(home).status_of("/v1/verify", &credential).await,
            StatusCode::UNAUTHORIZED,
            "at once on the revoking instance"
        );
        let (a, b) = tokio::join!(
            refused_after(&cluster, others[0], &credential, revoked_at),
            refused_after(&cluster, others[1], &credential, revoked_at)
        );
        delays.push(a.max(b));
    }
    delays.sort();
    eprintln!(
        "revocation propagation over {} revocations (3 instances, PostgreSQL NOTIFY): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        delays.len(),
        percentile(&delays, 0.5).as_secs_f64() * 1000.0,
        percentile(&delays, 0.99).as_secs_f64() * 1000.0,
        delays.last().unwrap().as_secs_f64() * 1000.0,
    );
}

#[tokio::test]
async fn log_out_everywhere_on_one_instance_ends_every_session_on_every_instance() {
    log_out_everywhere_on(&Cluster::start(&[]).await).await;
}

#[tokio::test]
async fn three_instances_on_a_redis_cluster_behave_as_one_server() {
    let redis = latchkey_testkit::redis_cluster::RedisCluster::start();
    let nodes = redis.node_urls().join(",");
    let cluster = Cluster::start(&[("LATCHKEY_REDIS_CLUSTER_NODES", &nodes)]).await;
    log_out_everywhere_on(&cluster).await;
    let spread = redis.keys_per_node();
    assert!(spread.iter().filter(|&&keys| keys > 0).count() >= 2, "sessions did not spread: {spread:?}");
}

/// Logs in with both kinds on every instance, checks every credential works everywhere (at
/// `/v1/verify` and at `/v1/me`, so every instance holds the caller's profile in memory), logs
/// out everywhere on the last instance, and waits until every instance refuses them all at both.
async fn log_out_everywhere_on(cluster: &Cluster) {
    cluster.api.sign_up("alice").await;
    let mut credentials = Vec::new();
    for base in &cluster.instances {
        credentials.push(Credential::Bearer(cluster.at(base).token_login("alice").await.access));
        credentials.push(Credential::Cookie(cluster.at(base).cookie_login("alice").await.cookie));
    }
    for base in &cluster.instances {
        for credential in &credentials {
            assert_eq!(cluster.at(base).status_of("/v1/verify", credential).await, StatusCode::OK, "{base}");
            assert_eq!(cluster.at(base).status_of("/v1/me", credential).await, StatusCode::OK, "{base}");
        }
    }
    let Credential::Bearer(first) = &credentials[0] else { unreachable!() };
    session_data_is_one_on_every_instance(cluster, first).await;
    let all = cluster
        .api
        .client
        .post(format!("{}/v1/logout", cluster.instances[2]))
        .bearer_auth(first)
        .json(&json!({ "scope": "all" }));
    assert_eq!(all.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let since = Instant::now();
    for base in &cluster.instances {
        for credential in &credentials {
            refused_after(cluster, base, credential, since).await;
            refused_at_after("/v1/me", cluster, base, credential, since).await;
        }
        let data = cluster.api.client.get(format!("{base}/v1/session/data")).bearer_auth(first).send().await.unwrap();
        assert_eq!(data.status(), StatusCode::UNAUTHORIZED, "{base}: the data outlived its session");
    }
}

/// API.md, "Session data": once a write has returned, a read or an `If-Match` on any instance
/// sees it under the same `ETag`; concurrent patches spread over the instances all land.
async fn session_data_is_one_on_every_instance(cluster: &Cluster, access_token: &str) {
    let data = |base: &str, method: reqwest::Method| {
        cluster.api.client.request(method, format!("{base}/v1/session/data")).bearer_auth(access_token)
    };
    let tag_of = |response: &reqwest::Response| response.headers()["etag"].to_str().unwrap().to_owned();
    let mut tag = tag_of(&data(&cluster.instances[0], reqwest::Method::GET).send().await.unwrap());
    for (i, base) in cluster.instances.iter().enumerate() {
        let put = data(base, reqwest::Method::PUT).header("if-match", &tag).json(&json!({ "written_on": i }));
        let put = put.send().await.unwrap();
        assert_eq!(put.status(), StatusCode::OK, "{base}: If-Match of the version another instance wrote");
        tag = tag_of(&put);
        for other in &cluster.instances {
            let read = data(other, reqwest::Method::GET).send().await.unwrap();
            assert_eq!(tag_of(&read), tag, "{other} after a write on {base}");
            assert_eq!(read.json::<Value>().await.unwrap(), json!({ "written_on": i }), "{other}");
        }
    }
    let stale = data(&cluster.instances[1], reqwest::Method::PUT).header("if-match", "\"stale\"").json(&json!({}));
    assert_eq!(stale.send().await.unwrap().status(), StatusCode::PRECONDITION_FAILED);
    let patches = (0..20).map(|i| {
        data(&cluster.instances[i % 3], reqwest::Method::PATCH)
            .header("content-type", "application/merge-patch+json")
            .body(json!({ format!("key{i}"): i }).to_string())
            .send()
    });
    for patched in futures::future::join_all(patches).await {
        assert_eq!(patched.unwrap().status(), StatusCode::OK);
    }
    let merged: Value = data(&cluster.nginx, reqwest::Method::GET).send().await.unwrap().json().await.unwrap();
    let keys = merged.as_object().map(|object| object.keys().filter(|key| key.starts_with("key")).count());
    assert_eq!(keys, Some(20), "a patch sent to another instance was lost: {merged}");
}

#[tokio::test]
async fn one_refresh_token_presented_to_two_instances_at_once_obeys_the_grace_window_then_reuse_detection() {
    let cluster = Cluster::start(&[("LATCHKEY_REFRESH_REUSE_GRACE", "1s")]).await;
    cluster.api.sign_up("alice").await;
    let first = cluster.at(&cluster.instances[0]).token_login("alice").await;
    let (second, third) = (cluster.at(&cluster.instances[1]), cluster.at(&cluster.instances[2]));
    let (a, b) = tokio::join!(second.refresh(&first.refresh), third.refresh(&first.refresh));
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    let a = Tokens::from(a.json::<Value>().await.unwrap());
    let b = Tokens::from(b.json::<Value>().await.unwrap());
    assert_eq!(a.refresh, b.refresh, "one rotation, decided by the shared store");
    for base in &cluster.instances {
        assert_eq!(
            cluster.at(base).status_of("/v1/verify", &Credential::Bearer(a.access.clone())).await,
            StatusCode::OK
        );
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let reuse = cluster.at(&cluster.instances[0]).refresh(&first.refresh).await;
    expect_oauth_error(reuse, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let since = Instant::now();
    for base in &cluster.instances {
        refused_after(&cluster, base, &Credential::Bearer(b.access.clone()), since).await;
        let dead = cluster.at(base).refresh(&a.refresh).await;
        expect_oauth_error(dead, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
}

mod faults {
    //! PostgreSQL stopped and restarted under a mixed load of cookie and bearer checks.

    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use latchkey_testkit::private_postgres::PrivatePostgres;
    use latchkey_testkit::private_redis::PrivateRedis;
    use reqwest::Client;
    use serde_json::{Value, json};

    use super::helpers::*;

    const PHASES: [&str; 3] = ["before", "outage", "after"];

    #[derive(Clone)]
    struct Probe {
        name: &'static str,
        request: fn(&Client, &str, &Creds) -> reqwest::RequestBuilder,
    }

    struct Creds {
        valid_bearer: String,
        revoked_bearer: String,
        valid_cookie: String,
        revoked_cookie: String,
    }

    fn probes() -> Vec<Probe> {
        vec![
            Probe {
                name: "bearer valid",
                request: |c, b, k| c.get(format!("{b}/v1/verify")).bearer_auth(&k.valid_bearer),
            },
            Probe {
                name: "bearer revoked",
                request: |c, b, k| c.get(format!("{b}/v1/verify")).bearer_auth(&k.revoked_bearer),
            },
            Probe {
                name: "cookie valid",
                request: |c, b, k| c.get(format!("{b}/v1/verify")).header("cookie", &k.valid_cookie),
            },
            Probe {
                name: "cookie revoked",
                request: |c, b, k| c.get(format!("{b}/v1/verify")).header("cookie", &k.revoked_cookie),
            },
            // Another account than the probed sessions': hundreds of logins would otherwise pass
            // the cap on sessions per user and end the probed sessions as least recently used.
            Probe {
                name: "login",
                request: |c, b, _| {
                    c.post(format!("{b}/v1/session")).json(&json!({ "username": "bob", "password": PASSWORD }))
                },
            },
            Probe { name: "readyz", request: |c, b, _| c.get(format!("{b}/readyz")) },
            Probe { name: "healthz", request: |c, b, _| c.get(format!("{b}/healthz")) },
        ]
    }

    type Counts = BTreeMap<(usize, &'static str, u16), u64>;

    /// What a store outage under load showed.
    struct Outage {
        counts: Counts,
        recovery: Duration,
        /// A password grant made during the outage: status and RFC 6749 `error`.
        token_grant: (u16, Value),
        /// The server's log.
        logs: String,
    }

    /// Runs the probes against a server on `env` (its failing store named `store` in the
    /// report), calls `down` after 1.5 s and `up` 4 s later, and counts answers per phase
    /// (requests straddling a phase change count in neither).
    async fn outage_under_load(store: &str, env: &[(&str, &str)], down: impl FnOnce(), up: impl FnOnce()) -> Outage {
        let mut env = env.to_vec();
        env.push(("LATCHKEY_SYNC_INTERVAL", "200ms"));
        let server = Server::with(&env).await;
        server.sign_up("alice").await;
        server.sign_up("bob").await;
        let revoked_token = server.token_login("alice").await;
        server.client.post(server.url("/v1/logout")).bearer_auth(&revoked_token.access).send().await.unwrap();
        let revoked_web = server.cookie_login("alice").await;
        let logout = server
            .client
            .post(server.url("/v1/logout"))
            .header("cookie", &revoked_web.cookie)
            .header("x-csrf-token", &revoked_web.csrf);
        logout.send().await.unwrap();
        let creds = Arc::new(Creds {
            valid_bearer: server.token_login("alice").await.access,
            revoked_bearer: revoked_token.access,
            valid_cookie: server.cookie_login("alice").await.cookie,
            revoked_cookie: revoked_web.cookie,
        });
        // The valid cookie is checked once, so it is in the local cache as in steady state.
        assert_eq!(
            server
                .client
                .get(server.url("/v1/verify"))
                .header("cookie", &creds.valid_cookie)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );

        let phase = Arc::new(AtomicU8::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let counts: Arc<Mutex<Counts>> = Arc::default();
        let restarted_at: Arc<Mutex<Option<Instant>>> = Arc::default();
        // The first 200 of each probe after the restart: `readyz` says when the store answered
        // this server again, `login` when the whole path did (a login also waits for a hash,
        // which yields to every other runnable thread).
        let first_after: Arc<Mutex<BTreeMap<&'static str, Duration>>> = Arc::default();
        let straddling: Arc<Mutex<u64>> = Arc::default();
        // One worker per probe, so requests that wait for the store cannot starve the others.
        let mut workers = Vec::new();
        for worker in 0..probes().len() {
            let (phase, stop, counts, creds) = (phase.clone(), stop.clone(), counts.clone(), creds.clone());
            let (restarted_at, first_after) = (restarted_at.clone(), first_after.clone());
            let straddling = straddling.clone();
            let base = server.base.clone();
            workers.push(tokio::spawn(async move {
                let client = Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
                let probe = &probes()[worker];
                while !stop.load(Ordering::Relaxed) {
                    let current = usize::from(phase.load(Ordering::Relaxed));
                    let status = match (probe.request)(&client, &base, &creds).send().await {
                        Ok(response) => response.status().as_u16(),
                        Err(_) => 0,
                    };
                    // A request that started in one phase and ended in the next (a login that
                    // waited for a connection while the store came back) belongs to neither.
                    if usize::from(phase.load(Ordering::Relaxed)) != current {
                        *straddling.lock().unwrap() += 1;
                        continue;
                    }
                    if current == 2
                        && status == 200
                        && let Some(since) = restarted_at.lock().unwrap().map(|at| at.elapsed())
                    {
                        first_after.lock().unwrap().entry(probe.name).or_insert(since);
                    }
                    *counts.lock().unwrap().entry((current, probe.name, status)).or_default() += 1;
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        down();
        phase.store(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let grant = server.password_grant("/v1/token", "alice", &[]).await;
        let token_grant = (grant.status().as_u16(), grant.json::<Value>().await.unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(2500)).await;
        up();
        *restarted_at.lock().unwrap() = Some(Instant::now());
        phase.store(2, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop.store(true, Ordering::Relaxed);
        for worker in workers {
            worker.await.unwrap();
        }
        let counts = counts.lock().unwrap().clone();
        for ((phase, probe, status), count) in &counts {
            eprintln!("  {store} {:<7} {:<15} {status:>3}: {count}", PHASES[*phase], probe);
        }
        eprintln!("  {store}: requests that straddled a phase change (not counted): {}", straddling.lock().unwrap());
        let first_after = first_after.lock().unwrap().clone();
        let ready = first_after.get("readyz").copied().expect("the server is ready again after the restart");
        let recovery = first_after.get("login").copied().expect("logins work again after the restart");
        eprintln!(
            "  {store} recovery: ready {:.0} ms and first successful login {:.0} ms after the store was back",
            ready.as_secs_f64() * 1000.0,
            recovery.as_secs_f64() * 1000.0
        );
        Outage { counts, recovery, token_grant, logs: server.logs() }
    }

    /// What holds whichever store fails: no 500; revoked sessions never accepted; valid bearer
    /// tokens answered throughout; what needs the store fails closed with 503; recovery alone.
    fn check_fails_closed(outage: &Outage) {
        for (phase, probe, status) in outage.counts.keys() {
            let context = format!("{} {probe} answered {status}", PHASES[*phase]);
            assert!(*status != 0 && *status != 500 && !(*status > 500 && *status != 503), "{context}");
            if probe.ends_with("revoked") {
                assert_ne!(*status, 200, "a revoked session was accepted: {context}");
            }
            if *probe == "bearer valid" {
                assert_eq!(*status, 200, "a valid bearer token must keep working: {context}");
            }
            if *probe == "healthz" {
                assert_eq!(*status, 200, "the process is up whatever the store: {context}");
            }
            if *phase == 1 && (*probe == "login" || *probe == "readyz") {
                assert_eq!(*status, 503, "what needs the store fails closed with 503: {context}");
            }
            if *phase == 2 && *probe == "login" {
                assert_ne!(*status, 429, "logins refused by the outage counted as failed attempts: {context}");
            }
        }
        assert!(outage.counts.keys().any(|(phase, probe, status)| *phase == 1 && *probe == "login" && *status == 503));
        assert!(outage.recovery < Duration::from_secs(5), "recovered after {:?}", outage.recovery);
        // Each 503 is logged once, by the frame, with its request's id and the store's cause.
        let unavailable: Vec<&str> = outage.logs.lines().filter(|line| line.contains("store unavailable")).collect();
        assert!(!unavailable.is_empty(), "the outage's 503s are logged");
        for line in &unavailable {
            assert!(line.contains("request.id=") && line.contains("cause="), "{line}");
        }
        assert!(!outage.logs.contains("store failure"), "a 503 is logged once, not also where it arose");
        let (status, body) = &outage.token_grant;
        assert_eq!(*status, 503, "the token endpoint fails closed: {body}");
        assert_eq!(body["error"], "temporarily_unavailable", "in the RFC 6749 shape: {body}");
    }

    #[tokio::test]
    async fn a_postgres_outage_fails_closed_keeps_bearer_checks_and_recovers_by_itself() {
        let postgres = PrivatePostgres::start();
        eprintln!("PostgreSQL outage under load (status counts per phase):");
        let outage = outage_under_load(
            "PostgreSQL",
            &[("LATCHKEY_DATABASE_URL", &postgres.url())],
            || postgres.down(),
            || postgres.up(),
        )
        .await;
        check_fails_closed(&outage);
        for (_, probe, status) in outage.counts.keys() {
            assert!(!(*probe == "cookie valid" && *status == 401), "a valid cookie session was refused");
        }
    }

    #[tokio::test]
    async fn a_redis_outage_fails_closed_keeps_bearer_checks_and_recovers_by_itself() {
        let redis = PrivateRedis::start();
        let database = latchkey_testkit::postgres::ScratchDatabase::create().await;
        eprintln!("Redis outage under load (status counts per phase):");
        let env = [("LATCHKEY_DATABASE_URL", database.url()), ("LATCHKEY_REDIS_URL", &redis.url())];
        let outage = outage_under_load("Redis", &env, || redis.down(), || redis.up()).await;
        check_fails_closed(&outage);
        // Redis restarts empty: a session it held may be gone afterwards (its user logs in
        // again), but never during the outage is a valid cached one refused.
        for (phase, probe, status) in outage.counts.keys() {
            assert!(!(*phase < 2 && *probe == "cookie valid" && *status == 401), "a valid cookie session was refused");
        }
    }
}

#[tokio::test]
async fn failed_attempts_spread_over_instances_share_one_allowance_through_redis() {
    let prefix = latchkey_testkit::redis::ScratchPrefix::new();
    let url = latchkey_testkit::redis::url();
    let cluster =
        Cluster::start(&[("LATCHKEY_REDIS_URL", url.as_str()), ("LATCHKEY_REDIS_PREFIX", prefix.prefix())]).await;
    cluster.api.sign_up("alice").await;
    let attempt = |base: &str| {
        cluster
            .api
            .client
            .post(format!("{base}/v1/session"))
            .json(&json!({ "username": "alice", "password": "not the password at all" }))
            .send()
    };
    // Five failures, the default allowance, spread over the three instances.
    for n in 0..5 {
        let base = &cluster.instances[n % 3];
        assert_eq!(attempt(base).await.unwrap().status(), StatusCode::UNAUTHORIZED, "failure {n} on {base}");
    }
    for base in &cluster.instances {
        let refused = attempt(base).await.unwrap();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "{base} knows of the failures on the others");
        assert!(refused.headers().contains_key("retry-after"));
    }
}

/// Single sign-on across instances: a code issued by one instance is redeemed exactly once
/// whichever instances it is presented to at once, and a sign-out on one instance makes exactly
/// one back-channel delivery per app although every instance runs a deliverer.
#[tokio::test]
async fn codes_and_logout_deliveries_work_across_instances_exactly_once() {
    use std::sync::{Arc, Mutex};

    let cluster = Cluster::start(&[]).await;
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&received);
    let receiver = axum::Router::new().route(
        "/backchannel",
        axum::routing::post(move |body: String| {
            let sink = Arc::clone(&sink);
            async move { sink.lock().unwrap().push(body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let back_channel = format!("http://{}/backchannel", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let env = vec![("LATCHKEY_DATABASE_URL".to_owned(), cluster._database.url().to_owned())];
    let output = command(
        &[
            "client",
            "add",
            "Notes",
            "--redirect-uri",
            "https://notes.example/cb",
            "--backchannel-logout-uri",
            &back_channel,
            "--skip-consent",
            "--json",
        ],
        &env,
    )
    .output()
    .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let app: Value = serde_json::from_slice(&output.stdout).unwrap();
    let (id, secret) =
        (app["client_id"].as_str().unwrap().to_owned(), app["client_secret"].as_str().unwrap().to_owned());

    cluster.api.sign_up("sso").await;
    let browser = cluster.at(&cluster.instances[0]).cookie_login("sso").await;
    let code_from = |base: String| {
        let (client, cookie, id) = (cluster.api.client.clone(), browser.cookie.clone(), id.clone());
        async move {
            let response = client
                .get(format!("{base}/oauth2/authorize"))
                .query(&[
                    ("response_type", "code"),
                    ("client_id", id.as_str()),
                    ("redirect_uri", "https://notes.example/cb"),
                    ("scope", "openid"),
                    ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
                    ("code_challenge_method", "S256"),
                ])
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            reqwest::Url::parse(&location).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned()
        }
    };
    let redeem = |base: &str, code: &str| {
        cluster
            .api
            .client
            .post(format!("{base}/v1/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", "https://notes.example/cb"),
                ("code_verifier", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            ])
            .send()
    };
    for round in 0..5 {
        let code = code_from(cluster.instances[round % 3].clone()).await;
        let attempts = cluster.instances.iter().flat_map(|base| [redeem(base, &code), redeem(base, &code)]);
        let statuses: Vec<StatusCode> =
            futures::future::join_all(attempts).await.into_iter().map(|r| r.unwrap().status()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "round {round}: {statuses:?}");
    }

    let logout = cluster
        .api
        .client
        .post(format!("{}/v1/logout", cluster.instances[1]))
        .header("cookie", &browser.cookie)
        .header("x-csrf-token", &browser.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let deadline = Instant::now() + Duration::from_secs(15);
    while received.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every instance polls for due deliveries every second: give them time to repeat it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(received.lock().unwrap().len(), 1, "one logout token for one app and sign-in");
}
