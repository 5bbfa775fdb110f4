//! The latchkey service: sign-up, login of both kinds, checks, refresh with rotation and reuse
//! detection, revocation, and the keyring. The HTTP layer and the CLI call only this.

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use moka::sync::Cache;
use time::{Duration, OffsetDateTime};
use tokio::sync::{Mutex as AsyncMutex, broadcast};
use tracing::{info, warn};
use zeroize::Zeroizing;

use crate::account::{Account, UserId, Username, UsernameError};
use crate::audit::{AuditEvent, AuditFilter, AuditKind, RevocationCause};
use crate::clock::Clock;
use crate::denylist::Denylist;
use crate::keys::{
    self, AccessClaims, KeyError, KeySet, SERVER_SECRET_ALG, SigningAlgorithm, TokenRejection, TokenSettings,
};
use crate::password::{HashError, Password, PasswordError, PasswordHasher};
use crate::secret::{MasterKey, SecretToken, ServerSecret, TokenDigest, b64url, b64url_decode, fill_random};
use crate::session::{ClientInfo, RefreshToken, Session, SessionId, SessionKind};
use crate::store::{CreateAccount, Revocation, RevokeScope, Rotation, StoreError, StoredKey, Stores};
use crate::throttle::{Admission, AttemptKeys, Throttle, ThrottlePolicy, Throttled};

const CSRF_PURPOSE: &str = "latchkey/csrf-token/v1";

/// The shortest time between two key reloads caused by tokens with an unknown `kid`. A key
/// published ahead of its use (every rotation but an emergency) is known long before, and the
/// periodic sync picks up any change within the sync interval anyway.
pub const UNKNOWN_KID_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Lifetimes and identity settings of a latchkey deployment.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `iss` of access tokens: the public URL.
    pub issuer: String,
    /// `aud` of access tokens.
    pub audience: String,
    /// Algorithm new keys are made for.
    pub signing_alg: SigningAlgorithm,
    /// Access-token lifetime.
    pub access_token_ttl: Duration,
    /// Cookie sessions end after this much inactivity...
    pub session_idle_timeout: Duration,
    /// ...and this long after login whatever the activity.
    pub session_absolute_timeout: Duration,
    /// Token sessions end after this long without a refresh...
    pub refresh_idle_timeout: Duration,
    /// ...and this long after login whatever the activity.
    pub refresh_absolute_timeout: Duration,
    /// How long after a rotation the token it retired is still answered (two tabs).
    pub refresh_reuse_grace: Duration,
    /// Sliding renewal writes `last_seen_at` at most once per this interval.
    pub touch_interval: Duration,
    /// How long a cookie check may be answered from this instance's cache (zero: never;
    /// every check reads the store). Revocations reach cached entries through the denylist.
    pub cookie_cache_ttl: Duration,
    /// How failed password attempts are throttled.
    pub throttle: ThrottlePolicy,
    /// A signing key older than this is replaced by a new one (`None`: only by hand).
    pub key_rotation_interval: Option<Duration>,
    /// Live sessions one user may hold; a login past it ends the one used longest ago.
    pub max_sessions_per_user: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            issuer: "http://localhost:8080".into(),
            audience: "http://localhost:8080".into(),
            signing_alg: SigningAlgorithm::EdDSA,
            access_token_ttl: Duration::minutes(10),
            session_idle_timeout: Duration::hours(12),
            session_absolute_timeout: Duration::days(7),
            refresh_idle_timeout: Duration::days(14),
            refresh_absolute_timeout: Duration::days(30),
            refresh_reuse_grace: Duration::seconds(10),
            touch_interval: Duration::seconds(60),
            cookie_cache_ttl: Duration::seconds(30),
            throttle: ThrottlePolicy::default(),
            key_rotation_interval: Some(Duration::days(30)),
            max_sessions_per_user: 100,
        }
    }
}

impl Policy {
    /// How long an access token of this policy can be accepted after it was issued (see
    /// [`keys::acceptance_window`]): what a retired key and a revoked session are remembered for.
    pub fn access_token_window(&self) -> Duration {
        keys::acceptance_window(self.access_token_ttl)
    }

    /// How long a session of `kind` may go unused, as the session records it: the configured
    /// idle timeout plus the slack of the touch interval. Activity is written at most once per
    /// [`Self::touch_interval_for`], so the recorded last use can lag the real one by up to
    /// that; the slack keeps a session whose uses are less than the configured idle timeout
    /// minus 1 s apart alive (API.md, "Sliding expiry") without a write on every use.
    fn idle_timeout(&self, kind: SessionKind) -> Duration {
        let configured = match kind {
            SessionKind::Cookie => self.session_idle_timeout,
            SessionKind::Token => self.refresh_idle_timeout,
        };
        configured + (self.touch_interval_for(configured) - Duration::SECOND).max(Duration::ZERO)
    }

    /// How often a session with `idle_timeout` records its activity: the configured touch
    /// interval, but never more than a tenth of the idle timeout, so a short idle timeout is
    /// neither outrun by the interval nor stretched by much more than a tenth by the slack.
    fn touch_interval_for(&self, idle_timeout: Duration) -> Duration {
        self.touch_interval.min(idle_timeout / 10_i32)
    }

    fn absolute_timeout(&self, kind: SessionKind) -> Duration {
        match kind {
            SessionKind::Cookie => self.session_absolute_timeout,
            SessionKind::Token => self.refresh_absolute_timeout,
        }
    }

    fn token_settings(&self) -> TokenSettings {
        TokenSettings {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            access_ttl: self.access_token_ttl,
        }
    }
}

