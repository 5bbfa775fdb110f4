//! Data on the wire: what each way of staying signed in adds to every request, as the exact
//! header line a client sends, for credentials this run's instances issued.

use std::path::Path;
use std::time::Instant;

use reqwest::StatusCode;

use super::chart::BarChart;
use super::local::{CHEAP_HASHING, LocalServer, PASSWORD, expect, set_cookie};
use super::report::{Assertion, Section, Verdict};
use super::{CompareError, progress};

/// Bytes of a header line as sent: name, colon, space, value, CRLF.
fn line_bytes(name: &str, value: &str) -> usize {
    name.len() + 2 + value.len() + 2
}

/// The bytes a credential adds to every request: the session cookie, and the smallest and the
/// largest bearer access token (over the signing algorithms).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WireFigures {
    /// The cookie session's `Cookie` line.
    pub(crate) cookie: usize,
    /// The smallest `Authorization` line.
    pub(crate) smallest_token: usize,
    /// The largest `Authorization` line.
    pub(crate) largest_token: usize,
}

/// Measures the credentials of every kind and signing algorithm.
pub(crate) async fn measure(binary: &Path, started: Instant) -> Result<(Section, WireFigures), CompareError> {
    let mut rows: Vec<(String, usize)> = Vec::new();
    for alg in ["EdDSA", "ES256", "RS256", "HS256"] {
        progress(started, &format!("  an instance signing with {alg}"));
        let [memory, iterations] = CHEAP_HASHING;
        let server = LocalServer::start(binary, &[("LATCHKEY_SIGNING_ALG", alg), memory, iterations])?;
        server.sign_up("wire").await?;
        if alg == "EdDSA" {
            let (cookie, _) = server.cookie_login("wire").await?;
            rows.push(("cookie session (opaque id)".into(), line_bytes("Cookie", &cookie)));
            let form = [("grant_type", "password"), ("username", "wire"), ("password", PASSWORD)];
            let response =
                server.http.post(format!("{}/v1/token?delivery=cookie", server.base)).form(&form).send().await?;
            expect(response.status(), StatusCode::OK, "hybrid login")?;
            let access = set_cookie(response.headers(), "latchkey_at")?;
            let refresh = set_cookie(response.headers(), "latchkey_rt")?;
            rows.push(("hybrid: access token in a cookie (EdDSA)".into(), line_bytes("Cookie", &access)));
            rows.push((
                "hybrid: + refresh cookie, on a refresh only".into(),
                line_bytes("Cookie", &format!("{access}; {refresh}")),
            ));
        }
        let tokens = server.token_login("wire").await?;
        let access = tokens["access_token"].as_str().unwrap_or_default();
        if access.is_empty() {
            return Err(CompareError::Run(format!("{alg}: no access token")));
        }
        rows.push((format!("bearer access token ({alg})"), line_bytes("Authorization", &format!("Bearer {access}"))));
    }
    let cookie = rows.first().map_or(1, |(_, bytes)| *bytes).max(1);
    let mut table = vec![vec![
        "credential".to_owned(),
        "bytes per request".to_owned(),
        "MB per million requests".to_owned(),
        "× the session cookie".to_owned(),
    ]];
    for (label, bytes) in &rows {
        table.push(vec![
            label.clone(),
            bytes.to_string(),
            format!("{:.1}", *bytes as f64),
            format!("{:.2}", *bytes as f64 / cookie as f64),
        ]);
    }
    let bearers: Vec<usize> =
        rows.iter().filter(|(label, _)| label.starts_with("bearer")).map(|(_, bytes)| *bytes).collect();
    let (smallest, largest) =
        (bearers.iter().copied().min().unwrap_or_default(), bearers.iter().copied().max().unwrap_or_default());
    let verdict = if smallest > cookie { Verdict::Holds } else { Verdict::DoesNotHold };
    let figures = WireFigures { cookie, smallest_token: smallest, largest_token: largest };
    let section = Section {
        title: "Data on the wire".into(),
        method: "Each credential as the header line a client sends with every request (name, value, CRLF), \
                 issued by an instance of this build for each signing algorithm. A million requests carry a \
                 million times as many bytes, so the MB column equals the bytes column."
            .into(),
        table,
        charts: vec![BarChart {
            file: "wire.svg".into(),
            title: "Bytes a credential adds to every request".into(),
            unit: "bytes per request".into(),
            bars: rows.iter().map(|(label, bytes)| (label.clone(), *bytes as f64)).collect(),
        }],
        assertions: vec![Assertion {
            claim: "\"토큰 크기가 세션 ID보다 커서 네트워크 비용 증가\" (a token is larger than a session id, so \
                    every request costs more to send)"
                .into(),
            figure: format!(
                "session cookie {cookie} B per request; access token {smallest}–{largest} B ({:.1}–{:.1}×)",
                smallest as f64 / cookie as f64,
                largest as f64 / cookie as f64
            ),
            verdict,
        }],
    };
    Ok((section, figures))
}
