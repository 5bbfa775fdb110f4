//! Logging in and refreshing: what each costs over HTTP against the cryptography at its heart,
//! a bare Argon2id hash with the same parameters (`latchkey bench argon2`) and a bare signature
//! of an access token's claims.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use latchkey_core::keys::{KeySet, SigningAlgorithm, generate};
use latchkey_core::tokens::{AccessClaims, TokenSettings};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::chart::BarChart;
use super::local::{CHEAP_HASHING, LocalServer, PASSWORD, expect};
use super::report::{Assertion, Section, Verdict};
use super::{CompareError, Effort, ms, percentile, progress};

/// The median of `latchkey bench argon2` with `hashing`, as it prints it.
fn bare_hash(binary: &Path, hashing: &[(&str, &str)], samples: usize) -> Result<Duration, CompareError> {
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars() {
        if name.starts_with("LATCHKEY_") {
            command.env_remove(name);
        }
    }
    command.envs(hashing.iter().copied());
    let output = command.args(["bench", "argon2", "--samples", &samples.to_string()]).output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let median = text
        .split("median ")
        .nth(1)
        .and_then(|rest| rest.split(" ms").next())
        .and_then(|number| number.parse::<f64>().ok())
        .ok_or_else(|| CompareError::Run(format!("latchkey bench argon2 printed: {text}")))?;
    Ok(Duration::from_secs_f64(median / 1000.0))
}

/// The median time of one bare EdDSA signature of an access token's claims.
fn bare_signature(samples: usize) -> Result<Duration, CompareError> {
    let now = OffsetDateTime::now_utc();
    let settings = TokenSettings {
        issuer: "http://127.0.0.1".into(),
        audience: "http://127.0.0.1".into(),
        access_ttl: time::Duration::minutes(10),
    };
    let key = generate(SigningAlgorithm::EdDSA, now).map_err(|err| CompareError::Run(err.to_string()))?;
    let set = KeySet::build(std::slice::from_ref(&key), None, SigningAlgorithm::EdDSA, settings, now)
        .map_err(|err| CompareError::Run(err.to_string()))?;
    let claims = AccessClaims {
        iss: "http://127.0.0.1".into(),
        sub: uuid_like(),
        aud: "http://127.0.0.1".into(),
        exp: now.unix_timestamp() + 600,
        iat: now.unix_timestamp(),
        nbf: None,
        jti: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        sid: uuid_like(),
        preferred_username: "compare".into(),
        client_id: None,
        scope: None,
    };
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        set.sign(&claims).map_err(|err| CompareError::Run(err.to_string()))?;
        times.push(started.elapsed());
    }
    Ok(percentile(&times, 50.0))
}

/// A value the length of an id (the claims' size is what matters here).
fn uuid_like() -> String {
    "00000000-0000-4000-8000-000000000000".into()
}

pub(crate) async fn measure(binary: &Path, effort: &Effort, started: Instant) -> Result<Section, CompareError> {
    // The default password hashing: this is what a login costs (`--quick`, meant for debug
    // builds in CI, hashes cheaply: the comparison with a bare hash holds for any parameters).
    let hashing: &[(&str, &str)] = if effort.quick { &CHEAP_HASHING } else { &[] };
    let parameters = if effort.quick { "cheap Argon2id (256 KiB, 1 pass)" } else { "the default Argon2id" };
    progress(started, &format!("  {} logins with {parameters}", effort.logins));
    let server = LocalServer::start(binary, hashing)?;
    server.sign_up("cost").await?;
    let body = json!({ "username": "cost", "password": PASSWORD });
    let mut logins = Vec::new();
    for _ in 0..effort.logins {
        let at = Instant::now();
        let response = server.http.post(format!("{}/v1/session", server.base)).json(&body).send().await?;
        expect(response.status(), StatusCode::OK, "login")?;
        logins.push(at.elapsed());
    }
    let hash = bare_hash(binary, hashing, effort.logins)?;
    let refreshes_wanted = effort.logins * 10;
    progress(started, &format!("  {refreshes_wanted} refreshes"));
    let mut refresh = server.token_login("cost").await?["refresh_token"].as_str().unwrap_or_default().to_owned();
    let mut refreshes = Vec::new();
    for _ in 0..refreshes_wanted {
        let at = Instant::now();
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
        let response = server.http.post(format!("{}/v1/token", server.base)).form(&form).send().await?;
        expect(response.status(), StatusCode::OK, "refresh")?;
        let answer: Value = response.json().await?;
        refreshes.push(at.elapsed());
        refresh = answer["refresh_token"].as_str().unwrap_or_default().to_owned();
    }
    let signature = bare_signature(refreshes_wanted.max(100))?;
    let (login, rotate) = (percentile(&logins, 50.0), percentile(&refreshes, 50.0));
    let table = vec![
        ["operation", "p50 (ms)", "p99 (ms)", "baseline", "baseline p50 (ms)", "× baseline"]
            .map(str::to_owned)
            .to_vec(),
        vec![
            "login (`POST /v1/session`)".into(),
            ms(login),
            ms(percentile(&logins, 99.0)),
            "a bare Argon2id hash, same parameters".into(),
            ms(hash),
            format!("{:.2}", login.as_secs_f64() / hash.as_secs_f64()),
        ],
        vec![
            "refresh (`POST /v1/token`, rotation)".into(),
            ms(rotate),
            ms(percentile(&refreshes, 99.0)),
            "a bare EdDSA signature of the claims".into(),
            ms(signature),
            format!("{:.1}", rotate.as_secs_f64() / signature.as_secs_f64()),
        ],
    ];
    Ok(Section {
        title: "Login and refresh".into(),
        method: format!(
            "{} logins one after another over HTTP on the embedded store with {parameters}, against the median \
             of as many bare hashes with the same parameters; {refreshes_wanted} refreshes, \
             each presenting the refresh token the previous one returned, against a bare EdDSA signature of an \
             access token's claims in this process.",
            effort.logins
        ),
        table,
        charts: vec![BarChart {
            file: "costs.svg".into(),
            title: "Login and refresh against their bare cryptography (p50)".into(),
            unit: "milliseconds".into(),
            bars: vec![
                ("login".into(), login.as_secs_f64() * 1000.0),
                ("bare Argon2id hash".into(), hash.as_secs_f64() * 1000.0),
                ("refresh".into(), rotate.as_secs_f64() * 1000.0),
                ("bare EdDSA signature".into(), signature.as_secs_f64() * 1000.0),
            ],
        }],
        assertions: vec![Assertion {
            claim: "\"Refresh Token 필수\" (token login needs refresh tokens: short-lived access tokens must be \
                    renewed)"
                .into(),
            figure: format!(
                "a refresh costs {} ms (p50), {:.0}× a bare signature but {:.0}× cheaper than a login ({} ms)",
                ms(rotate),
                rotate.as_secs_f64() / signature.as_secs_f64(),
                login.as_secs_f64() / rotate.as_secs_f64(),
                ms(login)
            ),
            verdict: Verdict::Holds,
        }],
    })
}