/// Everything the service can answer besides success: decisions (the first six) and
/// infrastructure failures (the rest).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Sign-up with a username another account has.
    #[error("username taken")]
    UsernameTaken,
    /// A username that fails the policy.
    #[error("invalid username: {0}")]
    InvalidUsername(#[from] UsernameError),
    /// A new password that fails the policy.
    #[error("invalid password: {0}")]
    InvalidPassword(#[from] PasswordError),
    /// Unknown user, wrong password or disabled account: deliberately one answer.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// A signed-in user's current password, asked for again before a change, is wrong.
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    /// Too many failed password attempts: this one was refused unchecked.
    #[error("too many failed attempts; retry in {}s", .0.retry_after.whole_seconds())]
    Throttled(Throttled),
    /// A refresh token that is not valid (any reason).
    #[error("invalid grant")]
    InvalidGrant,
    /// A session id that is not the caller's.
    #[error("not found")]
    NotFound,
    /// A rotation by hand while the next key is already published and waiting to sign.
    #[error("a new signing key is already published and waiting to sign; rotate at once to replace it now")]
    RotationPending,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Password hashing failed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// Signing failed or the keys are unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// An authenticated caller: who, and through which session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user.
    pub user_id: UserId,
    /// The user's name.
    pub username: Username,
    /// The session the credential belongs to.
    pub session_id: SessionId,
    /// The session's kind.
    pub kind: SessionKind,
}

/// What a caller may see of themselves (`/v1/me`): their account, without its password hash,
/// and the session their credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The user's name.
    pub username: Username,
    /// When the account was made.
    pub created_at: OffsetDateTime,
    /// The session (its user is the account's id).
    pub session: Session,
}

/// What the operator brings to the keys.
#[derive(Debug, Default)]
pub struct KeyCustody {
    /// A signing key of the operator's own, used instead of generated ones.
    pub file_key: Option<StoredKey>,
    /// Seals the private keys and the server secret before they reach the store.
    pub master_key: Option<MasterKey>,
}

/// The associated data a key is sealed under: its id and algorithm, so a sealed value moved
/// to another row does not open.
fn seal_context(key: &StoredKey) -> Vec<u8> {
    [key.kid.as_bytes(), b"\0", key.alg.as_bytes()].concat()
}

/// `key` as the store should hold it: sealed when a master key is configured.
fn sealed(master_key: Option<&MasterKey>, key: StoredKey) -> Result<StoredKey, KeyError> {
    let Some(master_key) = master_key else { return Ok(key) };
    let material = master_key
        .seal(&seal_context(&key), key.material.as_bytes())
        .map_err(|_| KeyError::SealFailed(key.kid.clone()))?;
    Ok(StoredKey { material, ..key })
}

/// Stored keys with their material in the clear, ready to load.
fn opened(master_key: Option<&MasterKey>, stored: Vec<StoredKey>) -> Result<Vec<StoredKey>, KeyError> {
    stored
        .into_iter()
        .map(|key| {
            if !MasterKey::is_sealed(&key.material) {
                return Ok(key);
            }
            let master_key = master_key.ok_or_else(|| KeyError::Sealed(key.kid.clone()))?;
            let clear = master_key
                .open(&seal_context(&key), &key.material)
                .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
                .ok_or_else(|| KeyError::WrongMasterKey(key.kid.clone()))?;
            Ok(StoredKey { material: clear, ..key })
        })
        .collect()
}

/// Which sessions a logout ends; the contract's `scope`, `current` when absent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogoutScope {
    /// The caller's own.
    #[default]
    Current,
    /// Every other session of the caller's.
    Others,
    /// All of the caller's sessions.
    All,
}

impl LogoutScope {
    /// The contract's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Others => "others",
            Self::All => "all",
        }
    }
}

/// A signed access token with its refresh token.
pub struct TokenPair {
    /// The JWT.
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The opaque rotating refresh token.
    pub refresh_token: Zeroizing<String>,
    /// The session both belong to.
    pub session_id: SessionId,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("expires_in", &self.expires_in)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// What a login hands to the client.
#[derive(Debug)]
pub enum Credential {
    /// A cookie session's secret.
    Cookie(SecretToken),
    /// A token session's pair.
    Tokens(TokenPair),
}

/// A successful login.
#[derive(Debug)]
pub struct Login {
    /// Who logged in.
    pub account: Account,
    /// The new session.
    pub session: Session,
    /// Its credential.
    pub credential: Credential,
    /// The session's CSRF token (for cookie-carried credentials).
    pub csrf_token: String,
}

/// A cookie check's cached result.
struct CookieEntry {
    session: Session,
    username: Username,
}

/// A bearer check's cached result: the token verified once, and verifies again until `exp`.
struct BearerEntry {
    caller: Caller,
    exp: i64,
}

/// The latchkey service. Cheap to clone; every clone shares state.
#[derive(Clone)]
pub struct Latchkey {
    inner: Arc<Inner>,
}

struct Inner {
    stores: Stores,
    clock: Arc<dyn Clock>,
    hasher: PasswordHasher,
    policy: Policy,
    server_secret: ServerSecret,
    file_key: Option<StoredKey>,
    master_key: Option<MasterKey>,
    // Swapped whole when the store's keys change; readers clone the Arc and drop the lock.
    keys: RwLock<Arc<KeySet>>,
    denylist: Denylist,
    throttle: Throttle,
    // Why caches: a cookie check would otherwise be a store read and a bearer check a signature
    // verification on every request. Both are safe to cache because every hit is checked
    // against the denylist and the expiry at `now`.
    cookie_cache: Cache<TokenDigest, Arc<CookieEntry>>,
    bearer_cache: Cache<TokenDigest, Arc<BearerEntry>>,
    profile_cache: Cache<SessionId, Arc<Profile>>,
    revocation_cursor: AtomicI64,
    // Why a lock: sync is the one publisher of the revocation broadcast, and two syncs at once
    // could publish out of log order; subscribers resume by position and must never skip one.
    sync_lock: AsyncMutex<()>,
    revocations: broadcast::Sender<Revocation>,
    // When a token with an unknown `kid` last reloaded the keys.
    unknown_kid_reload: AsyncMutex<Option<std::time::Instant>>,
    unknown_kid_reloads: AtomicU64,
}

impl fmt::Debug for Latchkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Latchkey").field("policy", &self.inner.policy).finish_non_exhaustive()
    }
}

