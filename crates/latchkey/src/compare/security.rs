//! Security: the attacks the articles name, the defence latchkey applies against each, and the
//! tests that prove it — found by name in the test suite this binary was built with (its
//! sources are compiled in), not listed by hand.

use super::report::{Assertion, Section, Verdict};

/// The test suites' sources, as built: the black-box API suite and the browser tests.
const SUITES: [(&str, &str); 11] = [
    ("api/session_attacks.rs", include_str!("../../tests/api/session_attacks.rs")),
    ("api/cookie_sessions.rs", include_str!("../../tests/api/cookie_sessions.rs")),
    ("api/hybrid.rs", include_str!("../../tests/api/hybrid.rs")),
    ("api/token_sessions.rs", include_str!("../../tests/api/token_sessions.rs")),
    ("api/either_kind.rs", include_str!("../../tests/api/either_kind.rs")),
    ("api/pages.rs", include_str!("../../tests/api/pages.rs")),
    ("api/verify.rs", include_str!("../../tests/api/verify.rs")),
    ("api/sso.rs", include_str!("../../tests/api/sso.rs")),
    ("browser/attacks.test.mjs", include_str!("../../../../browser/tests/attacks.test.mjs")),
    ("browser/playground.test.mjs", include_str!("../../../../browser/tests/playground.test.mjs")),
    ("browser/csp.test.mjs", include_str!("../../../../browser/tests/csp.test.mjs")),
];

/// The names of the tests in a suite's source: Rust test functions and `node:test` tests.
fn test_names(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut after_attribute = false;
    for line in source.lines().map(str::trim) {
        if line == "#[test]" || line == "#[tokio::test]" {
            after_attribute = true;
            continue;
        }
        if after_attribute && line.contains("fn ") {
            if let Some(name) = line.split("fn ").nth(1).and_then(|rest| rest.split('(').next()) {
                names.push(name.trim().to_owned());
            }
            after_attribute = false;
        }
        if let Some(name) = line.strip_prefix("test('").and_then(|rest| rest.split("', ").next()) {
            names.push(name.replace("\\'", "'"));
        }
    }
    names
}

/// One attack: who it threatens, latchkey's defence, and the words that name its tests.
struct Attack {
    name: &'static str,
    threatens: &'static str,
    defence: &'static str,
    keywords: &'static [&'static str],
}

const ATTACKS: [Attack; 4] = [
    Attack {
        name: "CSRF (a foreign page makes the browser send its cookie)",
        threatens: "cookie sessions, the hybrid",
        defence: "every unsafe cookie-carried request needs the session's CSRF token and an allowed Origin; \
                  a cross-site Sec-Fetch-Site without Origin is refused; the cookie is SameSite=Lax",
        keywords: &["csrf", "cross_site", "another origin", "other origin", "another site"],
    },
    Attack {
        name: "XSS token theft (a script reads a stored token)",
        threatens: "tokens kept where scripts read them",
        defence: "cookies are HttpOnly; the hybrid keeps both tokens in HttpOnly cookies and gives the page only a \
                  CSRF token; the pages run no inline script under a strict CSP with Trusted Types",
        keywords: &["httponly", "cannot read", "csp violation"],
    },
    Attack {
        name: "replay of a stolen credential",
        threatens: "a token before its exp; a session id until it ends",
        defence: "revocation reaches every check at once (the sid denylist, the feed); a reused refresh token \
                  ends its session; a logged-out cookie is dead on the server; a replayed code revokes what it issued",
        keywords: &["replay", "reuse", "revoked", "dead on the server"],
    },
    Attack {
        name: "session fixation",
        threatens: "cookie sessions",
        defence: "a login always makes a new session with a new secret and never takes one the client sent",
        keywords: &["fixation", "never_reuses", "never reuses"],
    },
];

pub(crate) fn measure() -> Section {
    let all: Vec<(&str, String)> = SUITES
        .iter()
        .flat_map(|(suite, source)| test_names(source).into_iter().map(move |name| (*suite, name)))
        .collect();
    let mut table =
        vec![["attack", "threatens", "latchkey's defence", "tests that prove it"].map(str::to_owned).to_vec()];
    let mut counts = Vec::new();
    for attack in &ATTACKS {
        let proving: Vec<String> = all
            .iter()
            .filter(|(_, name)| {
                let lower = name.to_lowercase();
                attack.keywords.iter().any(|keyword| lower.contains(keyword))
            })
            .map(|(suite, name)| format!("`{suite}`: {name}"))
            .collect();
        counts.push(proving.len());
        table.push(vec![
            attack.name.to_owned(),
            attack.threatens.to_owned(),
            attack.defence.to_owned(),
            format!("{} {}: {}", proving.len(), if proving.len() == 1 { "test" } else { "tests" }, proving.join("; ")),
        ]);
    }
    let verdict = |count: usize| if count > 0 { Verdict::HoldsWithMitigation } else { Verdict::Holds };
    Section {
        title: "Security".into(),
        method: format!(
            "The attacks the articles name, the defence latchkey applies, and the tests of this build's suites \
             whose names say they prove it ({} tests read from {} suites; the names are matched, not listed by hand).",
            all.len(),
            SUITES.len()
        ),
        table,
        charts: Vec::new(),
        assertions: vec![
            Assertion {
                claim: "\"CSRF 공격에 취약 (Cookie가 자동 전송됨)\" (sessions are open to CSRF: the cookie is sent by itself)"
                    .into(),
                figure: format!("{} tests prove the CSRF rule refuses such requests", counts[0]),
                verdict: verdict(counts[0]),
            },
            Assertion {
                claim: "\"XSS에 취약 (읽을 수 있는 위치에 저장된 경우)\" (tokens are open to XSS when stored where scripts \
                        read them)"
                    .into(),
                figure: format!("{} tests prove the credentials stay out of scripts' reach", counts[1]),
                verdict: verdict(counts[1]),
            },
            Assertion {
                claim: "\"Token 만료 전 탈취 시 리플레이 공격 가능\" (a token stolen before it expires can be replayed)"
                    .into(),
                figure: format!(
                    "{} tests prove revoked or reused credentials are refused; see Revocation for how long a bare \
                     JWT stays usable",
                    counts[2]
                ),
                verdict: verdict(counts[2]),
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_names_are_read_from_rust_and_node_sources() {
        let rust =
            "#[tokio::test]\nasync fn a_login_never_reuses_a_cookie() {\n}\n#[test]\nfn plain() {}\nfn helper() {}";
        assert_eq!(test_names(rust), ["a_login_never_reuses_a_cookie", "plain"]);
        let node = "test('cookie mode: the script cannot read the HttpOnly cookie', async () => {";
        assert_eq!(test_names(node), ["cookie mode: the script cannot read the HttpOnly cookie"]);
    }

    #[test]
    fn every_attack_is_proven_by_tests_of_this_build() {
        let section = measure();
        for row in section.table.iter().skip(1) {
            let count: usize = row[3].split(' ').next().and_then(|n| n.parse().ok()).unwrap_or_default();
            assert!(count > 0, "no test proves: {}", row[0]);
        }
    }
}
