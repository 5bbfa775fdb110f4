//! ID tokens (OpenID Connect Core §2): what an app learns about a sign-in at latchkey, signed
//! with the app's algorithm (RS256 unless it registered another) and bound to the access token
//! issued with it by `at_hash` (§3.1.3.6).

use aws_lc_rs::digest::{SHA256, SHA512, digest};
use serde::{Deserialize, Serialize};

use crate::clients::IdTokenAlg;
use crate::secret::b64url;

/// The `typ` of an ID token's header.
pub const ID_TOKEN_TYP: &str = "JWT";

/// The claims of an ID token (the contract's list; `preferred_username` with `profile`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// latchkey's issuer URL.
    pub iss: String,
    /// The user's id, as in `/v1/me`.
    pub sub: String,
    /// The app's `client_id`.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// When the user last signed in with a password, seconds since the epoch.
    pub auth_time: i64,
    /// The authorization request's `nonce`, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The SSO session's id (the user's sign-in at latchkey).
    pub sid: String,
    /// The access token issued with it, hashed ([`at_hash`]).
    pub at_hash: String,
    /// The authorized party: the app's `client_id`.
    pub azp: String,
    /// The username, with the `profile` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
}

/// `at_hash`: the left half of the hash of the access token's ASCII text, base64url, with the
/// hash of the ID token's algorithm (SHA-256 for RS256 and ES256; SHA-512 for EdDSA, whose
/// Ed25519 signs over SHA-512).
pub fn at_hash(alg: IdTokenAlg, access_token: &str) -> String {
    let hashed = match alg {
        IdTokenAlg::Rs256 | IdTokenAlg::Es256 => digest(&SHA256, access_token.as_bytes()),
        IdTokenAlg::EdDsa => digest(&SHA512, access_token.as_bytes()),
    };
    let bytes = hashed.as_ref();
    b64url(&bytes[..bytes.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_published_examples() {
        // OpenID Connect Core 1.0, the RS256 example of §3.1.3.6 / Appendix A.
        assert_eq!(at_hash(IdTokenAlg::Rs256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"), "77QmUPtjPfzWtF2AnpK9RQ");
        assert_eq!(at_hash(IdTokenAlg::Es256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"), "77QmUPtjPfzWtF2AnpK9RQ");
        // SHA-512 for EdDSA, as other OpenID providers compute it (checked with Python's hashlib).
        assert_eq!(
            at_hash(IdTokenAlg::EdDsa, "dNZX1hEZ9wBCzNL40Upu646bdzQA"),
            "8xltSlOGYrWy8W9yNvRlEth1i_bXW-JROWPLvCv5zog"
        );
    }

    #[test]
    fn optional_claims_are_left_out_rather_than_null() {
        let claims = IdTokenClaims {
            iss: "https://auth.example".into(),
            sub: "user".into(),
            aud: "client".into(),
            exp: 2,
            iat: 1,
            auth_time: 1,
            nonce: None,
            sid: "sso".into(),
            at_hash: "h".into(),
            azp: "client".into(),
            preferred_username: None,
        };
        let json = serde_json::to_value(&claims).unwrap_or_default();
        assert!(json.get("nonce").is_none() && json.get("preferred_username").is_none(), "{json}");
        assert_eq!(json["azp"], "client");
    }
}