impl Latchkey {
    /// Starts the service on `stores`: makes the server secret and a signing key on first
    /// start, loads the keys and the revocations that still matter.
    pub async fn start(
        stores: Stores,
        clock: Arc<dyn Clock>,
        hasher: PasswordHasher,
        policy: Policy,
        custody: KeyCustody,
    ) -> Result<Self, AuthError> {
        let KeyCustody { file_key, master_key } = custody;
        let now = clock.now();
        let mut stored = stores.keys.list().await?;
        if !stored.iter().any(|key| key.alg == SERVER_SECRET_ALG) {
            let (_, bytes) = ServerSecret::generate();
            let key = StoredKey {
                kid: "server-secret".into(),
                alg: SERVER_SECRET_ALG.into(),
                material: b64url(&bytes),
                created_at: now,
                retired_at: None,
            };
            stores.keys.insert_if_absent(&sealed(master_key.as_ref(), key)?).await?;
            stored = stores.keys.list().await?;
        }
        let has_signer = stored.iter().any(|key| key.alg == policy.signing_alg.as_str() && key.retired_at.is_none());
        if file_key.is_none() && !has_signer {
            let key = sealed(master_key.as_ref(), keys::generate(policy.signing_alg, now)?)?;
            if stores.keys.insert_if_absent(&key).await? {
                info!(kid = %key.kid, alg = %key.alg, "generated a signing key");
            }
            stored = stores.keys.list().await?;
        }
        if let Some(master) = &master_key {
            // Keys stored before a master key was configured are sealed now.
            for key in stored.iter().filter(|key| !MasterKey::is_sealed(&key.material)) {
                let sealed = sealed(Some(master), key.clone())?;
                if stores.keys.replace_material(&key.kid, &sealed.material).await? {
                    info!(kid = %key.kid, "sealed a stored key with the master key");
                }
            }
            stored = stores.keys.list().await?;
        }
        let stored = opened(master_key.as_ref(), stored)?;
        let server_secret = stored
            .iter()
            .find(|key| key.alg == SERVER_SECRET_ALG)
            .and_then(|key| b64url_decode(&key.material))
            .map(|bytes| ServerSecret::from_bytes(&Zeroizing::new(bytes)))
            .ok_or_else(|| StoreError::Corrupt("the server secret is missing or unreadable".into()))?;
        let key_set = KeySet::build(&stored, file_key.as_ref(), policy.signing_alg, policy.token_settings(), now)?;
        let cookie_cache =
            Cache::builder().max_capacity(100_000).time_to_live(policy.cookie_cache_ttl.unsigned_abs()).build();
        let bearer_cache = Cache::builder()
            .max_capacity(100_000)
            .time_to_live(policy.access_token_ttl.unsigned_abs() + std::time::Duration::from_secs(5))
            .build();
        let profile_cache =
            Cache::builder().max_capacity(100_000).time_to_live(policy.cookie_cache_ttl.unsigned_abs()).build();
        let throttle = Throttle::new(Arc::clone(&stores.throttle), policy.throttle.clone());
        let service = Self {
            inner: Arc::new(Inner {
                stores,
                clock,
                hasher,
                policy,
                server_secret,
                file_key,
                master_key,
                keys: RwLock::new(Arc::new(key_set)),
                denylist: Denylist::new(),
                throttle,
                cookie_cache,
                bearer_cache,
                profile_cache,
                revocation_cursor: AtomicI64::new(0),
                sync_lock: AsyncMutex::new(()),
                revocations: broadcast::channel(1024).0,
                unknown_kid_reload: AsyncMutex::new(None),
                unknown_kid_reloads: AtomicU64::new(0),
            }),
        };
        service.sync().await?;
        Ok(service)
    }

    /// The deployment's policy.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The current time by the service's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    /// The stores, for readiness checks and metrics.
    pub fn stores(&self) -> &Stores {
        &self.inner.stores
    }

    /// How often tokens naming an unknown `kid` made this instance reload its keys.
    pub fn unknown_kid_reloads(&self) -> u64 {
        self.inner.unknown_kid_reloads.load(Ordering::Relaxed)
    }

