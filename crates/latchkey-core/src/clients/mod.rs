//! Apps that sign their users in through latchkey (OpenID Connect relying parties; API.md,
//! "Single sign-on for other apps"): registered by the operator, each with the exact URIs it
//! may be sent back to, whether it keeps a secret, whether it asks for consent, and how its ID
//! tokens are signed. A confidential client's secret is shown once and kept only as its
//! SHA-256 digest: it is 256 random bits, so a fast digest is as strong as a slow hash, and
//! a copy of the store does not let anybody authenticate as the app.
//!
//! Not here: authorization codes and consent, which build on a registered client.

mod service;
mod store;
mod uri;

use std::fmt;

use time::OffsetDateTime;

pub use crate::ids::ClientId;
use crate::keys::SigningAlgorithm;
use crate::secret::{SecretToken, TokenDigest};
pub use store::ClientStore;
pub use uri::{RegisteredUri, UriError};

/// How a client's ID tokens are signed: RS256 unless it registered another (OIDC Core §15.1
/// makes RS256 the one every relying party supports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdTokenAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[default]
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl IdTokenAlg {
    /// Every algorithm, RS256 first (the discovery document's order).
    pub const ALL: [IdTokenAlg; 3] = [IdTokenAlg::Rs256, IdTokenAlg::Es256, IdTokenAlg::EdDsa];

    /// The JOSE name.
    pub fn as_str(&self) -> &'static str {
        match self {
            IdTokenAlg::Rs256 => "RS256",
            IdTokenAlg::Es256 => "ES256",
            IdTokenAlg::EdDsa => "EdDSA",
        }
    }

    /// Parses the JOSE name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == text)
    }

    /// The signing algorithm of the keyring that signs these ID tokens.
    pub fn signing(&self) -> SigningAlgorithm {
        match self {
            IdTokenAlg::Rs256 => SigningAlgorithm::RS256,
            IdTokenAlg::Es256 => SigningAlgorithm::ES256,
            IdTokenAlg::EdDsa => SigningAlgorithm::EdDSA,
        }
    }
}

/// A registered client.
#[derive(Clone, PartialEq, Eq)]
pub struct Client {
    /// Its `client_id`.
    pub id: ClientId,
    /// The name users see on the consent page and in their device list.
    pub name: String,
    /// Where authorization answers may be sent, compared character for character.
    pub redirect_uris: Vec<RegisteredUri>,
    /// Where RP-initiated logout may send the browser afterwards.
    pub post_logout_redirect_uris: Vec<RegisteredUri>,
    /// Where back-channel logout tokens are posted, if the client takes them.
    pub backchannel_logout_uri: Option<RegisteredUri>,
    /// The digest of a confidential client's secret; `None` for a public client.
    pub secret_digest: Option<TokenDigest>,
    /// Whether users are spared the consent page (a first-party app).
    pub skip_consent: bool,
    /// How its ID tokens are signed.
    pub id_token_alg: IdTokenAlg,
    /// When it was registered.
    pub created_at: OffsetDateTime,
}

// The digest is not a secret, but it is no one's business either.
impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("public", &self.is_public())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Whether the client keeps no secret (a single-page or mobile app).
    pub fn is_public(&self) -> bool {
        self.secret_digest.is_none()
    }

    /// Whether `presented` is this confidential client's secret (in constant time).
    pub fn secret_matches(&self, presented: &str) -> bool {
        match (&self.secret_digest, SecretToken::digest_presented(presented)) {
            (Some(digest), Some(presented)) => digest.matches(&presented),
            _ => false,
        }
    }

    /// Whether `uri` is one of the client's redirect URIs, character for character.
    pub fn may_redirect_to(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|registered| registered.as_str() == uri)
    }
}

/// What the operator asks to register (`latchkey client add`).
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    /// The name users see.
    pub name: String,
    /// At least one redirect URI.
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// The back-channel logout URI.
    pub backchannel_logout_uri: Option<String>,
    /// A public client (no secret).
    pub public: bool,
    /// No consent page.
    pub skip_consent: bool,
    /// How its ID tokens are signed.
    pub id_token_alg: IdTokenAlg,
}

/// Why a client could not be registered or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The name is empty, longer than 100 characters, or has control characters.
    #[error("a client's name is 1 to 100 characters, without control characters")]
    InvalidName,
    /// No redirect URI was given.
    #[error("a client needs at least one redirect URI")]
    NoRedirectUri,
    /// A URI breaks the rules.
    #[error(transparent)]
    Uri(#[from] UriError),
    /// No client has this id.
    #[error("no client {0}")]
    NotFound(String),
    /// A public client has no secret to rotate.
    #[error("client {0} is public: it has no secret")]
    Public(String),
}

/// A newly registered client, with its secret (shown this once) if it is confidential.
pub struct Registered {
    /// The client as stored.
    pub client: Client,
    /// The secret to hand to the app; `None` for a public client.
    pub secret: Option<SecretToken>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(secret: Option<&SecretToken>) -> Client {
        Client {
            id: ClientId::generate(),
            name: "Notes".into(),
            redirect_uris: vec![
                RegisteredUri::parse("https://notes.example/callback").unwrap_or_else(|err| panic!("{err}")),
            ],
            post_logout_redirect_uris: Vec::new(),
            backchannel_logout_uri: None,
            secret_digest: secret.map(SecretToken::digest),
            skip_consent: false,
            id_token_alg: IdTokenAlg::default(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn ids_are_random_and_presented_ones_are_checked_for_shape() {
        let id = ClientId::generate();
        assert_eq!(id.as_str().len(), 22);
        assert_ne!(id, ClientId::generate());
        assert_eq!(ClientId::parse(id.as_str()), Some(id));
        for bad in ["", "a b", "x".repeat(65).as_str(), "é", "a/b"] {
            assert_eq!(ClientId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_the_clients_own_secret_authenticates_it_and_a_public_client_has_none() {
        let secret = SecretToken::generate();
        let confidential = client(Some(&secret));
        assert!(confidential.secret_matches(secret.expose()));
        assert!(!confidential.secret_matches(SecretToken::generate().expose()));
        assert!(!confidential.secret_matches(""));
        let public = client(None);
        assert!(public.is_public() && !public.secret_matches(secret.expose()));
    }

    #[test]
    fn redirects_match_character_for_character() {
        let app = client(None);
        assert!(app.may_redirect_to("https://notes.example/callback"));
        for near in [
            "https://notes.example/callback/",
            "https://notes.example/Callback",
            "https://notes.example/callback?x=1",
            "https://NOTES.example/callback",
            "https://notes.example:443/callback",
        ] {
            assert!(!app.may_redirect_to(near), "{near}");
        }
    }

    #[test]
    fn id_token_algorithms_parse_by_their_jose_names_rs256_first() {
        assert_eq!(IdTokenAlg::ALL[0], IdTokenAlg::Rs256);
        for alg in IdTokenAlg::ALL {
            assert_eq!(IdTokenAlg::parse(alg.as_str()), Some(alg));
        }
        assert_eq!(IdTokenAlg::parse("HS256"), None);
        assert_eq!(IdTokenAlg::parse("rs256"), None);
    }

    #[test]
    fn debug_output_shows_no_digest() {
        let shown = format!("{:?}", client(Some(&SecretToken::generate())));
        assert!(!shown.contains("digest") && shown.contains("Notes"), "{shown}");
    }
}
