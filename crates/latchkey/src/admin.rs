//! The admin commands: users, sessions, keys and clients, run against the same store as the
//! server. A running server picks their revocations and key changes up within its sync
//! interval.

pub mod clients;

use std::io::{BufRead, IsTerminal, Write};

use latchkey_core::audit::{AuditFilter, AuditKind};
use latchkey_core::revocation::RevocationCause;
use latchkey_core::sessions::SessionId;
use latchkey_core::store::RevokeScope;
use latchkey_core::{AuthError, Latchkey};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The service refused or failed.
    #[error(transparent)]
    Service(#[from] AuthError),
    /// Reading the password or writing output failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// No such user or session.
    #[error("{0}")]
    NotFound(String),
    /// An argument that does not parse.
    #[error("{0}")]
    Usage(String),
}

fn stamp(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0).unwrap_or(at).format(&Rfc3339).unwrap_or_default()
}

/// Reads a password from standard input (one line), prompting when it is a terminal.
fn read_password() -> Result<String, AdminError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password for the new user (input is shown): ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// `latchkey user add NAME`: the password is read from standard input.
pub async fn user_add(service: &Latchkey, username: &str, out: &mut impl Write) -> Result<(), AdminError> {
    let password = read_password()?;
    let account = service.sign_up(username, password).await?;
    writeln!(out, "created {} ({})", account.username, account.id)?;
    Ok(())
}

/// `latchkey user list`.
pub async fn user_list(service: &Latchkey, out: &mut impl Write) -> Result<(), AdminError> {
    writeln!(out, "{:<36}  {:<24}  {:<20}  status", "id", "username", "created")?;
    for account in service.accounts().await? {
        let status = if account.disabled { "disabled" } else { "active" };
        writeln!(out, "{:<36}  {:<24}  {:<20}  {status}", account.id, account.username, stamp(account.created_at))?;
    }
    Ok(())
}

/// `latchkey user collisions`: existing accounts that today's username rules would not let
/// in — names that look like another account's (the same confusable skeleton, Unicode TS #39)
/// and names with characters outside the PRECIS IdentifierClass. They are listed, never
/// changed: each keeps logging in, and an operator decides. Prints nothing else when there are
/// none.
pub async fn user_collisions(service: &Latchkey, out: &mut impl Write) -> Result<(), AdminError> {
    let accounts = service.accounts().await?;
    let mut by_skeleton: std::collections::BTreeMap<String, Vec<&latchkey_core::Account>> = Default::default();
    for account in &accounts {
        by_skeleton.entry(account.username.skeleton()).or_default().push(account);
    }
    let mut found = 0;
    for group in by_skeleton.values().filter(|group| group.len() > 1) {
        found += 1;
        let names: Vec<String> = group
            .iter()
            .map(|account| format!("{:?} ({}, {})", account.username.as_str(), account.id, stamp(account.created_at)))
            .collect();
        writeln!(out, "look alike: {}", names.join(" ~ "))?;
    }
    for account in &accounts {
        if let Err(why) = latchkey_core::accounts::Username::parse_new(account.username.as_str()) {
            found += 1;
            writeln!(out, "not an identifier: {:?} ({}): {why}", account.username.as_str(), account.id)?;
        }
    }
    if found == 0 {
        writeln!(out, "no colliding or invalid usernames")?;
    }
    Ok(())
}

/// `latchkey user disable NAME`: the user can no longer log in and every session dies.
pub async fn user_disable(service: &Latchkey, username: &str, out: &mut impl Write) -> Result<(), AdminError> {
    let account = match service.disable_user(username).await {
        Err(AuthError::NotFound) => return Err(AdminError::NotFound(format!("no user {username:?}"))),
        other => other?,
    };
    writeln!(out, "disabled {} and revoked their sessions", account.username)?;
    Ok(())
}

/// `latchkey sessions list --user NAME`.
pub async fn sessions_list(service: &Latchkey, username: &str, out: &mut impl Write) -> Result<(), AdminError> {
    let account = service
        .account_by_name(username)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no user {username:?}")))?;
    writeln!(
        out,
        "{:<36}  {:<6}  {:<20}  {:<20}  {:<20}  {:<15}  user agent",
        "id", "kind", "created", "last seen", "expires", "ip"
    )?;
    for session in service.sessions(account.id).await? {
        writeln!(
            out,
            "{:<36}  {:<6}  {:<20}  {:<20}  {:<20}  {:<15}  {}",
            session.id,
            session.kind.as_str(),
            stamp(session.created_at),
            stamp(session.last_seen_at),
            stamp(session.absolute_expires_at),
            session.client.ip.as_deref().unwrap_or("-"),
            session.client.user_agent.as_deref().unwrap_or("-"),
        )?;
    }
    Ok(())
}

