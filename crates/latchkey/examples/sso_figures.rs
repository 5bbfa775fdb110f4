//! Single sign-on figures, measured in one run against the release binary (API.md, "Single
//! sign-on for other apps"; issue 14):
//!
//! - whole code flows per second for signed-in browsers (authorize → code → token, with the
//!   ID token signed RS256) against refreshes per second, alternated over rounds;
//! - over LOGOUTS sign-outs at latchkey: the time until the app's back-channel endpoint
//!   receives its logout token, and until the embeddable verifier (following the revocation
//!   feed) refuses the app's access token; p50, p99 and the worst.
//!
//! ```sh
//! cargo build --release --locked -p latchkey --bin latchkey
//! cargo run --release --locked -p latchkey --example sso_figures
//! ```
//!
//! Settings: LATCHKEY_BIN (the release binary, run as `latchkey compare` runs it), DURATION (seconds per round, 5), ROUNDS (3),
//! WORKERS (16 concurrent clients), LOGOUTS (200); LATCHKEY_DATABASE_URL, LATCHKEY_REDIS_URL and
//! LATCHKEY_REDIS_PREFIX pass through to measure a scaled-out store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, State};
use latchkey::compare::{CHEAP_HASHING, LocalServer, PASSWORD, SERVICE_TOKEN};
use latchkey_verifier::{Rejection, Verifier, VerifierConfig};
use reqwest::{Client, StatusCode, redirect};
use serde_json::{Value, json};
use tokio::sync::Notify;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const CALLBACK: &str = "https://bench.example/callback";

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// When each sign-in's logout token arrived at the app, by its `sid`.
#[derive(Default)]
struct Received {
    at: Mutex<HashMap<String, Instant>>,
    arrived: Notify,
}

async fn back_channel(State(received): State<Arc<Received>>, Form(form): Form<HashMap<String, String>>) {
    let now = Instant::now();
    let token = form.get("logout_token").cloned().unwrap_or_default();
    // The claims' sid, read without verifying (the API suite verifies logout tokens).
    let sid = token
        .split('.')
        .nth(1)
        .and_then(base64_url)
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|claims| claims["sid"].as_str().map(str::to_owned))
        .unwrap_or_default();
    received.at.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(sid, now);
    received.arrived.notify_waiters();
}

fn base64_url(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok()
}

/// One browser signed in at latchkey, and one app's credentials.
#[derive(Clone)]
struct Browser {
    cookie: String,
    csrf: String,
}

async fn sign_up_and_in(http: &Client, base: &str, username: &str) -> Browser {
    let body = json!({ "username": username, "password": PASSWORD });
    let created = http.post(format!("{base}/v1/accounts")).json(&body).send().await.expect("sign-up");
    assert!(created.status() == StatusCode::CREATED || created.status() == StatusCode::CONFLICT);
    cookie_login(http, base, username).await
}

async fn cookie_login(http: &Client, base: &str, username: &str) -> Browser {
    let body = json!({ "username": username, "password": PASSWORD });
    let response = http.post(format!("{base}/v1/session")).json(&body).send().await.expect("login");
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|line| line.starts_with("latchkey_session="))
        .and_then(|line| line.split(';').next())
        .expect("session cookie")
        .to_owned();
    let body: Value = response.json().await.expect("json");
    Browser { cookie, csrf: body["csrf_token"].as_str().expect("csrf").to_owned() }
}

/// One whole code flow for a signed-in browser; the app's tokens.
async fn code_flow(http: &Client, base: &str, app: &(String, String), browser: &Browser) -> Value {
    let query = [
        ("response_type", "code"),
        ("client_id", app.0.as_str()),
        ("redirect_uri", CALLBACK),
        ("scope", "openid profile"),
        ("state", "s"),
        ("nonce", "n"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let response = http
        .get(format!("{base}/oauth2/authorize"))
        .query(&query)
        .header("cookie", &browser.cookie)
        .send()
        .await
        .expect("authorize");
    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let code = reqwest::Url::parse(&location)
        .ok()
        .and_then(|url| url.query_pairs().find(|(name, _)| name == "code").map(|(_, code)| code.into_owned()))
        .unwrap_or_else(|| panic!("no code: {location}"));
    let response = http
        .post(format!("{base}/v1/token"))
        .basic_auth(&app.0, Some(&app.1))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

/// Runs `work` on every worker for `seconds`; operations per second in all.
async fn rate<F, Fut>(workers: usize, seconds: u64, work: F) -> f64
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let work = work.clone();
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    work(worker).await;
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("worker");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label}: n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
        samples.len(),
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 99.0)),
        ms(*samples.last().unwrap_or(&Duration::ZERO)),
    );
}

