//! The authorization code flow's own state (API.md, "Single sign-on for other apps"): PKCE
//! (S256 only), authorization codes, and the consent a user gave an app.
//!
//! A code is single-use, lives at most [`CODE_LIFETIME`], and is bound to the client, the
//! redirect URI and the PKCE challenge of its request. It is kept only as the digest of the
//! code the browser carried, so a copy of the store redeems nothing. Its redemption is decided
//! by the store, once, whichever instance asks; a second presentation learns what the first
//! issued, so that it can be revoked.
//!
//! Here too: checking an authorization request, deciding what it needs next (sign-in, consent
//! or a code), and redeeming a code for an app's session under the user's sign-in.
//!
//! Not here: the registered apps themselves ([`crate::clients`]), and the session record a
//! redemption creates ([`crate::sessions`]).

mod pkce;
mod request;
mod service;
mod store;

use std::fmt;

use time::{Duration, OffsetDateTime};

use crate::clients::ClientId;
use crate::ids::{SessionId, UserId};
use crate::secret::TokenDigest;
pub use pkce::{CodeChallenge, PkceError};
pub use request::{
    AuthorizationError, AuthorizationErrorCode, AuthorizationParams, AuthorizationRequest, Prompt, RedirectedError,
    SUPPORTED_SCOPES,
};
pub use service::{AllowedApp, AppTokens, Decision, answer_location};
pub use store::{CodeStore, ConsentStore, Redemption};

/// How long a code can be redeemed after it was issued.
pub const CODE_LIFETIME: Duration = Duration::seconds(60);

/// An authorization code as stored, under the digest of the code itself.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    /// The SHA-256 of the code the browser carried.
    pub digest: TokenDigest,
    /// The client it was issued to.
    pub client_id: ClientId,
    /// The redirect URI of its request, exactly as sent.
    pub redirect_uri: String,
    /// The PKCE challenge of its request.
    pub challenge: CodeChallenge,
    /// Whose sign-in it carries.
    pub user_id: UserId,
    /// The SSO session (the user's sign-in at latchkey) it was issued under.
    pub sso_session: SessionId,
    /// The scopes granted, `openid` first.
    pub scopes: Vec<String>,
    /// The request's `nonce`, for the ID token.
    pub nonce: Option<String>,
    /// When the user last signed in with a password (`auth_time`).
    pub auth_time: OffsetDateTime,
    /// When it was issued.
    pub issued_at: OffsetDateTime,
}

// The nonce and the bindings are not secrets, but a code's record stays out of logs anyway.
impl fmt::Debug for AuthorizationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationCode")
            .field("client_id", &self.client_id)
            .field("user_id", &self.user_id)
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

impl AuthorizationCode {
    /// When it can no longer be redeemed.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.issued_at + CODE_LIFETIME
    }

    /// Whether it is redeemable at `now` by `client` for `redirect_uri` with `verifier`: every
    /// binding holds (the redirect URI character for character) and it has not expired.
    pub fn redeemable(&self, now: OffsetDateTime, client: &ClientId, redirect_uri: &str, verifier: &str) -> bool {
        now < self.expires_at()
            && &self.client_id == client
            && self.redirect_uri == redirect_uri
            && self.challenge.is_met_by(verifier)
    }
}

/// A user's consent to an app: the scopes it may have without asking again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// Who allowed.
    pub user_id: UserId,
    /// Which app.
    pub client_id: ClientId,
    /// What it may see.
    pub scopes: Vec<String>,
    /// When it was last given.
    pub granted_at: OffsetDateTime,
}

impl Consent {
    /// Whether this consent covers every scope in `asked`.
    pub fn covers(&self, asked: &[String]) -> bool {
        asked.iter().all(|scope| self.scopes.contains(scope))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretToken;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn code(issued_at: OffsetDateTime) -> AuthorizationCode {
        AuthorizationCode {
            digest: SecretToken::generate().digest(),
            client_id: ClientId::generate(),
            redirect_uri: "https://notes.example/cb".into(),
            challenge: CodeChallenge::parse(CHALLENGE).unwrap_or_else(|| panic!("challenge")),
            user_id: UserId::generate(),
            sso_session: SessionId::generate(),
            scopes: vec!["openid".into()],
            nonce: Some("n-0S6_WzA2Mj".into()),
            auth_time: issued_at,
            issued_at,
        }
    }

    #[test]
    fn a_code_is_redeemable_only_within_its_minute_by_its_client_redirect_and_verifier() {
        let issued = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let code = code(issued);
        let client = code.client_id.clone();
        let at = issued + Duration::seconds(59);
        assert!(code.redeemable(at, &client, "https://notes.example/cb", VERIFIER));
        assert!(!code.redeemable(issued + CODE_LIFETIME, &client, "https://notes.example/cb", VERIFIER));
        assert!(!code.redeemable(at, &ClientId::generate(), "https://notes.example/cb", VERIFIER));
        assert!(!code.redeemable(at, &client, "https://notes.example/cb/", VERIFIER));
        assert!(!code.redeemable(at, &client, "https://notes.example/cb", &VERIFIER.replace('d', "e")));
    }

    #[test]
    fn a_consent_covers_only_the_scopes_it_names() {
        let consent = Consent {
            user_id: UserId::generate(),
            client_id: ClientId::generate(),
            scopes: vec!["openid".into(), "profile".into()],
            granted_at: OffsetDateTime::UNIX_EPOCH,
        };
        assert!(consent.covers(&["openid".into()]));
        assert!(consent.covers(&["openid".into(), "profile".into()]));
        assert!(!consent.covers(&["openid".into(), "email".into()]));
    }
}
