//! Issuing a token pair: the access token signed by the current key (never outliving its
//! session) and the refresh token of the session's current rotation.

use std::fmt;

use zeroize::Zeroizing;

use super::{AccessClaims, RefreshToken};
use crate::accounts::Username;
use crate::error::AuthError;
use crate::ids::SessionId;
use crate::latchkey::Latchkey;
use crate::secret::{b64url, fill_random};
use crate::sessions::{AppSession, Session};

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

impl Latchkey {
    pub(crate) fn issue_tokens(&self, session: &Session, username: &Username) -> Result<TokenPair, AuthError> {
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
            client_id: session.app.as_ref().map(|app| app.client_id.to_string()),
            scope: session.app.as_ref().map(AppSession::scope),
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
}
