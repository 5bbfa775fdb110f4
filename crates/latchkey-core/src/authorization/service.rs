//! The provider's operations on the authorization code flow: deciding what a browser's
//! authorization request needs next (sign-in, consent, or a code), answering the consent page,
//! redeeming a code for an app session with its tokens and ID token, and authenticating apps.

use time::{Duration, OffsetDateTime};
use url::Url;

use super::request::{AuthorizationError, AuthorizationErrorCode, AuthorizationParams, AuthorizationRequest, Prompt};
use super::{AuthorizationCode, Consent, Redemption};
use crate::audit::{AuditEvent, AuditKind};
use crate::clients::{Client, ClientId};
use crate::error::AuthError;
use crate::ids::UserId;
use crate::latchkey::Latchkey;
use crate::revocation::{RevocationCause, RevokeScope};
use crate::secret::{SecretToken, b64url, b64url_decode};
use crate::sessions::{AppSession, Caller, ClientInfo, Profile, Session, SessionId, SessionKind};
use crate::tokens::{ID_TOKEN_TYP, IdTokenClaims, TokenPair, at_hash};

/// The MAC purpose of the sign-in mark.
const MARK_PURPOSE: &str = "latchkey sign-in mark";
/// How long a sign-in mark is honoured: time enough to type a password.
const MARK_LIFETIME: Duration = Duration::minutes(30);

/// What an authorization request needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The browser signs in (again) and comes back with this mark on the request
    /// ([`AuthorizationParams::signed_in_after`]).
    SignIn {
        /// The mark to add to the request.
        mark: String,
    },
    /// The user is asked to allow the app.
    Consent,
    /// The browser goes back to the app with a code: the full address.
    Redirect(String),
}

/// An app a user has allowed.
#[derive(Debug, Clone)]
pub struct AllowedApp {
    /// Its name.
    pub name: String,
    /// What the user allowed, and when.
    pub consent: Consent,
}

/// What redeeming a code gives the app.
#[derive(Debug)]
pub struct AppTokens {
    /// The app's new session.
    pub session: Session,
    /// Its access and refresh tokens.
    pub pair: TokenPair,
    /// The ID token.
    pub id_token: String,
}

/// The address an authorization answer goes to: the redirect URI with `params` added to its
/// query (keeping a query it has).
pub fn answer_location(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return redirect_uri.to_owned();
    }
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.into()
        }
        // Registered URIs are parsed at registration; this cannot happen for one of them.
        Err(_) => redirect_uri.to_owned(),
    }
}

impl Latchkey {
    /// Checks an authorization request: the client and its redirect URI first (an unknown
    /// client or a foreign redirect is [`AuthorizationError::NotRedirectable`]), then the rest.
    pub async fn check_authorization(
        &self,
        params: AuthorizationParams,
    ) -> Result<AuthorizationRequest, AuthorizationError> {
        let (client_id, _) = params.client_and_redirect()?;
        let client = self
            .inner
            .stores
            .clients
            .get(&client_id)
            .await
            .map_err(AuthError::from)?
            .ok_or(AuthorizationError::NotRedirectable("the app (client_id) is not known here"))?;
        let mut request = params.check(client)?;
        if let Some(mark) = request.mark.take() {
            let at = self.sign_in_mark_time(&mark).ok_or_else(|| {
                AuthorizationError::to_app(
                    &request,
                    AuthorizationErrorCode::InvalidRequest,
                    "signed_in_after is not a mark latchkey made in the last 30 minutes",
                )
            })?;
            request.signed_in_after = Some(at);
        }
        Ok(request)
    }

    /// What `request` needs next for a browser signed in as `browser` (if at all).
    pub async fn authorize(
        &self,
        request: &AuthorizationRequest,
        browser: Option<&Caller>,
    ) -> Result<Decision, AuthorizationError> {
        let now = self.now();
        let profile = match browser {
            Some(caller) => self.profile(caller).await?,
            None => None,
        };
        let Some(profile) = profile.filter(|profile| request.accepts_sign_in(profile.session.created_at, now)) else {
            if request.prompt == Prompt::None {
                return Err(AuthorizationError::to_app(
                    request,
                    AuthorizationErrorCode::LoginRequired,
                    "the user is not signed in at latchkey (or not recently enough)",
                ));
            }
            return Ok(Decision::SignIn { mark: self.sign_in_mark(now) });
        };
        if !request.client.skip_consent {
            let consent = self.inner.stores.consents.consent(profile.session.user_id, &request.client.id).await;
            if !consent.map_err(AuthError::from)?.is_some_and(|consent| consent.covers(&request.scopes)) {
                if request.prompt == Prompt::None {
                    return Err(AuthorizationError::to_app(
                        request,
                        AuthorizationErrorCode::ConsentRequired,
                        "the user has not allowed this app yet",
                    ));
                }
                return Ok(Decision::Consent);
            }
        }
        Ok(Decision::Redirect(self.issue_code(request, &profile).await?))
    }

