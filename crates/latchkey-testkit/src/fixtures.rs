//! What every kind of test agrees on: the password accounts are made with, the public origin,
//! the instant in-process tests start at, and the cheap Argon2 parameters that keep sign-ups
//! and logins fast in tests (never in a deployment).

use latchkey_core::accounts::Argon2Settings;
use time::OffsetDateTime;

/// A password that passes the policy.
pub const PASSWORD: &str = "correct horse battery";

/// The public URL's origin in tests (the default public URL).
pub const ORIGIN: &str = "http://localhost:8080";

/// Argon2id at its cheapest: hashes stay real Argon2id, at a fraction of the cost.
pub fn cheap_argon2() -> Argon2Settings {
    Argon2Settings { memory_kib: 256, iterations: 1, parallelism: 1 }
}

/// [`cheap_argon2`] as a server process's environment.
pub const CHEAP_ARGON2_ENV: [(&str, &str); 2] =
    [("LATCHKEY_ARGON2_MEMORY_KIB", "256"), ("LATCHKEY_ARGON2_ITERATIONS", "1")];

/// The instant tests with a fixed clock start at: 2030-03-17, far from any edge of time.
pub fn fixed_instant() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
