//! Every parser of a presented credential, on arbitrary bytes: access tokens (header, claims,
//! signature, against a real key set), refresh tokens, cookie secrets. None may panic, and
//! none may accept what latchkey did not mint.

#![no_main]

use std::sync::LazyLock;

use latchkey_core::keys::{self, KeySet, SigningAlgorithm};
use latchkey_core::secret::{SecretToken, ServerSecret};
use latchkey_core::tokens::{RefreshToken, TokenSettings};
use libfuzzer_sys::fuzz_target;
use time::{Duration, OffsetDateTime};

struct Keys {
    set: KeySet,
    secret: ServerSecret,
    now: OffsetDateTime,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let now = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let settings = TokenSettings {
        issuer: "http://localhost:8080".into(),
        audience: "http://localhost:8080".into(),
        access_ttl: Duration::minutes(10),
    };
    let stored: Vec<_> = [SigningAlgorithm::EdDSA, SigningAlgorithm::ES256, SigningAlgorithm::HS256]
        .into_iter()
        .map(|alg| keys::generate(alg, now).unwrap_or_else(|err| panic!("{err}")))
        .collect();
    let set =
        KeySet::build(&stored, None, SigningAlgorithm::EdDSA, settings, now).unwrap_or_else(|err| panic!("{err}"));
    Keys { set, secret: ServerSecret::generate().0, now }
});

fuzz_target!(|data: &[u8]| {
    let keys = &*KEYS;
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Nothing random can carry a valid signature under keys made in this process.
    assert!(keys.set.verify(text, keys.now).is_err(), "an unsigned input verified");
    assert!(RefreshToken::decode(text, &keys.secret).is_none(), "an unminted refresh token decoded");
    let _ = SecretToken::digest_presented(text);
});