    /// The user's answer on the consent page for `request`: "Allow" records the consent and
    /// goes on with the request; "Deny" sends `access_denied` back to the app.
    pub async fn answer_consent(
        &self,
        request: &AuthorizationRequest,
        browser: &Caller,
        allow: bool,
    ) -> Result<Decision, AuthorizationError> {
        let now = self.now();
        let event = |kind| {
            AuditEvent::new(kind, now).user(browser.user_id, &browser.username).detail(request.client.id.as_str())
        };
        if !allow {
            self.audit(event(AuditKind::ConsentDenied)).await;
            return Err(AuthorizationError::to_app(
                request,
                AuthorizationErrorCode::AccessDenied,
                "the user did not allow the app",
            ));
        }
        let consents = &self.inner.stores.consents;
        let mut scopes = match consents.consent(browser.user_id, &request.client.id).await.map_err(AuthError::from)? {
            Some(earlier) => earlier.scopes,
            None => Vec::new(),
        };
        for scope in &request.scopes {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        let consent =
            Consent { user_id: browser.user_id, client_id: request.client.id.clone(), scopes, granted_at: now };
        consents.grant(&consent).await.map_err(AuthError::from)?;
        self.audit(event(AuditKind::ConsentGiven)).await;
        self.authorize(request, Some(browser)).await
    }

    /// Withdraws a user's consent to an app and ends the app's sessions of that user; whether
    /// there was a consent.
    pub async fn withdraw_consent(&self, caller: &Caller, client: &ClientId) -> Result<bool, AuthError> {
        let withdrawn = self.inner.stores.consents.withdraw(caller.user_id, client).await?;
        self.end_app_sessions(caller.user_id, client, RevocationCause::ConsentWithdrawn).await?;
        if withdrawn {
            let event = AuditEvent::new(AuditKind::ConsentWithdrawn, self.now())
                .user(caller.user_id, &caller.username)
                .detail(client.as_str());
            self.audit(event).await;
        }
        Ok(withdrawn)
    }

    /// Ends every live session of `user` in the app `client`.
    pub(crate) async fn end_app_sessions(
        &self,
        user: UserId,
        client: &ClientId,
        cause: RevocationCause,
    ) -> Result<(), AuthError> {
        for session in self.sessions(user).await? {
            if session.app.as_ref().is_some_and(|app| &app.client_id == client) {
                self.revoke(RevokeScope::OneOf { user, session: session.id }, cause).await?;
            }
        }
        Ok(())
    }

    /// The apps `user` has allowed, newest consent first, with their names (an app removed
    /// since is left out).
    pub async fn allowed_apps(&self, user: UserId) -> Result<Vec<AllowedApp>, AuthError> {
        let mut apps = Vec::new();
        for consent in self.inner.stores.consents.consents_of(user).await? {
            if let Some(client) = self.inner.stores.clients.get(&consent.client_id).await? {
                apps.push(AllowedApp { name: client.name, consent });
            }
        }
        Ok(apps)
    }

    /// Issues a code for `request` under the browser's sign-in, and the address that carries
    /// it back to the app (`code`, `state`, `iss`).
    async fn issue_code(&self, request: &AuthorizationRequest, profile: &Profile) -> Result<String, AuthError> {
        let code = SecretToken::generate();
        let record = AuthorizationCode {
            digest: code.digest(),
            client_id: request.client.id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            challenge: request.challenge.clone(),
            user_id: profile.session.user_id,
            sso_session: profile.session.id,
            scopes: request.scopes.clone(),
            nonce: request.nonce.clone(),
            auth_time: profile.session.created_at,
            issued_at: self.now(),
        };
        self.inner.stores.codes.insert(&record).await?;
        let mut params = vec![("code", code.expose())];
        if let Some(state) = &request.state {
            params.push(("state", state));
        }
        params.push(("iss", &self.inner.policy.issuer));
        Ok(answer_location(&request.redirect_uri, &params))
    }

    /// A mark for a request sent through the sign-in page: the time, and its MAC.
    fn sign_in_mark(&self, now: OffsetDateTime) -> String {
        // Microseconds, the stores' precision for a session's creation: a sign-in in the same
        // second as the request is still told apart.
        let micros = (now.unix_timestamp_nanos() / 1_000).to_string();
        let mac = self.inner.server_secret.mac(MARK_PURPOSE, &[micros.as_bytes()]);
        format!("{micros}.{}", b64url(&mac))
    }

    /// The time of a mark latchkey made within [`MARK_LIFETIME`]; `None` for anything else.
    fn sign_in_mark_time(&self, mark: &str) -> Option<OffsetDateTime> {
        let (micros, mac) = mark.split_once('.')?;
        let mac = b64url_decode(mac)?;
        if !self.inner.server_secret.verify(MARK_PURPOSE, &[micros.as_bytes()], &mac) {
            return None;
        }
        let at = OffsetDateTime::from_unix_timestamp_nanos(micros.parse::<i128>().ok()? * 1_000).ok()?;
        let now = self.now();
        (at <= now && now - at <= MARK_LIFETIME).then_some(at)
    }

    /// Authenticates an app at the token, introspection or revocation endpoint: a confidential
    /// client by its secret, a public client by its id alone (it has no secret, and must not
    /// send one). `InvalidClient` for anything else.
    pub async fn authenticate_client(&self, id: &str, secret: Option<&str>) -> Result<Client, AuthError> {
        let id = ClientId::parse(id).ok_or(AuthError::InvalidClient)?;
        let client = self.inner.stores.clients.get(&id).await?.ok_or(AuthError::InvalidClient)?;
        let authenticated = match secret {
            Some(secret) => client.secret_matches(secret),
            None => client.is_public(),
        };
        if authenticated { Ok(client) } else { Err(AuthError::InvalidClient) }
    }

    /// Redeems a code for `client`: once, within its minute, for the redirect URI and PKCE
    /// verifier of its request, while the sign-in it came from lasts. Creates the app's
    /// session under that sign-in and issues its tokens and ID token. A code presented again
    /// revokes what its first use issued.
    pub async fn redeem_code(
        &self,
        client: &Client,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        info: ClientInfo,
    ) -> Result<AppTokens, AuthError> {
        let now = self.now();
        let refused = |reason: &str| AuditEvent::new(AuditKind::CodeRefused, now).ip(info.ip.as_deref()).detail(reason);
        let Some(digest) = SecretToken::digest_presented(code) else {
            self.audit(refused("unknown")).await;
            return Err(AuthError::InvalidGrant);
        };
        let code = match self.inner.stores.codes.redeem(&digest, now).await? {
            Redemption::First(code) => code,
            Redemption::Replayed { issued } => {
                self.audit(refused("replayed")).await;
                if let Some(session) = issued {
                    self.revoke(RevokeScope::One(session), RevocationCause::CodeReplayed).await?;
                }
                return Err(AuthError::InvalidGrant);
            }
            Redemption::Unknown => {
                self.audit(refused("unknown")).await;
                return Err(AuthError::InvalidGrant);
            }
        };
        if !code.redeemable(now, &client.id, redirect_uri, verifier) {
            self.audit(refused("binding").user_id(code.user_id)).await;
            return Err(AuthError::InvalidGrant);
        }
        let stores = &self.inner.stores;
        let sso_live = match stores.sessions.get(code.sso_session).await? {
            Some(sso) => sso.is_live(now) && !self.inner.revocations.denylist.denies(sso.id, now),
            None => false,
        };
        let account = stores.accounts.by_id(code.user_id).await?.filter(|account| !account.disabled);
        let (true, Some(account)) = (sso_live, account) else {
            self.audit(refused("signed_out").user_id(code.user_id)).await;
            return Err(AuthError::InvalidGrant);
        };
        let policy = &self.inner.policy;
        let session = Session {
            id: SessionId::generate(),
            user_id: account.id,
            kind: SessionKind::Token,
            secret_digest: None,
            refresh_counter: 0,
            rotated_at: None,
            created_at: now,
            last_seen_at: now,
            absolute_expires_at: now + policy.absolute_timeout(SessionKind::Token),
            idle_timeout: policy.idle_timeout(SessionKind::Token),
            client: info,
            revoked_at: None,
            app: Some(AppSession {
                client_id: client.id.clone(),
                sso_session: code.sso_session,
                scopes: code.scopes.clone(),
            }),
        };
        stores.sessions.insert(&session).await?;
        stores.codes.record_issued(&digest, session.id).await?;
        let notify = client.backchannel_logout_uri.is_some();
        stores.sign_ins.record_sign_in(&client.id, code.sso_session, account.id, notify, now).await?;
        let pair = self.issue_tokens(&session, &account.username)?;
        let alg = client.id_token_alg;
        let claims = IdTokenClaims {
            iss: policy.issuer.clone(),
            sub: account.id.to_string(),
            aud: client.id.to_string(),
            exp: (now + policy.access_token_ttl).unix_timestamp(),
            iat: now.unix_timestamp(),
            auth_time: code.auth_time.unix_timestamp(),
            nonce: code.nonce.clone(),
            sid: code.sso_session.to_string(),
            at_hash: at_hash(alg, &pair.access_token),
            azp: client.id.to_string(),
            preferred_username: code
                .scopes
                .iter()
                .any(|scope| scope == "profile")
                .then(|| account.username.as_str().to_owned()),
        };
        let id_token = self.sign_for_app(alg, ID_TOKEN_TYP, &claims).await?;
        let event = AuditEvent::new(AuditKind::AppAuthorized, now)
            .user(account.id, &account.username)
            .session(session.id)
            .ip(session.client.ip.as_deref())
            .detail(client.id.as_str());
        self.audit(event).await;
        self.end_sessions_past_the_cap(account.id, &session).await?;
        Ok(AppTokens { session, pair, id_token })
    }
}
