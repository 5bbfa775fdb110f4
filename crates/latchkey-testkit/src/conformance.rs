//! The store conformance suite: written once, run against every backend (SQLite now,
//! PostgreSQL and Redis as they arrive). Each check gets fresh stores from the backend's
//! factory.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use latchkey_core::accounts::{Account, PasswordHash, UserId, Username};
use latchkey_core::audit::{AuditEvent, AuditFilter, AuditKind};
use latchkey_core::authorization::{AuthorizationCode, CodeChallenge, Consent, Redemption};
use latchkey_core::clients::{Client, ClientId, IdTokenAlg, RegisteredUri};
use latchkey_core::logout::{DeliveryState, Settlement};
use latchkey_core::secret::{SecretToken, ServerSecret};
use latchkey_core::sessions::{AppSession, ClientInfo, DataWrite, Session, SessionId, SessionKind, StoredData};
use latchkey_core::store::{CreateAccount, RevokeScope, Rotation, StoreError, StoredKey, Stores};
use latchkey_core::throttle::ThrottleKey;
use time::{Duration, OffsetDateTime};

type CheckResult = Result<(), String>;
type Check = fn(Stores) -> Pin<Box<dyn Future<Output = CheckResult> + Send>>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn store(err: StoreError) -> String {
    format!("store error: {err}")
}

/// Runs every check, each on fresh stores made by `factory`; panics naming every failure.
pub async fn run_all<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Stores>,
{
    let checks: &[(&str, Check)] = &[
        ("accounts_are_unique_by_username", |s| Box::pin(accounts_are_unique_by_username(s))),
        ("accounts_update_hash_and_disabled", |s| Box::pin(accounts_update_hash_and_disabled(s))),
        ("sessions_round_trip_every_field", |s| Box::pin(sessions_round_trip_every_field(s))),
        ("touch_only_moves_forward", |s| Box::pin(touch_only_moves_forward(s))),
        ("rotation_is_a_compare_and_swap", |s| Box::pin(rotation_is_a_compare_and_swap(s))),
        ("concurrent_rotations_have_one_winner", |s| Box::pin(concurrent_rotations_have_one_winner(s))),
        ("session_data_is_a_compare_and_swap_kept_with_the_session", |s| {
            Box::pin(session_data_is_a_compare_and_swap_kept_with_the_session(s))
        }),
        ("concurrent_data_writes_have_one_winner", |s| Box::pin(concurrent_data_writes_have_one_winner(s))),
        ("a_data_write_racing_a_revocation_leaves_no_data", |s| {
            Box::pin(a_data_write_racing_a_revocation_leaves_no_data(s))
        }),
        ("revocation_scopes_end_exactly_their_sessions", |s| Box::pin(revocation_scopes_end_exactly_their_sessions(s))),
        ("an_apps_session_round_trips_and_ends_with_its_sign_in", |s| {
            Box::pin(an_apps_session_round_trips_and_ends_with_its_sign_in(s))
        }),
        ("the_revocation_log_is_ordered_and_bounded", |s| Box::pin(the_revocation_log_is_ordered_and_bounded(s))),
        ("live_lists_hide_revoked_and_expired_sessions", |s| Box::pin(live_lists_hide_revoked_and_expired_sessions(s))),
        ("purge_deletes_only_ended_sessions", |s| Box::pin(purge_deletes_only_ended_sessions(s))),
        ("keys_have_one_active_per_algorithm", |s| Box::pin(keys_have_one_active_per_algorithm(s))),
        ("a_due_rotation_is_scheduled_once", |s| Box::pin(a_due_rotation_is_scheduled_once(s))),
        ("health_answers", |s| Box::pin(health_answers(s))),
        ("a_code_is_redeemed_once_and_a_replay_learns_what_it_issued", |s| {
            Box::pin(a_code_is_redeemed_once_and_a_replay_learns_what_it_issued(s))
        }),
        ("an_ended_sign_in_makes_one_delivery_per_notified_app_claimed_once", |s| {
            Box::pin(an_ended_sign_in_makes_one_delivery_per_notified_app_claimed_once(s))
        }),
        ("consent_is_granted_replaced_listed_and_withdrawn", |s| {
            Box::pin(consent_is_granted_replaced_listed_and_withdrawn(s))
        }),
        ("clients_round_trip_and_only_confidential_ones_take_a_new_secret", |s| {
            Box::pin(clients_round_trip_and_only_confidential_ones_take_a_new_secret(s))
        }),
        ("audit_events_round_trip_and_list_newest_first", |s| {
            Box::pin(audit_events_round_trip_and_list_newest_first(s))
        }),
        ("audit_listings_filter_by_user_kind_and_time", |s| Box::pin(audit_listings_filter_by_user_kind_and_time(s))),
        ("a_look_alike_username_is_taken", |s| Box::pin(a_look_alike_username_is_taken(s))),
        ("throttle_counts_failures_until_cleared", |s| Box::pin(throttle_counts_failures_until_cleared(s))),
        ("throttle_counts_concurrent_failures_exactly", |s| Box::pin(throttle_counts_concurrent_failures_exactly(s))),
        ("throttle_forgets_a_counter_after_its_window", |s| Box::pin(throttle_forgets_a_counter_after_its_window(s))),
        ("throttle_counts_attempts_in_flight_apart_from_failures", |s| {
            Box::pin(throttle_counts_attempts_in_flight_apart_from_failures(s))
        }),
    ];
    let mut failures = Vec::new();
    for (name, check) in checks {
        if let Err(why) = check(factory().await).await {
            failures.push(format!("{name}: {why}"));
        }
    }
    assert!(failures.is_empty(), "store conformance failures:\n{}", failures.join("\n"));
}

/// A fixed, microsecond-aligned instant, so stores that keep microseconds round-trip exactly.
fn t0() -> OffsetDateTime {
    crate::fixtures::fixed_instant()
}

