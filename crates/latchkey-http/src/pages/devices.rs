//! The account page's device list: sessions described as people recognise them — "Firefox 120
//! on Windows 10", "signed in 3 hours ago" — rather than as raw headers and timestamps.

use std::sync::LazyLock;

use latchkey_core::sessions::{Session, SessionKind};
use time::OffsetDateTime;
use time::macros::format_description;
use woothee::parser::Parser;
use woothee::woothee::VALUE_UNKNOWN;

use crate::wire::rfc3339;

static USER_AGENTS: LazyLock<Parser> = LazyLock::new(Parser::new);

/// Longest device name shown, in characters.
const MAX_NAME: usize = 60;

/// One row of the device list.
#[derive(Debug, Clone)]
pub(crate) struct DeviceRow {
    /// The public session id (the revoke form's target).
    pub id: String,
    /// "Chrome 156 on Linux".
    pub name: String,
    /// The user agent as sent, for those who want it.
    pub user_agent: String,
    /// How the session is carried, in words.
    pub kind: &'static str,
    /// The login's address, or "unknown".
    pub ip: String,
    /// When it signed in.
    pub created: Moment,
    /// When it was last seen (to the sliding-renewal interval).
    pub last_seen: Moment,
    /// Whether it is the session this page was requested with.
    pub current: bool,
}

impl DeviceRow {
    /// Describes `session` as of `now`; `current` marks the caller's own; `app_name` names
    /// the app of an app's session.
    pub(crate) fn new(session: &Session, now: OffsetDateTime, current: bool, app_name: Option<&str>) -> Self {
        let user_agent = session.client.user_agent.clone().unwrap_or_default();
        let app = session.app.as_ref().map(|_| app_name.unwrap_or("A removed app"));
        Self {
            id: session.id.to_string(),
            name: app.map_or_else(|| describe_user_agent(&user_agent), |name| name.chars().take(MAX_NAME).collect()),
            user_agent,
            kind: match (session.kind, app) {
                (_, Some(_)) => "App (single sign-on)",
                (SessionKind::Cookie, None) => "Cookie session",
                (SessionKind::Token, None) => "Tokens (access + refresh)",
            },
            ip: session.client.ip.clone().unwrap_or_else(|| "unknown".into()),
            created: Moment::new(session.created_at, now),
            last_seen: Moment::new(session.last_seen_at, now),
            current,
        }
    }
}

/// A point in time for people and machines: `<time datetime="{machine}">{human} ({relative})</time>`.
#[derive(Debug, Clone)]
pub(crate) struct Moment {
    /// RFC 3339, for the `datetime` attribute.
    pub machine: String,
    /// "2026-11-30 09:20 UTC".
    pub human: String,
    /// "3 minutes ago", "in 2 days".
    pub relative: String,
}

impl Moment {
    /// `at`, described as seen from `now`.
    pub(crate) fn new(at: OffsetDateTime, now: OffsetDateTime) -> Self {
        let human =
            at.format(format_description!("[year]-[month]-[day] [hour]:[minute] UTC")).unwrap_or_else(|_| rfc3339(at));
        Self { machine: rfc3339(at), human, relative: relative(at, now) }
    }
}

/// "just now", "5 minutes ago", "in 3 hours": the largest whole unit.
fn relative(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let seconds = (at - now).whole_seconds();
    let span = seconds.unsigned_abs();
    if span < 60 {
        return "just now".into();
    }
    let (count, unit) = match span {
        ..3_600 => (span / 60, "minute"),
        3_600..86_400 => (span / 3_600, "hour"),
        _ => (span / 86_400, "day"),
    };
    let plural = if count == 1 { "" } else { "s" };
    if seconds < 0 { format!("{count} {unit}{plural} ago") } else { format!("in {count} {unit}{plural}") }
}

/// A user agent as a person would name it: "Firefox 120 on Windows 10", "Safari 17 on
/// iPhone", "curl (HTTP library)", else the agent's first product token.
pub(crate) fn describe_user_agent(user_agent: &str) -> String {
    let known = |value: &str| !value.is_empty() && value != VALUE_UNKNOWN;
    let described = match USER_AGENTS.parse(user_agent) {
        Some(found) if found.browser_type == "browser" && known(found.name) => {
            let major = found.version.split('.').next().filter(|major| known(major));
            let browser = major.map_or_else(|| found.name.to_owned(), |major| format!("{} {major}", found.name));
            if known(found.os) { format!("{browser} on {}", found.os) } else { browser }
        }
        Some(found) if found.name == "HTTP Library" && known(found.version) => {
            format!("{} (HTTP library)", found.version)
        }
        _ => user_agent.split_whitespace().next().map(|product| product.replacen('/', " ", 1)).unwrap_or_default(),
    };
    if described.is_empty() {
        return "Unknown device".into();
    }
    described.chars().take(MAX_NAME).collect()
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    #[test]
    fn user_agents_read_as_browser_version_and_system() {
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0",
                "Firefox 120 on Windows 10",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
                "Safari 17 on iPhone",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
                "Chrome 120 on Android",
            ),
            ("curl/8.5.0", "curl (HTTP library)"),
            ("reqwest/0.12", "reqwest 0.12"),
            ("", "Unknown device"),
            ("   ", "Unknown device"),
        ];
        for (agent, expected) in cases {
            assert_eq!(describe_user_agent(agent), expected, "{agent}");
        }
        assert_eq!(describe_user_agent(&"x".repeat(500)).chars().count(), MAX_NAME);
    }

    #[test]
    fn moments_read_in_the_largest_whole_unit() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        assert_eq!(relative(now - Duration::seconds(30), now), "just now");
        assert_eq!(relative(now - Duration::minutes(1), now), "1 minute ago");
        assert_eq!(relative(now - Duration::minutes(59), now), "59 minutes ago");
        assert_eq!(relative(now - Duration::hours(3), now), "3 hours ago");
        assert_eq!(relative(now + Duration::days(7), now), "in 7 days");
        assert_eq!(Moment::new(now, now).human, "2024-10-04 00:00 UTC");
    }
}
