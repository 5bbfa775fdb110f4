//! Proof Key for Code Exchange (RFC 7636), S256 only: the one method OAuth 2.1 keeps, and the
//! one latchkey requires of every client, public or confidential.

use aws_lc_rs::digest::{SHA256, digest};
use subtle::ConstantTimeEq;

use crate::secret::b64url;

/// A code challenge: `BASE64URL(SHA256(code_verifier))`, 43 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

/// Why an authorization request's PKCE parameters are refused (`invalid_request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    /// No `code_challenge`.
    #[error("code_challenge is required (PKCE with S256)")]
    Missing,
    /// A method other than S256, or none (which means `plain`).
    #[error("code_challenge_method must be S256")]
    Method,
    /// A challenge that is not 43 base64url characters.
    #[error("code_challenge must be 43 base64url characters (BASE64URL(SHA256(code_verifier)))")]
    Malformed,
}

impl CodeChallenge {
    /// The challenge of an authorization request: its `code_challenge` and
    /// `code_challenge_method` (which must be `S256`; absent means `plain`, refused).
    pub fn from_request(challenge: Option<&str>, method: Option<&str>) -> Result<Self, PkceError> {
        let challenge = challenge.filter(|challenge| !challenge.is_empty()).ok_or(PkceError::Missing)?;
        if method != Some("S256") {
            return Err(PkceError::Method);
        }
        Self::parse(challenge).ok_or(PkceError::Malformed)
    }

    /// A stored challenge, checked for shape.
    pub fn parse(text: &str) -> Option<Self> {
        let valid = text.len() == 43 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        valid.then(|| Self(text.to_owned()))
    }

    /// The challenge as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` (43 to 128 unreserved characters) is the one this challenge was made
    /// from, compared in constant time.
    pub fn is_met_by(&self, verifier: &str) -> bool {
        let shaped = (43..=128).contains(&verifier.len())
            && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        shaped && bool::from(b64url(digest(&SHA256, verifier.as_bytes()).as_ref()).as_bytes().ct_eq(self.0.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_rfc_example_verifies_and_nothing_else_does() {
        let challenge =
            CodeChallenge::from_request(Some(CHALLENGE), Some("S256")).unwrap_or_else(|err| panic!("{err}"));
        assert!(challenge.is_met_by(VERIFIER));
        for wrong in
            [&VERIFIER[1..], "", CHALLENGE, &format!("{VERIFIER}x"), &"a".repeat(129), &VERIFIER.replace('-', "+")]
        {
            assert!(!challenge.is_met_by(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn plain_missing_and_malformed_challenges_are_refused() {
        assert_eq!(CodeChallenge::from_request(Some(CHALLENGE), Some("plain")), Err(PkceError::Method));
        assert_eq!(CodeChallenge::from_request(Some(CHALLENGE), None), Err(PkceError::Method));
        assert_eq!(CodeChallenge::from_request(Some(CHALLENGE), Some("s256")), Err(PkceError::Method));
        assert_eq!(CodeChallenge::from_request(None, Some("S256")), Err(PkceError::Missing));
        assert_eq!(CodeChallenge::from_request(Some(""), Some("S256")), Err(PkceError::Missing));
        assert_eq!(CodeChallenge::from_request(Some(VERIFIER), Some("S256")).map(|c| c.0.len()), Ok(43));
        assert_eq!(CodeChallenge::from_request(Some("short"), Some("S256")), Err(PkceError::Malformed));
        assert_eq!(
            CodeChallenge::from_request(Some(&CHALLENGE.replace('-', "+")), Some("S256")),
            Err(PkceError::Malformed)
        );
    }
}