fn account(name: &str) -> Result<Account, String> {
    Ok(Account {
        id: UserId::generate(),
        username: Username::parse(name).map_err(|e| e.to_string())?,
        password_hash: PasswordHash::from_stored("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into()),
        created_at: t0(),
        disabled: false,
    })
}

fn session(user: UserId, kind: SessionKind, created: OffsetDateTime) -> Session {
    Session {
        id: SessionId::generate(),
        user_id: user,
        kind,
        secret_digest: (kind == SessionKind::Cookie).then(|| SecretToken::generate().digest()),
        refresh_counter: 0,
        rotated_at: None,
        created_at: created,
        last_seen_at: created,
        absolute_expires_at: created + Duration::days(7),
        idle_timeout: Duration::hours(12),
        client: ClientInfo::new(Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"), Some("127.0.0.1".into())),
        revoked_at: None,
        app: None,
    }
}

async fn with_account(stores: &Stores, name: &str) -> Result<Account, String> {
    let account = account(name)?;
    let created = stores.accounts.create(&account).await.map_err(store)?;
    ensure!(created == CreateAccount::Created, "account {name} not created");
    Ok(account)
}

async fn accounts_are_unique_by_username(stores: Stores) -> CheckResult {
    let alice = with_account(&stores, "alice").await?;
    let again = account("alice")?;
    let second = stores.accounts.create(&again).await.map_err(store)?;
    ensure!(second == CreateAccount::UsernameTaken, "a second alice was {second:?}");
    let found = stores.accounts.by_username(&alice.username).await.map_err(store)?;
    ensure!(found.as_ref().map(|a| a.id) == Some(alice.id), "by_username found {found:?}");
    let by_id = stores.accounts.by_id(alice.id).await.map_err(store)?;
    ensure!(by_id.as_ref().map(|a| a.username.clone()) == Some(alice.username.clone()), "by_id found {by_id:?}");
    ensure!(stores.accounts.by_id(UserId::generate()).await.map_err(store)?.is_none(), "an unknown id was found");
    with_account(&stores, "bob").await?;
    let all = stores.accounts.list().await.map_err(store)?;
    ensure!(all.len() == 2, "list has {} accounts", all.len());
    Ok(())
}

async fn accounts_update_hash_and_disabled(stores: Stores) -> CheckResult {
    let alice = with_account(&stores, "alice").await?;
    let new_hash = PasswordHash::from_stored("$argon2id$v=19$m=16,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA".into());
    stores.accounts.set_password_hash(alice.id, &new_hash).await.map_err(store)?;
    ensure!(stores.accounts.set_disabled(alice.id, true).await.map_err(store)?, "set_disabled missed alice");
    let read = stores.accounts.by_id(alice.id).await.map_err(store)?.ok_or("alice vanished")?;
    ensure!(read.password_hash == new_hash, "hash not replaced");
    ensure!(read.disabled, "not disabled");
    ensure!(!stores.accounts.set_disabled(UserId::generate(), true).await.map_err(store)?, "disabled a ghost");
    Ok(())
}

async fn sessions_round_trip_every_field(stores: Stores) -> CheckResult {
    let alice = with_account(&stores, "alice").await?;
    for kind in [SessionKind::Cookie, SessionKind::Token] {
        let original = session(alice.id, kind, t0());
        stores.sessions.insert(&original).await.map_err(store)?;
        let read = stores.sessions.get(original.id).await.map_err(store)?;
        ensure!(read.as_ref() == Some(&original), "{kind:?} read back as {read:?}");
    }
    ensure!(stores.sessions.get(SessionId::generate()).await.map_err(store)?.is_none(), "an unknown id matched");
    Ok(())
}

async fn touch_only_moves_forward(stores: Stores) -> CheckResult {
    let alice = with_account(&stores, "alice").await?;
    let s = session(alice.id, SessionKind::Cookie, t0());
    stores.sessions.insert(&s).await.map_err(store)?;
    let later = t0() + Duration::minutes(5);
    stores.sessions.touch(s.id, later).await.map_err(store)?;
    stores.sessions.touch(s.id, t0() + Duration::minutes(1)).await.map_err(store)?;
    let read = stores.sessions.get(s.id).await.map_err(store)?.ok_or("session vanished")?;
    ensure!(read.last_seen_at == later, "last_seen_at is {}", read.last_seen_at);
    Ok(())
}

async fn rotation_is_a_compare_and_swap(stores: Stores) -> CheckResult {
    let alice = with_account(&stores, "alice").await?;
    let s = session(alice.id, SessionKind::Token, t0());
    stores.sessions.insert(&s).await.map_err(store)?;
    let at = t0() + Duration::minutes(1);
    ensure!(stores.sessions.rotate(s.id, 0, at).await.map_err(store)? == Rotation::Rotated, "first rotation lost");
    ensure!(stores.sessions.rotate(s.id, 0, at).await.map_err(store)? == Rotation::Lost, "stale rotation won");
    let read = stores.sessions.get(s.id).await.map_err(store)?.ok_or("session vanished")?;
    ensure!(read.refresh_counter == 1, "counter is {}", read.refresh_counter);
    ensure!(read.rotated_at == Some(at) && read.last_seen_at == at, "rotation times not recorded");
    let later = at + Duration::seconds(1);
    ensure!(stores.sessions.rotate(s.id, 1, later).await.map_err(store)? == Rotation::Rotated, "second rotation lost");
    let revoked_at = later + Duration::seconds(1);
    stores.sessions.revoke(RevokeScope::One(s.id), revoked_at, &|_| revoked_at).await.map_err(store)?;
    ensure!(stores.sessions.rotate(s.id, 2, at).await.map_err(store)? == Rotation::Lost, "a revoked session rotated");
    let read = stores.sessions.get(s.id).await.map_err(store)?.ok_or("revoked session vanished")?;
    ensure!(
        read.refresh_counter == 2 && read.rotated_at == Some(later) && read.revoked_at == Some(revoked_at),
        "after two rotations and a revocation: {read:?}"
    );
    Ok(())
}

async fn concurrent_rotations_have_one_winner(stores: Stores) -> CheckResult {
    let alice = with_account(&stores, "alice").await?;
    let s = session(alice.id, SessionKind::Token, t0());
    stores.sessions.insert(&s).await.map_err(store)?;
    let sessions = Arc::clone(&stores.sessions);
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let sessions = Arc::clone(&sessions);
            tokio::spawn(async move { sessions.rotate(s.id, 0, t0()).await })
        })
        .collect();
    let mut winners = 0;
    for attempt in attempts {
        if attempt.await.map_err(|e| e.to_string())?.map_err(store)? == Rotation::Rotated {
            winners += 1;
        }
    }
    ensure!(winners == 1, "{winners} concurrent rotations won");
    Ok(())
}