    /// The current key set.
    pub fn keys(&self) -> Arc<KeySet> {
        Arc::clone(&self.inner.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Creates an account.
    pub async fn sign_up(&self, username: &str, password: String) -> Result<Account, AuthError> {
        let username = Username::parse_new(username)?;
        let password = Password::parse_new(password, username.as_str())?;
        let account = Account {
            id: UserId::generate(),
            username,
            password_hash: self.inner.hasher.hash(&password).await?,
            created_at: self.now(),
            disabled: false,
        };
        match self.inner.stores.accounts.create(&account).await? {
            CreateAccount::Created => {
                self.audit(AuditEvent::new(AuditKind::SignUp, account.created_at).user(account.id, &account.username))
                    .await;
                Ok(account)
            }
            CreateAccount::UsernameTaken => Err(AuthError::UsernameTaken),
        }
    }

    /// Records a security event in the store's audit trail and in the log. A trail that cannot
    /// be written does not fail the request it describes (the log still has the event).
    async fn audit(&self, event: AuditEvent) {
        info!(
            target: "latchkey::audit",
            event = event.kind.as_str(),
            user.id = event.user_id.map(|id| id.to_string()),
            user.name = event.username.as_ref().map(Username::as_str),
            session.id = event.session_id.map(|id| id.to_string()),
            client.ip = event.ip.as_deref(),
            detail = event.detail.as_deref(),
            "audit"
        );
        if let Err(err) = self.inner.stores.audit.record(&event).await {
            warn!(error = %err, event = event.kind.as_str(), "the audit trail could not be written");
        }
    }

    /// The audit trail's events that pass `filter`, newest first.
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, AuthError> {
        Ok(self.inner.stores.audit.list(filter).await?)
    }

    /// Checks a username and password presented from `address`. Unknown users, wrong
    /// passwords and disabled accounts cost the same Argon2 work and give the same answer; a
    /// password longer than any password can be is refused without hashing. Throttled
    /// attempts are refused before any of that (see [`crate::throttle`]).
    pub async fn check_password(
        &self,
        username: &str,
        password: String,
        address: Option<IpAddr>,
    ) -> Result<Account, AuthError> {
        let hasher = &self.inner.hasher;
        let password = Password::parse_presented(password);
        let username = Username::parse(username).map_err(|_| username.to_owned());
        let keys = AttemptKeys::new(
            &self.inner.server_secret,
            username.as_ref().map_or_else(String::as_str, Username::as_str),
            address,
            password.as_ref().map(Password::as_bytes),
        );
        let now = self.now();
        let admission = self.inner.throttle.admit(&keys, now).await?.map_err(AuthError::Throttled)?;
        let account = match &username {
            Ok(username) => self.inner.stores.accounts.by_username(username).await?,
            Err(_) => None,
        };
        let matched = match &password {
            Some(password) => hasher.verify(password, account.as_ref().map(|a| &a.password_hash)).await?,
            None => false,
        };
        let refusal = match (&account, &password) {
            (None, _) => Some("unknown_user"),
            (Some(_), None) => Some("password_too_long"),
            (Some(_), Some(_)) if !matched => Some("wrong_password"),
            (Some(account), Some(_)) if account.disabled => Some("disabled"),
            _ => None,
        };
        let ip = address.map(|ip| ip.to_string());
        let (account, password) = match (account, password, refusal) {
            (Some(account), Some(password), None) => (account, password),
            (account, _, refusal) => {
                let mut event = AuditEvent::new(AuditKind::LoginFailed, now).ip(ip.as_deref());
                if let Some(account) = &account {
                    event = event.user(account.id, &account.username);
                }
                self.audit(event.detail(refusal.unwrap_or("refused"))).await;
                self.attempt_failed(&keys, admission, self.now(), ip.as_deref()).await?;
                return Err(AuthError::InvalidCredentials);
            }
        };
        self.inner.throttle.succeeded(&keys, admission).await?;
        if hasher.needs_rehash(&account.password_hash) {
            let upgraded = hasher.hash(&password).await?;
            self.inner.stores.accounts.set_password_hash(account.id, &upgraded).await?;
        }
        Ok(account)
    }

    /// Counts a failed attempt and audits the counters it brought to their allowance.
    async fn attempt_failed(
        &self,
        keys: &AttemptKeys,
        admission: Admission,
        now: OffsetDateTime,
        ip: Option<&str>,
    ) -> Result<(), AuthError> {
        for scope in self.inner.throttle.failed(keys, admission, now).await? {
            self.audit(AuditEvent::new(AuditKind::Throttled, now).ip(ip).detail(scope.as_str())).await;
        }
        Ok(())
    }

    /// Logs in: checks the password and mints a new session of `kind`. Never reuses a
    /// credential the client already held.
    pub async fn log_in(
        &self,
        username: &str,
        password: String,
        kind: SessionKind,
        client: ClientInfo,
    ) -> Result<Login, AuthError> {
        let address = client.ip.as_deref().and_then(|ip| ip.parse().ok());
        let account = self.check_password(username, password, address).await?;
        let now = self.now();
        let policy = &self.inner.policy;
        let cookie_secret = (kind == SessionKind::Cookie).then(SecretToken::generate);
        let secret_digest = cookie_secret.as_ref().map(SecretToken::digest);
        let session = Session {
            id: secret_digest.as_ref().map_or_else(SessionId::generate, SessionId::for_cookie),
            user_id: account.id,
            kind,
            secret_digest,
            refresh_counter: 0,
            rotated_at: None,
            created_at: now,
            last_seen_at: now,
            absolute_expires_at: now + policy.absolute_timeout(kind),
            idle_timeout: policy.idle_timeout(kind),
            client,
            revoked_at: None,
        };
        self.inner.stores.sessions.insert(&session).await?;
        let credential = match cookie_secret {
            Some(secret) => Credential::Cookie(secret),
            None => Credential::Tokens(self.issue_tokens(&session, &account.username)?),
        };
        let csrf_token = self.csrf_token(session.id);
        let event = AuditEvent::new(AuditKind::LoginSucceeded, now)
            .user(account.id, &account.username)
            .session(session.id)
            .ip(session.client.ip.as_deref())
            .detail(kind.as_str());
        self.audit(event).await;
        self.end_sessions_past_the_cap(account.id, session.id).await?;
        Ok(Login { account, session, credential, csrf_token })
    }

    /// Keeps a user within [`Policy::max_sessions_per_user`]: the sessions used longest ago
    /// (by recorded last use, then by creation) end, never the one just made. Audited as
    /// revocations with the cause `session_limit`.
    async fn end_sessions_past_the_cap(&self, user: UserId, newest: SessionId) -> Result<(), AuthError> {
        let cap = usize::try_from(self.inner.policy.max_sessions_per_user).unwrap_or(usize::MAX).max(1);
        let mut live = self.inner.stores.sessions.list_live(user, self.now()).await?;
        if live.len() <= cap {
            return Ok(());
        }
        live.retain(|session| session.id != newest);
        live.sort_by_key(|session| (session.last_seen_at, session.created_at));
        let excess = live.len() + 1 - cap;
        for session in live.iter().take(excess) {
            self.revoke(RevokeScope::OneOf { user, session: session.id }, RevocationCause::SessionLimit).await?;
        }
        Ok(())
    }

    fn issue_tokens(&self, session: &Session, username: &Username) -> Result<TokenPair, AuthError> {
        let now = self.now();
        // `exp` is whole seconds; `expires_in` is counted to it from the moment of issue and
        // rounded down, so it never promises more than the token has.
        let exp = (now + self.inner.policy.access_token_ttl).min(session.absolute_expires_at).unix_timestamp();
        let expires_in =
            i64::try_from((i128::from(exp) * 1_000_000_000 - now.unix_timestamp_nanos()).div_euclid(1_000_000_000))
                .unwrap_or(0)
                .max(0);
        let mut jti = [0u8; 16];
        fill_random(&mut jti);
        let claims = AccessClaims {
            iss: self.inner.policy.issuer.clone(),
            sub: session.user_id.to_string(),
            aud: self.inner.policy.audience.clone(),
            exp,
            iat: now.unix_timestamp(),
            nbf: None,
            jti: b64url(&jti),
            sid: session.id.to_string(),
            preferred_username: username.as_str().to_owned(),
        };
        let access_token = self.keys().sign(&claims)?;
        let refresh = RefreshToken { session_id: session.id, counter: session.refresh_counter };
        Ok(TokenPair {
            access_token,
            expires_in,
            refresh_token: Zeroizing::new(refresh.encode(&self.inner.server_secret)),
            session_id: session.id,
        })
    }

    /// Reads a cookie session and its user's name from the store, and caches them when the
    /// cache is on. `None` for no session or a disabled user.
    async fn load_cookie_entry(&self, digest: &TokenDigest) -> Result<Option<Arc<CookieEntry>>, AuthError> {
        let id = SessionId::for_cookie(digest);
        let Some(session) = self.inner.stores.sessions.get(id).await? else { return Ok(None) };
        let username = match self.inner.stores.accounts.by_id(session.user_id).await? {
            Some(account) if !account.disabled => account.username,
            _ => return Ok(None),
        };
        let entry = Arc::new(CookieEntry { session, username });
        if self.inner.policy.cookie_cache_ttl > Duration::ZERO {
            self.inner.cookie_cache.insert(*digest, Arc::clone(&entry));
        }
        Ok(Some(entry))
    }

    /// Exchanges a refresh token for a new pair (RFC 9700 §4.14 rotation). The token retired by
    /// the most recent rotation is answered with the current pair within the grace window; any
    /// other retired token revokes the whole session.
    pub async fn refresh(&self, presented: &str) -> Result<(Session, TokenPair), AuthError> {
        let token = RefreshToken::decode(presented, &self.inner.server_secret).ok_or(AuthError::InvalidGrant)?;
        let sessions = &self.inner.stores.sessions;
        // Two passes at most: losing the rotation race means another request rotated this very
        // token a moment ago, which the second pass answers through the grace window.
        for _ in 0..2 {
            let now = self.now();
            // The denylist too: a store that logs a revocation before marking the session (Redis)
            // may still hold it live if the mark failed.
            let session = match sessions.get(token.session_id).await? {
                Some(session)
                    if session.kind == SessionKind::Token
                        && session.is_live(now)
                        && !self.inner.denylist.denies(session.id, now) =>
                {
                    session
                }
                _ => return Err(AuthError::InvalidGrant),
            };
            let account = match self.inner.stores.accounts.by_id(session.user_id).await? {
                Some(account) if !account.disabled => account,
                _ => return Err(AuthError::InvalidGrant),
            };
            if token.counter == session.refresh_counter {
                match sessions.rotate(session.id, token.counter, now).await? {
                    Rotation::Rotated => {
                        let rotated = Session {
                            refresh_counter: session.refresh_counter + 1,
                            rotated_at: Some(now),
                            last_seen_at: now,
                            ..session
                        };
                        let pair = self.issue_tokens(&rotated, &account.username)?;
                        return Ok((rotated, pair));
                    }
                    Rotation::Lost => continue,
                }
            }
            let in_grace = token.counter + 1 == session.refresh_counter
                && session.rotated_at.is_some_and(|at| now - at <= self.inner.policy.refresh_reuse_grace);
            if in_grace {
                let pair = self.issue_tokens(&session, &account.username)?;
                return Ok((session, pair));
            }
            warn!(session.id = %session.id, user.id = %session.user_id, "refresh token reuse detected; revoking the session");
            let event = AuditEvent::new(AuditKind::RefreshReuseDetected, now)
                .user(account.id, &account.username)
                .session(session.id);
            self.audit(event).await;
            self.revoke(RevokeScope::One(session.id), RevocationCause::RefreshReuse).await?;
            return Err(AuthError::InvalidGrant);
        }
        Err(AuthError::InvalidGrant)
    }

    /// Checks a cookie session's secret. `Ok(None)` for anything that is not a live session.
    pub async fn authenticate_cookie(&self, presented: &str) -> Result<Option<Caller>, AuthError> {
        let Some(digest) = SecretToken::digest_presented(presented) else { return Ok(None) };
        let now = self.now();
        let cached = self.inner.cookie_cache.get(&digest);
        let from_cache = cached.is_some();
        let mut entry = match cached {
            Some(entry) => entry,
            None => match self.load_cookie_entry(&digest).await? {
                Some(entry) => entry,
                None => return Ok(None),
            },
        };
        // A cached copy may have aged out while another instance recorded newer activity: the
        // store decides before a session is refused as idle, so that a refusal is final.
        if from_cache && !entry.session.is_live(now) && entry.session.revoked_at.is_none() {
            self.inner.cookie_cache.invalidate(&digest);
            entry = match self.load_cookie_entry(&digest).await? {
                Some(entry) => entry,
                None => return Ok(None),
            };
        }
        let session = &entry.session;
        let stored_digest_matches = session.secret_digest.is_some_and(|stored| stored.matches(&digest));
        if !stored_digest_matches || !session.is_live(now) || self.inner.denylist.denies(session.id, now) {
            self.inner.cookie_cache.invalidate(&digest);
            return Ok(None);
        }
        if now - session.last_seen_at >= self.inner.policy.touch_interval_for(self.inner.policy.session_idle_timeout) {
            self.inner.stores.sessions.touch(session.id, now).await?;
            let touched = Session { last_seen_at: now, ..session.clone() };
            if self.inner.policy.cookie_cache_ttl > Duration::ZERO {
                let entry = CookieEntry { session: touched, username: entry.username.clone() };
                self.inner.cookie_cache.insert(digest, Arc::new(entry));
            }
        }
        Ok(Some(Caller {
            user_id: session.user_id,
            username: entry.username.clone(),
            session_id: session.id,
            kind: SessionKind::Cookie,
        }))
    }

    /// Checks an access token: signature and claims (cached per token until it expires), then
    /// the denylist. `Err(Ok(rejection))`-style detail is given so the caller can answer RFC
    /// 6750's `invalid_token`.
    pub async fn authenticate_bearer(&self, token: &str) -> Result<Result<Caller, TokenRejection>, AuthError> {
        if token.len() > keys::MAX_TOKEN_BYTES {
            return Ok(Err(TokenRejection::Malformed));
        }
        let digest = TokenDigest::of(token.as_bytes());
        let now = self.now();
        let entry = match self.inner.bearer_cache.get(&digest) {
            Some(entry) => entry,
            None => {
                let claims = match self.verify_access_token(token, now).await? {
                    Ok(claims) => claims,
                    Err(rejection) => return Ok(Err(rejection)),
                };
                let (Some(user_id), Some(session_id), Ok(username)) = (
                    UserId::parse(&claims.sub),
                    SessionId::parse(&claims.sid),
                    Username::parse(&claims.preferred_username),
                ) else {
                    return Ok(Err(TokenRejection::Invalid("claims of the wrong form".into())));
                };
                let caller = Caller { user_id, username, session_id, kind: SessionKind::Token };
                let entry = Arc::new(BearerEntry { caller, exp: claims.exp });
                self.inner.bearer_cache.insert(digest, Arc::clone(&entry));
                entry
            }
        };
        if keys::is_expired(entry.exp, now) {
            self.inner.bearer_cache.invalidate(&digest);
            return Ok(Err(TokenRejection::Expired));
        }
        if self.inner.denylist.denies(entry.caller.session_id, now) {
            return Ok(Err(TokenRejection::Invalid("session revoked".into())));
        }
        Ok(Ok(entry.caller.clone()))
    }

    /// Verifies a token's signature and claims. A token naming a `kid` this instance has not
    /// seen (an emergency rotation made by another instance or the CLI) may reload the keys, at
    /// most once per [`UNKNOWN_KID_RELOAD_INTERVAL`] however many such tokens arrive: anybody
    /// can send them, and each reload is a store read.
    async fn verify_access_token(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Result<AccessClaims, TokenRejection>, AuthError> {
        match self.keys().verify(token, now) {
            Err(TokenRejection::UnknownKey) => {
                // Concurrent requests queue here; the first reloads and the rest find it done.
                let mut last_reload = self.inner.unknown_kid_reload.lock().await;
                if last_reload.is_none_or(|at| at.elapsed() >= UNKNOWN_KID_RELOAD_INTERVAL) {
                    *last_reload = Some(std::time::Instant::now());
                    self.inner.unknown_kid_reloads.fetch_add(1, Ordering::Relaxed);
                    self.reload_keys().await?;
                }
                drop(last_reload);
                Ok(self.keys().verify(token, now))
            }
            other => Ok(other),
        }
    }

    /// The session a presented refresh token names, if latchkey minted it (revoked or not).
    pub fn refresh_token_session(&self, presented: &str) -> Option<SessionId> {
        RefreshToken::decode(presented, &self.inner.server_secret).map(|token| token.session_id)
    }

    /// The CSRF token of a session: derived from its id under the server secret, so it is
    /// stable for the session's life and needs no storage.
    pub fn csrf_token(&self, session: SessionId) -> String {
        b64url(&self.inner.server_secret.mac(CSRF_PURPOSE, &[session.as_uuid().as_bytes()]))
    }

    /// Whether `presented` is the session's CSRF token (constant time).
    pub fn csrf_matches(&self, session: SessionId, presented: &str) -> bool {
        let Some(bytes) = b64url_decode(presented) else { return false };
        self.inner.server_secret.verify(CSRF_PURPOSE, &[session.as_uuid().as_bytes()], &bytes)
    }

    /// The caller's profile: their account and the session the credential belongs to, if it
    /// is live and theirs. Served from this instance's memory like a cookie check (for at most
    /// the cookie cache's time to live, the propagation bound), so asking who one is costs what a
    /// check costs: every hit is checked against the denylist, which revocations (and so
    /// disabling an account or changing its password) reach on every instance, and against the
    /// session's expiry at `now`.
    pub async fn profile(&self, caller: &Caller) -> Result<Option<Arc<Profile>>, AuthError> {
        let now = self.now();
        if self.inner.denylist.denies(caller.session_id, now) {
            return Ok(None);
        }
        let cache = &self.inner.profile_cache;
        if let Some(cached) = cache.get(&caller.session_id) {
            if cached.session.user_id == caller.user_id && cached.session.is_live(now) {
                return Ok(Some(cached));
            }
            // A cached copy may have aged out while newer activity was recorded (see
            // `authenticate_cookie`): the store decides.
            cache.invalidate(&caller.session_id);
        }
        let stores = &self.inner.stores;
        let Some(session) = stores.sessions.get(caller.session_id).await? else { return Ok(None) };
        if session.user_id != caller.user_id || !session.is_live(now) {
            return Ok(None);
        }
        let Some(account) = stores.accounts.by_id(caller.user_id).await? else { return Ok(None) };
        let profile = Arc::new(Profile { username: account.username, created_at: account.created_at, session });
        if self.inner.policy.cookie_cache_ttl > Duration::ZERO {
            cache.insert(caller.session_id, Arc::clone(&profile));
        }
        Ok(Some(profile))
    }

    /// An account by id.
    pub async fn account(&self, id: UserId) -> Result<Option<Account>, AuthError> {
        Ok(self.inner.stores.accounts.by_id(id).await?)
    }

    /// An account by username.
    pub async fn account_by_name(&self, username: &str) -> Result<Option<Account>, AuthError> {
        let Ok(username) = Username::parse(username) else { return Ok(None) };
        Ok(self.inner.stores.accounts.by_username(&username).await?)
    }

    /// Every account.
    pub async fn accounts(&self) -> Result<Vec<Account>, AuthError> {
        Ok(self.inner.stores.accounts.list().await?)
    }

    /// A user's live sessions, newest first.
    pub async fn sessions(&self, user: UserId) -> Result<Vec<Session>, AuthError> {
        Ok(self.inner.stores.sessions.list_live(user, self.now()).await?)
    }

    /// Revokes sessions for `cause`; on this instance their credentials are refused from the
    /// moment this returns.
    pub async fn revoke(&self, scope: RevokeScope, cause: RevocationCause) -> Result<Vec<Revocation>, AuthError> {
        let now = self.now();
        let policy = &self.inner.policy;
        let until = |kind: SessionKind| match kind {
            SessionKind::Token => now + policy.access_token_window(),
            SessionKind::Cookie => now + policy.cookie_cache_ttl,
        };
        let revoked = self.inner.stores.sessions.revoke(scope, now, &until).await?;
        // The owner's id comes with the scope; no lookup on the revocation path for the trail.
        let owner = match scope {
            RevokeScope::One(_) => None,
            RevokeScope::OneOf { user, .. } | RevokeScope::AllOf(user) | RevokeScope::AllOfExcept(user, _) => {
                Some(user)
            }
        };
        for entry in &revoked {
            self.inner.denylist.insert(entry.session_id, entry.until);
            self.inner.profile_cache.invalidate(&entry.session_id);
        }
        for entry in &revoked {
            let mut event =
                AuditEvent::new(AuditKind::SessionRevoked, now).session(entry.session_id).detail(cause.as_str());
            event.user_id = owner;
            self.audit(event).await;
        }
        if !revoked.is_empty() {
            // Publishes the new log entries (in log order) to feed subscribers now rather than
            // at the next periodic sync. The revocation itself is already in force; a failure
            // here only delays the feed until that sync.
            if let Err(err) = self.sync_revocations().await {
                warn!(error = %err, "publishing revocations failed; the next sync will");
            }
        }
        Ok(revoked)
    }

    /// Revokes one of the caller's sessions; `NotFound` when it is not theirs.
    pub async fn revoke_own(&self, caller: &Caller, session: SessionId) -> Result<(), AuthError> {
        let revoked =
            self.revoke(RevokeScope::OneOf { user: caller.user_id, session }, RevocationCause::DeviceRevoked).await?;
        if revoked.is_empty() { Err(AuthError::NotFound) } else { Ok(()) }
    }

    /// RFC 7009: revokes the session of a refresh or access token, if it is one of ours.
    /// Unknown tokens are not an error.
    pub async fn revoke_token(&self, token: &str) -> Result<(), AuthError> {
        let session = match RefreshToken::decode(token, &self.inner.server_secret) {
            Some(refresh) => Some(refresh.session_id),
            None => match self.verify_access_token(token, self.now()).await? {
                Ok(claims) => SessionId::parse(&claims.sid),
                Err(_) => None,
            },
        };
        if let Some(session) = session {
            self.revoke(RevokeScope::One(session), RevocationCause::TokenRevoked).await?;
        }
        Ok(())
    }

    /// Logs the caller out of the sessions `scope` names.
    pub async fn log_out(&self, caller: &Caller, scope: LogoutScope) -> Result<(), AuthError> {
        let revoke = match scope {
            LogoutScope::Current => RevokeScope::One(caller.session_id),
            LogoutScope::Others => RevokeScope::AllOfExcept(caller.user_id, caller.session_id),
            LogoutScope::All => RevokeScope::AllOf(caller.user_id),
        };
        let event = AuditEvent::new(AuditKind::Logout, self.now())
            .user(caller.user_id, &caller.username)
            .session(caller.session_id)
            .detail(scope.as_str());
        self.audit(event).await;
        self.revoke(revoke, RevocationCause::Logout).await?;
        Ok(())
    }

    /// Changes the caller's password and revokes every other session of theirs.
    pub async fn change_password(&self, caller: &Caller, current: String, new: String) -> Result<(), AuthError> {
        let account = self.inner.stores.accounts.by_id(caller.user_id).await?.ok_or(AuthError::InvalidCredentials)?;
        // The current password is guessed against the account's counter too: a stolen session
        // must not become an unthrottled password oracle.
        let keys = AttemptKeys::new(&self.inner.server_secret, account.username.as_str(), None, None);
        let now = self.now();
        let admission = self.inner.throttle.admit(&keys, now).await?.map_err(AuthError::Throttled)?;
        let current = Password::parse_presented(current);
        let matched = match &current {
            Some(current) => self.inner.hasher.verify(current, Some(&account.password_hash)).await?,
            None => false,
        };
        if !matched {
            let event = AuditEvent::new(AuditKind::LoginFailed, now)
                .user(account.id, &account.username)
                .session(caller.session_id)
                .detail("wrong_current_password");
            self.audit(event).await;
            self.attempt_failed(&keys, admission, self.now(), None).await?;
            return Err(AuthError::WrongCurrentPassword);
        }
        self.inner.throttle.succeeded(&keys, admission).await?;
        let new = Password::parse_new(new, account.username.as_str())?;
        let hash = self.inner.hasher.hash(&new).await?;
        self.inner.stores.accounts.set_password_hash(account.id, &hash).await?;
        let event = AuditEvent::new(AuditKind::PasswordChanged, now)
            .user(account.id, &account.username)
            .session(caller.session_id);
        self.audit(event).await;
        self.revoke(RevokeScope::AllOfExcept(account.id, caller.session_id), RevocationCause::PasswordChanged).await?;
        Ok(())
    }

    /// Disables an account and revokes all its sessions; `NotFound` when no such user.
    pub async fn disable_user(&self, username: &str) -> Result<Account, AuthError> {
        let account = self.account_by_name(username).await?.ok_or(AuthError::NotFound)?;
        self.inner.stores.accounts.set_disabled(account.id, true).await?;
        self.audit(AuditEvent::new(AuditKind::UserDisabled, self.now()).user(account.id, &account.username)).await;
        self.revoke(RevokeScope::AllOf(account.id), RevocationCause::UserDisabled).await?;
        Ok(Account { disabled: true, ..account })
    }

    /// Rotates the signing key by hand. The new key is published at once and signs from one
    /// JWKS `max-age` later ([`keys::jwks_max_age`]), when every verifier's cached JWKS has it,
    /// as a scheduled rotation does; with `at_once` (an emergency: the current key is thought
    /// compromised) it signs now, and verifiers that cached the JWKS refetch it on the unknown
    /// `kid`. Either way older keys keep verifying until their tokens expire. Returns the new
    /// key and when it starts signing.
    pub async fn rotate_keys(&self, at_once: bool) -> Result<(StoredKey, OffsetDateTime), AuthError> {
        let now = self.now();
        let policy = &self.inner.policy;
        let starts_at = if at_once { now } else { now + keys::jwks_max_age(policy.access_token_ttl) };
        let key = sealed(self.inner.master_key.as_ref(), keys::generate(policy.signing_alg, starts_at)?)?;
        if at_once {
            self.inner.stores.keys.insert_active(&key, now).await?;
        } else if !self.inner.stores.keys.schedule_rotation(&key, now).await? {
            return Err(AuthError::RotationPending);
        }
        let detail = format!("{} {}{}", key.alg, key.kid, if at_once { " at once" } else { " scheduled" });
        self.audit(AuditEvent::new(AuditKind::KeyRotated, now).detail(detail)).await;
        self.reload_keys().await?;
        Ok((key, starts_at))
    }

    /// Brings this instance up to date with the store: revocations made elsewhere go into the
    /// denylist, new or retired keys into the key set. Called periodically.
    pub async fn sync(&self) -> Result<(), AuthError> {
        self.sync_revocations().await?;
        self.inner.denylist.prune(self.now());
        self.reload_keys().await?;
        self.rotate_keys_when_due().await
    }

    /// Schedules the next signing key when the current one has served its interval: the new
    /// key is published at once and signs from [`keys::jwks_max_age`] later, when every JWKS
    /// cache has seen it; the old one keeps verifying until its tokens have expired. Of
    /// several instances that find it due at once, one schedules it (the store decides).
    async fn rotate_keys_when_due(&self) -> Result<(), AuthError> {
        let policy = &self.inner.policy;
        let (Some(interval), None) = (policy.key_rotation_interval, &self.inner.file_key) else { return Ok(()) };
        let now = self.now();
        let current = self.keys();
        if current.next_change().is_some() || current.signer_created_at() + interval > now {
            return Ok(());
        }
        let starts_at = now + keys::jwks_max_age(policy.access_token_ttl);
        let key = sealed(self.inner.master_key.as_ref(), keys::generate(policy.signing_alg, starts_at)?)?;
        if self.inner.stores.keys.schedule_rotation(&key, now - interval).await? {
            info!(kid = %key.kid, alg = %key.alg, "scheduled the next signing key");
            let detail = format!("{} {} scheduled", key.alg, key.kid);
            self.audit(AuditEvent::new(AuditKind::KeyRotated, now).detail(detail)).await;
            self.reload_keys().await?;
        }
        Ok(())
    }

    /// Reads the revocation log past this instance's cursor: each entry goes into the
    /// denylist and, in log order, to the revocation broadcast.
    async fn sync_revocations(&self) -> Result<(), AuthError> {
        let _one_at_a_time = self.inner.sync_lock.lock().await;
        let now = self.now();
        let cursor = self.inner.revocation_cursor.load(Ordering::Acquire);
        let fresh = self.inner.stores.sessions.revocations_after(cursor, now).await?;
        let mut newest = cursor;
        for entry in fresh {
            self.inner.denylist.insert(entry.session_id, entry.until);
            newest = newest.max(entry.cursor);
            // No subscriber is not an error.
            let _ = self.inner.revocations.send(entry);
        }
        if newest == 0 {
            newest = self.inner.stores.sessions.latest_cursor().await?;
        }
        self.inner.revocation_cursor.store(newest, Ordering::Release);
        Ok(())
    }

    /// Refuses a session revoked elsewhere at once (announced by another instance), ahead of
    /// the log sync that brings the same revocation in order.
    pub fn deny(&self, session: SessionId, until: OffsetDateTime) {
        self.inner.denylist.insert(session, until);
    }

    /// Revocations as this instance learns of them, in log order (for the revocation feed).
    /// Subscribe before reading the backlog with [`Latchkey::revocations_after`], then skip
    /// entries at or before the last position already sent.
    pub fn subscribe_revocations(&self) -> broadcast::Receiver<Revocation> {
        self.inner.revocations.subscribe()
    }

    /// Revocations of token sessions after `cursor` whose access tokens may still be
    /// unexpired, and the cursor to resume from.
    pub async fn revocations_after(&self, cursor: i64) -> Result<(Vec<Revocation>, i64), AuthError> {
        let sessions = &self.inner.stores.sessions;
        // Read the log's end first: entries committed after it are returned next time.
        let latest = sessions.latest_cursor().await?;
        let entries = sessions.revocations_after(cursor, self.now()).await?;
        let resume = entries.iter().map(|entry| entry.cursor).max().unwrap_or(0).max(latest).max(cursor);
        Ok((entries.into_iter().filter(|entry| entry.kind == SessionKind::Token).collect(), resume))
    }

    async fn reload_keys(&self) -> Result<(), AuthError> {
        let stored = self.inner.stores.keys.list().await?;
        let file_key = self.inner.file_key.as_ref();
        let now = self.now();
        let current = self.keys();
        // Rebuild when the keys changed, and when a retired key's overlap ran out.
        let overlap_ended = stored.iter().any(|key| {
            key.retired_at.is_some_and(|at| {
                let ends = at + self.inner.policy.access_token_window();
                ends <= now && current.jwks().contains(&key.kid)
            })
        });
        let hand_over_due = current.next_change().is_some_and(|at| at <= now);
        if current.is_stale(&stored, file_key) || overlap_ended || hand_over_due {
            let policy = &self.inner.policy;
            let stored = opened(self.inner.master_key.as_ref(), stored)?;
            let rebuilt = KeySet::build(&stored, file_key, policy.signing_alg, policy.token_settings(), now)?;
            *self.inner.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(rebuilt);
        }
        Ok(())
    }

    /// Deletes sessions that ended more than a day ago and keys whose tokens have all expired.
    pub async fn purge(&self) -> Result<u64, AuthError> {
        let now = self.now();
        let sessions = self.inner.stores.sessions.purge(now - Duration::days(1)).await?;
        let keys = self.inner.stores.keys.delete_retired_before(now - self.inner.policy.access_token_window()).await?;
        Ok(sessions + keys)
    }

    /// Number of live sessions, both kinds, where the store counts them.
    pub async fn count_live_sessions(&self) -> Result<Option<u64>, AuthError> {
        Ok(self.inner.stores.sessions.count_live(self.now()).await?)
    }
}
