//! Revocation: after "log out everywhere", how long each credential keeps working where it is
//! checked — a cookie and an access token at latchkey, an access token at a service holding
//! only the JWKS (a bare JWT design: until `exp`), and at a service with the embeddable
//! verifier (the JWKS plus the revocation feed).

use std::path::Path;
use std::time::{Duration, Instant};

use latchkey_core::tokens::VerifyingKeys;
use latchkey_verifier::{Verifier, VerifierConfig};
use reqwest::StatusCode;
use serde_json::json;
use time::OffsetDateTime;

use super::chart::BarChart;
use super::local::{CHEAP_HASHING, LocalServer, SERVICE_TOKEN, expect};
use super::report::{Assertion, Section, Verdict};
use super::{CompareError, Effort, ms, percentile, progress};

/// How often a credential is tried again while it still works.
const POLL: Duration = Duration::from_millis(2);
/// How often the JWKS-only service is asked (it only changes its mind at `exp`).
const SLOW_POLL: Duration = Duration::from_millis(50);

/// Tries `still_works` until it says no; the time from `since`.
async fn refused_after<F, Fut>(since: Instant, every: Duration, still_works: F) -> Result<Duration, CompareError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<bool, CompareError>>,
{
    loop {
        if !still_works().await? {
            return Ok(since.elapsed());
        }
        if since.elapsed() > Duration::from_secs(600) {
            return Err(CompareError::Run("a revoked credential still worked after 10 minutes".into()));
        }
        tokio::time::sleep(every).await;
    }
}

