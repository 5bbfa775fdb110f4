//! `?return_to=`: where the sign-in page sends the browser afterwards. Only a path on this
//! server or a URL on an allowed origin, so the page is never an open redirect.

use std::fmt;

use url::Url;

use crate::config::HttpConfig;

/// Longest `return_to` accepted, in bytes.
const MAX_LEN: usize = 2048;

/// A checked place to return to after signing in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReturnTo(String);

/// Why a `return_to` was refused; shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReturnToError {
    /// An absolute URL on an origin latchkey does not trust.
    #[error("the address to return to after signing in ({0}) is not on an allowed origin")]
    ForeignOrigin(String),
    /// Neither a path nor an http(s) URL, or too long.
    #[error("the address to return to after signing in is not a path on this server or an http(s) URL")]
    Unusable,
}

impl ReturnTo {
    /// Checks a `return_to`: empty means none; a path must start with one `/` (a leading `//`
    /// or `/\` is another host to a browser); a URL must be http(s), carry no user info, and
    /// be on the public URL's origin or a configured one. The URL is kept as the parser
    /// serialised it, so the browser follows exactly what was checked.
    pub(crate) fn parse(config: &HttpConfig, raw: &str) -> Result<Option<Self>, ReturnToError> {
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.len() > MAX_LEN || raw.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
            return Err(ReturnToError::Unusable);
        }
        if raw.starts_with('/') {
            if raw.starts_with("//") {
                return Err(ReturnToError::ForeignOrigin(raw.to_owned()));
            }
            return Ok(Some(Self(raw.to_owned())));
        }
        let url = Url::parse(raw).map_err(|_| ReturnToError::Unusable)?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(ReturnToError::Unusable);
        }
        let origin = url.origin().ascii_serialization();
        if !url.username().is_empty() || url.password().is_some() || !config.origin_allowed(&origin) {
            return Err(ReturnToError::ForeignOrigin(origin));
        }
        Ok(Some(Self(url.into())))
    }

    /// Where to send the browser.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReturnTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Origin;

    fn config() -> HttpConfig {
        let mut config = HttpConfig::new(Origin::parse("https://auth.example.com").expect("origin"));
        config.allowed_origins.push(Origin::parse("https://app.example.com").expect("origin"));
        config
    }

    fn parse(raw: &str) -> Result<Option<String>, ReturnToError> {
        ReturnTo::parse(&config(), raw).map(|found| found.map(|r| r.as_str().to_owned()))
    }

    #[test]
    fn paths_on_this_server_and_urls_on_allowed_origins_are_kept() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("/account"), Ok(Some("/account".into())));
        assert_eq!(parse("/a/b?c=d#e"), Ok(Some("/a/b?c=d#e".into())));
        assert_eq!(parse("https://app.example.com/after"), Ok(Some("https://app.example.com/after".into())));
        assert_eq!(parse("HTTPS://APP.example.com:443"), Ok(Some("https://app.example.com/".into())));
        assert_eq!(parse("https://auth.example.com/account"), Ok(Some("https://auth.example.com/account".into())));
    }

    #[test]
    fn other_hosts_and_tricks_are_refused() {
        for foreign in [
            "https://evil.example",
            "http://app.example.com/",
            "https://app.example.com:8443/",
            "https://app.example.com.evil.example/",
            "https://app.example.com@evil.example/",
            "https://user@app.example.com/",
            "//evil.example/path",
        ] {
            assert!(matches!(parse(foreign), Err(ReturnToError::ForeignOrigin(_))), "{foreign}");
        }
        for unusable in [
            "javascript:alert(1)",
            "data:text/html,x",
            "/\\evil.example",
            "/ok\r\nSet-Cookie: x=y",
            "relative/path",
            "mailto:a@b.c",
            " https://app.example.com/",
        ] {
            assert_eq!(parse(unusable), Err(ReturnToError::Unusable), "{unusable:?}");
        }
        assert_eq!(parse(&format!("/{}", "a".repeat(MAX_LEN))), Err(ReturnToError::Unusable));
    }
}
