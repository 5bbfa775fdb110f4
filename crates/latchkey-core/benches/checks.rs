//! The checks on the request path, on the real embedded store: a cookie check and a bearer
//! check as `/v1/verify` makes them (warm caches: the steady state), a full signature
//! verification per algorithm (what a cache miss costs), and a login against one bare Argon2id
//! hash with the same parameters.
//!
//! Run: `cargo bench -p latchkey-core --bench checks`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use latchkey_core::accounts::{Argon2Settings, PasswordHasher};
use latchkey_core::clock::SystemClock;
use latchkey_core::keys::{self, KeyCustody, KeySet, SigningAlgorithm};
use latchkey_core::sessions::{ClientInfo, Credential, SessionKind};
use latchkey_core::tokens::{AccessClaims, TokenSettings};
use latchkey_core::{Latchkey, Policy};
use latchkey_sql::SqlStore;
use latchkey_testkit::fixtures::PASSWORD;
use time::OffsetDateTime;

fn service(runtime: &tokio::runtime::Runtime, dir: &tempfile::TempDir) -> Latchkey {
    runtime.block_on(async {
        let store = SqlStore::open_sqlite_file(&dir.path().join("bench.db")).await.unwrap();
        // OWASP parameters, as deployed.
        let hasher = PasswordHasher::new(Argon2Settings::default(), 0).unwrap();
        let service =
            Latchkey::start(store.stores(), Arc::new(SystemClock), hasher, Policy::default(), KeyCustody::default())
                .await
                .unwrap();
        service.sign_up("alice", PASSWORD.to_owned()).await.unwrap();
        service
    })
}

fn checks(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let service = service(&runtime, &dir);
    let (cookie, access) = runtime.block_on(async {
        let cookie = match service
            .log_in("alice", PASSWORD.into(), SessionKind::Cookie, ClientInfo::default())
            .await
            .unwrap()
            .credential
        {
            Credential::Cookie(secret) => secret.expose().to_owned(),
            Credential::Tokens(_) => unreachable!(),
        };
        let access = match service
            .log_in("alice", PASSWORD.into(), SessionKind::Token, ClientInfo::default())
            .await
            .unwrap()
            .credential
        {
            Credential::Tokens(pair) => pair.access_token,
            Credential::Cookie(_) => unreachable!(),
        };
        (cookie, access)
    });

    let mut group = c.benchmark_group("check");
    group.bench_function("cookie", |b| {
        b.to_async(&runtime).iter(|| async { assert!(service.authenticate_cookie(&cookie).await.unwrap().is_some()) })
    });
    group.bench_function("bearer", |b| {
        b.to_async(&runtime).iter(|| async { assert!(service.authenticate_bearer(&access).await.unwrap().is_ok()) })
    });
    group.finish();

    let mut group = c.benchmark_group("signature_verify");
    let now = OffsetDateTime::now_utc();
    for alg in [SigningAlgorithm::EdDSA, SigningAlgorithm::ES256, SigningAlgorithm::RS256, SigningAlgorithm::HS256] {
        let key = keys::generate(alg, now).unwrap();
        let settings = TokenSettings {
            issuer: "https://issuer".into(),
            audience: "https://issuer".into(),
            access_ttl: time::Duration::minutes(10),
        };
        let set = KeySet::build(std::slice::from_ref(&key), None, alg, settings, now).unwrap();
        let claims = AccessClaims {
            iss: "https://issuer".into(),
            sub: "00000000-0000-4000-8000-000000000000".into(),
            aud: "https://issuer".into(),
            exp: now.unix_timestamp() + 600,
            iat: now.unix_timestamp(),
            nbf: None,
            jti: "jti".into(),
            sid: "00000000-0000-4000-8000-000000000001".into(),
            preferred_username: "alice".into(),
            client_id: None,
            scope: None,
        };
        let token = set.sign(&claims).unwrap();
        group.bench_function(alg.as_str(), |b| b.iter(|| set.verify(&token, now).unwrap()));
    }
    group.finish();

    let mut group = c.benchmark_group("login");
    group.sample_size(30).measurement_time(Duration::from_secs(8));
    let hasher = PasswordHasher::new(Argon2Settings::default(), 0).unwrap();
    group.bench_function("argon2id_bare_hash", |b| b.iter(|| hasher.time_bare_hash().unwrap()));
    let password = latchkey_core::accounts::Password::parse_presented(PASSWORD.into()).unwrap();
    let stored = runtime.block_on(hasher.hash(&password)).unwrap();
    group.bench_function("verify_on_pool", |b| {
        b.to_async(&runtime).iter(|| async { assert!(hasher.verify(&password, Some(&stored)).await.unwrap()) })
    });
    group.bench_function("check_password", |b| {
        b.to_async(&runtime).iter(|| async { service.check_password("alice", PASSWORD.into(), None).await.unwrap() })
    });
    group.bench_function("cookie_login", |b| {
        b.to_async(&runtime).iter(|| async {
            service.log_in("alice", PASSWORD.into(), SessionKind::Cookie, ClientInfo::default()).await.unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, checks);
criterion_main!(benches);