pub(crate) async fn measure(binary: &Path, effort: &Effort, started: Instant) -> Result<Section, CompareError> {
    let ttl = format!("{}s", effort.access_ttl.as_secs());
    let [memory, iterations] = CHEAP_HASHING;
    let server = LocalServer::start(
        binary,
        &[("LATCHKEY_ACCESS_TOKEN_TTL", ttl.as_str()), ("LATCHKEY_SERVICE_TOKEN", SERVICE_TOKEN), memory, iterations],
    )?;
    server.sign_up("revoked").await?;
    let (cookie, _) = server.cookie_login("revoked").await?;
    // Token sessions made over half a token lifetime, so their remaining lifetimes at the
    // revocation are spread as a client's would be.
    progress(started, &format!("  {} token sessions over half a {ttl} token lifetime", effort.revocations));
    let mut tokens = Vec::new();
    let spacing = effort.access_ttl / 2 / u32::try_from(effort.revocations.max(1)).unwrap_or(u32::MAX);
    for _ in 0..effort.revocations {
        let answer = server.token_login("revoked").await?;
        tokens.push(answer["access_token"].as_str().unwrap_or_default().to_owned());
        tokio::time::sleep(spacing).await;
    }
    let jwks = server.http.get(format!("{}/.well-known/jwks.json", server.base)).send().await?.text().await?;
    let jwks_only = VerifyingKeys::from_jwks(&jwks, &server.base, &server.base)
        .map_err(|err| CompareError::Run(format!("the JWKS: {err}")))?;
    let config =
        VerifierConfig::new(server.base.clone()).with_endpoint(server.base.clone()).with_service_token(SERVICE_TOKEN);
    let verifier =
        Verifier::connect(config).await.map_err(|err| CompareError::Run(format!("the embeddable verifier: {err}")))?;
    for token in &tokens {
        let at_latchkey = server.me_with("authorization", &format!("Bearer {token}")).await?;
        expect(at_latchkey, StatusCode::OK, "an access token before the revocation")?;
        if verifier.verify(token).await.is_err() || jwks_only.verify(token, OffsetDateTime::now_utc()).is_err() {
            return Err(CompareError::Run("an access token did not verify before the revocation".into()));
        }
    }

    progress(started, "  log out everywhere; every credential is tried until it is refused");
    let since = Instant::now();
    let response = server
        .http
        .post(format!("{}/v1/logout", server.base))
        .bearer_auth(&tokens[0])
        .json(&json!({ "scope": "all" }))
        .send()
        .await?;
    expect(response.status(), StatusCode::NO_CONTENT, "log out everywhere")?;
    let cookie_after =
        refused_after(since, POLL, || async { Ok(server.me_with("cookie", &cookie).await? == StatusCode::OK) }).await?;
    let mut at_latchkey = Vec::new();
    let mut with_feed = Vec::new();
    for token in &tokens {
        at_latchkey.push(
            refused_after(since, POLL, || async {
                Ok(server.me_with("authorization", &format!("Bearer {token}")).await? == StatusCode::OK)
            })
            .await?,
        );
        with_feed.push(refused_after(since, POLL, || async { Ok(verifier.verify(token).await.is_ok()) }).await?);
    }
    progress(started, &format!("  waiting out the tokens' {ttl} lifetime at the JWKS-only service"));
    let mut jwks_alone = Vec::new();
    for token in &tokens {
        jwks_alone.push(
            refused_after(since, SLOW_POLL, || async {
                Ok(jwks_only.verify(token, OffsetDateTime::now_utc()).is_ok())
            })
            .await?,
        );
    }

    let rows = [
        ("cookie session", "latchkey", vec![cookie_after]),
        ("access token", "latchkey (signature + denylist)", at_latchkey),
        ("access token", "a service with the embeddable verifier (JWKS + feed)", with_feed),
        ("access token", "a service with only the JWKS (a bare JWT)", jwks_alone),
    ];
    let mut table =
        vec![["credential", "checked by", "n", "p50 (ms)", "p99 (ms)", "max (ms)"].map(str::to_owned).to_vec()];
    let mut bars = Vec::new();
    for (credential, checker, samples) in &rows {
        let max = samples.iter().copied().max().unwrap_or_default();
        table.push(vec![
            (*credential).to_owned(),
            (*checker).to_owned(),
            samples.len().to_string(),
            ms(percentile(samples, 50.0)),
            ms(percentile(samples, 99.0)),
            ms(max),
        ]);
        bars.push((format!("{credential}, {checker}"), percentile(samples, 99.0).as_secs_f64() * 1000.0));
    }
    let p99 = |index: usize| percentile(&rows[index].2, 99.0);
    let bare = &rows[3].2;
    Ok(Section {
        title: "Revocation".into(),
        method: format!(
            "One cookie session and {} token sessions of one user, the token sessions made over one access-token \
             lifetime ({ttl} in this run, the sessions made over half of it), then \"log out everywhere\" (`POST /v1/logout`, scope `all`). Each \
             credential is then tried where it is checked until it is refused: at latchkey (`GET /v1/me`), at a \
             service using latchkey's embeddable verifier, and at a service that verifies signatures against the \
             JWKS and nothing else. Times from the moment the logout was sent.",
            effort.revocations
        ),
        table,
        charts: vec![BarChart {
            file: "revocation.svg".into(),
            title: "How long a credential keeps working after log out everywhere (p99)".into(),
            unit: "milliseconds".into(),
            bars,
        }],
        assertions: vec![
            Assertion {
                claim: "\"세션 무효화 쉬움\", \"취소 및 강제 로그아웃 용이\" (a session is easy to revoke and to log out by \
                        force)"
                    .into(),
                figure: format!("the cookie was refused {} ms after the logout", ms(cookie_after)),
                verdict: Verdict::Holds,
            },
            Assertion {
                claim: "\"강제 만료 불가\", \"무효화 어려움\" (a token cannot be expired by force; it is hard to revoke)"
                    .into(),
                figure: format!(
                    "a service with only the JWKS accepted the tokens for up to {:.1} s after the logout (p50 {:.1} s: \
                     until each one's exp); latchkey refused them within {} ms (p99), the embeddable verifier within \
                     {} ms (p99)",
                    bare.iter().copied().max().unwrap_or_default().as_secs_f64(),
                    percentile(bare, 50.0).as_secs_f64(),
                    ms(p99(1)),
                    ms(p99(2))
                ),
                verdict: Verdict::HoldsWithMitigation,
            },
            Assertion {
                claim: "\"보안: 비교적 안전 (서버 통제 가능) / 탈취 시 위험\" (sessions are safer, the server is in \
                        control; a stolen token is dangerous)"
                    .into(),
                figure: format!(
                    "after the logout a stolen cookie worked for {} ms; a stolen bare JWT for up to {:.1} s, a token \
                     checked by latchkey for {} ms (p99)",
                    ms(cookie_after),
                    bare.iter().copied().max().unwrap_or_default().as_secs_f64(),
                    ms(p99(1))
                ),
                verdict: Verdict::HoldsWithMitigation,
            },
            Assertion {
                claim: "\"유연성: 단일 서비스 환경 / 여러 서비스 간 통합 가능\" (sessions serve one service; tokens \
                        work across services)"
                    .into(),
                figure: format!(
                    "another service verified the access tokens itself (the embeddable verifier: the JWKS and the \
                     revocation feed, no request to latchkey per check) and refused them {} ms (p99) after the \
                     logout; a cookie session reaches other services through latchkey's check (`/v1/verify`, see \
                     Server load) or single sign-on",
                    ms(p99(2))
                ),
                verdict: Verdict::HoldsWithMitigation,
            },
        ],
    })
}
