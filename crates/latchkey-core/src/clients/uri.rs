//! The URIs a client registers (redirect, post-logout redirect, back-channel logout): absolute,
//! `https` — or `http` on a loopback IP address (RFC 8252 §7.3), for development and tests —
//! with no fragment (RFC 6749 §3.1.2) and no user info. Kept exactly as given, because a
//! redirect URI is compared character for character.

use std::fmt;

use url::{Host, Url};

/// A URI that passed the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredUri(String);

/// Why a URI cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// Not an absolute URI (or has spaces or control characters).
    #[error("{0:?} is not an absolute URI")]
    NotAbsolute(String),
    /// Neither https nor http on a loopback IP address.
    #[error("{0:?} must be https, or http on a loopback IP address (127.0.0.1, [::1])")]
    Insecure(String),
    /// Has a fragment.
    #[error("{0:?} has a fragment (#...), which a redirect URI must not have")]
    Fragment(String),
    /// Has user info.
    #[error("{0:?} has user info (user@), which a registered URI must not have")]
    UserInfo(String),
}

impl RegisteredUri {
    /// Checks `text` against the rules.
    pub fn parse(text: &str) -> Result<Self, UriError> {
        let owned = || text.to_owned();
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UriError::NotAbsolute(owned()));
        }
        let url = Url::parse(text).map_err(|_| UriError::NotAbsolute(owned()))?;
        if url.cannot_be_a_base() || url.host().is_none() {
            return Err(UriError::NotAbsolute(owned()));
        }
        if text.contains('#') {
            return Err(UriError::Fragment(owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UriError::UserInfo(owned()));
        }
        let loopback = match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            // `localhost` is a name that may resolve elsewhere (RFC 8252 §8.3).
            Some(Host::Domain(_)) | None => false,
        };
        match url.scheme() {
            "https" => Ok(Self(owned())),
            "http" if loopback => Ok(Self(owned())),
            _ => Err(UriError::Insecure(owned())),
        }
    }

    /// The URI exactly as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegisteredUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_loopback_http_are_kept_as_given() {
        for good in [
            "https://app.example/callback",
            "https://app.example:8443/cb?tenant=1",
            "http://127.0.0.1:3000/callback",
            "http://127.9.9.9/cb",
            "http://[::1]:8080/cb",
            "HTTPS://App.Example/Callback",
        ] {
            assert_eq!(RegisteredUri::parse(good).map(|uri| uri.as_str().to_owned()), Ok(good.to_owned()), "{good}");
        }
    }

    #[test]
    fn everything_else_is_refused_with_its_reason() {
        let refused = |text: &str| RegisteredUri::parse(text).err();
        for insecure in
            ["http://app.example/cb", "http://localhost:3000/cb", "http://10.0.0.1/cb", "ftp://app.example/"]
        {
            assert_eq!(refused(insecure), Some(UriError::Insecure(insecure.into())), "{insecure}");
        }
        for relative in ["/callback", "app.example/cb", "", "https://", "mailto:a@b.example", "https://app.example/c b"]
        {
            assert_eq!(refused(relative), Some(UriError::NotAbsolute(relative.into())), "{relative}");
        }
        assert_eq!(refused("https://app.example/cb#x"), Some(UriError::Fragment("https://app.example/cb#x".into())));
        assert_eq!(refused("https://app.example/cb#"), Some(UriError::Fragment("https://app.example/cb#".into())));
        assert_eq!(refused("https://me@app.example/cb"), Some(UriError::UserInfo("https://me@app.example/cb".into())));
    }
}
