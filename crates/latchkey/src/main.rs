//! `latchkey`: the authentication server and its admin commands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use latchkey::settings::{Settings, SettingsArgs};
use latchkey::{admin, startup};
use tracing_subscriber::EnvFilter;

// Why mimalloc: the request path allocates and frees small buffers many times per request
// (headers, futures, extension maps), and glibc's allocator spent a measured share of a check's
// time consolidating them (scripts/loadtest, README "Measured").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// latchkey: cookie sessions and token sessions behind one session concept.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    settings: SettingsArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (zero configuration: SQLite and a signing key in the data directory).
    Serve,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect and revoke sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Register and manage the apps that sign their users in through latchkey (OpenID Connect).
    #[command(subcommand)]
    Client(ClientCommand),
    /// List the audit trail's security events, newest first.
    Audit(admin::AuditArgs),
    /// Measure what the configuration costs on this machine.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Measure session login against token login on this machine and write a report (Markdown
    /// and SVG charts).
    Compare(latchkey::compare::CompareArgs),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Time bare Argon2id hashes with the configured parameters (the baseline a login's
    /// latency is compared with).
    Argon2 {
        /// How many hashes to time.
        #[arg(long, default_value_t = 30)]
        samples: usize,
    },
    /// Serve the HTTP ceiling on the listen address: a bare axum handler answering a fixed
    /// JSON body, without latchkey's middleware (the baseline a check's throughput is compared
    /// with).
    Ceiling,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from standard input.
    Add {
        /// The username.
        username: String,
    },
    /// List users.
    List,
    /// List existing accounts whose names look like another's (same confusable skeleton) or
    /// that today's username rules would refuse; they are never changed.
    Collisions,
    /// Disable a user: no more logins, every session revoked.
    Disable {
        /// The username.
        username: String,
    },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// List a user's live sessions.
    List {
        /// The username.
        #[arg(long)]
        user: String,
    },
    /// Revoke one session by id, or every session of a user.
    Revoke {
        /// The session id.
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        id: Option<String>,
        /// Revoke every session of this user.
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register an app; prints its client_id and, for a confidential client, its secret (once).
    Add(admin::clients::ClientAddArgs),
    /// List the registered apps (never their secrets).
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Remove an app.
    Remove {
        /// Its client_id.
        id: String,
    },
    /// Give a confidential app a new secret (printed once); the old one stops working at once.
    RotateSecret {
        /// Its client_id.
        id: String,
        /// Print `{"client_id", "client_secret"}`.
        #[arg(long)]
        json: bool,
    },
    /// Show an app's back-channel logout deliveries (pending, delivered, failed), newest first.
    Deliveries {
        /// Its client_id.
        id: String,
        /// Print `[{"sid", "state", "attempts", "next_attempt_at"}]`.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Publish a new signing key now; it signs one JWKS cache lifetime later, so verifiers
    /// that cache the JWKS know it first. Older keys keep verifying until their tokens expire.
    Rotate {
        /// Emergency: sign with the new key at once (the current key is thought compromised).
        /// Verifiers that cached the JWKS must refetch it on the new `kid`.
        #[arg(long)]
        now: bool,
    },
    /// List signing keys.
    List,
}

fn init_tracing(json: bool) {
    let filter = EnvFilter::try_from_env("LATCHKEY_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.settings) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("latchkey: {err}");
            return ExitCode::from(2);
        }
    };
    init_tracing(settings.json_logs);
    match run(cli.command, &settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("latchkey: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: &Settings) -> Result<(), String> {
    if let Command::Bench(BenchCommand::Argon2 { samples }) = command {
        return bench_argon2(settings, samples);
    }
    if let Command::Bench(BenchCommand::Ceiling) = command {
        return latchkey::compare::serve_ceiling(settings.listen).await.map_err(|err| err.to_string());
    }
    if let Command::Compare(args) = &command {
        let report = latchkey::compare::run(args).await.map_err(|err| err.to_string())?;
        println!("{}", report.display());
        return Ok(());
    }
    if let Command::Serve = command {
        let app = startup::Application::build(settings).await.map_err(|err| err.to_string())?;
        return app.run_until(startup::shutdown_signal()).await.map_err(|err| err.to_string());
    }
    let service = startup::start_service(settings).await.map_err(|err| err.to_string())?;
    let mut out = std::io::stdout().lock();
    let result = match command {
        Command::Serve | Command::Bench(_) | Command::Compare(_) => Ok(()),
        Command::User(UserCommand::Add { username }) => admin::user_add(&service, &username, &mut out).await,
        Command::User(UserCommand::List) => admin::user_list(&service, &mut out).await,
        Command::User(UserCommand::Collisions) => admin::user_collisions(&service, &mut out).await,
        Command::User(UserCommand::Disable { username }) => admin::user_disable(&service, &username, &mut out).await,
        Command::Sessions(SessionsCommand::List { user }) => admin::sessions_list(&service, &user, &mut out).await,
        Command::Sessions(SessionsCommand::Revoke { id, user }) => {
            admin::sessions_revoke(&service, id.as_deref(), user.as_deref(), &mut out).await
        }
        Command::Keys(KeysCommand::Rotate { now }) => admin::keys_rotate(&service, now, &mut out).await,
        Command::Keys(KeysCommand::List) => admin::keys_list(&service, &mut out).await,
        Command::Client(ClientCommand::Add(args)) => admin::clients::add(&service, args, &mut out).await,
        Command::Client(ClientCommand::List { json }) => admin::clients::list(&service, json, &mut out).await,
        Command::Client(ClientCommand::Remove { id }) => admin::clients::remove(&service, &id, &mut out).await,
        Command::Client(ClientCommand::Deliveries { id, json }) => {
            admin::clients::deliveries(&service, &id, json, &mut out).await
        }
        Command::Client(ClientCommand::RotateSecret { id, json }) => {
            admin::clients::rotate_secret(&service, &id, json, &mut out).await
        }
        Command::Audit(args) => admin::audit(&service, &args, &mut out).await,
    };
    result.map_err(|err| err.to_string())
}

/// Prints the median and mean of `samples` bare Argon2id hashes.
fn bench_argon2(settings: &Settings, samples: usize) -> Result<(), String> {
    let hasher = latchkey_core::accounts::PasswordHasher::new(settings.argon2, 1).map_err(|err| err.to_string())?;
    let mut times = (0..samples.max(1))
        .map(|_| hasher.time_bare_hash())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| err.to_string())?;
    times.sort();
    let median = times[times.len() / 2].as_secs_f64() * 1000.0;
    let mean = times.iter().map(|t| t.as_secs_f64()).sum::<f64>() * 1000.0 / times.len() as f64;
    let a = settings.argon2;
    println!(
        "argon2id m={} t={} p={}: median {median:.2} ms, mean {mean:.2} ms over {} hashes",
        a.memory_kib,
        a.iterations,
        a.parallelism,
        times.len()
    );
    Ok(())
}
