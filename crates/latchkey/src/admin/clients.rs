//! `latchkey client ...`: the apps that sign their users in through latchkey (API.md, "Single
//! sign-on for other apps"). A confidential client's secret is printed once, when it is made
//! or rotated; only its hash is kept, so it cannot be shown again.

use std::io::Write;

use latchkey_core::Latchkey;
use latchkey_core::clients::{Client, ClientId, IdTokenAlg, NewClient, RegisteredUri};
use serde_json::{Value, json};

use super::{AdminError, stamp};

/// `latchkey client add`.
#[derive(Debug, clap::Args)]
pub struct ClientAddArgs {
    /// The app's name, as users see it on the consent page and in their device list.
    name: String,
    /// A redirect URI, exactly as the app will send it (repeat for several).
    #[arg(long = "redirect-uri", required = true)]
    redirect_uris: Vec<String>,
    /// A public client (a single-page or mobile app): no secret.
    #[arg(long)]
    public: bool,
    /// Where RP-initiated logout may send the browser afterwards (repeat for several).
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// Where back-channel logout tokens are posted.
    #[arg(long)]
    backchannel_logout_uri: Option<String>,
    /// Spare users the consent page (a first-party app).
    #[arg(long)]
    skip_consent: bool,
    /// How the app's ID tokens are signed.
    #[arg(long, default_value = "RS256", value_parser = ["RS256", "ES256", "EdDSA"])]
    id_token_alg: String,
    /// Print `{"client_id", "client_secret"?}`.
    #[arg(long)]
    json: bool,
}

fn client_id(text: &str) -> Result<ClientId, AdminError> {
    ClientId::parse(text).ok_or_else(|| AdminError::NotFound(format!("no client {text}")))
}

/// `latchkey client add NAME --redirect-uri URI ...`.
pub async fn add(service: &Latchkey, args: ClientAddArgs, out: &mut impl Write) -> Result<(), AdminError> {
    let id_token_alg = IdTokenAlg::parse(&args.id_token_alg)
        .ok_or_else(|| AdminError::Usage(format!("unknown ID token algorithm {}", args.id_token_alg)))?;
    let registered = service
        .register_client(NewClient {
            name: args.name,
            redirect_uris: args.redirect_uris,
            post_logout_redirect_uris: args.post_logout_redirect_uris,
            backchannel_logout_uri: args.backchannel_logout_uri,
            public: args.public,
            skip_consent: args.skip_consent,
            id_token_alg,
        })
        .await?;
    let client = &registered.client;
    if args.json {
        let mut answer = json!({ "client_id": client.id.as_str() });
        if let Some(secret) = &registered.secret {
            answer["client_secret"] = json!(secret.expose());
        }
        writeln!(out, "{answer}")?;
        return Ok(());
    }
    writeln!(out, "registered {} ({})", client.name, if client.is_public() { "public" } else { "confidential" })?;
    writeln!(out, "client_id:     {}", client.id)?;
    if let Some(secret) = &registered.secret {
        writeln!(out, "client_secret: {}", secret.expose())?;
        writeln!(out, "(shown this once: only its hash is kept; `latchkey client rotate-secret` makes a new one)")?;
    }
    Ok(())
}

fn uri_texts(uris: &[RegisteredUri]) -> Vec<&str> {
    uris.iter().map(RegisteredUri::as_str).collect()
}

/// What `client list --json` shows of a client: everything but the secret's hash.
fn listed(client: &Client) -> Value {
    json!({
        "client_id": client.id.as_str(),
        "name": client.name,
        "public": client.is_public(),
        "redirect_uris": uri_texts(&client.redirect_uris),
        "post_logout_redirect_uris": uri_texts(&client.post_logout_redirect_uris),
        "backchannel_logout_uri": client.backchannel_logout_uri.as_ref().map(|uri| uri.as_str()),
        "skip_consent": client.skip_consent,
        "id_token_alg": client.id_token_alg.as_str(),
        "created_at": stamp(client.created_at),
    })
}

/// `latchkey client list [--json]`.
pub async fn list(service: &Latchkey, as_json: bool, out: &mut impl Write) -> Result<(), AdminError> {
    let clients = service.clients().await?;
    if as_json {
        writeln!(out, "{}", Value::Array(clients.iter().map(listed).collect()))?;
        return Ok(());
    }
    writeln!(out, "{:<22}  {:<24}  {:<12}  redirect URIs", "client_id", "name", "type")?;
    for client in &clients {
        let kind = if client.is_public() { "public" } else { "confidential" };
        let uris = uri_texts(&client.redirect_uris).join(" ");
        writeln!(out, "{:<22}  {:<24}  {:<12}  {uris}", client.id, client.name, kind)?;
    }
    Ok(())
}

/// `latchkey client remove ID`.
pub async fn remove(service: &Latchkey, id: &str, out: &mut impl Write) -> Result<(), AdminError> {
    service.remove_client(&client_id(id)?).await?;
    writeln!(out, "removed client {id}")?;
    Ok(())
}

/// `latchkey client rotate-secret ID [--json]`: the old secret stops working at once.
pub async fn rotate_secret(
    service: &Latchkey,
    id: &str,
    as_json: bool,
    out: &mut impl Write,
) -> Result<(), AdminError> {
    let secret = service.rotate_client_secret(&client_id(id)?).await?;
    if as_json {
        writeln!(out, "{}", json!({ "client_id": id, "client_secret": secret.expose() }))?;
    } else {
        writeln!(out, "client_secret: {}", secret.expose())?;
        writeln!(out, "(shown this once; the previous secret no longer works)")?;
    }
    Ok(())
}

/// `latchkey client deliveries ID [--json]`: the app's logout deliveries, newest first.
pub async fn deliveries(service: &Latchkey, id: &str, as_json: bool, out: &mut impl Write) -> Result<(), AdminError> {
    let client = client_id(id)?;
    if service.client(&client).await?.is_none() {
        return Err(AdminError::NotFound(format!("no client {id}")));
    }
    let deliveries = service.deliveries(&client).await?;
    if as_json {
        let listed: Vec<Value> = deliveries
            .iter()
            .map(|delivery| {
                json!({
                    "sid": delivery.sso_session.to_string(),
                    "state": delivery.state.as_str(),
                    "attempts": delivery.attempts,
                    "next_attempt_at": delivery.next_attempt_at.map(stamp),
                    "ended_at": stamp(delivery.ended_at),
                })
            })
            .collect();
        writeln!(out, "{}", Value::Array(listed))?;
        return Ok(());
    }
    writeln!(out, "{:<36}  {:<9}  {:>8}  {:<20}  next attempt", "sid (sign-in)", "state", "attempts", "ended")?;
    for delivery in &deliveries {
        let next = delivery.next_attempt_at.map(stamp).unwrap_or_else(|| "-".into());
        writeln!(
            out,
            "{:<36}  {:<9}  {:>8}  {:<20}  {next}",
            delivery.sso_session,
            delivery.state.as_str(),
            delivery.attempts,
            stamp(delivery.ended_at)
        )?;
    }
    Ok(())
}
