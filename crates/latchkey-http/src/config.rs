//! The HTTP layer's settings, turned into checked values once at start.

use std::fmt;

use ipnet::IpNet;
use latchkey_core::secret::TokenDigest;

/// A web origin (`scheme://host[:port]`) in the serialised form browsers send in `Origin`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin(String);

/// Why an origin was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an origin of the form scheme://host[:port]")]
pub struct OriginError(String);

impl Origin {
    /// Parses `scheme://host[:port]` (a trailing `/` is allowed), lowercasing scheme and host
    /// and dropping a default port, so it compares equal to what a browser sends.
    pub fn parse(raw: &str) -> Result<Self, OriginError> {
        let refuse = || OriginError(raw.to_owned());
        let trimmed = raw.trim().trim_end_matches('/');
        let (scheme, rest) = trimmed.split_once("://").ok_or_else(refuse)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(refuse());
        }
        if rest.is_empty()
            || rest.contains(['/', '?', '#', '@'])
            || rest.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(refuse());
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || rest.starts_with('[') => {
                if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
                    return Err(refuse());
                }
                (host, Some(port.parse::<u16>().map_err(|_| refuse())?))
            }
            _ => (rest, None),
        };
        if host.is_empty() {
            return Err(refuse());
        }
        let default_port = if scheme == "https" { 443 } else { 80 };
        let host = host.to_ascii_lowercase();
        Ok(Self(match port {
            Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
            _ => format!("{scheme}://{host}"),
        }))
    }

    /// The serialised origin.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the origin is https.
    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The bearer secret of service endpoints (`/v1/revocations`). Kept only as a digest and
/// compared in constant time; never printed.
#[derive(Clone)]
pub struct ServiceToken(TokenDigest);

/// Why a service token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a service token has at least 32 characters")]
pub struct ServiceTokenTooShort;

impl ServiceToken {
    /// Shortest accepted token, in bytes: a guessable service token would expose every
    /// revocation.
    pub const MIN_LEN: usize = 32;

    /// Accepts a configured token of at least [`Self::MIN_LEN`] bytes.
    pub fn new(token: &str) -> Result<Self, ServiceTokenTooShort> {
        if token.len() < Self::MIN_LEN {
            return Err(ServiceTokenTooShort);
        }
        Ok(Self(TokenDigest::of(token.as_bytes())))
    }

    /// Whether `presented` is the token (digests compared in constant time, so neither the
    /// content nor the length leaks through timing).
    pub fn matches(&self, presented: &str) -> bool {
        self.0.matches(&TokenDigest::of(presented.as_bytes()))
    }
}

impl fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceToken([redacted])")
    }
}

/// Settings of the HTTP layer.
#[derive(Clone)]
pub struct HttpConfig {
    /// The public URL without a trailing slash: the issuer, and the base of discovery URLs.
    pub public_url: String,
    /// The public URL's origin; always allowed by the CSRF rule and CORS.
    pub public_origin: Origin,
    /// Further origins allowed by the CSRF rule and CORS.
    pub allowed_origins: Vec<Origin>,
    /// Stem of cookie names: `<stem>_session`, `<stem>_at`, `<stem>_rt`.
    pub cookie_name: String,
    /// `Domain` attribute of cookies; with it the session cookie takes the `__Secure-` prefix
    /// instead of `__Host-` (which forbids a domain).
    pub cookie_domain: Option<String>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The bearer secret of `/v1/revocations`; without one the feed is off (`404`).
    pub service_token: Option<ServiceToken>,
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("public_url", &self.public_url)
            .field("allowed_origins", &self.allowed_origins)
            .field("cookie_name", &self.cookie_name)
            .field("cookie_domain", &self.cookie_domain)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("service_token", &self.service_token)
            .finish()
    }
}

impl HttpConfig {
    /// The configuration of a server at `public_origin` with every other setting at its
    /// default: no extra origins, cookies named `latchkey_*` for the host only, no trusted
    /// proxies, the revocation feed off.
    pub fn new(public_origin: Origin) -> Self {
        Self {
            public_url: public_origin.as_str().to_owned(),
            public_origin,
            allowed_origins: Vec::new(),
            cookie_name: "latchkey".into(),
            cookie_domain: None,
            trusted_proxies: Vec::new(),
            service_token: None,
        }
    }

    /// Whether cookies get `Secure` and the `__Host-`/`__Secure-` prefixes.
    pub fn secure_cookies(&self) -> bool {
        self.public_origin.is_https()
    }

    /// Whether a request's `Origin` is one latchkey trusts (the public URL's or a configured
    /// one). `null` and anything malformed are never allowed.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        origin == self.public_origin.as_str() || self.allowed_origins.iter().any(|allowed| allowed.as_str() == origin)
    }

    /// Every allowed origin.
    pub fn all_origins(&self) -> impl Iterator<Item = &Origin> {
        std::iter::once(&self.public_origin).chain(self.allowed_origins.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_serialised_as_browsers_send_them() {
        let parse = |raw: &str| Origin::parse(raw).map(|o| o.as_str().to_owned());
        assert_eq!(parse("HTTPS://App.Example.com/"), Ok("https://app.example.com".into()));
        assert_eq!(parse("https://app.example.com:443"), Ok("https://app.example.com".into()));
        assert_eq!(parse("http://localhost:8080"), Ok("http://localhost:8080".into()));
        assert_eq!(parse("http://[::1]:3000"), Ok("http://[::1]:3000".into()));
        for bad in ["null", "app.example.com", "ftp://x", "https://x/path", "https://", "https://u@x", "http://x:port"]
        {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }
}
