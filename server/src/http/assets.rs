//! The tracker, served from the binary itself: `/js/footfall.js` and its optional modules. Built
//! from `tracker/src` into `tracker/dist` (committed, rebuilt and compared in CI), embedded at
//! compile time so a deployment is one file.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;

struct Asset {
    name: &'static str,
    body: &'static [u8],
}

macro_rules! tracker_assets {
    ($($name:literal),* $(,)?) => {
        &[$(Asset { name: $name, body: include_bytes!(concat!("../../../tracker/dist/", $name)) }),*]
    };
}

static ASSETS: &[Asset] = tracker_assets![
    "footfall.js",
    "footfall.vitals.js",
    "footfall.errors.js",
    "footfall.interactions.js",
    "footfall.forms.js",
    "footfall.search.js",
    "footfall.experiments.js",
];

/// Sites embed an unversioned URL, so browsers may cache for a day and then revalidate by ETag:
/// a new tracker reaches every site within a day without a site owner changing anything.
const CACHE_CONTROL: &str = "public, max-age=86400, stale-while-revalidate=604800";

fn etag(body: &[u8]) -> String {
    format!("\"{}\"", &blake3::hash(body).to_hex()[..16])
}

/// `GET /js/{file}`.
pub async fn tracker_script(Path(file): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    let Some(asset) = ASSETS.iter().find(|a| a.name == file) else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no script {file:?}")));
    };
    let tag = etag(asset.body);
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut response = if cached { StatusCode::NOT_MODIFIED.into_response() } else { asset.body.into_response() };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(value) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_is_embedded_and_not_empty() {
        assert_eq!(ASSETS.len(), 7);
        assert!(ASSETS.iter().all(|a| !a.body.is_empty()));
        assert_ne!(etag(ASSETS[0].body), etag(ASSETS[1].body));
    }
}