/// `latchkey sessions revoke ID` or `--user NAME`.
pub async fn sessions_revoke(
    service: &Latchkey,
    id: Option<&str>,
    username: Option<&str>,
    out: &mut impl Write,
) -> Result<(), AdminError> {
    let scope = match (id, username) {
        (Some(id), _) => RevokeScope::One(
            SessionId::parse(id).ok_or_else(|| AdminError::NotFound(format!("{id:?} is not a session id")))?,
        ),
        (None, Some(username)) => {
            let account = service
                .account_by_name(username)
                .await?
                .ok_or_else(|| AdminError::NotFound(format!("no user {username:?}")))?;
            RevokeScope::AllOf(account.id)
        }
        (None, None) => return Err(AdminError::NotFound("name a session id or --user".into())),
    };
    let revoked = service.revoke(scope, RevocationCause::Admin).await?;
    if revoked.is_empty() && id.is_some() {
        return Err(AdminError::NotFound("no live session with that id".into()));
    }
    writeln!(out, "revoked {} session(s)", revoked.len())?;
    Ok(())
}

/// `latchkey keys rotate [--now]`.
pub async fn keys_rotate(service: &Latchkey, at_once: bool, out: &mut impl Write) -> Result<(), AdminError> {
    let (key, starts_at) = service.rotate_keys(at_once).await?;
    if at_once {
        writeln!(out, "new signing key {} ({}) signs now", key.kid, key.alg)?;
    } else {
        writeln!(
            out,
            "new signing key {} ({}) published; it signs from {} (one JWKS cache lifetime from now)",
            key.kid,
            key.alg,
            stamp(starts_at)
        )?;
    }
    writeln!(out, "older keys keep verifying until their tokens expire")?;
    Ok(())
}

/// `latchkey keys list`.
pub async fn keys_list(service: &Latchkey, out: &mut impl Write) -> Result<(), AdminError> {
    writeln!(out, "{:<24}  {:<6}  {:<20}  {:<20}  status", "kid", "alg", "created", "retired")?;
    for (key, status) in service.key_statuses().await? {
        let retired = key.retired_at.map(stamp).unwrap_or_else(|| "-".into());
        let status = status.as_str();
        writeln!(out, "{:<24}  {:<6}  {:<20}  {:<20}  {status}", key.kid, key.alg, stamp(key.created_at), retired)?;
    }
    Ok(())
}

/// Filters of `latchkey audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only this user's events.
    #[arg(long)]
    user: Option<String>,
    /// Only events of this kind (sign_up, login_succeeded, login_failed, throttled, logout,
    /// session_revoked, refresh_reuse_detected, password_changed, user_disabled, key_rotated,
    /// consent_given, consent_denied, consent_withdrawn, app_authorized, code_refused,
    /// logout_delivery_failed).
    #[arg(long)]
    kind: Option<String>,
    /// Only events at or after this: an RFC 3339 time, or a duration ago (`1h`, `7d`).
    #[arg(long)]
    since: Option<String>,
    /// Only events before this: an RFC 3339 time, or a duration ago.
    #[arg(long)]
    until: Option<String>,
    /// At most this many events.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// A point in time given as RFC 3339 or as a duration before `now`.
fn point_in_time(text: &str, now: OffsetDateTime, flag: &str) -> Result<OffsetDateTime, AdminError> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    let ago = humantime::parse_duration(text)
        .map_err(|_| AdminError::Usage(format!("{flag} {text:?}: give an RFC 3339 time or a duration such as 1h")))?;
    let ago = time::Duration::try_from(ago).map_err(|_| AdminError::Usage(format!("{flag} {text:?}: too long")))?;
    Ok(now - ago)
}

/// `latchkey audit`: the trail, filtered, newest first.
pub async fn audit(service: &Latchkey, args: &AuditArgs, out: &mut impl Write) -> Result<(), AdminError> {
    let now = service.now();
    let user = match &args.user {
        Some(name) => Some(
            service.account_by_name(name).await?.ok_or_else(|| AdminError::NotFound(format!("no user {name:?}")))?.id,
        ),
        None => None,
    };
    let kind = match &args.kind {
        Some(name) => Some(AuditKind::parse(name).ok_or_else(|| {
            let known: Vec<&str> = AuditKind::ALL.iter().map(AuditKind::as_str).collect();
            AdminError::Usage(format!("--kind {name:?}: one of {}", known.join(", ")))
        })?),
        None => None,
    };
    let filter = AuditFilter {
        user,
        kind,
        since: args.since.as_deref().map(|text| point_in_time(text, now, "--since")).transpose()?,
        until: args.until.as_deref().map(|text| point_in_time(text, now, "--until")).transpose()?,
        limit: args.limit,
    };
    let events = service.audit_events(&filter).await?;
    if !args.json {
        writeln!(out, "{:<20}  {:<22}  {:<20}  {:<36}  {:<15}  detail", "at", "event", "user", "session", "ip")?;
    }
    for event in events {
        let user = event.username.as_ref().map(|name| name.as_str().to_owned());
        let session = event.session_id.map(|id| id.to_string());
        if args.json {
            let line = serde_json::json!({
                "at": stamp(event.at),
                "event": event.kind.as_str(),
                "user_id": event.user_id.map(|id| id.to_string()),
                "username": user,
                "session_id": session,
                "ip": event.ip,
                "detail": event.detail,
            });
            writeln!(out, "{line}")?;
        } else {
            let dash = |value: Option<String>| value.unwrap_or_else(|| "-".into());
            writeln!(
                out,
                "{:<20}  {:<22}  {:<20}  {:<36}  {:<15}  {}",
                stamp(event.at),
                event.kind.as_str(),
                dash(user),
                dash(session),
                dash(event.ip),
                dash(event.detail),
            )?;
        }
    }
    Ok(())
}