#[tokio::main]
async fn main() {
    let (seconds, rounds, workers, logouts) =
        (setting("DURATION", 5), setting("ROUNDS", 3), setting("WORKERS", 16) as usize, setting("LOGOUTS", 200));
    let binary = std::env::var("LATCHKEY_BIN").unwrap_or_else(|_| {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
        format!("{target}/release/latchkey")
    });
    // Sign-ins are set up, not measured: cheap hashing keeps the set-up short. A scaled-out
    // store is measured when its settings are in the environment.
    let mut settings: Vec<(&str, String)> = vec![("LATCHKEY_SERVICE_TOKEN", SERVICE_TOKEN.into())];
    settings.extend(CHEAP_HASHING.iter().map(|(name, value)| (*name, (*value).to_owned())));
    for name in ["LATCHKEY_DATABASE_URL", "LATCHKEY_REDIS_URL", "LATCHKEY_REDIS_PREFIX"] {
        if let Ok(value) = std::env::var(name) {
            settings.push((name, value));
        }
    }
    let settings: Vec<(&str, &str)> = settings.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let server = LocalServer::start(std::path::Path::new(&binary), &settings)
        .unwrap_or_else(|err| panic!("{binary}: {err} (build it: cargo build --release -p latchkey)"));
    let base = server.base.clone();

    let received = Arc::new(Received::default());
    let receiver =
        axum::Router::new().route("/backchannel", axum::routing::post(back_channel)).with_state(Arc::clone(&received));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let back_channel_uri = format!("http://{}/backchannel", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let added = server
        .cli(&[
            "client",
            "add",
            "Bench",
            "--redirect-uri",
            CALLBACK,
            "--backchannel-logout-uri",
            &back_channel_uri,
            "--skip-consent",
            "--json",
        ])
        .expect("client add");
    let added: Value = serde_json::from_str(added.trim()).expect("json");
    let app = (
        added["client_id"].as_str().expect("id").to_owned(),
        added["client_secret"].as_str().expect("secret").to_owned(),
    );
    let http = Client::builder().redirect(redirect::Policy::none()).build().expect("client");

    // Eight users per worker, each signed in once, taken in turn: many users signing in to an
    // app, as in life, rather than one user piling up app sessions.
    let mut browsers = Vec::new();
    for n in 0..workers * 8 {
        browsers.push(sign_up_and_in(&http, &base, &format!("bench{n}")).await);
    }
    let browsers = Arc::new(browsers);
    let refresh_tokens: Arc<Vec<Mutex<String>>> = Arc::new(
        futures::future::join_all((0..workers).map(|n| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let response = http
                    .post(format!("{base}/v1/token"))
                    .form(&[("grant_type", "password"), ("username", &format!("bench{n}")), ("password", PASSWORD)])
                    .send()
                    .await
                    .expect("token login");
                let body: Value = response.json().await.expect("json");
                Mutex::new(body["refresh_token"].as_str().expect("refresh").to_owned())
            }
        }))
        .await,
    );

    println!("code flows and refreshes per second, {workers} concurrent clients, {seconds} s each, alternated:");
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let turn = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let flows = {
            let (http, base, app, browsers, turn) =
                (http.clone(), base.clone(), app.clone(), Arc::clone(&browsers), Arc::clone(&turn));
            rate(workers, seconds, move |_| {
                let (http, base, app, browsers, turn) =
                    (http.clone(), base.clone(), app.clone(), Arc::clone(&browsers), Arc::clone(&turn));
                async move {
                    let n = turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % browsers.len();
                    code_flow(&http, &base, &app, &browsers[n]).await;
                }
            })
            .await
        };
        let refreshes = {
            let (http, base, tokens) = (http.clone(), base.clone(), Arc::clone(&refresh_tokens));
            rate(workers, seconds, move |worker| {
                let (http, base, tokens) = (http.clone(), base.clone(), Arc::clone(&tokens));
                async move {
                    let current = tokens[worker].lock().unwrap_or_else(|p| p.into_inner()).clone();
                    let response = http
                        .post(format!("{base}/v1/token"))
                        .form(&[("grant_type", "refresh_token"), ("refresh_token", current.as_str())])
                        .send()
                        .await
                        .expect("refresh");
                    assert_eq!(response.status(), StatusCode::OK);
                    let body: Value = response.json().await.expect("json");
                    *tokens[worker].lock().unwrap_or_else(|p| p.into_inner()) =
                        body["refresh_token"].as_str().expect("refresh").to_owned();
                }
            })
            .await
        };
        println!("  round {round}: {flows:.0} code flows/s, {refreshes:.0} refreshes/s: {:.2}x", flows / refreshes);
        ratios.push(flows / refreshes);
    }
    ratios.sort_by(f64::total_cmp);
    println!("  median ratio: code flow {:.2}x refresh", ratios[ratios.len() / 2]);

    // Sign-outs: one at a time, each under a fresh sign-in with the app signed in.
    let config = VerifierConfig::new(base.clone()).with_endpoint(base.clone()).with_service_token(SERVICE_TOKEN);
    let verifier = Verifier::connect(config).await.expect("the verifier connects");
    let (mut to_back_channel, mut to_verifier) = (Vec::new(), Vec::new());
    for _ in 0..logouts {
        let browser = cookie_login(&http, &base, "bench0").await;
        let tokens = code_flow(&http, &base, &app, &browser).await;
        let access = tokens["access_token"].as_str().expect("access").to_owned();
        let sid = serde_json::from_slice::<Value>(
            &base64_url(tokens["id_token"].as_str().expect("id").split('.').nth(1).expect("claims")).expect("b64"),
        )
        .expect("claims")["sid"]
            .as_str()
            .expect("sid")
            .to_owned();
        assert!(verifier.verify(&access).await.is_ok(), "the app's token verifies before the sign-out");
        let started = Instant::now();
        let response = http
            .post(format!("{base}/v1/logout"))
            .header("cookie", &browser.cookie)
            .header("x-csrf-token", &browser.csrf)
            .send()
            .await
            .expect("logout");
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        // The verifier, polled every 0.2 ms until it refuses.
        loop {
            if let Err(Rejection::Revoked) = verifier.verify(&access).await {
                to_verifier.push(started.elapsed());
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "the verifier never refused the token");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        loop {
            let arrived = received.arrived.notified();
            if let Some(at) = received.at.lock().unwrap_or_else(|p| p.into_inner()).get(&sid) {
                to_back_channel.push(at.duration_since(started));
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "no logout token arrived");
            let _ = tokio::time::timeout(Duration::from_millis(100), arrived).await;
        }
    }
    println!("from a sign-out at latchkey (POST /v1/logout) to:");
    summary("  the app's back-channel endpoint receiving its logout token", to_back_channel);
    summary("  the embeddable verifier refusing the app's access token", to_verifier);
}