async fn session_data_is_a_compare_and_swap_kept_with_the_session(stores: Stores) -> CheckResult {
    let alice = with_account(&stores, "alice").await?;
    let s = session(alice.id, SessionKind::Token, t0());
    let other = session(alice.id, SessionKind::Cookie, t0());
    for session in [&s, &other] {
        stores.sessions.insert(session).await.map_err(store)?;
    }
    let data = |stores: Stores, id: SessionId| async move {
        let read = stores.sessions.get_with_data(id).await.map_err(store)?;
        read.map(|(_, data)| data).ok_or_else(|| "session vanished".to_owned())
    };
    ensure!(data(stores.clone(), s.id).await? == StoredData::empty(), "a new session's data is not {{}} at 0");
    let sessions = &stores.sessions;
    let cart = r#"{"cart":["fig"],"name":"straße"}"#;
    ensure!(
        sessions.write_data(s.id, 1, cart).await.map_err(store)? == DataWrite::Lost,
        "a write from version 1 won at 0"
    );
    ensure!(sessions.write_data(s.id, 0, cart).await.map_err(store)? == DataWrite::Written, "the first write lost");
    ensure!(sessions.write_data(s.id, 0, "{}").await.map_err(store)? == DataWrite::Lost, "a stale write won");
    let expected = StoredData { version: 1, json: cart.to_owned() };
    ensure!(data(stores.clone(), s.id).await? == expected, "the written data did not read back");
    ensure!(data(stores.clone(), other.id).await? == StoredData::empty(), "another session sees the data");
    // Activity and rotation keep the data, and the data changes nothing of the session.
    let at = t0() + Duration::minutes(1);
    sessions.touch(s.id, at).await.map_err(store)?;
    ensure!(sessions.rotate(s.id, 0, at).await.map_err(store)? == Rotation::Rotated, "rotation lost");
    let (read, kept) = sessions.get_with_data(s.id).await.map_err(store)?.ok_or("session vanished")?;
    ensure!(kept == expected, "touch or rotation lost the data: {kept:?}");
    ensure!(read.refresh_counter == 1 && read.last_seen_at == at, "the session read with its data is {read:?}");
    ensure!(sessions.get(s.id).await.map_err(store)? == Some(read), "get and get_with_data disagree");
    let big = format!(r#"{{"k":"{}"}}"#, "x".repeat(16_376));
    ensure!(sessions.write_data(s.id, 1, &big).await.map_err(store)? == DataWrite::Written, "16 KiB not written");
    ensure!(data(stores.clone(), s.id).await?.json == big, "16 KiB did not read back");
    // The data ends with the session: gone at once, and never written again.
    stores.sessions.revoke(RevokeScope::One(s.id), at, &|_| at).await.map_err(store)?;
    let (revoked, gone) = sessions.get_with_data(s.id).await.map_err(store)?.ok_or("revoked session vanished")?;
    ensure!(revoked.revoked_at == Some(at) && gone == StoredData::empty(), "a revoked session kept its data");
    for expected in [0, 2] {
        let write = sessions.write_data(s.id, expected, cart).await.map_err(store)?;
        ensure!(write == DataWrite::Lost, "a revoked session's data was written at {expected}");
    }
    let missing = SessionId::generate();
    ensure!(sessions.write_data(missing, 0, cart).await.map_err(store)? == DataWrite::Lost, "data without a session");
    ensure!(sessions.get_with_data(missing).await.map_err(store)?.is_none(), "a missing session was found");
    Ok(())
}

async fn concurrent_data_writes_have_one_winner(stores: Stores) -> CheckResult {
    let alice = with_account(&stores, "alice").await?;
    let s = session(alice.id, SessionKind::Cookie, t0());
    stores.sessions.insert(&s).await.map_err(store)?;
    for expected in [0, 1] {
        let attempts: Vec<_> = (0..8)
            .map(|i| {
                let sessions = Arc::clone(&stores.sessions);
                tokio::spawn(async move { sessions.write_data(s.id, expected, &format!(r#"{{"writer":{i}}}"#)).await })
            })
            .collect();
        let mut winners = 0;
        for attempt in attempts {
            if attempt.await.map_err(|e| e.to_string())?.map_err(store)? == DataWrite::Written {
                winners += 1;
            }
        }
        ensure!(winners == 1, "{winners} concurrent writes from version {expected} won");
    }
    Ok(())
}

async fn a_data_write_racing_a_revocation_leaves_no_data(stores: Stores) -> CheckResult {
    let alice = with_account(&stores, "alice").await?;
    for round in 0..60_u32 {
        let s = session(alice.id, SessionKind::Token, t0());
        stores.sessions.insert(&s).await.map_err(store)?;
        // The first write (an insert in SQL) in even rounds, a later one (an update) in odd ones.
        let expected = u64::from(round % 2);
        if expected == 1 {
            ensure!(stores.sessions.write_data(s.id, 0, "{}").await.map_err(store)? == DataWrite::Written, "setup");
        }
        let (writer, revoker) = (Arc::clone(&stores.sessions), Arc::clone(&stores.sessions));
        // The write starts a little later each round (0 to 3 ms), so that some rounds land it
        // inside the revoking transaction.
        let revoke = tokio::spawn(async move { revoker.revoke(RevokeScope::One(s.id), t0(), &|_| t0()).await });
        let delay = std::time::Duration::from_micros(50 * u64::from(round));
        let write = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            writer.write_data(s.id, expected, r#"{"late":true}"#).await
        });
        write.await.map_err(|e| e.to_string())?.map_err(store)?;
        revoke.await.map_err(|e| e.to_string())?.map_err(store)?;
        let (read, data) = stores.sessions.get_with_data(s.id).await.map_err(store)?.ok_or("session vanished")?;
        ensure!(read.revoked_at.is_some(), "round {round}: not revoked");
        ensure!(data == StoredData::empty(), "round {round}: a write racing the revocation left {data:?}");
    }
    Ok(())
}

async fn revocation_scopes_end_exactly_their_sessions(stores: Stores) -> CheckResult {
    let alice = with_account(&stores, "alice").await?;
    let bob = with_account(&stores, "bob").await?;
    let a: Vec<Session> = (0..4).map(|i| session(alice.id, SessionKind::Cookie, t0() + Duration::seconds(i))).collect();
    let b = session(bob.id, SessionKind::Token, t0());
    for s in a.iter().chain([&b]) {
        stores.sessions.insert(s).await.map_err(store)?;
    }
    let at = t0() + Duration::minutes(1);
    let until = |kind: SessionKind| {
        if kind == SessionKind::Token { at + Duration::minutes(10) } else { at + Duration::seconds(30) }
    };
    let foreign = stores
        .sessions
        .revoke(RevokeScope::OneOf { user: bob.id, session: a[0].id }, at, &until)
        .await
        .map_err(store)?;
    ensure!(foreign.is_empty(), "bob revoked alice's session");
    let one = stores
        .sessions
        .revoke(RevokeScope::OneOf { user: alice.id, session: a[0].id }, at, &until)
        .await
        .map_err(store)?;
    ensure!(one.len() == 1 && one[0].session_id == a[0].id, "OneOf revoked {one:?}");
    ensure!(one[0].until == at + Duration::seconds(30), "until not computed per kind");
    let again = stores.sessions.revoke(RevokeScope::One(a[0].id), at, &until).await.map_err(store)?;
    ensure!(again.is_empty(), "a revoked session was revoked again");
    let others =
        stores.sessions.revoke(RevokeScope::AllOfExcept(alice.id, a[1].id), at, &until).await.map_err(store)?;
    ensure!(others.len() == 2, "AllOfExcept revoked {}", others.len());
    let live = stores.sessions.list_live(alice.id, at).await.map_err(store)?;
    ensure!(live.len() == 1 && live[0].id == a[1].id, "alice has {} live sessions", live.len());
    let all = stores.sessions.revoke(RevokeScope::AllOf(alice.id), at, &until).await.map_err(store)?;
    ensure!(all.len() == 1, "AllOf revoked {}", all.len());
    let bob_live = stores.sessions.list_live(bob.id, at).await.map_err(store)?;
    ensure!(bob_live.len() == 1, "bob lost sessions");
    let read = stores.sessions.get(a[0].id).await.map_err(store)?.ok_or("revoked session vanished")?;
    ensure!(read.revoked_at == Some(at), "revoked_at is {:?}", read.revoked_at);
    Ok(())
}

/// An app's session under `sso`, for `client`.
fn app_session(sso: &Session, client: &ClientId) -> Session {
    Session {
        app: Some(AppSession {
            client_id: client.clone(),
            sso_session: sso.id,
            scopes: vec!["openid".into(), "profile".into()],
        }),
        ..session(sso.user_id, SessionKind::Token, sso.created_at + Duration::seconds(1))
    }
}

async fn an_apps_session_round_trips_and_ends_with_its_sign_in(stores: Stores) -> CheckResult {
    let alice = with_account(&stores, "alice").await?;
    let (notes, board) = (ClientId::generate(), ClientId::generate());
    let at = t0() + Duration::minutes(1);
    let until = |_: SessionKind| at + Duration::minutes(10);
    // Two sign-ins, each with two apps; and a first-party token session.
    let sso: Vec<Session> =
        (0..2).map(|i| session(alice.id, SessionKind::Cookie, t0() + Duration::seconds(i))).collect();
    let apps: Vec<Session> = sso.iter().flat_map(|sso| [app_session(sso, &notes), app_session(sso, &board)]).collect();
    let own = session(alice.id, SessionKind::Token, t0());
    for s in sso.iter().chain(&apps).chain([&own]) {
        stores.sessions.insert(s).await.map_err(store)?;
    }
    let read = stores.sessions.get(apps[0].id).await.map_err(store)?;
    ensure!(read.as_ref() == Some(&apps[0]), "an app's session read back as {read:?}");

    // Revoking one app's session ends that app only.
    let one = stores.sessions.revoke(RevokeScope::One(apps[0].id), at, &until).await.map_err(store)?;
    ensure!(one.len() == 1, "one app's session: revoked {}", one.len());
    // Revoking a sign-in ends every app session under it, logged like any revocation.
    let ended = stores
        .sessions
        .revoke(RevokeScope::OneOf { user: alice.id, session: sso[0].id }, at, &until)
        .await
        .map_err(store)?;
    let mut ids: Vec<SessionId> = ended.iter().map(|entry| entry.session_id).collect();
    ids.sort();
    let mut expected = vec![sso[0].id, apps[1].id];
    expected.sort();
    ensure!(ids == expected, "ending a sign-in revoked {ids:?}, not it and its live app session");
    // "All but this one" keeps the one and its apps.
    let others =
        stores.sessions.revoke(RevokeScope::AllOfExcept(alice.id, sso[1].id), at, &until).await.map_err(store)?;
    ensure!(
        others.len() == 1 && others[0].session_id == own.id,
        "AllOfExcept revoked {:?}",
        others.iter().map(|entry| entry.session_id).collect::<Vec<_>>()
    );
    let live: Vec<SessionId> =
        stores.sessions.list_live(alice.id, at).await.map_err(store)?.iter().map(|s| s.id).collect();
    ensure!(live.len() == 3 && live.contains(&apps[2].id) && live.contains(&apps[3].id), "live: {live:?}");
    let all = stores.sessions.revoke(RevokeScope::One(sso[1].id), at, &until).await.map_err(store)?;
    ensure!(all.len() == 3, "the last sign-in ended {} sessions", all.len());
    Ok(())
}

async fn the_revocation_log_is_ordered_and_bounded(stores: Stores) -> CheckResult {
    let alice = with_account(&stores, "alice").await?;
    ensure!(stores.revocations.latest().await.map_err(store)? == 0, "a new log has a cursor");
    let sessions: Vec<Session> =
        (0..3).map(|i| session(alice.id, SessionKind::Token, t0() + Duration::seconds(i))).collect();
    for s in &sessions {
        stores.sessions.insert(s).await.map_err(store)?;
    }
    let at = t0() + Duration::minutes(1);
    let short = stores
        .sessions
        .revoke(RevokeScope::One(sessions[0].id), at, &|_| at + Duration::seconds(5))
        .await
        .map_err(store)?;
    let long = stores
        .sessions
        .revoke(RevokeScope::One(sessions[1].id), at, &|_| at + Duration::minutes(10))
        .await
        .map_err(store)?;
    let third = stores
        .sessions
        .revoke(RevokeScope::One(sessions[2].id), at, &|_| at + Duration::minutes(10))
        .await
        .map_err(store)?;
    let cursors = [short[0].cursor, long[0].cursor, third[0].cursor];
    ensure!(cursors[0] < cursors[1] && cursors[1] < cursors[2], "cursors not increasing: {cursors:?}");
    ensure!(stores.revocations.latest().await.map_err(store)? == cursors[2], "latest wrong");
    let all = stores.revocations.after(0, at).await.map_err(store)?;
    ensure!(all.len() == 3, "full log has {}", all.len());
    let later = stores.revocations.after(0, at + Duration::minutes(1)).await.map_err(store)?;
    ensure!(later.len() == 2, "expired entries listed: {}", later.len());
    let after = stores.revocations.after(cursors[1], at).await.map_err(store)?;
    ensure!(after.len() == 1 && after[0].session_id == sessions[2].id, "after cursor: {after:?}");
    Ok(())
}

async fn live_lists_hide_revoked_and_expired_sessions(stores: Stores) -> CheckResult {
    let alice = with_account(&stores, "alice").await?;
    let old = session(alice.id, SessionKind::Cookie, t0());
    let new = session(alice.id, SessionKind::Token, t0() + Duration::hours(1));
    let mut short = session(alice.id, SessionKind::Cookie, t0());
    short.absolute_expires_at = t0() + Duration::minutes(30);
    for s in [&old, &new, &short] {
        stores.sessions.insert(s).await.map_err(store)?;
    }
    let now = t0() + Duration::hours(2);
    let live = stores.sessions.list_live(alice.id, now).await.map_err(store)?;
    let ids: Vec<SessionId> = live.iter().map(|s| s.id).collect();
    ensure!(ids == vec![new.id, old.id], "live list is {ids:?}");
    let bound = stores.sessions.count_live_of(alice.id, now).await.map_err(store)?;
    ensure!((2..=3).contains(&bound), "count_live_of says {bound} for 2 live sessions of 3");
    let nobody = with_account(&stores, "nobody").await?;
    let none = stores.sessions.count_live_of(nobody.id, now).await.map_err(store)?;
    ensure!(none == 0, "count_live_of says {none} for a user without sessions");
    let count = stores.sessions.count_live(now).await.map_err(store)?;
    ensure!(count.is_none_or(|count| count == 2), "count_live says {count:?}");
    let idle_over = t0() + Duration::hours(12) + Duration::minutes(30);
    let live = stores.sessions.list_live(alice.id, idle_over).await.map_err(store)?;
    ensure!(live.len() == 1 && live[0].id == new.id, "idle-expired session listed");
    Ok(())
}

async fn purge_deletes_only_ended_sessions(stores: Stores) -> CheckResult {
    let alice = with_account(&stores, "alice").await?;
    let ended = session(alice.id, SessionKind::Cookie, t0());
    let live = session(alice.id, SessionKind::Cookie, t0() + Duration::days(6));
    for s in [&ended, &live] {
        stores.sessions.insert(s).await.map_err(store)?;
    }
    let before = t0() + Duration::days(6) + Duration::hours(1);
    stores.sessions.purge(before).await.map_err(store)?;
    // A store that expires sessions by itself (Redis, in real time) may still hold one that
    // ended on this test's clock; it must never hold it as live.
    let kept = stores.sessions.get(ended.id).await.map_err(store)?;
    ensure!(kept.as_ref().is_none_or(|s| s.expires_at() < before), "ended session kept as live: {kept:?}");
    ensure!(stores.sessions.get(live.id).await.map_err(store)?.is_some(), "live session purged");
    Ok(())
}

fn key(kid: &str, alg: &str, created: OffsetDateTime) -> StoredKey {
    StoredKey {
        kid: kid.into(),
        alg: alg.into(),
        material: format!("material-{kid}"),
        created_at: created,
        retired_at: None,
    }
}

async fn keys_have_one_active_per_algorithm(stores: Stores) -> CheckResult {
    ensure!(stores.keys.insert_if_absent(&key("a", "EdDSA", t0())).await.map_err(store)?, "first key refused");
    ensure!(!stores.keys.insert_if_absent(&key("b", "EdDSA", t0())).await.map_err(store)?, "second first key accepted");
    ensure!(stores.keys.insert_if_absent(&key("s", "server-secret", t0())).await.map_err(store)?, "other alg refused");
    let rotated_at = t0() + Duration::days(1);
    stores.keys.insert_active(&key("c", "EdDSA", rotated_at), rotated_at).await.map_err(store)?;
    let keys = stores.keys.list().await.map_err(store)?;
    let summary: Vec<(String, bool)> = keys.iter().map(|k| (k.kid.clone(), k.retired_at.is_some())).collect();
    ensure!(
        summary == vec![("a".into(), true), ("s".into(), false), ("c".into(), false)],
        "keys after rotation: {summary:?}"
    );
    ensure!(keys.iter().any(|k| k.material == "material-c"), "material not kept");
    ensure!(stores.keys.replace_material("c", "sealed-c").await.map_err(store)?, "material not replaced");
    ensure!(!stores.keys.replace_material("nope", "x").await.map_err(store)?, "replaced a missing key");
    let keys = stores.keys.list().await.map_err(store)?;
    ensure!(keys.iter().any(|k| k.kid == "c" && k.material == "sealed-c"), "replaced material not kept");
    let deleted = stores.keys.delete_retired_before(rotated_at + Duration::seconds(1)).await.map_err(store)?;
    ensure!(deleted == 1, "deleted {deleted} keys");
    Ok(())
}

async fn a_due_rotation_is_scheduled_once(stores: Stores) -> CheckResult {
    ensure!(stores.keys.insert_if_absent(&key("old", "EdDSA", t0())).await.map_err(store)?, "first key refused");
    let starts = t0() + Duration::days(30) + Duration::minutes(5);
    let due = t0() + Duration::days(1);
    let early = key("early", "EdDSA", starts);
    let scheduled = stores.keys.schedule_rotation(&early, t0() - Duration::seconds(1)).await.map_err(store)?;
    ensure!(!scheduled, "scheduled although the current key is younger than due");
    let contenders = ["n1", "n2", "n3", "n4"].map(|kid| key(kid, "EdDSA", starts));
    let attempts = contenders.iter().map(|next| stores.keys.schedule_rotation(next, due));
    let won = futures_util::future::try_join_all(attempts).await.map_err(store)?;
    ensure!(won.iter().filter(|won| **won).count() == 1, "one of the instances schedules it: {won:?}");
    let keys = stores.keys.list().await.map_err(store)?;
    let old = keys.iter().find(|k| k.kid == "old").ok_or("the old key is gone")?;
    ensure!(old.retired_at == Some(starts), "the old key retires when the next one starts: {:?}", old.retired_at);
    let next: Vec<&StoredKey> = keys.iter().filter(|k| k.kid.starts_with('n')).collect();
    ensure!(next.len() == 1 && next[0].created_at == starts && next[0].retired_at.is_none(), "one next key");
    let again = key("again", "EdDSA", starts);
    let scheduled = stores.keys.schedule_rotation(&again, due).await.map_err(store)?;
    ensure!(!scheduled, "a second schedule while the next key is young");
    Ok(())
}

async fn health_answers(stores: Stores) -> CheckResult {
    stores.health.ping().await.map_err(store)
}

async fn a_look_alike_username_is_taken(stores: Stores) -> CheckResult {
    let first = stores.accounts.create(&account("paypal")?).await.map_err(store)?;
    ensure!(first == CreateAccount::Created, "the first name is made");
    // A Cyrillic а in place of the Latin a.
    let look_alike = stores.accounts.create(&account("p\u{0430}ypal")?).await.map_err(store)?;
    ensure!(look_alike == CreateAccount::UsernameTaken, "a name of the same skeleton is taken");
    let other = stores.accounts.create(&account("paypa1-support")?).await.map_err(store)?;
    ensure!(other == CreateAccount::Created, "a name of another skeleton is made");
    Ok(())
}

fn throttle_key(name: &str) -> ThrottleKey {
    ThrottleKey::account(&ServerSecret::generate().0, name)
}

async fn throttle_counts_failures_until_cleared(stores: Stores) -> CheckResult {
    let throttle = &stores.throttle;
    let (key, other) = (throttle_key("alice"), throttle_key("bob"));
    ensure!(throttle.failures(&key).await.map_err(store)?.is_none(), "a new counter is empty");
    let hour = Duration::hours(1);
    throttle.record_failure(&key, t0(), hour).await.map_err(store)?;
    let second = throttle.record_failure(&key, t0() + Duration::seconds(3), hour).await.map_err(store)?;
    ensure!(
        second.count == 2 && second.last_at == t0() + Duration::seconds(3),
        "record returns the new state: {second:?}"
    );
    let read = throttle.failures(&key).await.map_err(store)?;
    ensure!(read == Some(second), "read back {read:?}, recorded {second:?}");
    ensure!(throttle.failures(&other).await.map_err(store)?.is_none(), "counters are separate");
    throttle.clear(&key).await.map_err(store)?;
    ensure!(throttle.failures(&key).await.map_err(store)?.is_none(), "a cleared counter is empty");
    throttle.clear(&other).await.map_err(store)?;
    Ok(())
}

async fn throttle_counts_attempts_in_flight_apart_from_failures(stores: Stores) -> CheckResult {
    let throttle = &stores.throttle;
    let (key, other) = (throttle_key("dave"), throttle_key("erin"));
    let minute = Duration::minutes(1);
    let begun = futures_util::future::join_all((0..10).map(|_| throttle.begin_attempt(&key, minute))).await;
    let mut counts = begun.into_iter().collect::<Result<Vec<u32>, _>>().map_err(store)?;
    counts.sort_unstable();
    ensure!(counts == (1..=10).collect::<Vec<_>>(), "concurrent attempts each get their own place: {counts:?}");
    ensure!(throttle.failures(&key).await.map_err(store)?.is_none(), "an attempt in flight is no failure");
    ensure!(throttle.begin_attempt(&other, minute).await.map_err(store)? == 1, "marks are per key");
    for _ in 0..10 {
        throttle.end_attempt(&key).await.map_err(store)?;
    }
    ensure!(throttle.begin_attempt(&key, minute).await.map_err(store)? == 1, "ended attempts are taken off");
    throttle.end_attempt(&key).await.map_err(store)?;
    throttle.end_attempt(&key).await.map_err(store)?;
    ensure!(throttle.begin_attempt(&key, minute).await.map_err(store)? == 1, "ending more than began goes no lower");
    throttle.end_attempt(&key).await.map_err(store)?;
    throttle.end_attempt(&other).await.map_err(store)?;
    Ok(())
}

async fn throttle_counts_concurrent_failures_exactly(stores: Stores) -> CheckResult {
    let key = throttle_key("carol");
    let attempts = (0..40).map(|_| stores.throttle.record_failure(&key, t0(), Duration::hours(1)));
    let counts = futures_util::future::try_join_all(attempts).await.map_err(store)?;
    let mut seen: Vec<u32> = counts.iter().map(|failures| failures.count).collect();
    seen.sort_unstable();
    ensure!(seen == (1..=40).collect::<Vec<_>>(), "each concurrent failure got its own count: {seen:?}");
    let total = stores.throttle.failures(&key).await.map_err(store)?.map(|failures| failures.count);
    ensure!(total == Some(40), "40 failures counted, not {total:?}");
    Ok(())
}

async fn throttle_forgets_a_counter_after_its_window(stores: Stores) -> CheckResult {
    let key = throttle_key("dave");
    stores.throttle.record_failure(&key, t0(), Duration::milliseconds(300)).await.map_err(store)?;
    ensure!(stores.throttle.failures(&key).await.map_err(store)?.is_some(), "counted");
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let left = stores.throttle.failures(&key).await.map_err(store)?;
    ensure!(left.is_none(), "a counter outlived its window: {left:?}");
    Ok(())
}

async fn audit_events_round_trip_and_list_newest_first(stores: Stores) -> CheckResult {
    let alice = account("alice")?;
    let full = AuditEvent::new(AuditKind::LoginSucceeded, t0() + Duration::seconds(2))
        .user(alice.id, &alice.username)
        .session(SessionId::generate())
        .ip(Some("2001:db8::7"))
        .detail("cookie");
    let bare = AuditEvent::new(AuditKind::LoginFailed, t0()).detail("unknown_user");
    let same_instant = AuditEvent::new(AuditKind::Throttled, t0() + Duration::seconds(2)).detail("address");
    for event in [&bare, &full, &same_instant] {
        stores.audit.record(event).await.map_err(store)?;
    }
    let listed = stores.audit.list(&AuditFilter::default()).await.map_err(store)?;
    ensure!(listed == vec![same_instant, full, bare], "newest first, ties by recording order: {listed:#?}");
    Ok(())
}

async fn audit_listings_filter_by_user_kind_and_time(stores: Stores) -> CheckResult {
    let alice = account("alice")?;
    let bob = account("bob")?;
    let mut events = Vec::new();
    for n in 0..12_i64 {
        let (who, kind) = match n % 3 {
            0 => (&alice, AuditKind::LoginFailed),
            1 => (&bob, AuditKind::LoginFailed),
            _ => (&alice, AuditKind::Logout),
        };
        let event = AuditEvent::new(kind, t0() + Duration::seconds(n)).user(who.id, &who.username);
        stores.audit.record(&event).await.map_err(store)?;
        events.push(event);
    }
    let filters = [
        AuditFilter { user: Some(alice.id), ..AuditFilter::default() },
        AuditFilter { kind: Some(AuditKind::LoginFailed), ..AuditFilter::default() },
        AuditFilter { user: Some(bob.id), kind: Some(AuditKind::Logout), ..AuditFilter::default() },
        AuditFilter {
            since: Some(t0() + Duration::seconds(3)),
            until: Some(t0() + Duration::seconds(7)),
            ..AuditFilter::default()
        },
        AuditFilter { user: Some(alice.id), kind: Some(AuditKind::LoginFailed), limit: 2, ..AuditFilter::default() },
    ];
    for filter in filters {
        let expected: Vec<AuditEvent> =
            events.iter().rev().filter(|event| filter.admits(event)).take(filter.limit as usize).cloned().collect();
        let listed = stores.audit.list(&filter).await.map_err(store)?;
        ensure!(listed == expected, "{filter:?}: listed {} events, expected {}", listed.len(), expected.len());
    }
    Ok(())
}

async fn clients_round_trip_and_only_confidential_ones_take_a_new_secret(stores: Stores) -> CheckResult {
    let uri = |text: &str| RegisteredUri::parse(text).map_err(|err| err.to_string());
    let confidential = Client {
        id: ClientId::generate(),
        name: "Notes — ノート".into(),
        redirect_uris: vec![uri("https://notes.example/cb")?, uri("http://127.0.0.1:3000/cb?x=1")?],
        post_logout_redirect_uris: vec![uri("https://notes.example/bye")?],
        backchannel_logout_uri: Some(uri("https://notes.example/backchannel")?),
        secret_digest: Some(SecretToken::generate().digest()),
        skip_consent: true,
        id_token_alg: IdTokenAlg::EdDsa,
        created_at: t0(),
    };
    let public = Client {
        id: ClientId::generate(),
        name: "Board".into(),
        redirect_uris: vec![uri("https://board.example/cb")?],
        post_logout_redirect_uris: Vec::new(),
        backchannel_logout_uri: None,
        secret_digest: None,
        skip_consent: false,
        id_token_alg: IdTokenAlg::Rs256,
        created_at: t0() + Duration::seconds(1),
    };
    for client in [&confidential, &public] {
        stores.clients.insert(client).await.map_err(store)?;
    }
    ensure!(
        stores.clients.get(&confidential.id).await.map_err(store)?.as_ref() == Some(&confidential),
        "confidential client did not round-trip"
    );
    ensure!(
        stores.clients.get(&public.id).await.map_err(store)?.as_ref() == Some(&public),
        "public client did not round-trip"
    );
    let listed: Vec<ClientId> = stores.clients.list().await.map_err(store)?.into_iter().map(|c| c.id).collect();
    ensure!(listed == vec![confidential.id.clone(), public.id.clone()], "clients not listed oldest first: {listed:?}");
    let digest = SecretToken::generate().digest();
    ensure!(stores.clients.set_secret(&confidential.id, &digest).await.map_err(store)?, "secret not replaced");
    let read = stores.clients.get(&confidential.id).await.map_err(store)?.ok_or("client vanished")?;
    ensure!(read.secret_digest == Some(digest), "the new secret's digest was not kept");
    ensure!(!stores.clients.set_secret(&public.id, &digest).await.map_err(store)?, "a public client took a secret");
    ensure!(
        !stores.clients.set_secret(&ClientId::generate(), &digest).await.map_err(store)?,
        "an unknown client took a secret"
    );
    ensure!(stores.clients.remove(&public.id).await.map_err(store)?, "removal reported nothing");
    ensure!(!stores.clients.remove(&public.id).await.map_err(store)?, "a second removal reported a client");
    ensure!(stores.clients.get(&public.id).await.map_err(store)?.is_none(), "a removed client is still found");
    Ok(())
}

fn code_for(user: UserId, client: &ClientId) -> Result<AuthorizationCode, String> {
    Ok(AuthorizationCode {
        digest: SecretToken::generate().digest(),
        client_id: client.clone(),
        redirect_uri: "https://notes.example/cb?x=1".into(),
        challenge: CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").ok_or("challenge")?,
        user_id: user,
        sso_session: SessionId::generate(),
        scopes: vec!["openid".into(), "profile".into()],
        nonce: Some("n-0S6_WzA2Mj ünïcode".into()),
        auth_time: t0() - Duration::minutes(5),
        issued_at: t0(),
    })
}

async fn a_code_is_redeemed_once_and_a_replay_learns_what_it_issued(stores: Stores) -> CheckResult {
    let alice = with_account(&stores, "alice").await?;
    let client = ClientId::generate();
    let code = code_for(alice.id, &client)?;
    stores.codes.insert(&code).await.map_err(store)?;
    let at = t0() + Duration::seconds(3);
    ensure!(
        stores.codes.redeem(&code.digest, at).await.map_err(store)? == Redemption::First(code.clone()),
        "first redemption"
    );
    let replay = stores.codes.redeem(&code.digest, at).await.map_err(store)?;
    ensure!(replay == Redemption::Replayed { issued: None }, "a replay before anything was issued: {replay:?}");
    let issued = SessionId::generate();
    stores.codes.record_issued(&code.digest, issued).await.map_err(store)?;
    let replay = stores.codes.redeem(&code.digest, at).await.map_err(store)?;
    ensure!(replay == Redemption::Replayed { issued: Some(issued) }, "a replay after issuing: {replay:?}");
    let unknown = SecretToken::generate().digest();
    ensure!(
        stores.codes.redeem(&unknown, at).await.map_err(store)? == Redemption::Unknown,
        "an unknown code was found"
    );
    // Presented to many instances at once, a code is still redeemed once.
    let fresh = code_for(alice.id, &client)?;
    stores.codes.insert(&fresh).await.map_err(store)?;
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let (codes, digest) = (Arc::clone(&stores.codes), fresh.digest);
            tokio::spawn(async move { codes.redeem(&digest, t0()).await })
        })
        .collect();
    let mut firsts = 0;
    for attempt in attempts {
        if matches!(attempt.await.map_err(|e| e.to_string())?.map_err(store)?, Redemption::First(_)) {
            firsts += 1;
        }
    }
    ensure!(firsts == 1, "{firsts} concurrent redemptions won");
    let purged = stores.codes.purge_codes(t0() + Duration::seconds(1)).await.map_err(store)?;
    ensure!(purged == 2, "purged {purged} codes");
    ensure!(
        stores.codes.redeem(&code.digest, at).await.map_err(store)? == Redemption::Unknown,
        "a purged code was found"
    );
    Ok(())
}

async fn consent_is_granted_replaced_listed_and_withdrawn(stores: Stores) -> CheckResult {
    let alice = with_account(&stores, "alice").await?;
    let bob = with_account(&stores, "bob").await?;
    let mut clients = Vec::new();
    for name in ["Notes", "Board"] {
        let client = Client {
            id: ClientId::generate(),
            name: name.into(),
            redirect_uris: vec![RegisteredUri::parse("https://app.example/cb").map_err(|err| err.to_string())?],
            post_logout_redirect_uris: Vec::new(),
            backchannel_logout_uri: None,
            secret_digest: None,
            skip_consent: false,
            id_token_alg: IdTokenAlg::Rs256,
            created_at: t0(),
        };
        stores.clients.insert(&client).await.map_err(store)?;
        clients.push(client.id);
    }
    let consent = |client: &ClientId, scopes: &[&str], at: OffsetDateTime| Consent {
        user_id: alice.id,
        client_id: client.clone(),
        scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
        granted_at: at,
    };
    let notes = consent(&clients[0], &["openid"], t0());
    stores.consents.grant(&notes).await.map_err(store)?;
    ensure!(
        stores.consents.consent(alice.id, &clients[0]).await.map_err(store)? == Some(notes),
        "consent did not round-trip"
    );
    let widened = consent(&clients[0], &["openid", "profile"], t0() + Duration::seconds(1));
    stores.consents.grant(&widened).await.map_err(store)?;
    let board = consent(&clients[1], &["openid"], t0() + Duration::seconds(2));
    stores.consents.grant(&board).await.map_err(store)?;
    let listed = stores.consents.consents_of(alice.id).await.map_err(store)?;
    ensure!(listed == vec![board, widened.clone()], "consents not replaced or not newest first: {listed:?}");
    ensure!(stores.consents.consents_of(bob.id).await.map_err(store)?.is_empty(), "bob sees alice's consents");
    ensure!(stores.consents.consent(bob.id, &clients[0]).await.map_err(store)?.is_none(), "bob has alice's consent");
    ensure!(stores.consents.withdraw(alice.id, &clients[1]).await.map_err(store)?, "withdrawal reported nothing");
    ensure!(!stores.consents.withdraw(alice.id, &clients[1]).await.map_err(store)?, "a second withdrawal reported one");
    ensure!(stores.consents.consents_of(alice.id).await.map_err(store)? == vec![widened], "the other consent went too");
    Ok(())
}

async fn an_ended_sign_in_makes_one_delivery_per_notified_app_claimed_once(stores: Stores) -> CheckResult {
    let alice = with_account(&stores, "alice").await?;
    let (notes, board) = (ClientId::generate(), ClientId::generate());
    let (sso, other) = (SessionId::generate(), SessionId::generate());
    let sign_ins = &stores.sign_ins;
    for _ in 0..2 {
        sign_ins.record_sign_in(&notes, sso, alice.id, true, t0()).await.map_err(store)?;
    }
    sign_ins.record_sign_in(&board, sso, alice.id, false, t0()).await.map_err(store)?;
    sign_ins.record_sign_in(&notes, other, alice.id, true, t0()).await.map_err(store)?;
    let mut open = sign_ins.open_sign_ins().await.map_err(store)?;
    open.sort();
    let mut expected = vec![(sso, alice.id), (other, alice.id)];
    expected.sort();
    ensure!(open == expected, "open sign-ins {open:?}");

    let users = sign_ins.users_signed_in_to(&notes).await.map_err(store)?;
    ensure!(users == vec![alice.id, alice.id], "users signed in to notes: {users:?}");

    let ended = t0() + Duration::minutes(1);
    let pending = sign_ins.end_sign_ins(&[sso], ended).await.map_err(store)?;
    ensure!(pending == 1, "{pending} deliveries pending, not the notified app's one");
    ensure!(sign_ins.end_sign_ins(&[sso], ended).await.map_err(store)? == 0, "a sign-in ended twice");
    ensure!(sign_ins.open_sign_ins().await.map_err(store)? == vec![(other, alice.id)], "the ended sign-in is open");
    let users = sign_ins.users_signed_in_to(&board).await.map_err(store)?;
    ensure!(users.is_empty(), "board's only sign-in ended, yet: {users:?}");

    // Claimed once under a lease; claimable again when the lease runs out.
    let lease = ended + Duration::seconds(60);
    let claimed = sign_ins.claim_due(ended, lease, 10).await.map_err(store)?;
    ensure!(
        claimed.len() == 1 && claimed[0].client_id == notes && claimed[0].sso_session == sso,
        "claimed {claimed:?}"
    );
    ensure!(claimed[0].attempts == 1 && claimed[0].state == DeliveryState::Pending, "claimed {:?}", claimed[0]);
    ensure!(claimed[0].ended_at == ended && claimed[0].user_id == alice.id, "claimed {:?}", claimed[0]);
    ensure!(sign_ins.claim_due(ended, lease, 10).await.map_err(store)?.is_empty(), "claimed twice under a lease");
    let again = sign_ins.claim_due(lease, lease + Duration::seconds(60), 10).await.map_err(store)?;
    ensure!(again.len() == 1 && again[0].attempts == 2, "after the lease: {again:?}");

    // A retry is due at its time; a settled delivery is never claimed again.
    let retry = lease + Duration::seconds(10);
    sign_ins.settle(&notes, sso, Settlement::RetryAt(retry)).await.map_err(store)?;
    ensure!(sign_ins.claim_due(retry - Duration::seconds(1), retry, 10).await.map_err(store)?.is_empty(), "early");
    ensure!(sign_ins.claim_due(retry, retry + Duration::seconds(60), 10).await.map_err(store)?.len() == 1, "retry");
    sign_ins.settle(&notes, sso, Settlement::Delivered).await.map_err(store)?;
    sign_ins.settle(&notes, sso, Settlement::Failed).await.map_err(store)?;
    let far = retry + Duration::days(2);
    ensure!(sign_ins.claim_due(far, far, 10).await.map_err(store)?.is_empty(), "a delivered one claimed");
    let listed = sign_ins.deliveries_of(&notes).await.map_err(store)?;
    ensure!(listed.len() == 1, "deliveries of notes: {listed:?}");
    ensure!(
        listed[0].state == DeliveryState::Delivered && listed[0].attempts == 3 && listed[0].next_attempt_at.is_none(),
        "a settled delivery reads {:?}",
        listed[0]
    );
    ensure!(sign_ins.deliveries_of(&board).await.map_err(store)?.is_empty(), "an app without a URI got a delivery");

    // Concurrent claims take different deliveries.
    let many: Vec<SessionId> = (0..6).map(|_| SessionId::generate()).collect();
    for id in &many {
        sign_ins.record_sign_in(&board, *id, alice.id, true, t0()).await.map_err(store)?;
    }
    sign_ins.end_sign_ins(&many, ended).await.map_err(store)?;
    let (first, second) = tokio::join!(sign_ins.claim_due(ended, lease, 4), sign_ins.claim_due(ended, lease, 4));
    let mut taken: Vec<SessionId> =
        first.map_err(store)?.iter().chain(second.map_err(store)?.iter()).map(|d| d.sso_session).collect();
    let count = taken.len();
    taken.sort();
    taken.dedup();
    ensure!(count == 6 && taken.len() == 6, "concurrent claims took {count}, {} distinct", taken.len());

    // Settled deliveries are purged once old; pending ones never.
    let purged = sign_ins.purge_sign_ins(ended + Duration::seconds(1)).await.map_err(store)?;
    ensure!(purged == 2, "purged {purged}: the delivered one and the silent app's");
    Ok(())
}
