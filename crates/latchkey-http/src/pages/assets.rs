//! The pages' style sheet, script and icon, compiled into the binary.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::PageError;
use crate::error::ApiError;

/// Every asset: name, media type, content.
const ASSETS: [(&str, &str, &str); 3] = [
    ("latchkey.css", "text/css; charset=utf-8", include_str!("../../assets/latchkey.css")),
    ("playground.js", "text/javascript; charset=utf-8", include_str!("../../assets/playground.js")),
    ("icon.svg", "image/svg+xml", include_str!("../../assets/icon.svg")),
];

/// `GET /assets/{name}`. Cached briefly: the names carry no version, and a new release must
/// reach browsers within minutes.
pub(super) async fn asset(Path(name): Path<String>) -> Result<Response, PageError> {
    let (_, media_type, content) =
        ASSETS.iter().find(|(known, _, _)| *known == name).ok_or(PageError::from(ApiError::NotFound))?;
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(media_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300")),
    ];
    Ok((headers, *content).into_response())
}
