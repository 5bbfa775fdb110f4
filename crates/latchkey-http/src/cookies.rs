//! The cookies latchkey sets: names with the `__Host-`/`__Secure-` prefixes when the public URL
//! is https, and the attributes of API.md (HttpOnly, SameSite=Lax, Secure, paths).

use axum::http::{HeaderMap, header};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use time::Duration;

use crate::config::HttpConfig;

/// The path the hybrid refresh cookie is scoped to.
pub const REFRESH_COOKIE_PATH: &str = "/v1/token";

/// The value of the request's cookie `name`, read straight from its `Cookie` headers: the
/// verify hot path needs one or two cookies, not a jar of all of them, each copied and
/// percent-decoded (latchkey's values are base64url and JWTs, never percent-encoded).
pub fn request_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let [value] = request_cookies(headers, [name]);
    value
}

/// The values of the request's cookies `names`, in one pass over its `Cookie` headers (the
/// first of each name wins).
pub fn request_cookies<'a, const N: usize>(headers: &'a HeaderMap, names: [&str; N]) -> [Option<&'a str>; N] {
    let mut found = [None; N];
    let pairs = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok);
    for cookie in pairs {
        let (Some(name), Some(value)) = (cookie.name_raw(), cookie.value_raw()) else { continue };
        if let Some(slot) = names.iter().position(|wanted| *wanted == name).map(|at| &mut found[at])
            && slot.is_none()
        {
            *slot = Some(value);
        }
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    found
}

/// The names of latchkey's three cookies, computed once from the configuration.
#[derive(Debug, Clone)]
pub struct CookieNames {
    /// The cookie session's secret.
    pub session: String,
    /// The hybrid access token.
    pub access: String,
    /// The hybrid refresh token.
    pub refresh: String,
    secure: bool,
    domain: Option<String>,
}

impl CookieNames {
    /// Names per API.md: `__Host-` for cookies on `/` (or `__Secure-` when a domain is set,
    /// since `__Host-` forbids one), `__Secure-` for the refresh cookie (its path is not `/`);
    /// no prefixes over plain http.
    pub fn new(config: &HttpConfig) -> Self {
        let secure = config.secure_cookies();
        let stem = &config.cookie_name;
        let root_prefix = match (secure, config.cookie_domain.is_some()) {
            (false, _) => "",
            (true, false) => "__Host-",
            (true, true) => "__Secure-",
        };
        let refresh_prefix = if secure { "__Secure-" } else { "" };
        Self {
            session: format!("{root_prefix}{stem}_session"),
            access: format!("{root_prefix}{stem}_at"),
            refresh: format!("{refresh_prefix}{stem}_rt"),
            secure,
            domain: config.cookie_domain.clone(),
        }
    }

    fn build(&self, name: &str, value: String, path: &'static str, max_age: Duration) -> Cookie<'static> {
        let mut cookie = Cookie::build((name.to_owned(), value))
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .path(path)
            .max_age(max_age)
            .build();
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        cookie
    }

    /// The cookie session's cookie.
    pub fn session_cookie(&self, secret: &str, max_age: Duration) -> Cookie<'static> {
        self.build(&self.session, secret.to_owned(), "/", max_age)
    }

    /// The hybrid access-token cookie.
    pub fn access_cookie(&self, token: &str, max_age: Duration) -> Cookie<'static> {
        self.build(&self.access, token.to_owned(), "/", max_age)
    }

    /// The hybrid refresh-token cookie, scoped to the token endpoint.
    pub fn refresh_cookie(&self, token: &str, max_age: Duration) -> Cookie<'static> {
        self.build(&self.refresh, token.to_owned(), REFRESH_COOKIE_PATH, max_age)
    }

    /// `Set-Cookie`s that clear all three (`Max-Age=0`), for logout.
    pub fn removals(&self) -> CookieJar {
        [
            self.build(&self.session, String::new(), "/", Duration::ZERO),
            self.build(&self.access, String::new(), "/", Duration::ZERO),
            self.build(&self.refresh, String::new(), REFRESH_COOKIE_PATH, Duration::ZERO),
        ]
        .into_iter()
        .fold(CookieJar::new(), CookieJar::add)
    }
}

#[cfg(test)]
mod request_cookie_tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn finds_a_cookie_among_several_headers_and_pairs() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("theme=dark; __Host-latchkey_session=abc_-123"));
        headers.append(header::COOKIE, HeaderValue::from_static("other=1;latchkey_at=eyJ.x.y"));
        assert_eq!(request_cookie(&headers, "__Host-latchkey_session"), Some("abc_-123"));
        assert_eq!(request_cookie(&headers, "latchkey_at"), Some("eyJ.x.y"));
        assert_eq!(request_cookie(&headers, "latchkey_session"), None, "a name is matched whole");
        assert_eq!(request_cookie(&HeaderMap::new(), "theme"), None);
    }

    #[test]
    fn several_cookies_are_found_in_one_pass_and_the_first_of_a_name_wins() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=2; a=3"));
        headers.append(header::COOKIE, HeaderValue::from_static("c=4"));
        assert_eq!(request_cookies(&headers, ["c", "a", "z"]), [Some("4"), Some("1"), None]);
    }

    #[test]
    fn broken_pairs_are_skipped() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("=novalue; ;; theme=light"));
        assert_eq!(request_cookie(&headers, "theme"), Some("light"));
    }
}
