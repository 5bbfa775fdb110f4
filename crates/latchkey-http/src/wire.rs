//! How values appear on the wire, the same for the API and the pages: times, and the header
//! that keeps a response out of caches.

use axum::http::{HeaderValue, header};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// RFC 3339 in UTC, to the second.
pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0).unwrap_or(at).format(&Rfc3339).unwrap_or_default()
}

/// `Cache-Control: no-store` for responses that carry a secret or a user's data.
pub(crate) const NO_STORE: (header::HeaderName, HeaderValue) =
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
